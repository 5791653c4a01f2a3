"""Sample weights, metadata routing, callbacks and early-stopping scorers (issue 13)."""

import math
import pickle
import re

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from skorch.callbacks import Callback, EpochScoring, LRScheduler

from mrmoe_sklearn import LNNClassifier, LSTMClassifier, MoEClassifier, MRMoEClassifier, MRMoERegressor
from mrmoe_sklearn._base import clip_gradients
from tests._helpers import EpochCount

FAST = dict(hidden_size=8, backbone_units=16, max_epochs=4, batch_size=32, n_threads=1, random_state=0)
#: Deterministic given the batches: no dropout, no load-balancing term (it is a
#: regulariser over the whole batch's gates, unweighted), one network.
EXACT = dict(FAST, dropout=0.0, aux_loss_weight=0.0, ensemble_size=1, early_stopping=False, lr_schedule=None)


@pytest.fixture(scope="module")
def task(binary_task):
    X, y = binary_task
    return X[:64], y[:64]


# ----------------------------------------------------------- sample weights
@pytest.mark.parametrize("cls", [MRMoEClassifier, MRMoERegressor])
def test_zero_weights_on_half_equal_fitting_the_other_half(cls, task):
    """Full-batch training (one batch an epoch): the weighted mean loss over all
    samples with zeros on half of them is the mean loss over the other half, so
    the two fits take the same optimiser steps; only the summation order inside
    the batch differs (float32 rounding). With mini-batches no such equality
    exists: the zero-weight samples change which samples share a batch and how
    many steps an epoch takes."""
    X, y = task
    y = y.astype(float) if cls is MRMoERegressor else y
    keep = np.arange(len(y)) % 2 == 0
    w = keep.astype(float)
    weighted = cls(time_channel=0, **dict(EXACT, batch_size=len(y))).fit(X, y, sample_weight=w)
    half = cls(time_channel=0, **dict(EXACT, batch_size=len(y))).fit(X[keep], y[keep])
    np.testing.assert_allclose(weighted.scaling_.mean, half.scaling_.mean)
    method = "predict_proba" if cls is MRMoEClassifier else "predict"
    a, b = getattr(weighted, method)(X), getattr(half, method)(X)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # and the weights matter: the unweighted fit on all samples is another model
    full = cls(time_channel=0, **dict(EXACT, batch_size=len(y))).fit(X, y)
    assert np.abs(getattr(full, method)(X) - b).max() > 1e-3


def test_sample_weight_combines_with_class_weight(task):
    X, y = task
    cw = {0: 3.0, 1: 0.5}
    by_class = MRMoEClassifier(time_channel=0, class_weight=cw, **EXACT).fit(X, y)
    by_sample = MRMoEClassifier(time_channel=0, **EXACT).fit(X, y, sample_weight=np.where(y == 0, 3.0, 0.5))
    np.testing.assert_allclose(by_class.predict_proba(X), by_sample.predict_proba(X), rtol=1e-4, atol=1e-5)
    # both: the product
    both = MRMoEClassifier(time_channel=0, class_weight=cw, **EXACT).fit(X, y, sample_weight=np.full(len(y), 2.0))
    np.testing.assert_allclose(both.predict_proba(X), by_class.predict_proba(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "weights, match",
    [
        (lambda n: -np.ones(n), "non-negative; sample 0"),
        (lambda n: np.r_[1.0, np.nan, np.ones(n - 2)], "finite; sample 1"),
        (lambda n: np.r_[np.inf, np.ones(n - 1)], "finite; sample 0"),
        (lambda n: np.zeros(n), "all zero"),
        (lambda n: np.ones(n - 1), "shape"),
        (lambda n: np.ones((n, 2)), "shape"),
        (lambda n: ["a"] * n, "numeric"),
    ],
)
def test_bad_sample_weights_are_clear_errors(weights, match, task):
    X, y = task
    with pytest.raises(ValueError, match=match):
        LSTMClassifier(time_channel=0, hidden_size=4, max_epochs=1).fit(X, y, sample_weight=weights(len(y)))


@pytest.mark.parametrize(
    "class_weight, sample_weight, match",
    [
        ({0: 0.0, 1: 0.0}, None, "every sample has weight 0"),
        ({0: 0.0, 1: 1.0}, lambda y: (y == 0).astype(float), "every sample has weight 0"),
    ],
)
def test_class_weights_that_zero_every_sample_are_a_clear_error(class_weight, sample_weight, match, task):
    """As all-zero sample weights: a fit whose every loss weight is 0 would make no optimiser step."""
    X, y = task
    sw = None if sample_weight is None else sample_weight(y)
    with pytest.raises(ValueError, match=match):
        MRMoEClassifier(time_channel=0, class_weight=class_weight, **FAST).fit(X, y, sample_weight=sw)


def test_warm_start_fit_uses_the_current_loss_weights(task):
    """``class_weight`` (``"balanced"`` from the current ``y``) and ``aux_loss_weight`` apply to every fit,
    warm ones too."""
    X, y = task
    clf = MRMoEClassifier(time_channel=0, warm_start=True, **FAST).fit(X, y)
    assert clf.net_.class_weights is None
    clf.set_params(class_weight={0: 1.0, 1: 4.0}).fit(X, y)
    torch.testing.assert_close(clf.net_.class_weights, torch.tensor([1.0, 4.0]))
    y_rare = np.where(np.arange(len(y)) < 16, 1, 0)
    clf.set_params(class_weight="balanced").fit(X, y_rare)
    torch.testing.assert_close(clf.net_.class_weights, torch.tensor([len(y) / 96, len(y) / 32]))
    clf.set_params(class_weight=None).fit(X, y)
    assert clf.net_.class_weights is None
    assert clf.net_.aux_loss_weight == 0.01
    clf.set_params(aux_loss_weight=0.0).fit(X, y)
    assert clf.net_.aux_loss_weight == 0.0


#: Per estimator, parameters that build the network and a value other than the cold fit's (``FAST``'s or the
#: default); the regressors' ``loss`` is in tests/test_regressor.py.
NETWORK_CHANGES = {
    MRMoEClassifier: dict(
        hidden_size=4,
        backbone_units=8,
        rates=(1, 2),
        n_experts=2,
        feature_attention=False,
        temporal_attention=False,
        gate=False,
        top_k=1,
        head_size=16,
        carry_forward=True,
        summary_head=False,
        summary_encoding="robust",
        ensemble_size=2,
    ),
    LNNClassifier: dict(hidden_size=4, backbone_units=8),
    MoEClassifier: dict(n_experts=2, hidden_size=4, backbone_units=8, top_k=1),
    LSTMClassifier: dict(hidden_size=4, num_layers=2),
}


@pytest.fixture(scope="module")
def cold_fits(task):
    """One fitted estimator (one epoch) of each class of ``NETWORK_CHANGES``."""
    X, y = task
    fits = {}
    for cls in NETWORK_CHANGES:
        params = dict(FAST, max_epochs=1, time_channel=0)
        if cls is LSTMClassifier:
            params.pop("backbone_units")
        fits[cls] = cls(**params).fit(X, y)
    return fits


@pytest.mark.parametrize("cls, name", [(cls, name) for cls, changes in NETWORK_CHANGES.items() for name in changes])
def test_warm_start_refuses_a_changed_network_parameter(cls, name, cold_fits, task):
    """The warm fit would train the network the cold fit built, not the one the parameters describe: a clear
    error naming the parameter, its value and the network's, which leaves the fitted estimator as it was."""
    X, y = task
    clf = pickle.loads(pickle.dumps(cold_fits[cls]))
    before = clf.predict_proba(X)
    old = clf.get_params()[name]
    new = NETWORK_CHANGES[cls][name]
    clf.set_params(warm_start=True, **{name: new})
    built = 1 if name == "ensemble_size" else old  # "auto" is 1 network without early stopping
    expected = f"warm_start=True but {name}={new!r} while the fitted network was built with {name}={built!r}"
    with pytest.raises(ValueError, match="^" + re.escape(expected) + ".*set warm_start=False to refit"):
        clf.fit(X, y)
    assert len(clf.history_) == 1
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    # set back, the fit continues; a refit builds the network the parameters describe
    assert len(clf.set_params(**{name: old}).fit(X, y).history_) == 2
    clf.set_params(warm_start=False, **{name: new}).fit(X, y)
    assert clf._network_params_[name] == new


def test_warm_start_names_every_changed_parameter_and_reads_them_as_built(cold_fits, task):
    X, y = task
    clf = pickle.loads(pickle.dumps(cold_fits[MRMoEClassifier]))
    clf.set_params(warm_start=True, hidden_size=4, gate=False)
    with pytest.raises(ValueError, match=r"but hidden_size=4, gate=False while .* with hidden_size=8, gate=True;"):
        clf.fit(X, y)
    # values equal to the network's as built: rates in a list, ensemble_size="auto" (1 without early stopping)
    clf.set_params(hidden_size=8, gate=True, rates=[1, 2, 4, 8], ensemble_size=1)
    assert len(clf.fit(X, y).history_) == 2


def test_warm_start_applies_changed_training_parameters(cold_fits, task):
    """Parameters of the training, not of the network, are used by a warm fit: among them ``dropout`` (every
    dropout layer's rate) and ``load_balance`` (read at every training pass)."""
    X, y = task
    clf = pickle.loads(pickle.dumps(cold_fits[MRMoEClassifier]))
    clf.set_params(
        warm_start=True,
        lr=0.01,
        max_epochs=2,
        batch_size=16,
        weight_decay=0.0,
        dropout=0.3,
        class_weight="balanced",
        patience=2,
        early_stopping=False,
        aux_loss_weight=0.1,
        load_balance="switch",
        clip_grad_norm=5.0,
    )
    clf.fit(X, y)
    net = clf.net_
    assert len(clf.history_) == 3
    assert (net.lr, net.batch_size, net.aux_loss_weight, net.clip_grad_norm) == (0.01, 16, 0.1, 5.0)
    assert net.optimizer_.param_groups[0]["weight_decay"] == 0.0
    assert net.class_weights is not None
    dropouts = [m for m in net.module_.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.3 for m in dropouts)
    assert net.module_.load_balance == "switch"


#: (the cold fit's parameters beyond FAST, the warm fit's change); 64 series: "auto" early stopping is off
SETUP_CHANGES = {
    "early stopping switched on": ({}, dict(early_stopping=True)),
    "early stopping switched off": (dict(early_stopping=True), dict(early_stopping=False)),
    "patience": (dict(early_stopping=True), dict(patience=2)),
    "early_stopping_scoring": (dict(early_stopping=True), dict(early_stopping_scoring="roc_auc")),
    "validation_fraction": (dict(early_stopping=True), dict(validation_fraction=0.3)),
    "lr_schedule": ({}, dict(lr_schedule="cosine")),
    "callbacks": ({}, dict(callbacks=[EpochCount()])),
    "checkpoint_dir": ({}, "checkpoint_dir"),
}


@pytest.mark.parametrize("case", SETUP_CHANGES)
def test_warm_start_refuses_a_changed_training_setup(case, task, tmp_path):
    """The validation split and the callbacks are built by the cold fit: a warm fit asked for others would
    silently train as before (review of 2026-12-03), so it raises, names what changed and leaves the model."""
    X, y = task
    cold, change = SETUP_CHANGES[case]
    if change == "checkpoint_dir":
        change = dict(checkpoint_dir=tmp_path / "ckpt")
    clf = MRMoEClassifier(time_channel=0, **dict(FAST, max_epochs=1, **cold)).fit(X, y)
    before = clf.predict_proba(X)
    name = next(iter(change))
    clf.set_params(warm_start=True, **change)
    with pytest.raises(ValueError, match=f"^warm_start=True but {name} changed since the fit .*warm_start=False"):
        clf.fit(X, y)
    assert len(clf.history_) == 1
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    clf.set_params(warm_start=False).fit(X, y)  # a refit takes it
    assert len(clf.set_params(warm_start=True).fit(X, y).history_) == 2


def test_warm_start_keeps_auto_early_stopping_as_the_network_was_built(task, binary_task):
    """``early_stopping="auto"`` is not a change of setup when a warm fit's data would resolve it otherwise
    (review of 2026-12-04: incremental fits were refused, blaming a parameter the user had not changed)."""
    X, y = task
    Xv, yv = binary_task[0][64:96], binary_task[1][64:96]
    params = dict(FAST, max_epochs=1, time_channel=0)
    # built with early stopping (X_val); a warm fit without X_val validates on a draw from its own data
    clf = MRMoEClassifier(**params).fit(X, y, X_val=Xv, y_val=yv)
    clf.set_params(warm_start=True).fit(X, y)
    assert len(clf.history_) == 2 and type(clf.net_.train_split).__name__ == "ValidSplit"
    assert "valid_loss" in clf.history_[-1]
    # built without it (64 series): X_val on a warm fit cannot switch it on
    clf = MRMoEClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="X_val was given, but the fitted network was built without early stopping"):
        clf.set_params(warm_start=True).fit(X, y, X_val=Xv, y_val=yv)
    assert len(clf.fit(X, y).history_) == 2


def test_warm_start_setup_compares_what_takes_effect(task, tmp_path):
    """Named callback pairs by the callback, checkpoint folders by the folder, and "plateau" without early
    stopping as no schedule (it watches the validation loss): none of these spellings is a change."""
    X, y = task
    counter = EpochCount()
    folder = tmp_path / "ckpt"
    clf = MRMoEClassifier(
        callbacks=[("count", counter)], checkpoint_dir=str(folder) + "/", **dict(FAST, max_epochs=1, time_channel=0)
    ).fit(X, y)
    clf.set_params(warm_start=True, callbacks=[("count", counter)], checkpoint_dir=folder, lr_schedule=None)
    assert len(clf.fit(X, y).history_) == 2
    with pytest.raises(ValueError, match="^warm_start=True but callbacks changed"):
        clf.set_params(callbacks=[("renamed", counter)]).fit(X, y)


def test_warm_start_keeps_the_same_callbacks_and_setup_across_pickling(task):
    """The same callback objects (also after pickling) and parameters that only matter with early stopping,
    changed while it is off, are no change."""
    X, y = task
    counter = EpochCount()
    clf = MRMoEClassifier(time_channel=0, callbacks=[counter], **dict(FAST, max_epochs=1)).fit(X, y)
    clf.set_params(warm_start=True, callbacks=[counter], patience=2, validation_fraction=0.3)
    assert len(clf.fit(X, y).history_) == 2
    clf = pickle.loads(pickle.dumps(clf))
    assert len(clf.fit(X, y).history_) == 3
    assert clf.callbacks[0].ends_ == 3  # the estimator's own object saw every epoch, pickled along with it


@pytest.mark.parametrize(
    "cls, n, labels, expected",
    [
        (MRMoEClassifier, 8, None, "split by class: 1 for validation and 7 to train on, but each part needs"),
        (MRMoEClassifier, 9, [0, 1, 0, 1, 0, 1, 0, 1, 2], "a class of y has a single sample"),
        (MRMoERegressor, 1, [1.0], "0.5 of the 1 samples: 1, which leaves none to train on"),
    ],
)
def test_early_stopping_on_too_few_samples_names_the_way_out(cls, n, labels, expected, task):
    """scikit-learn's split would fail with its own message (review of 2026-12-03: "The test_size = 1 should be
    greater or equal to the number of classes = 2"), naming neither validation_fraction nor X_val."""
    X, y = task
    y = y[:n] if labels is None else np.array(labels)
    fraction = 0.5 if cls is MRMoERegressor else 0.1
    with pytest.raises(ValueError, match=re.escape(expected) + ".*give X_val and y_val, raise validation_fraction"):
        cls(time_channel=0, early_stopping=True, validation_fraction=fraction, **FAST).fit(X[:n], y)
    # the same samples with validation data given: nothing to hold out
    cls(time_channel=0, early_stopping=True, **dict(FAST, max_epochs=1)).fit(X[:n], y, X_val=X[:n], y_val=y)


@pytest.mark.parametrize(
    "n, params, epochs",
    [
        (40, {}, 250),  # one batch an epoch: 250 epochs make the 250 steps
        (40, {"batch_size": 8}, 50),  # five batches an epoch
        (40, {"max_epochs": 3}, 3),  # a number is taken as it is
        (600, {}, 30),  # 10 batches an epoch: 30 epochs are more than 250 steps
    ],
)
def test_auto_max_epochs_makes_at_least_500_optimiser_steps(n, params, epochs):
    """``max_epochs="auto"``: 30 epochs, or on small data as many as make 250 optimiser steps (thirty epochs of
    one batch left small sets undertrained: docs/model.md, "Epochs on small data")."""
    clf = LSTMClassifier(hidden_size=2, n_threads=1, random_state=0, early_stopping=False, **params)
    assert clf._epochs(n) == epochs
    if n <= 40:  # small enough to train them all here
        rng = np.random.RandomState(0)
        assert len(clf.fit(rng.randn(n, 2, 4), np.arange(n) % 2).history_) == epochs


def test_auto_max_epochs_counts_the_training_part_only():
    """With early stopping the held-out part makes no steps: 50 of 100 series train, 5 batches of 10, so
    ceil(250 / 5) = 50 epochs at most (counting all 100 would give max(30, 25) = 30)."""
    rng = np.random.RandomState(0)
    clf = LSTMClassifier(
        hidden_size=2,
        n_threads=1,
        random_state=0,
        early_stopping=True,
        validation_fraction=0.5,
        batch_size=10,
        patience=1,
    ).fit(rng.randn(100, 2, 4), np.arange(100) % 2)
    assert clf.net_.max_epochs == 50 and len(clf.history_) <= 50


class _StartLr(Callback):
    """The optimiser's learning rate at the start of each fit (``lrs_``)."""

    def __init__(self):
        self.lrs_ = []

    def on_train_begin(self, net, **kwargs):
        self.lrs_.append(net.optimizer_.param_groups[0]["lr"])


def test_warm_start_starts_at_lr_after_plateau_lowered_it(task):
    """The docstring's "lr takes its current value": a rate lowered by the schedule is reset, not continued."""
    X, y = task
    start = _StartLr()
    clf = MRMoEClassifier(time_channel=0, callbacks=[start], lr=0.004, **dict(FAST, max_epochs=1)).fit(X, y)
    for group in clf.net_.optimizer_.param_groups:
        group["lr"] = 0.001  # as "plateau" leaves it after halving twice
    clf.set_params(warm_start=True).fit(X, y)
    assert start.lrs_ == [0.004, 0.004]


@pytest.mark.parametrize("cls", [MRMoEClassifier, LSTMClassifier])
def test_estimators_pickled_before_the_record_still_warm_start(cls, cold_fits, task):
    """An estimator fitted before ``_network_params_`` existed has no record to compare: it continues."""
    X, y = task
    clf = pickle.loads(pickle.dumps(cold_fits[cls]))
    del clf._network_params_
    clf = pickle.loads(pickle.dumps(clf))
    assert len(clf.set_params(warm_start=True, max_epochs=1).fit(X, y).history_) == 2
    assert not hasattr(clf, "_network_params_")


def test_validation_part_is_weighted(task):
    """A validation set with zero weights on half its samples scores like the other half alone."""
    X, y = task
    Xv, yv = X[:32], y[:32]
    keep = np.arange(32) < 16
    params = dict(EXACT, early_stopping=True, patience=10)
    a = MRMoEClassifier(time_channel=0, **params).fit(X, y, X_val=Xv, y_val=yv, sample_weight_val=keep * 1.0)
    b = MRMoEClassifier(time_channel=0, **params).fit(X, y, X_val=Xv[keep], y_val=yv[keep])
    np.testing.assert_allclose(a.history_[:, "valid_loss"], b.history_[:, "valid_loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="sample_weight_val was given without X_val"):
        MRMoEClassifier(**FAST).fit(X, y, sample_weight_val=np.ones(len(y)))


def test_held_out_fraction_uses_the_weights(task):
    """The validation loss of the held-out fraction is the weighted mean: with
    weight 2 everywhere it equals the unweighted one; doubling some samples changes it."""
    X, y = task
    params = dict(EXACT, early_stopping=True, validation_fraction=0.25, patience=10)
    plain = MRMoEClassifier(time_channel=0, **params).fit(X, y)
    twice = MRMoEClassifier(time_channel=0, **params).fit(X, y, sample_weight=np.full(len(y), 2.0))
    np.testing.assert_allclose(plain.history_[:, "valid_loss"], twice.history_[:, "valid_loss"], rtol=1e-5)
    uneven = MRMoEClassifier(time_channel=0, **params).fit(X, y, sample_weight=1.0 + (np.arange(len(y)) % 3 == 0))
    assert not np.allclose(plain.history_[:, "valid_loss"], uneven.history_[:, "valid_loss"])


# ---------------------------------------------------------------- routing
@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def test_cross_validate_routes_sample_weight(routing, task):
    X, y = task
    est = LSTMClassifier(time_channel=0, hidden_size=4, max_epochs=1, n_threads=1, random_state=0)
    est.set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
    cv = KFold(2, shuffle=True, random_state=0)
    # the weights reach fit: bad ones fail there ...
    with pytest.raises(ValueError, match="non-negative"):
        cross_validate(est, X, y, cv=cv, params={"sample_weight": -np.ones(len(y))}, error_score="raise")
    # ... and zero weights drop samples from the scaling statistics of each fold
    w = (np.arange(len(y)) % 2).astype(float)
    out = cross_validate(est, X, y, cv=cv, params={"sample_weight": w}, return_estimator=True, return_indices=True)
    for fitted, train in zip(out["estimator"], out["indices"]["train"]):
        rows = train[w[train] > 0]
        values = X[rows, 1:].transpose(1, 0, 2).reshape(X.shape[1] - 1, -1)  # channels x (samples, steps)
        assert np.allclose(fitted.scaling_.mean, np.nanmean(values, axis=1))


def test_grid_search_routes_sample_weight(routing, task):
    X, y = task
    est = LSTMClassifier(time_channel=0, hidden_size=4, max_epochs=1, n_threads=1, random_state=0)
    est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
    search = GridSearchCV(est, {"hidden_size": [2, 4]}, cv=2)
    with pytest.raises(ValueError, match="non-negative"):
        search.fit(X, y, sample_weight=-np.ones(len(y)))
    search.fit(X, y, sample_weight=np.ones(len(y)))
    assert search.best_params_["hidden_size"] in (2, 4)


# -------------------------------------------------------------- callbacks
class _Recorder(Callback):
    """Counts epochs; a module-level class, so it pickles."""

    def __init__(self, tag="r"):
        self.tag = tag

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


@pytest.mark.parametrize("early_stopping, expected", [(True, 5e-4), (False, 1e-3)])
def test_auto_learning_rate_follows_early_stopping(early_stopping, expected, task):
    X, y = task
    params = dict(FAST, max_epochs=1, ensemble_size=1, lr_schedule=None, early_stopping=early_stopping)
    clf = MRMoEClassifier(time_channel=0, **params).fit(X, y)
    assert clf.lr == "auto" and clf.net_.lr == expected
    assert clf.net_.optimizer_.param_groups[0]["lr"] == expected
    # trained further (warm start), the resolved rate stays; a number is taken as it is
    clf.set_params(warm_start=True).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == expected
    clf.set_params(lr=0.02).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == 0.02
    lstm = dict(max_epochs=1, n_threads=1, random_state=0, early_stopping=early_stopping, lr_schedule=None)
    assert LSTMClassifier(time_channel=0, lr="auto", **lstm).fit(X, y).net_.lr == expected


def test_user_scheduler_changes_the_learning_rate_in_history(task):
    X, y = task
    sched = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    clf = MRMoEClassifier(time_channel=0, lr=0.01, lr_schedule=None, callbacks=[sched, _Recorder()], **dict(FAST))
    clf.fit(X, y)
    lrs = clf.history_[:, "event_lr"]
    np.testing.assert_allclose(lrs, [0.01, 0.005, 0.0025, 0.00125])
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**4)
    # added after the package's own, in the given order (skorch prints its log last)
    names = [name for name, _ in clf.net_.callbacks_ if name != "print_log"]
    assert names[-2:] == ["LRScheduler", "_Recorder"]
    assert dict(clf.net_.callbacks_)["_Recorder"].epochs_ == 4
    # cloned with the estimator (new instances, same settings), pickled with the fitted one
    copy = clone(clf)
    assert copy.callbacks[0] is not sched and copy.callbacks[0].get_params()["gamma"] == 0.5
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X))


def test_epoch_scoring_callback_and_bad_callbacks(task):
    X, y = task
    clf = LSTMClassifier(
        time_channel=0,
        hidden_size=4,
        max_epochs=2,
        callbacks=[("loss2", EpochScoring(lambda net, X, y: 1.0, name="one", on_train=True))],
    )
    clf.fit(X, y)
    assert clf.history_[:, "one"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="'callbacks' parameter of LSTMClassifier must be a list of skorch callbacks"):
        LSTMClassifier(callbacks=["print"]).fit(X, y)
    with pytest.raises(ValueError, match="'callbacks' parameter of LSTMClassifier must be"):
        LSTMClassifier(callbacks=_Recorder()).fit(X, y)


def test_epoch_scoring_of_a_scorer_name_scores_the_probabilities(binary_task):
    X, y = binary_task
    clf = MRMoEClassifier(
        time_channel=0,
        **dict(FAST, max_epochs=1),
        callbacks=[EpochScoring("roc_auc", lower_is_better=False)],
    )
    clf.fit(X[:80], y[:80], X_val=X[80:], y_val=y[80:])
    recorded = clf.history_[-1, "roc_auc"]
    # one epoch: the fitted model is the scored one
    assert recorded == pytest.approx(roc_auc_score(y[80:], clf.predict_proba(X[80:])[:, 1]), abs=1e-6)


@pytest.mark.parametrize("validating", [False, True])
def test_epoch_scoring_of_a_scorer_name_on_train_scores_the_training_probabilities(validating, task):
    """With ``on_train=True`` the epoch's training batches are scored, on probabilities (review of 2026-12-03: a
    crash on the logits). Checked by the log loss: without dropout or auxiliary term, minus the mean log loss of
    the training batches' probabilities is minus the epoch's training loss."""
    X, y = task
    clf = MRMoEClassifier(
        time_channel=0,
        **dict(EXACT, max_epochs=2, early_stopping=validating),
        callbacks=[
            EpochScoring("neg_log_loss", lower_is_better=False, on_train=True, name="train_nll"),
            EpochScoring("roc_auc", lower_is_better=False, on_train=True, name="train_auc"),
        ],
    ).fit(X, y)
    np.testing.assert_allclose(clf.history_[:, "train_nll"], -np.array(clf.history_[:, "train_loss"]), rtol=1e-5)
    assert all(0.0 <= auc <= 1.0 for auc in clf.history_[:, "train_auc"])


def test_early_stopping_on_roc_auc_keeps_the_best_auroc_epoch(task, binary_task):
    X, y = task
    Xv, yv = binary_task[0][64:], binary_task[1][64:]
    clf = MRMoEClassifier(
        time_channel=0,
        early_stopping_scoring="roc_auc",
        **dict(EXACT, early_stopping=True, patience=3, max_epochs=10, lr=3e-2),
    )
    clf.fit(X, y, X_val=Xv, y_val=yv)
    aucs = np.array(clf.history_[:, "valid_roc_auc"])
    assert "valid_roc_auc_best" in clf.history_[-1]
    best = int(np.argmax(aucs))
    assert len(aucs) == 10 or len(aucs) - 1 - best == 3  # stopped 3 epochs after the best
    # here the validation loss is lowest at another epoch (measured: epoch 2, AUROC's best epoch 3)
    assert best != int(np.argmin(clf.history_[:, "valid_loss"]))
    # the weights kept are the best-AUROC epoch's: the final model scores exactly that
    assert roc_auc_score(yv, clf.predict_proba(Xv)[:, 1]) == pytest.approx(aucs[best], abs=1e-9)
    assert dict(clf.net_.callbacks_)["early_stopping"].monitor == "valid_roc_auc"


def test_early_stopping_scoring_names_and_callables(task):
    X, y = task
    clf = LSTMClassifier(
        time_channel=0, hidden_size=4, max_epochs=2, early_stopping=True, early_stopping_scoring="average_precision"
    ).fit(X, y)
    assert len(clf.history_[:, "valid_average_precision"]) == 2

    def balanced(est, X, y, sample_weight=None):
        return float(np.mean(est.predict(X) == y))

    clf = LSTMClassifier(
        time_channel=0, hidden_size=4, max_epochs=2, early_stopping=True, early_stopping_scoring=balanced
    ).fit(X, y)
    assert all(0 <= s <= 1 for s in clf.history_[:, "valid_score"])
    with pytest.raises(ValueError, match="'early_stopping_scoring' parameter of LSTMClassifier must be"):
        LSTMClassifier(early_stopping_scoring="no_such_score").fit(X, y)


def test_early_stopping_scoring_callable_of_three_arguments(task):
    """The documented ``scorer(estimator, X, y)`` (scikit-learn's form) works unweighted; with sample
    weights the scorer gets them."""
    X, y = task
    seen = []

    def accuracy(est, X, y):
        return float(np.mean(est.predict(X) == y))

    def weighted(est, X, y, sample_weight=None):
        seen.append(sample_weight)
        return float(np.mean(est.predict(X) == y))

    params = dict(time_channel=0, hidden_size=4, max_epochs=2, early_stopping=True)
    clf = LSTMClassifier(**params, early_stopping_scoring=accuracy).fit(X, y)
    assert all(0 <= s <= 1 for s in clf.history_[:, "valid_score"])
    LSTMClassifier(**params, early_stopping_scoring=weighted).fit(X, y, sample_weight=np.full(len(y), 2.0))
    assert len(seen) == 2 and all(w is not None and np.all(w == 2.0) for w in seen)


def test_optuna_pruning_callback(task):
    """The user guide's example: prune a trial from a callback (needs optuna)."""
    optuna = pytest.importorskip("optuna")

    class OptunaPruning(Callback):
        def __init__(self, trial, monitor="valid_loss"):
            self.trial = trial
            self.monitor = monitor

        def on_epoch_end(self, net, **kwargs):
            epoch = len(net.history)
            self.trial.report(net.history[-1, self.monitor], epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    X, y = task

    def objective(trial):
        clf = LSTMClassifier(
            time_channel=0,
            hidden_size=4,
            max_epochs=3,
            early_stopping=True,
            lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            callbacks=[OptunaPruning(trial)],
            random_state=0,
        )
        clf.fit(X, y)
        return clf.history_[-1, "valid_loss"]

    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # prunes every trial
    study.optimize(objective, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)


def test_weighted_zero_batches_make_no_step(task):
    """A training batch whose samples all weigh 0 leaves the weights (and AdamW's state) alone."""
    X, y = task
    clf = LSTMClassifier(time_channel=0, hidden_size=4, max_epochs=1, batch_size=8, n_threads=1, random_state=0)
    clf.fit(X, y)
    before = [p.detach().clone() for p in clf.net_.module_.parameters()]
    batch = ({k: v[:8] for k, v in clf._batch(clf._read_X(X, fitted=True)).items()}, torch.as_tensor(np.zeros(8, int)))
    batch[0]["w"] = torch.zeros(8)
    step = clf.net_.train_step(batch)
    assert float(step["loss"]) == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, clf.net_.module_.parameters()))


# ------------------------------------------------------ the training step's own work
@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 1e9, np.inf])
def test_clip_gradients_is_torchs_clip_bit_for_bit(max_norm):
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(shape, generator=gen) for shape in [(3, 4), (7,), (2, 3, 5), ()]]
    _check_clip_against_torch(grads, max_norm)
    # one buffer, as the estimators clip it (long: torch sums it in parallel blocks)
    for n in (1, 1000, 103_754):
        _check_clip_against_torch([torch.randn(n, generator=gen) * 0.01], max_norm)


def _check_clip_against_torch(grads, max_norm):
    ours, theirs = [g.clone() for g in grads], [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(theirs, grads):
        p.grad = g.clone()
    norm = clip_gradients(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert norm == float(expected)
    assert all(torch.equal(a, p.grad) for a, p in zip(ours, theirs))
    assert max_norm < norm or all(torch.equal(a, g) for a, g in zip(ours, grads))  # untouched unless clipped


def test_clip_gradients_of_non_finite_and_mixed_gradients():
    grads = [torch.ones(3), torch.tensor([1.0, float("nan")])]
    assert math.isnan(clip_gradients(grads, 1.0))
    assert torch.isnan(grads[0]).all()  # scaled by NaN, as torch does; the step then raises
    assert clip_gradients([], 1.0) == 0.0
    mixed = [torch.full((4,), 3.0), torch.full((4,), 4.0, dtype=torch.float64)]
    assert clip_gradients(mixed, 1.0) == pytest.approx(10.0)  # two dtypes: a tensor at a time
    assert float(torch.cat([g.double() for g in mixed]).norm()) == pytest.approx(1.0, rel=1e-5)


def test_training_mode_is_set_on_every_module(task):
    X, y = task
    clf = MRMoEClassifier(**FAST).fit(X, y)
    net = clf.net_
    net._set_training(True)
    assert all(m.training for m in net.module_.modules())
    net.module_.gate.eval()  # one submodule switched behind skorch's back
    net._set_training(True)
    assert all(m.training for m in net.module_.modules())
    net._set_training(False)
    assert not any(m.training for m in net.module_.modules())
    net.module_.extra = torch.nn.Dropout(0.5).eval()  # a module added in place is switched too
    net._set_training(True)
    assert all(m.training for m in net.module_.modules())


def test_progress_shows_the_validation_loss_once(task, capsys):
    """``verbose=2`` with early stopping on the validation loss: the epochs' line lists each loss once."""
    X, y = task
    MRMoEClassifier(time_channel=0, **dict(FAST, max_epochs=2), early_stopping=True, verbose=2).fit(X, y)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epochs: ")]
    assert len(lines) == 2
    for line in lines:
        assert line.count("valid_loss=") == 1 and line.count("train_loss=") == 1, line


def test_every_callback_sees_the_end_of_the_epoch_early_stopping_ends(task, capsys):
    """Early stopping ends the fit once the epoch is over: the user's callbacks and scores, and the
    epoch table, have the last epoch too (skorch's own stops from inside its epoch-end hook)."""

    X, y = task
    epochs = EpochCount()
    clf = MRMoEClassifier(
        time_channel=0,
        **dict(FAST, max_epochs=40, lr=0.05),
        early_stopping=True,
        patience=1,
        verbose=1,
        callbacks=[EpochScoring("roc_auc", lower_is_better=False), epochs],
    ).fit(X, y)
    n = len(clf.history_)
    assert n < 40  # stopped early
    assert epochs.ends_ == n
    assert all("roc_auc" in row for row in clf.history_)
    out = capsys.readouterr().out
    table = [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert table == [str(i) for i in range(1, n + 1)]
    assert out.index("Stopping since valid_loss") > out.rindex(f"\n{n:>7}")  # after the last row
