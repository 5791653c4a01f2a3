"""Tests for :mod:`mrmoe_sklearn.datasets`."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from mrmoe_sklearn.datasets import make_multirate_classification


def _valid_mask(X):
    """Steps that belong to the series (time stamp present)."""
    return ~np.isnan(X[:, 0, :])


def _ols_slope(t, v):
    """Least-squares slope of ``v`` against ``t`` over the observed points."""
    m = ~np.isnan(v) & ~np.isnan(t)
    n_obs = m.sum(axis=1)
    t_mean = np.where(m, t, 0.0).sum(axis=1) / n_obs
    v_mean = np.where(m, v, 0.0).sum(axis=1) / n_obs
    dt = np.where(m, t - t_mean[:, None], 0.0)
    dv = np.where(m, v - v_mean[:, None], 0.0)
    return (dt * dv).sum(axis=1) / (dt * dt).sum(axis=1)


def _max_abs_diff(v):
    """Largest absolute jump between consecutive observed values."""
    out = np.zeros(v.shape[0])
    for i, row in enumerate(v):
        obs = row[~np.isnan(row)]
        if obs.size > 1:
            out[i] = np.max(np.abs(np.diff(obs)))
    return out


# --------------------------------------------------------------------- shapes


def test_default_shapes_and_dtypes():
    X, y = make_multirate_classification(n_samples=60, random_state=0)
    assert X.shape == (60, 7, 96)
    assert X.dtype == np.float64
    assert y.shape == (60,)
    assert np.issubdtype(y.dtype, np.integer)
    assert set(np.unique(y)) == {0, 1}


def test_custom_shapes_and_return_info():
    out = make_multirate_classification(n_samples=25, n_channels=4, n_timesteps=30, random_state=1, return_info=True)
    assert len(out) == 3
    X, y, info = out
    assert X.shape == (25, 5, 30)
    assert y.shape == (25,)
    assert isinstance(info, dict)
    assert len(make_multirate_classification(n_samples=10, random_state=1)) == 2


# ------------------------------------------------------------------ time axis


@pytest.mark.parametrize("variable_length", [False, True])
def test_time_strictly_increasing_on_valid_steps(variable_length):
    X, _ = make_multirate_classification(n_samples=80, variable_length=variable_length, random_state=2)
    valid = _valid_mask(X)
    for t, m in zip(X[:, 0, :], valid):
        assert np.all(np.diff(t[m]) > 0)
    first = X[:, 0, 0]
    assert np.all(first >= 0) and np.all(first < 0.5)


def test_irregular_gaps_have_mean_about_one():
    X, _ = make_multirate_classification(n_samples=100, random_state=3)
    gaps = np.diff(X[:, 0, :], axis=1)
    assert gaps.min() >= 0.2 - 1e-12
    assert gaps.max() <= 3.0 + 1e-12
    assert abs(gaps.mean() - 1.0) < 0.1
    assert gaps.std() > 0.1  # really irregular


def test_regular_time_grid():
    X, _ = make_multirate_classification(n_samples=10, n_timesteps=20, irregular=False, random_state=4)
    np.testing.assert_array_equal(X[:, 0, :], np.tile(np.arange(20.0), (10, 1)))


# ------------------------------------------------------------ missing values


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5])
def test_missing_fraction_close_to_rate(rate):
    X, _ = make_multirate_classification(n_samples=200, missing_rate=rate, random_state=5)
    assert not np.isnan(X[:, 0, :]).any()  # time stamps are never missing
    frac = np.isnan(X[:, 1:, :]).mean()
    assert abs(frac - rate) < 0.02


def test_missing_fraction_counts_only_valid_steps():
    X, _ = make_multirate_classification(n_samples=200, missing_rate=0.3, variable_length=True, random_state=6)
    valid = _valid_mask(X)
    measured = np.isnan(X[:, 1:, :])
    frac = measured[np.broadcast_to(valid[:, None, :], measured.shape)].mean()
    assert abs(frac - 0.3) < 0.02


def test_no_sample_without_observations():
    X, _ = make_multirate_classification(
        n_samples=300,
        n_timesteps=8,
        missing_rate=0.95,
        variable_length=True,
        random_state=7,
    )
    observed = ~np.isnan(X[:, 1:, :])
    assert np.all(observed.any(axis=(1, 2)))
    # stronger guarantee: every channel of every sample keeps a value
    assert np.all(observed.any(axis=2))


# ------------------------------------------------------------ variable length


def test_variable_length_padding_is_trailing_in_all_channels():
    n_timesteps = 40
    X, _ = make_multirate_classification(
        n_samples=150,
        n_timesteps=n_timesteps,
        variable_length=True,
        missing_rate=0.2,
        random_state=8,
    )
    valid = _valid_mask(X)
    lengths = valid.sum(axis=1)
    assert lengths.min() >= n_timesteps // 2
    assert lengths.max() <= n_timesteps
    assert len(np.unique(lengths)) > 5
    for i, length in enumerate(lengths):
        # valid steps form a prefix
        assert valid[i, :length].all()
        # every channel, time included, is NaN after the length
        assert np.isnan(X[i, :, length:]).all()
        # the time channel is complete before it
        assert not np.isnan(X[i, 0, :length]).any()


def test_fixed_length_has_no_padding():
    X, _ = make_multirate_classification(n_samples=30, random_state=9)
    assert _valid_mask(X).all()


# -------------------------------------------------------------------- labels


def test_balanced_by_default():
    _, y = make_multirate_classification(n_samples=101, random_state=10)
    counts = np.bincount(y)
    assert counts.sum() == 101
    assert abs(counts[0] - counts[1]) <= 1


def test_weights_give_requested_imbalance():
    _, y = make_multirate_classification(n_samples=600, weights=[0.7, 0.3], random_state=11)
    np.testing.assert_array_equal(np.bincount(y), [420, 180])
    # labels are shuffled, not sorted
    assert not np.all(np.diff(y) >= 0)


def test_weights_last_class_inferred_and_minimum_one():
    _, y = make_multirate_classification(n_samples=100, weights=[0.8], random_state=12)
    np.testing.assert_array_equal(np.bincount(y), [80, 20])
    _, y = make_multirate_classification(n_samples=20, n_classes=3, weights=[0.98, 0.01, 0.01], random_state=12)
    counts = np.bincount(y, minlength=3)
    assert counts.sum() == 20
    assert counts.min() >= 1


def test_multiclass_labels():
    X, y = make_multirate_classification(n_samples=120, n_classes=4, random_state=13)
    assert set(np.unique(y)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(np.bincount(y), [30, 30, 30, 30])
    assert np.isfinite(np.nanmean(X[:, 1:, :], axis=2)).all()


# ------------------------------------------------------------ reproducibility


def test_same_seed_same_arrays_other_seed_differs():
    kw = dict(n_samples=50, variable_length=True)
    X1, y1 = make_multirate_classification(random_state=14, **kw)
    X2, y2 = make_multirate_classification(random_state=14, **kw)
    X3, y3 = make_multirate_classification(random_state=15, **kw)
    np.testing.assert_array_equal(X1, X2)  # NaNs compare equal here
    np.testing.assert_array_equal(y1, y2)
    assert X1.shape == X3.shape
    assert not np.array_equal(X1, X3, equal_nan=True)


def test_random_state_objects_accepted():
    Xa, _ = make_multirate_classification(n_samples=20, random_state=np.random.RandomState(16))
    Xb, _ = make_multirate_classification(n_samples=20, random_state=np.random.RandomState(16))
    np.testing.assert_array_equal(Xa, Xb)
    Xc, _ = make_multirate_classification(n_samples=20, random_state=np.random.default_rng(16))
    Xd, _ = make_multirate_classification(n_samples=20, random_state=np.random.default_rng(16))
    np.testing.assert_array_equal(Xc, Xd)


# ----------------------------------------------------------------- info dict


def test_info_channel_roles():
    X, _, info = make_multirate_classification(n_samples=20, n_channels=6, random_state=17, return_info=True)
    assert set(info) == {"time_channel", "slow_channels", "fast_channels", "noise_channels"}
    assert info["time_channel"] == 0
    slow, fast, noise = (info["slow_channels"], info["fast_channels"], info["noise_channels"])
    assert len(noise) == 6 // 3
    assert len(slow) >= 1 and len(fast) >= 1
    assert abs(len(slow) - len(fast)) <= 1
    roles = slow + fast + noise
    assert sorted(roles) == list(range(1, X.shape[1]))
    assert all(isinstance(c, int) for c in roles)


@pytest.mark.parametrize(
    "n_channels, n_noise, expected_noise",
    [(2, None, 0), (3, None, 1), (9, None, 3), (5, 0, 0), (5, 4, 4)],
)
def test_info_noise_channel_counts(n_channels, n_noise, expected_noise):
    _, _, info = make_multirate_classification(
        n_samples=10,
        n_channels=n_channels,
        n_noise_channels=n_noise,
        random_state=18,
        return_info=True,
    )
    assert len(info["noise_channels"]) == expected_noise
    informative = set(info["slow_channels"]) | set(info["fast_channels"])
    assert informative and not informative & set(info["noise_channels"])
    assert informative | set(info["noise_channels"]) == set(range(1, n_channels + 1))


def test_channels_have_different_scales():
    X, _ = make_multirate_classification(n_samples=100, random_state=19)
    stds = np.nanstd(X[:, 1:, :], axis=(0, 2))
    assert stds.max() / stds.min() > 3


# --------------------------------------------------------- invalid arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=1, n_classes=2), "'n_samples' parameter of make_multirate_classification must be an int >="),
        (dict(n_samples=3, n_classes=4), r"'n_samples' parameter .* must be an int >= n_classes \(4\). Got 3 instead"),
        (dict(n_timesteps=7), r"'n_timesteps' parameter .* must be an int in the range \[8, inf\). Got 7 instead"),
        (dict(n_channels=0), r"'n_channels' parameter .* must be an int in the range \[1, inf\)"),
        (dict(n_classes=1), r"'n_classes' parameter .* must be an int in the range \[2, inf\)"),
        (dict(n_samples=10.5), r"'n_samples' parameter .* must be an int in the range \[1, inf\). Got 10.5"),
        (dict(missing_rate=1.0), r"'missing_rate' parameter .* must be a float in the range \[0.0, 1.0\)"),
        (dict(missing_rate=-0.1), r"'missing_rate' parameter .* a float in the range \[0.0, 1.0\)"),
        (dict(weights=[0.2, 0.3, 0.5]), r"'weights' parameter .* of length n_classes \(2\) or n_classes - 1"),
        (dict(weights=[0.5, 0.6]), r"'weights' parameter .* proportions that sum to 1 \(these sum to 1.1\)"),
        (dict(weights=[1.2, -0.2]), "'weights' parameter .* non-negative"),
        (dict(n_channels=4, n_noise_channels=4), r"'n_noise_channels' parameter .* \[0, 3\] .*Got 4 instead"),
        (dict(n_noise_channels=-1), r"'n_noise_channels' parameter .* must be an int in the range \[0, inf\) or None"),
        (dict(class_sep=-1.0), r"'class_sep' parameter .* must be a float in the range \[0.0, inf\)"),
        (dict(random_state="seed"), "'random_state' parameter of make_multirate_classification must be"),
        # bool is an Integral: refused as a size, not read as 1 or 0
        (dict(n_samples=True), r"'n_samples' parameter .* must be an int in the range \[1, inf\). Got True"),
        (dict(n_channels=True), r"'n_channels' parameter .* must be an int in the range \[1, inf\). Got True"),
        (dict(n_timesteps=True), r"'n_timesteps' parameter .* must be an int in the range \[8, inf\). Got True"),
        (dict(n_classes=True), r"'n_classes' parameter .* must be an int in the range \[2, inf\). Got True"),
        (dict(n_noise_channels=True), r"'n_noise_channels' parameter .* \[0, inf\) or None. Got True"),
        (dict(n_noise_channels=False), r"'n_noise_channels' parameter .* \[0, inf\) or None. Got False"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        make_multirate_classification(**kwargs)


def test_numpy_ints_are_sizes():
    X, _ = make_multirate_classification(n_samples=np.int64(4), n_channels=np.int32(3), n_noise_channels=np.int64(1))
    assert X.shape == (4, 4, 96)


# -------------------------------------------------------------- learnability


@pytest.fixture(scope="module")
def binary_data():
    return make_multirate_classification(n_samples=400, random_state=20, return_info=True)


def test_fast_channels_bursts_are_informative(binary_data):
    X, y, info = binary_data
    for c in info["fast_channels"]:
        auc = roc_auc_score(y, _max_abs_diff(X[:, c, :]))
        assert auc > 0.62, (c, auc)
    for c in info["noise_channels"]:
        auc = roc_auc_score(y, _max_abs_diff(X[:, c, :]))
        assert abs(auc - 0.5) < 0.12, (c, auc)


def test_slow_channels_slope_is_informative(binary_data):
    X, y, info = binary_data
    for c in info["slow_channels"]:
        auc = roc_auc_score(y, _ols_slope(X[:, 0, :], X[:, c, :]))
        assert auc > 0.7, (c, auc)


def test_channel_means_are_weak(binary_data):
    X, y, _ = binary_data
    means = np.nanmean(X[:, 1:, :], axis=2)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    proba = cross_val_predict(
        model,
        means,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )[:, 1]
    assert roc_auc_score(y, proba) < 0.7


def test_class_sep_controls_difficulty():
    aucs = []
    for sep in (0.0, 2.0):
        X, y, info = make_multirate_classification(n_samples=300, class_sep=sep, random_state=21, return_info=True)
        c = info["slow_channels"][0]
        aucs.append(roc_auc_score(y, _ols_slope(X[:, 0, :], X[:, c, :])))
    assert abs(aucs[0] - 0.5) < 0.12
    assert aucs[1] > 0.85
