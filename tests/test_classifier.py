"""MRMoEClassifier and the baselines as scikit-learn classifiers."""

import math
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from mrmoe_sklearn import (
    LNNClassifier,
    LSTMClassifier,
    MoEClassifier,
    MRMoEClassifier,
    TimeSeriesScaler,
    make_multirate_classification,
)
from tests._helpers import FAST

ALL = [MRMoEClassifier, LNNClassifier, MoEClassifier, LSTMClassifier]


def _fast(cls, **kw):
    params = dict(FAST, time_channel=0)
    if cls is LSTMClassifier:
        params.pop("backbone_units")
    params.update(kw)
    return cls(**params)


@pytest.mark.parametrize("cls", ALL)
def test_fit_predict_proba_contract(cls, binary_task):
    X, y = binary_task
    clf = _fast(cls).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(y), 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-12)
    scores = clf.decision_function(X)
    assert scores.shape == (len(y),)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(scores > 0).astype(int)])
    assert clf.n_features_in_ == X.shape[1]
    assert len(clf.history_) == FAST["max_epochs"]
    assert 0 <= clf.score(X, y) <= 1


def test_pipeline_grid_search_and_cross_val_scores(binary_task):
    X, y = binary_task
    pipe = Pipeline([("scale", TimeSeriesScaler(time_channel=0)), ("clf", _fast(MRMoEClassifier, max_epochs=2))])
    grid = GridSearchCV(
        pipe,
        {"clf__n_experts": [1, 2], "clf__hidden_size": [4, 8]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        scoring="roc_auc",
    )
    grid.fit(X, y)
    assert set(grid.best_params_) == {"clf__n_experts", "clf__hidden_size"}
    assert grid.cv_results_["mean_test_score"].shape == (4,)
    for scoring in ("roc_auc", "average_precision"):
        scores = cross_val_score(pipe, X, y, cv=2, scoring=scoring)
        assert np.isfinite(scores).all() and ((0 <= scores) & (scores <= 1)).all()


def test_multiclass_roc_auc_ovr(multiclass_task):
    X, y = multiclass_task
    clf = _fast(MRMoEClassifier, max_epochs=3)
    scores = cross_val_score(clf, X, y, cv=2, scoring="roc_auc_ovr")
    assert np.isfinite(scores).all()
    fitted = clf.fit(X, y)
    assert fitted.predict_proba(X).shape == (len(y), 3)
    assert fitted.decision_function(X).shape == (len(y), 3)


@pytest.mark.parametrize("labels", [np.array(["no", "yes"]), np.array([3, 7])])
def test_labels_come_back_as_given(labels, binary_task):
    X, y = binary_task
    y_lab = labels[y]
    clf = _fast(MRMoEClassifier, max_epochs=2).fit(X, y_lab)
    np.testing.assert_array_equal(clf.classes_, labels)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.predict(X).dtype == y_lab.dtype


def test_same_random_state_gives_identical_probabilities(binary_task):
    X, y = binary_task
    a = _fast(MRMoEClassifier).fit(X, y).predict_proba(X)
    b = _fast(MRMoEClassifier).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = _fast(MRMoEClassifier, random_state=1).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_a_cpu_fit_leaves_other_devices_random_states_alone(binary_task, monkeypatch):
    """``random_state`` seeds the fit's own random states only: not the global ones of CUDA (or any
    other accelerator) that a CPU fit does not use (``torch.manual_seed`` would seed them all)."""
    X, y = binary_task
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(("cuda", seed)))
    monkeypatch.setattr(torch.mps, "manual_seed", lambda seed: calls.append(("mps", seed)))
    global_state = torch.get_rng_state()
    a = _fast(MRMoEClassifier, max_epochs=1).fit(X, y).predict_proba(X)
    assert calls == []
    assert torch.equal(torch.get_rng_state(), global_state)
    monkeypatch.undo()
    np.testing.assert_array_equal(_fast(MRMoEClassifier, max_epochs=1).fit(X, y).predict_proba(X), a)


def test_pickle_and_joblib_round_trip(binary_task, tmp_path):
    X, y = binary_task
    clf = _fast(MRMoEClassifier).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), expected)


def test_model_learns_slow_trend_and_fast_bursts_and_ranks_channels():
    """Irregular stamps, 20% missing, noise channels: held-out AUROC well above chance."""
    X, y, info = make_multirate_classification(
        n_samples=400,
        n_channels=6,
        n_timesteps=64,
        missing_rate=0.2,
        class_sep=1.5,
        return_info=True,
        random_state=3,
    )
    train, test = np.arange(300), np.arange(300, 400)
    # the sequence path alone: with the summary head the attention need not rank the channels
    clf = MRMoEClassifier(time_channel=0, max_epochs=20, n_threads=1, random_state=0, summary_head=False)
    clf.fit(X[train], y[train])
    auroc = roc_auc_score(y[test], clf.predict_proba(X[test])[:, 1])
    assert auroc > 0.8, auroc  # measured 0.90 (chance is 0.5)
    # feature_importances_ index the measured channels (time channel removed)
    imp = clf.feature_importances_
    assert imp.shape == (6,) and imp.sum() == pytest.approx(1)
    informative = [c - 1 for c in info["slow_channels"] + info["fast_channels"]]
    noise = [c - 1 for c in info["noise_channels"]]
    assert imp[informative].mean() > imp[noise].mean()
    assert imp[informative].min() > imp[noise].max()


def test_explain_shapes(binary_task):
    X, y = binary_task
    clf = _fast(MRMoEClassifier).fit(X, y)
    exp = clf.explain(X[:10])
    assert exp["feature_weights"].shape == (10, X.shape[1] - 1)
    assert exp["gate_weights"].shape == (10, 4)
    assert exp["temporal_weights"].shape == (10, 4, X.shape[2])
    np.testing.assert_allclose(exp["gate_weights"].sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(exp["temporal_weights"].sum(-1), 1, atol=1e-5)
    assert exp["rates"] == (1, 2, 4, 8)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"lr": -1.0}, r"'lr' parameter of MRMoEClassifier must be a float in the range \(0.0, inf\)"),
        ({"max_epochs": 0}, r"'max_epochs' parameter of MRMoEClassifier must be an int in the range \[1, inf\)"),
        ({"rates": (1, 0)}, "'rates' parameter of MRMoEClassifier must be a non-empty sequence of ints >= 1"),
        ({"top_k": 9}, r"'top_k' parameter of MRMoEClassifier must be None or an int in the range \[1, 4\]"),
        ({"device": "gpu"}, "'device' parameter of MRMoEClassifier must be a str among"),
        ({"class_weight": "heavy"}, "'class_weight' parameter"),
        ({"load_balance": "nope"}, "'load_balance' parameter"),
        ({"early_stopping": "sometimes"}, "'early_stopping' parameter"),
        ({"lr_schedule": "linear"}, "'lr_schedule' parameter"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match, binary_task):
    X, y = binary_task
    with pytest.raises(InvalidParameterError, match=match):
        _fast(MRMoEClassifier, **params).fit(X, y)


def test_bad_inputs_at_fit_and_predict(binary_task):
    X, y = binary_task
    with pytest.raises(ValueError, match="at least 2 classes"):
        _fast(MRMoEClassifier).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="samples but y has"):
        _fast(MRMoEClassifier).fit(X, y[:-1])
    clf = _fast(MRMoEClassifier, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="fitted with 5 channels"):
        clf.predict(X[:, :4])
    bad = X.copy()
    bad[3, 2, 5] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.predict_proba(bad)
    bad = X.copy()
    bad[1, 0, 4] = bad[1, 0, 2] - 1
    with pytest.raises(ValueError, match="decrease in sample 1"):
        clf.predict_proba(bad)
    empty = X.copy()
    empty[2, 1:] = np.nan
    with pytest.raises(ValueError, match="no observed value"):
        clf.predict_proba(empty)


@pytest.mark.parametrize("cls", [MRMoEClassifier, LSTMClassifier])
def test_time_channel_changed_after_fit_is_a_clear_error(cls, binary_task):
    """The fitted network takes the features of the fit's ``time_channel``: with another one,
    predict and a warm-start fit say so (not an error of array shapes deep inside)."""
    X, y = binary_task
    clf = _fast(cls, max_epochs=1).fit(X, y)
    clf.set_params(time_channel=None)
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(ValueError, match="time_channel was changed since fit"):
            method(X)
    with pytest.raises(ValueError, match="time_channel was changed since fit"):
        clf.set_params(warm_start=True).fit(X, y)
    clf.set_params(time_channel=0)
    assert clf.predict_proba(X).shape == (len(y), 2)
    assert clf.set_params(time_channel=None, warm_start=False).fit(X, y).n_features_in_ == X.shape[1]


@pytest.mark.parametrize("missing", [None, np.nan])
def test_missing_labels_and_a_scalar_y_val_are_clear_errors(missing, binary_task):
    """A missing label in string labels (object arrays, as pandas gives them) is named as such,
    in ``y`` and in ``y_val``, not a TypeError of sorting mixed types."""
    X, y = binary_task
    labels = np.where(y == 1, "pos", "neg").astype(object)
    bad = labels.copy()
    bad[3] = missing
    with pytest.raises(ValueError, match="y contains a missing label .* at sample 3"):
        _fast(MRMoEClassifier, max_epochs=1).fit(X, bad)
    with pytest.raises(ValueError, match="y_val contains a missing label .* at sample 3"):
        _fast(MRMoEClassifier, max_epochs=1).fit(X, labels, X_val=X, y_val=bad)
    with pytest.raises(ValueError, match="y should be a 1d array"):
        _fast(MRMoEClassifier, max_epochs=1).fit(X, labels, X_val=X, y_val="pos")


def test_variable_length_lists_and_padding_agree(binary_task):
    X, y = binary_task
    clf = _fast(MRMoEClassifier, max_epochs=2).fit(X, y)
    as_list = [x[:, : 10 + i % 10] for i, x in enumerate(X[:8])]
    padded = np.full((8, X.shape[1], X.shape[2]), np.nan)
    for i, x in enumerate(as_list):
        padded[i, :, : x.shape[1]] = x
    np.testing.assert_allclose(clf.predict_proba(as_list), clf.predict_proba(padded), atol=1e-6)


def test_class_weight_early_stopping_and_verbose(binary_task, capsys):
    X, y = binary_task
    clf = _fast(MRMoEClassifier, class_weight="balanced", early_stopping=True, max_epochs=30, patience=2, verbose=1)
    clf.fit(X, y)
    assert len(clf.history_) < 30  # stopped early
    assert "valid_loss" in capsys.readouterr().out
    w = clf.net_.class_weights  # multiplied with the sample weights in the loss
    assert w is not None and w.shape == (2,)
    # a dict by label, with a label not in y and the classes of y without weights: likely a typo
    with pytest.raises(ValueError, match=r"labels \[5\] that are not in y, and none for the classes \[0, 1\]"):
        _fast(MRMoEClassifier, class_weight={5: 2.0}).fit(X, y)
    # every class of y weighted: a label not in y (a fold without a rare class) is ignored, as scikit-learn does
    extra = _fast(MRMoEClassifier, class_weight={0: 1.0, 1: 3.0, 5: 2.0}).fit(X, y)
    np.testing.assert_array_equal(extra.net_.class_weights.numpy(), [1.0, 3.0])


def _trained_on(history):
    """Samples in the last epoch's training batches."""
    return sum(b.get("train_batch_size", 0) for b in history[-1, "batches"])


@pytest.mark.parametrize("cls", ALL)
def test_validation_data_chooses_the_stopping_epoch(cls, binary_task):
    X, y = binary_task
    clf = _fast(cls, early_stopping=True, max_epochs=6, patience=2)
    clf.fit(X[:80], y[:80], X_val=X[80:], y_val=y[80:])
    h = clf.history_
    assert _trained_on(h) == 80  # all of X trained on
    # the validation loss is the loss on X_val: recompute it at the kept (best) epoch
    best = int(np.argmin(h[:, "valid_loss"]))
    proba = clf.predict_proba(X[80:])
    loss = -np.mean(np.log(proba[np.arange(40), y[80:]]))
    assert loss == pytest.approx(h[best, "valid_loss"], rel=1e-4)


def test_validation_data_errors_and_auto_early_stopping(binary_task):
    X, y = binary_task
    with pytest.raises(ValueError, match="together"):
        _fast(MRMoEClassifier).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="early_stopping=False"):
        _fast(MRMoEClassifier, early_stopping=False).fit(X, y, X_val=X, y_val=y)
    with pytest.raises(ValueError, match="X_val.*fitted with 5 channels"):
        _fast(MRMoEClassifier, early_stopping=True).fit(X, y, X_val=X[:, :4], y_val=y)
    with pytest.raises(ValueError, match="y_val has labels \\[7\\]"):
        _fast(MRMoEClassifier, early_stopping=True).fit(X, y, X_val=X[:3], y_val=[0, 1, 7])
    # "auto": off for small data, on with validation data
    small = _fast(MRMoEClassifier, early_stopping="auto", max_epochs=2).fit(X, y)
    assert "valid_loss" not in small.history_[-1]
    given = _fast(MRMoEClassifier, early_stopping="auto", max_epochs=2).fit(X, y, X_val=X[:20], y_val=y[:20])
    assert "valid_loss" in given.history_[-1]


def test_errors_in_validation_data_name_x_val(binary_task):
    """An error in ``X_val`` says so, not that ``X`` (which is fine) has it."""
    X, y = binary_task
    clf = _fast(MRMoEClassifier, early_stopping=True, max_epochs=1)
    empty = X[:10].copy()
    empty[2, 1:] = np.nan
    with pytest.raises(ValueError, match=r"^Sample\(s\) \[2\] of X_val have no observed value"):
        clf.fit(X, y, X_val=empty, y_val=y[:10])
    infinite = X[:10].copy()
    infinite[3, 2, 5] = np.inf
    with pytest.raises(ValueError, match=r"^X_val contains infinity \(first at sample 3, channel 2, step 5\)"):
        clf.fit(X, y, X_val=infinite, y_val=y[:10])
    with pytest.raises(ValueError, match="^X_val has 4 channels, but MRMoEClassifier was fitted with 5"):
        clf.fit(X, y, X_val=X[:10, :4], y_val=y[:10])


def test_a_2d_x_val_must_have_the_width_of_a_2d_x(rng):
    """A 2D ``X`` is a batch of univariate series of one length: a 2D ``X_val`` of another width (transposed)
    is refused as at predict time, in a cold and in a warm fit; 3D and list ``X_val`` may vary in length."""
    X, X_val = rng.normal(size=(40, 12)), rng.normal(size=(30, 12))
    y, y_val = np.arange(40) % 2, np.arange(30) % 2
    clf = MRMoEClassifier(**dict(FAST, max_epochs=1, early_stopping=True))
    with pytest.raises(ValueError, match="^X_val has 30 columns .* fitted on 2D input with 12"):
        clf.fit(X, y, X_val=X_val.T, y_val=y_val[:12])
    clf.fit(X, y, X_val=X_val, y_val=y_val)
    clf.fit(X, y, X_val=X_val[:, None, :9], y_val=y_val)  # 3D: variable length
    clf.set_params(warm_start=True)
    with pytest.raises(ValueError, match="^X_val has 30 columns .* fitted on 2D input with 12"):
        clf.fit(X, y, X_val=X_val.T, y_val=y_val[:12])
    assert len(clf.fit(X, y, X_val=list(X_val[:, :9]), y_val=y_val).history_) == 2


def test_auto_early_stopping_switches_on_from_the_threshold(binary_task, monkeypatch):
    from mrmoe_sklearn import _base

    X, y = binary_task
    monkeypatch.setattr(_base, "AUTO_EARLY_STOPPING", 100)
    clf = _fast(MRMoEClassifier, early_stopping="auto", max_epochs=2).fit(X, y)
    assert "valid_loss" in clf.history_[-1]
    assert _trained_on(clf.history_) == 108  # 10% of 120 held out


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_learning_rate_schedules_change_the_rate(schedule, binary_task):
    X, y = binary_task
    # patience 2 -> the plateau schedule halves the rate after one epoch without improvement
    clf = _fast(MRMoEClassifier, lr_schedule=schedule, early_stopping=True, patience=2, max_epochs=8, lr=0.05)
    clf.fit(X[:80], y[:80], X_val=X[80:], y_val=y[80:])
    final = clf.net_.optimizer_.param_groups[0]["lr"]
    # replay the schedule on a dummy optimiser with the recorded validation losses
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
        for _ in clf.history_:
            opt.step()
            sched.step()
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
        for loss in clf.history_[:, "valid_loss"]:
            opt.step()
            sched.step(loss)
    assert final == pytest.approx(opt.param_groups[0]["lr"])
    assert final < 0.05


def test_a_warm_start_fit_anneals_its_own_cosine_schedule(binary_task):
    """Each fit's cosine schedule runs from ``lr`` to 0 over its ``max_epochs``: a warm-start fit does
    not continue the first fit's cosine past its end (a first epoch at a rate of 0, then rising)."""
    from skorch.callbacks import Callback

    class Rates(Callback):
        def initialize(self):
            self.rates_ = []
            return self

        def on_epoch_begin(self, net, **kwargs):
            self.rates_.append(net.optimizer_.param_groups[0]["lr"])

    X, y = binary_task
    rates = Rates()
    clf = _fast(MRMoEClassifier, lr_schedule="cosine", lr=0.01, max_epochs=4, warm_start=True, callbacks=[rates])
    clf.fit(X, y)
    expected = [0.005 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(rates.rates_, expected, atol=1e-12)
    clf.set_params(max_epochs=2).fit(X, y)
    np.testing.assert_allclose(rates.rates_[4:], [0.01, 0.005], atol=1e-12)


def test_summary_head_and_carry_forward_are_used(binary_task):
    X, y = binary_task
    clf = _fast(MRMoEClassifier, summary_head=True, carry_forward=True, max_epochs=2).fit(X, y)
    module = clf.net_.module_
    # 4 measured channels x 9 statistics, each as 8 quantile-bin fillings and a missing flag, of which
    # the network takes those that vary over the training series
    columns = clf.scaling_.summary_columns
    assert module.summary[0].in_features == len(columns) and 0 < len(columns) <= 4 * 9 * 9
    assert module.experts.input_weight.shape[1] == 4 * 4
    assert clf.scaling_.summary_center.shape == (36,)
    assert clf.scaling_.summary_edges.shape == (36, 9)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    # the prediction depends on the summaries: zero the summary layer and it changes
    with torch.no_grad():
        module.summary[-1].weight.zero_()
    assert not np.allclose(clf.predict_proba(X), proba)
    plain = _fast(MRMoEClassifier, max_epochs=1, summary_head=False).fit(X, y)
    assert plain.net_.module_.summary is None and plain.scaling_.summary_center is None


def test_summary_columns_constant_in_training_are_left_out(rng):
    """Series observed at every one of their 10 steps: every channel's count and time since its last
    observation, and every missing flag, are the same for all of them; the network is given the other
    columns only, and series with gaps are still predicted from what it was given."""
    X = rng.randn(40, 3, 10)
    y = np.repeat([0, 1], 20)
    X[y == 1, 0] += 1.0
    clf = MRMoEClassifier(**{**FAST, "max_epochs": 2}).fit(X, y)
    # 3 channels x 9 statistics x (8 fillings + a flag); count and time since last (x 9) and the
    # other 7 statistics' flags stay constant
    assert clf.scaling_.summary_width == 3 * 7 * 8
    assert clf.net_.module_.summary[0].in_features == 3 * 7 * 8
    gappy = X.copy()
    gappy[:, 1, ::2] = np.nan
    assert np.isfinite(clf.predict_proba(gappy)).all()
    # nothing varies over identical series: no summary columns, and no summary layer to take them
    same = MRMoEClassifier(**{**FAST, "max_epochs": 1}).fit(np.repeat(X[:1], 4, axis=0), [0, 1, 0, 1])
    assert same.scaling_.summary_width == 0 and same.net_.module_.summary is None
    assert np.isfinite(same.predict_proba(X)).all()


def test_summary_encoding_robust_and_invalid(binary_task):
    X, y = binary_task
    clf = _fast(MRMoEClassifier, summary_encoding="robust", max_epochs=1).fit(X, y)
    assert clf.net_.module_.summary[0].in_features == len(clf.scaling_.summary_columns)
    assert 0 < len(clf.scaling_.summary_columns) <= 4 * 9
    assert clf.scaling_.summary_edges is None
    assert np.isfinite(clf.predict_proba(X)).all()
    with pytest.raises(ValueError, match="summary_encoding. parameter of MRMoEClassifier must be a str among"):
        _fast(MRMoEClassifier, summary_encoding="rank").fit(X, y)


def test_clone_and_params_untouched(binary_task):
    X, y = binary_task
    clf = _fast(MRMoEClassifier, rates=(1, 4))
    params = clf.get_params()
    clf.fit(X, y)
    assert clf.get_params() == params
    assert not hasattr(clone(clf), "net_")


def test_cuda_device_without_cuda_is_a_clear_error(binary_task):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    X, y = binary_task
    with pytest.raises(ValueError, match="CUDA is not available"):
        _fast(MRMoEClassifier, device="cuda").fit(X, y)
    assert _fast(MRMoEClassifier, device="auto", max_epochs=1).fit(X, y).net_.device == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", ALL)
def test_cuda_fit_predict_matches_cpu_shapes(cls, binary_task):
    X, y = binary_task
    clf = _fast(cls, device="cuda").fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and proba.shape == (len(y), 2)
    assert next(clf.net_.module_.parameters()).is_cuda


def test_prediction_runs_in_larger_batches_with_the_same_probabilities(binary_task, monkeypatch):
    import mrmoe_sklearn._base as base

    X, y = binary_task
    clf = _fast(MRMoEClassifier).fit(X, y)
    dataset = clf.net_.get_dataset(clf._batch(clf._read_X(X, fitted=True)))
    n_steps = dataset.X["x"].shape[1]
    expected = max(32, min(base.PREDICT_MAX_BATCH, max(base.PREDICT_MIN_BATCH, base.PREDICT_STEPS // n_steps)))
    assert expected * n_steps <= base.PREDICT_MAX_STEPS
    assert expected > 32  # the default task is short: prediction batches are larger than training ones
    assert clf.net_.get_iterator(dataset, training=False).batch_size == expected
    big = clf.predict_proba(X)
    monkeypatch.setattr(base, "PREDICT_MAX_BATCH", 1)  # back to the training batch size
    assert clf.net_.get_iterator(dataset, training=False).batch_size == 32
    np.testing.assert_allclose(clf.predict_proba(X), big, rtol=0, atol=1e-6)
    # long series: bounded by PREDICT_STEPS, not below PREDICT_MIN_BATCH nor the training batch size
    monkeypatch.setattr(base, "PREDICT_MAX_BATCH", 512)
    monkeypatch.setattr(base, "PREDICT_STEPS", 10 * n_steps)
    assert clf.net_.get_iterator(dataset, training=False).batch_size == base.PREDICT_MIN_BATCH
    monkeypatch.setattr(base, "PREDICT_MAX_STEPS", 40 * n_steps)  # and by the memory bound
    assert clf.net_.get_iterator(dataset, training=False).batch_size == 40
    monkeypatch.setattr(base, "PREDICT_MIN_BATCH", 1)
    assert clf.net_.get_iterator(dataset, training=False).batch_size == 32
