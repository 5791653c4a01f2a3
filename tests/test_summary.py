"""Per-channel summary statistics: the function, the transformer and a tree baseline."""

import doctest
import math
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import mrmoe_sklearn.summary
from mrmoe_sklearn import SummaryFeatures, summary_statistics
from mrmoe_sklearn._data import check_series
from mrmoe_sklearn.datasets import make_multirate_classification
from mrmoe_sklearn.nn import kernel
from mrmoe_sklearn.summary import ALL_STATISTICS, DEFAULT_STATISTICS


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def computation(request, monkeypatch):
    """Every test of this file runs on both computations of the statistics: the compiled
    library's (where it is built) and the numpy one."""
    if request.param == "numpy":
        monkeypatch.setattr(mrmoe_sklearn.summary.kernel, "summary_statistics", lambda *args, **kwargs: None)
    elif not kernel.available():
        pytest.skip(f"the compiled library is not in use: {kernel.status()}")
    return request.param


def ragged_panel(seed=0, n_samples=25, n_channels=4):
    """Variable-length irregular samples (n_channels + 1, T_i), channel 0 = time.

    Missing values everywhere, repeated time stamps, channels never observed,
    observed once, or observed twice at the same time stamp.
    """
    rng = np.random.RandomState(seed)
    samples = []
    for i in range(n_samples):
        n_steps = rng.randint(1, 12)
        gaps = rng.exponential(1.0, n_steps) * (rng.rand(n_steps) > 0.2)  # some repeated times
        times = 3.0 + np.cumsum(gaps)
        values = rng.normal(10.0, 3.0, (n_channels, n_steps))
        values[rng.rand(n_channels, n_steps) < 0.6] = np.nan
        if i % 5 == 1:
            values[1] = np.nan  # never observed
        if i % 5 == 2:
            values[2] = np.nan
            values[2, -1] = 4.0  # observed once, at the last step
        if i % 5 == 3 and n_steps >= 2:
            times[1] = times[0]
            values[3] = np.nan
            values[3, :2] = [1.0, 5.0]  # twice, at the same time stamp
        values[0, 0] = 1.0  # every sample has an observation
        samples.append(np.vstack([times, values]))
    return samples


def reference(sample, time_channel):
    """The statistics of one sample by plain loops: {statistic: [per channel]}."""
    n_steps = sample.shape[1]
    # trailing steps where every channel is NaN are padding
    end = max(t for t in range(n_steps) if not all(math.isnan(x) for x in sample[:, t]))
    steps = range(end + 1)
    times = list(steps) if time_channel is None else [sample[time_channel, t] for t in steps]
    channels = [c for c in range(sample.shape[0]) if c != time_channel]
    out = {name: [] for name in ALL_STATISTICS}
    for c in channels:
        obs = [(times[t], sample[c, t]) for t in steps if not math.isnan(sample[c, t])]
        n = len(obs)
        out["count"].append(n)
        if n == 0:
            for name in (s for s in ALL_STATISTICS if s != "count"):
                out[name].append(math.nan)
            continue
        ts = [t for t, _ in obs]
        vs = [v for _, v in obs]
        m = sum(vs) / n
        out["mean"].append(m)
        out["std"].append(math.sqrt(sum((v - m) ** 2 for v in vs) / n))
        out["min"].append(min(vs))
        out["max"].append(max(vs))
        out["first"].append(vs[0])
        out["last"].append(vs[-1])
        tm = sum(ts) / n
        stt = sum((t - tm) ** 2 for t in ts)
        slope = sum((t - tm) * (v - m) for t, v in obs) / stt if len(set(ts)) > 1 else math.nan
        out["slope"].append(slope)
        out["time_since_last"].append(times[-1] - ts[-1])
    return out


@pytest.mark.parametrize("time_channel", [0, None])
def test_every_statistic_matches_loops(time_channel):
    samples = ragged_panel()
    est = SummaryFeatures(time_channel=time_channel).fit(samples)
    got = est.transform(samples)  # the list-of-arrays layout
    n_channels = 4 if time_channel == 0 else 5
    assert got.shape == (len(samples), n_channels * len(DEFAULT_STATISTICS))
    assert got.dtype == np.float64
    got = got.reshape(len(samples), n_channels, -1)
    for i, sample in enumerate(samples):
        expected = reference(sample, time_channel)
        for s, name in enumerate(DEFAULT_STATISTICS):
            np.testing.assert_allclose(
                got[i, :, s],
                expected[name],
                rtol=1e-10,
                atol=1e-12,
                equal_nan=True,
                err_msg=f"{name} of sample {i}",
            )
    # the same series padded into a 3D array give the same features
    padded = np.full((len(samples), 5, max(s.shape[1] for s in samples)), np.nan)
    for i, s in enumerate(samples):
        padded[i, :, : s.shape[1]] = s
    np.testing.assert_array_equal(est.transform(padded), est.transform(samples))


def test_undefined_statistics():
    nan = np.nan
    X = np.array(
        [
            [
                [0.0, 1.0, 1.0, 2.0],  # time stamps, one repeated
                [nan, nan, nan, nan],  # never observed
                [nan, 7.0, nan, nan],  # once
                [nan, 2.0, 6.0, nan],  # twice, at the same time stamp
                [1.0, nan, nan, 3.0],  # twice, at times 0 and 2
            ]
        ]
    )
    got = SummaryFeatures(time_channel=0).fit_transform(X).reshape(4, -1)
    stats = dict(zip(DEFAULT_STATISTICS, got.T))
    assert stats["count"].tolist() == [0, 1, 2, 2]
    for name in set(DEFAULT_STATISTICS) - {"count"}:
        assert np.isnan(stats[name][0]), name  # never observed: NaN, count 0
    np.testing.assert_array_equal(stats["std"][1:], [0.0, 2.0, 1.0])
    np.testing.assert_array_equal(stats["first"][1:], [7.0, 2.0, 1.0])
    np.testing.assert_array_equal(stats["last"][1:], [7.0, 6.0, 3.0])
    assert np.isnan(stats["slope"][1]) and np.isnan(stats["slope"][2])  # < 2 distinct times
    assert stats["slope"][3] == 1.0
    np.testing.assert_array_equal(stats["time_since_last"][1:], [1.0, 1.0, 0.0])
    # observations at one time stamp whose mean does not round back to it
    X = np.array([[[0.0, 0.1, 0.1, 0.1], [np.nan, 1.0, 2.0, 4.0]]])
    assert np.isnan(SummaryFeatures(["slope"], time_channel=0).fit_transform(X)).all()


def test_slope_and_time_since_last_in_time_channel_units():
    hours = np.array([0.0, 0.5, 2.0, 6.0, 7.0])
    value = 2.0 * hours + 1.0
    value[-1] = np.nan  # last observation at 6 h, record ends at 7 h
    stats = ("slope", "time_since_last")
    X = np.stack([hours, value])[None]
    np.testing.assert_allclose(SummaryFeatures(stats, time_channel=0).fit_transform(X), [[2.0, 1.0]])
    minutes = np.stack([60 * hours, value])[None]
    np.testing.assert_allclose(SummaryFeatures(stats, time_channel=0).fit_transform(minutes), [[2.0 / 60, 60.0]])
    # without a time channel steps are unit-spaced: time is the step index
    univariate = np.array([[1.0, np.nan, 2.0, 7.0, np.nan, np.nan], [1.0, 3.0, np.nan, np.nan, np.nan, 0.0]])
    got = SummaryFeatures(stats).fit_transform(univariate)
    # sample 0 ends at step 3 (all-NaN trailing steps are padding), sample 1 at step 5
    expected = [[np.polyfit([0, 2, 3], [1, 2, 7], 1)[0], 0.0], [np.polyfit([0, 1, 5], [1, 3, 0], 1)[0], 0.0]]
    np.testing.assert_allclose(got, expected)
    # the time channel given last, by a negative index
    last = SummaryFeatures(stats, time_channel=-1).fit_transform(X[:, ::-1])
    np.testing.assert_allclose(last, [[2.0, 1.0]])


def test_chunks_and_float32_give_identical_results():
    data = check_series(ragged_panel(seed=1, n_samples=17), time_channel=0)
    values = data.values.astype(np.float32).astype(np.float64)
    whole = summary_statistics(values, data.times, data.valid, chunk_size=17)
    for chunk_size in (1, 3, None):
        np.testing.assert_array_equal(summary_statistics(values, data.times, data.valid, chunk_size=chunk_size), whole)
    np.testing.assert_array_equal(summary_statistics(values.astype(np.float32), data.times, data.valid), whole)
    assert whole.shape == (17, 4, len(DEFAULT_STATISTICS)) and whole.dtype == np.float64


def _random_panel(rng, n, T, F, times_kind):
    """Values with NaN, valid masks (prefixes or not), times None, regular, tied or NaN off the valid steps."""
    values = rng.standard_normal((n, T, F)) * 10.0 ** rng.randint(-3, 6)
    values[rng.rand(n, T, F) < rng.rand()] = np.nan
    valid = np.arange(T)[None] < rng.randint(1, T + 1, n)[:, None]
    if times_kind == "holes":
        valid = rng.rand(n, T) < 0.7
    values[~valid & (rng.rand(n, T) < 0.5)] = 1.0  # values on padding are ignored
    if times_kind == "none":
        return values, None, valid
    times = np.cumsum(rng.choice([0.0, 0.5, 1.0, 3.0], (n, T)), axis=1) + 10.0 ** rng.randint(1, 9)
    times[~valid] = np.nan
    return values, times, valid


@pytest.mark.parametrize("times_kind", ["none", "stamps", "holes"])
def test_compiled_and_numpy_statistics_agree(times_kind, computation):
    if computation == "numpy":
        pytest.skip("compares the two computations once")
    rng = np.random.RandomState(7)
    for _ in range(30):
        # up to 19 channels: whole vectors of the library's lanes (4 or 8) and a partial last one
        n, T, F = rng.randint(1, 40), rng.randint(1, 30), rng.randint(1, 20)
        values, times, valid = _random_panel(rng, n, T, F, times_kind)
        compiled = kernel.summary_statistics(values, times, valid)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(mrmoe_sklearn.summary.kernel, "summary_statistics", lambda *args, **kwargs: None)
            expected = summary_statistics(values, times, valid, ALL_STATISTICS)
        # two summation orders: equal to rounding, NaN in the same places
        np.testing.assert_allclose(compiled, expected, rtol=1e-9, atol=1e-12, equal_nan=True)
        for n_threads in (1, 2, 3):  # threads take whole samples: bit-identical
            np.testing.assert_array_equal(kernel.summary_statistics(values, times, valid, n_threads), compiled)


def test_values_on_padding_steps_are_ignored():
    data = check_series(ragged_panel(seed=2, n_samples=9), time_channel=0)
    expected = summary_statistics(data.values, data.times, data.valid)
    dirty = np.where(data.valid[:, :, None], data.values, 99.0)
    assert (dirty != data.values).any()
    np.testing.assert_array_equal(summary_statistics(dirty, data.times, data.valid), expected)


def test_statistics_subset_in_the_given_order():
    samples = ragged_panel(seed=3, n_samples=6)
    full = SummaryFeatures(time_channel=0).fit_transform(samples).reshape(6, 4, -1)
    part = SummaryFeatures(["slope", "mean"], time_channel=0).fit_transform(samples)
    index = [DEFAULT_STATISTICS.index("slope"), DEFAULT_STATISTICS.index("mean")]
    np.testing.assert_array_equal(part, full[:, :, index].reshape(6, -1))


def panel_3d(n_samples, n_channels, n_steps, seed=0):
    """A 3D panel whose channel 0 holds increasing time stamps."""
    X = np.random.RandomState(seed).normal(size=(n_samples, n_channels, n_steps))
    X[:, 0] = np.cumsum(np.abs(X[:, 0]), axis=1)
    return X


def test_feature_names():
    X = panel_3d(3, 3, 5)
    default = SummaryFeatures(["mean", "count"], time_channel=0).fit(X)
    assert default.get_feature_names_out().tolist() == ["x1__mean", "x1__count", "x2__mean", "x2__count"]
    assert default.get_feature_names_out(["t", "HR", "MAP"]).tolist() == [
        "HR__mean",
        "HR__count",
        "MAP__mean",
        "MAP__count",
    ]
    with pytest.raises(ValueError, match="input_features should have length equal"):
        default.get_feature_names_out(["HR", "MAP"])
    named = SummaryFeatures(time_channel=0, channel_names=["HR", "MAP"]).fit(X)
    names = named.get_feature_names_out()
    assert names.dtype == object and len(names) == named.transform(X).shape[1]
    assert names[0] == "HR__mean" and names[-1] == "MAP__time_since_last"
    assert SummaryFeatures(["max"]).fit(X).get_feature_names_out().tolist() == ["x0__max", "x1__max", "x2__max"]
    frame = SummaryFeatures(["mean"], time_channel=0).set_output(transform="pandas").fit_transform(X)
    assert frame.columns.tolist() == ["x1__mean", "x2__mean"]
    with pytest.raises(ValueError, match="channel_names has 3 names but X has 2 measured"):
        SummaryFeatures(time_channel=0, channel_names=["a", "b", "c"]).fit(X)


@pytest.mark.parametrize("statistics", [["mean", "median"], "average", [], ["mean", "mean"], [["mean"]], [None]])
def test_bad_statistics(statistics):
    X = np.ones((2, 1, 3))
    allowed = r"must be None, or one or more distinct names among \{'mean', .*'time_since_last'\}"
    with pytest.raises(InvalidParameterError, match=f"'statistics' parameter of SummaryFeatures {allowed}"):
        SummaryFeatures(statistics).fit(X)
    with pytest.raises(InvalidParameterError, match=f"'statistics' parameter of summary_statistics {allowed}"):
        summary_statistics(np.ones((2, 3, 1)), None, np.ones((2, 3), bool), statistics)


def test_input_contract_is_the_estimators():
    X = panel_3d(4, 3, 6)
    est = SummaryFeatures(time_channel=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 channels, but SummaryFeatures was fitted with 3"):
        est.transform(X[:, :2])
    X[1, 0, 3] = X[1, 0, 1] - 1.0
    with pytest.raises(ValueError, match="Time stamps decrease in sample 1"):
        est.transform(X)
    univariate = SummaryFeatures().fit(X[:, 1])  # a 2D X keeps its width (is it transposed?)
    assert univariate.transform(X[:, 1]).shape == (4, len(DEFAULT_STATISTICS))
    with pytest.raises(ValueError, match="X has 4 columns .* fitted on 2D input with 6"):
        univariate.transform(X[:, 1].T)
    ragged = [X[0, 1, :4], X[1, 1, :5], X[2, 1]]  # other lengths: as a list
    assert univariate.transform(ragged).shape == (3, len(DEFAULT_STATISTICS))


def test_tree_baseline_in_a_grid_search():
    X, y = make_multirate_classification(n_samples=120, n_timesteps=24, random_state=0)
    pipe = make_pipeline(SummaryFeatures(time_channel=0), HistGradientBoostingClassifier(random_state=0))
    grid = {
        "summaryfeatures__statistics": [None, ("mean", "std", "slope")],
        "histgradientboostingclassifier__max_iter": [20, 50],
    }
    search = GridSearchCV(pipe, grid, scoring="roc_auc", cv=StratifiedKFold(3, shuffle=True, random_state=0))
    with threadpool_limits(1):  # the trees' OpenMP threads crawl on a busy machine (0.5 s vs 7 s)
        search.fit(X, y)
    assert search.best_score_ > 0.75, search.cv_results_["mean_test_score"]  # 0.85 when written
    assert search.predict_proba(X[:5]).shape == (5, 2)


def _documented_tree_pipeline():
    """The Pipeline of docs/physionet.md's code block (SummaryFeatures into the tree), as written there."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "physionet.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "SummaryFeatures(time_channel=0)" in b]
    assert len(blocks) == 1, f"{len(blocks)} code blocks of docs/physionet.md build the SummaryFeatures tree"
    namespace = {}
    exec(blocks[0], namespace)
    return namespace["tree"]


def test_documented_tree_pipeline_with_a_never_observed_channel():
    """A channel never observed in the training series: the documented tree Pipeline fits and predicts.

    SummaryFeatures straight into HistGradientBoostingClassifier fails there (scikit-learn 1.9.1:
    "window shape cannot be larger than input array shape"), as in a cross-validation fold whose
    training part never saw a rarely charted channel.
    """
    X, y = make_multirate_classification(n_samples=60, n_channels=3, n_timesteps=12, random_state=0)
    X_train = X.copy()
    X_train[:, 2] = np.nan  # channel 2 (x2) never observed in training
    tree = _documented_tree_pipeline().set_params(histgradientboostingclassifier__max_iter=10)
    with threadpool_limits(1):
        tree.fit(X_train, y)
        proba = tree.predict_proba(X)  # observed at predict: its columns are still left out
    assert proba.shape == (60, 2) and np.isfinite(proba).all()
    names = tree[:-1].get_feature_names_out()
    assert "x2__count" in names and not any(n.startswith("x2__") and n != "x2__count" for n in names)
    assert len(names) == 2 * len(DEFAULT_STATISTICS) + 1
    # channel 2 charted in the first 12 series only: the first fold's training part never saw it
    X_rare = X.copy()
    X_rare[12:, 2] = np.nan
    with threadpool_limits(1):
        scores = cross_val_score(_documented_tree_pipeline().set_params(histgradientboostingclassifier__max_iter=10),
                                 X_rare, y, cv=KFold(5), error_score="raise")  # fmt: skip
    assert np.isfinite(scores).all()


def test_docstring_examples():
    failures, tried = doctest.testmod(mrmoe_sklearn.summary)
    assert tried >= 4 and failures == 0


# A 2D X is a batch of univariate series (n_samples, n_timesteps): channels, not
# columns, are counted in n_features_in_ (as for the package's classifiers).
EXPECTED_FAILED = {
    "check_n_features_in": "n_features_in_ counts channels; a 2D X is one channel of n_timesteps steps",
    "check_n_features_in_after_fitting": "a 2D X of other width is refused with a message on time steps",
}


@parametrize_with_checks(
    [SummaryFeatures(), SummaryFeatures(statistics=("slope", "last"))],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
