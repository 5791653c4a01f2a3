"""Faults during training: divergence, interruption, and continued training (issue 5).

What a failed or interrupted fit leaves behind (also in ``docs/scaling.md``):

* ``TrainingDivergedError`` (a non-finite loss or gradient) in a first fit or
  a cold refit (``warm_start=False``): the estimator is left unfitted, so
  ``predict`` raises ``NotFittedError``; the message names ``lr``.
* ``KeyboardInterrupt`` inside training ends the training loop; ``fit`` sets
  every fitted attribute and then re-raises it. The estimator keeps the
  weights of the last completed optimizer step, ``history_`` holds the
  completed epochs plus one row for the interrupted epoch (without
  ``train_loss``), and the estimator predicts as usual.
* ``warm_start=True`` continues from the previous weights and appends epochs
  to ``history_``.
"""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import mrmoe_sklearn._base as base
from mrmoe_sklearn import LSTMClassifier, MRMoEClassifier, TrainingDivergedError

TINY = dict(hidden_size=4, backbone_units=4, batch_size=16, random_state=0)


def _data(n=40, seed=0):
    """Two classes separated by the level of channel 0 (40 samples: 3 batches of 16)."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.randn(n, 2, 8)
    X[:, 0, :] += (2 * y - 1)[:, None]
    return X, y


def _assert_proba_ok(clf, X):
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    return proba


def _assert_unfitted(clf, X):
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(NotFittedError):
            method(X)
    for attr in ("net_", "classes_", "n_features_in_", "history_", "scaling_"):
        assert not hasattr(clf, attr), attr


# ------------------------------------------------------------------ divergence
@pytest.mark.parametrize("clip", [None, 1.0])
@pytest.mark.parametrize("lr", [1e3, 1e6, 1e12])
def test_huge_lr_is_survived_or_reported(lr, clip):
    X, y = _data()
    clf = MRMoEClassifier(**TINY, max_epochs=3, lr=lr, clip_grad_norm=clip)
    try:
        clf.fit(X, y)
    except TrainingDivergedError as exc:
        assert "`lr`" in str(exc) and repr(lr) in str(exc), str(exc)
        _assert_unfitted(clf, X)
    else:
        _assert_proba_ok(clf, X)


def _nan_loss_on_call(monkeypatch, n_call):
    """Make the training loss NaN from the ``n_call``-th training step on."""
    calls = {"n": 0}
    original = base._Net.get_loss

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = original(self, y_pred, y_true, X=X, training=training)
        if training:
            calls["n"] += 1
            if calls["n"] >= n_call:
                loss = loss * float("nan")
        return loss

    monkeypatch.setattr(base._Net, "get_loss", get_loss)
    return calls


@pytest.mark.parametrize("estimator", [MRMoEClassifier, LSTMClassifier])
def test_divergence_leaves_estimator_unfitted(monkeypatch, estimator):
    X, y = _data()
    params = dict(TINY, max_epochs=3)
    if estimator is LSTMClassifier:
        params.pop("backbone_units")
    clf = estimator(**params)
    _nan_loss_on_call(monkeypatch, 5)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2.*`lr`"):
        clf.fit(X, y)
    _assert_unfitted(clf, X)
    # The estimator is reusable: a normal fit afterwards works.
    monkeypatch.undo()
    _assert_proba_ok(clf.fit(X, y), X)


def test_divergence_in_cold_refit_leaves_estimator_unfitted(monkeypatch):
    X, y = _data()
    clf = MRMoEClassifier(**TINY, max_epochs=2).fit(X, y)
    _nan_loss_on_call(monkeypatch, 2)
    with pytest.raises(TrainingDivergedError):
        clf.fit(X, y)
    _assert_unfitted(clf, X)


@pytest.mark.parametrize("n_call", [1, 4])
def test_divergence_in_warm_fit_keeps_a_usable_model(monkeypatch, n_call):
    """A warm fit that diverges leaves a fitted model that predicts finite probabilities."""
    X, y = _data()
    clf = MRMoEClassifier(**TINY, max_epochs=2).fit(X, y)
    before = _assert_proba_ok(clf, X)
    clf.set_params(warm_start=True)
    _nan_loss_on_call(monkeypatch, n_call)
    with pytest.raises(TrainingDivergedError):
        clf.fit(X, y)
    after = _assert_proba_ok(clf, X)
    if n_call == 1:  # the first step is rejected before any update: same weights
        np.testing.assert_allclose(after, before, rtol=0, atol=1e-12)


def test_divergent_lr_in_warm_fit_keeps_a_usable_model():
    X, y = _data()
    clf = MRMoEClassifier(**TINY, max_epochs=3).fit(X, y)
    before = _assert_proba_ok(clf, X)
    n_epochs = len(clf.history_)
    clf.set_params(warm_start=True, lr=1e6, max_epochs=5)
    try:
        clf.fit(X, y)
    except TrainingDivergedError:
        np.testing.assert_allclose(_assert_proba_ok(clf, X), before, atol=1e-12)
        assert len(clf.history_) == n_epochs
    else:
        _assert_proba_ok(clf, X)


def test_divergence_in_the_last_step_is_reported_by_fit():
    X, y = _data()
    clf = MRMoEClassifier(**dict(TINY, batch_size=len(X)), max_epochs=1, lr=1e30)
    try:
        clf.fit(X, y)
    except TrainingDivergedError:
        _assert_unfitted(clf, X)
    else:
        _assert_proba_ok(clf, X)


def test_absurd_lr_raises_a_clear_error():
    X, y = _data()
    with pytest.raises((ValueError, TrainingDivergedError), match="lr"):
        MRMoEClassifier(**TINY, max_epochs=1, lr=1e38).fit(X, y)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_divergence_inside_grid_search_scores_nan(monkeypatch):
    """GridSearchCV treats a diverged candidate as a failed fit (error_score=nan)."""
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import GridSearchCV

    original = base._Net.get_loss

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = original(self, y_pred, y_true, X=X, training=training)
        return loss * float("nan") if training and self.lr > 1 else loss

    monkeypatch.setattr(base._Net, "get_loss", get_loss)
    X, y = _data(n=24)
    search = GridSearchCV(MRMoEClassifier(**TINY, max_epochs=1), {"lr": [1e-2, 10.0]}, cv=2)
    with pytest.warns(FitFailedWarning, match="TrainingDivergedError"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert search.best_params_ == {"lr": 1e-2}
    with pytest.raises(TrainingDivergedError):
        GridSearchCV(MRMoEClassifier(**TINY, max_epochs=1), {"lr": [10.0]}, cv=2, error_score="raise").fit(X, y)


# -------------------------------------------------------------- interruption
def test_keyboard_interrupt_ends_training_and_leaves_a_usable_model(monkeypatch):
    """Ctrl-C ends training, leaves a usable estimator, and reaches the caller."""
    X, y = _data()  # 40 samples, batch 16: 3 steps per epoch
    calls = {"n": 0}
    original = base._Net.train_step_single

    def train_step_single(self, batch, **fit_params):
        calls["n"] += 1
        if calls["n"] == 7:  # first step of epoch 3
            raise KeyboardInterrupt
        return original(self, batch, **fit_params)

    monkeypatch.setattr(base._Net, "train_step_single", train_step_single)
    clf = MRMoEClassifier(**TINY, max_epochs=5)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert calls["n"] == 7  # training stopped at the interrupt
    monkeypatch.undo()

    proba = _assert_proba_ok(clf, X)
    # history_: two completed epochs, then the row of the interrupted one (no loss).
    assert len(clf.history_) == 3
    assert [("train_loss" in row) for row in clf.history_] == [True, True, False]
    assert np.isfinite(clf.history_[:2, "train_loss"]).all()
    assert clf.feature_importances_.shape == (2,)
    # The weights are those after the last completed step: equal to a 2-epoch fit.
    reference = MRMoEClassifier(**TINY, max_epochs=2).fit(X, y)
    np.testing.assert_allclose(proba, reference.predict_proba(X), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- warm start
def test_warm_start_continues_from_previous_weights():
    X, y = _data()
    clf = MRMoEClassifier(**TINY, max_epochs=5, lr=0.03).fit(X, y)
    net = clf.net_
    old = list(clf.history_[:, "train_loss"])
    assert old[-1] < 0.5 * old[0]  # the model learned something

    clf.set_params(warm_start=True, max_epochs=2)
    clf.fit(X, y)
    assert clf.net_ is net
    new = list(clf.history_[:, "train_loss"])
    assert len(new) == 7 and new[:5] == old
    assert [row["epoch"] for row in clf.history_] == list(range(1, 8))
    # The first new epoch starts where training stopped, not from scratch.
    assert abs(new[5] - old[-1]) < 0.25 * abs(new[5] - old[0])
    _assert_proba_ok(clf, X)

    # Without warm_start the same estimator refits from scratch.
    clf.set_params(warm_start=False, max_epochs=2)
    clf.fit(X, y)
    assert clf.net_ is not net and len(clf.history_) == 2
    np.testing.assert_allclose(clf.history_[0, "train_loss"], old[0], rtol=1e-6)


def test_warm_start_rejects_other_classes_or_channels():
    X, y = _data()
    clf = MRMoEClassifier(**TINY, max_epochs=1, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="classes"):
        clf.fit(X, y + 1)
    with pytest.raises(ValueError, match="channels"):
        clf.fit(X[:, :1], y)
    _assert_proba_ok(clf, X)
    assert len(clf.history_) == 1


def test_fit_leaves_torch_threads_and_grad_mode_alone(monkeypatch):
    X, y = _data()
    threads = torch.get_num_threads()
    _nan_loss_on_call(monkeypatch, 2)
    with pytest.raises(TrainingDivergedError):
        MRMoEClassifier(**TINY, max_epochs=1, n_threads=1).fit(X, y)
    assert torch.get_num_threads() == threads
    assert torch.is_grad_enabled()


def test_settings_are_restored_when_loading_the_kernel_fails(monkeypatch):
    from mrmoe_sklearn.nn import kernel

    def fail():
        raise KeyboardInterrupt  # e.g. while the kernel compiles on first use

    monkeypatch.setattr(kernel, "load", fail)
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        MRMoEClassifier(**TINY, max_epochs=1, n_threads=threads + 1).fit(*_data())
    assert torch.get_num_threads() == threads


def test_an_lstm_fit_does_not_load_the_kernel(monkeypatch):
    from mrmoe_sklearn.nn import kernel

    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setattr(kernel, "load", lambda: pytest.fail("an LSTM fit loaded the compiled kernel"))
    clf = LSTMClassifier(hidden_size=4, batch_size=16, random_state=0, max_epochs=1).fit(*_data())
    clf.predict_proba(_data()[0])
