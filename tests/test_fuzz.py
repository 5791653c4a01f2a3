"""Property-based tests of the input contract (issue 5).

Every generated case either fits and predicts finite probabilities whose rows
sum to 1, or raises ``ValueError``/``TypeError`` whose message names the
problem. The expected outcome of each case is computed here, independently of
:mod:`mrmoe_sklearn._data`, from the array the user handed in (after the
user's own dtype conversion), so a wrong acceptance is caught as well as a
wrong rejection. Any other exception type (a torch ``RuntimeError`` included),
NaN in the output, or a numpy ``RuntimeWarning`` (overflow, invalid value)
raised by the library counts as a failure.

The examples are derandomized so that the run is reproducible and its length
predictable; set ``MRMOE_FUZZ_EXPLORE=1`` (optionally with a larger
``MRMOE_FUZZ_SCALE``) to draw fresh random examples instead.

The cases that ran are counted in ``CASES`` by (category, outcome) and printed
by the last test of the module.
"""

import collections
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")
import scipy.sparse as sp  # noqa: E402
from hypothesis import HealthCheck, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mrmoe_sklearn import MRMoEClassifier  # noqa: E402
from mrmoe_sklearn._data import check_series  # noqa: E402

_EXPLORE = bool(os.environ.get("MRMOE_FUZZ_EXPLORE"))
_SCALE = float(os.environ.get("MRMOE_FUZZ_SCALE", "1"))


def _settings(n):
    return settings(
        max_examples=max(1, int(n * _SCALE)),
        deadline=None,
        derandomize=not _EXPLORE,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


#: (category, outcome) -> number of cases that ran.
CASES = collections.Counter()

TINY = dict(max_epochs=1, hidden_size=4, backbone_units=4, batch_size=16, random_state=0)

#: Magnitudes of the generated values: ordinary, huge, tiny, near float64's limit.
MAGNITUDES = [1.0, 1e30, 1e-30, 1e300]
FLOAT_DTYPES = ["float64", "float32", "float16", "longdouble", "object"]
INT_DTYPES = ["int64", "int8", "uint8", "bool"]


# --------------------------------------------------------------------- oracle
def _lengths(ref):
    """Non-padding steps per sample: up to the last step with any channel observed."""
    n, _, T = ref.shape
    out = np.zeros(n, dtype=int)
    for i in range(n):
        steps = np.flatnonzero(~np.isnan(ref[i]).all(axis=0))
        out[i] = steps[-1] + 1 if steps.size else 0
    return out


def _expected_error(ref, time_channel=None):
    """Keyword(s) the error message must contain, or None when ``ref`` is valid.

    ``ref`` is the float64 panel ``(n, C, T)`` the user's input means (NaN
    padded). The checks follow the contract's order: infinity, empty sample,
    missing time stamp, decreasing time stamp, elapsed-time overflow.
    """
    with np.errstate(all="ignore"):
        if np.isinf(ref).any():
            return ValueError, ("infinity",)
        feats = ref if time_channel is None else np.delete(ref, time_channel, axis=1)
        if np.isnan(feats).all(axis=(1, 2)).any():
            return ValueError, ("no observed value",)
        if time_channel is None:
            return None
        lengths = _lengths(ref)
        times = ref[:, time_channel, :]
        for i, L in enumerate(lengths):
            if np.isnan(times[i, :L]).any():
                return ValueError, ("time channel", "nan")
        for i, L in enumerate(lengths):
            if (np.diff(times[i, :L]) < 0).any():
                return ValueError, ("decrease",)
        for i, L in enumerate(lengths):
            if np.isinf(np.diff(times[i, :L])).any():
                return ValueError, ("elapsed time", "overflow")
    return None


def _check_message(exc, keywords):
    msg = str(exc).lower()
    missing = [k for k in keywords if k.lower() not in msg]
    assert not missing, f"message {str(exc)!r} does not name {missing}"


def _run_case(category, X, y, ref, expected, **params):
    """Fit + predict one case and check it against the oracle."""
    clf = MRMoEClassifier(**TINY, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if expected is not None:
            exc_type, keywords = expected
            with pytest.raises((ValueError, TypeError)) as info:
                clf.fit(X, y)
            assert isinstance(info.value, exc_type), f"{type(info.value).__name__}: {info.value}"
            _check_message(info.value, keywords)
            CASES[(category, "rejected: " + keywords[0])] += 1
            return None
        try:
            clf.fit(X, y)
        except Exception as exc:  # any exception on a valid case is a failure
            pytest.fail(f"valid case raised {type(exc).__name__}: {exc}")
        proba = clf.predict_proba(X)
        labels = clf.predict(X)
    n = len(y)
    classes = np.unique(np.asarray(y))
    assert proba.shape == (n, len(classes))
    assert np.isfinite(proba).all(), proba
    assert (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert set(np.asarray(labels).tolist()) <= set(classes.tolist())
    assert clf.n_features_in_ == ref.shape[1]
    np.testing.assert_array_equal(clf.classes_, classes)
    CASES[(category, "fitted")] += 1
    return clf


# ------------------------------------------------------------------ builders
def _labels(counts, as_str):
    y = np.repeat(np.arange(len(counts)), counts)
    if as_str:
        y = np.array(["cls_" + str(v) for v in y])
    return y


def _sample_counts(draw):
    n_classes = draw(st.integers(2, 3))
    counts = [draw(st.integers(1, 3)) for _ in range(n_classes)]
    if draw(st.integers(0, 5)) == 0:  # one sample past a full batch of 16
        counts[0] += 17 - sum(counts)
    return counts


def _apply_dtype(raw, dtype, rng):
    """The user's array in ``dtype`` and the float64 panel it means."""
    with np.errstate(all="ignore"):
        if dtype == "object":
            obj = raw.astype(object)
            nan = np.isnan(raw)
            # Python floats, with None for missing values in about half the NaN cells.
            obj[nan & (rng.random(raw.shape) < 0.5)] = None
            return obj, raw.copy()
        if dtype in INT_DTYPES:
            if dtype == "bool":
                arr = raw > 0
            else:
                info = np.iinfo(dtype)
                arr = np.clip(np.round(np.nan_to_num(raw)), info.min, info.max).astype(dtype)
            return arr, arr.astype(np.float64)
        arr = raw.astype(dtype)
        ref = arr.astype(np.float64)
        if dtype == "longdouble":
            # Values beyond float64's range are infinite to the model.
            big = np.abs(arr) > np.finfo(np.float64).max
            ref[big] = np.copysign(np.inf, ref[big])
        return arr, ref


def _layout(user, ref, layout, lengths):
    """Put the user's array into one of the accepted layouts; return (X, ref)."""
    n, C, T = ref.shape
    if layout == "3d":
        return user, ref
    if layout == "2d":
        return user[:, 0, :], ref
    # Ragged layouts: each sample cut after its last non-empty step (at least 1).
    cut = np.maximum(lengths, 1)
    parts = [user[i, :, : cut[i]] for i in range(n)]
    Tm = int(cut.max())
    new_ref = np.full((n, C, Tm), np.nan)
    for i in range(n):
        new_ref[i, :, : cut[i]] = ref[i, :, : cut[i]]
    if layout == "list2d":
        return parts, new_ref
    if layout == "list1d":
        return [p[0] for p in parts], new_ref
    if layout == "object_array":
        X = np.empty(n, dtype=object)
        for i, p in enumerate(parts):
            X[i] = p
        return X, new_ref
    raise AssertionError(layout)


PANEL_KINDS = ["clean", "nan", "padding", "missing_channel", "extreme", "empty_sample", "inf"]


@st.composite
def panel_cases(draw, kind):
    """A labelled panel in some layout and dtype, with one kind of awkwardness."""
    counts = _sample_counts(draw)
    n = sum(counts)
    C = draw(st.integers(2 if kind == "missing_channel" else 1, 3))
    T = draw(st.integers(2 if kind == "padding" else 1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mag_choices = MAGNITUDES[1:] if kind == "extreme" else MAGNITUDES
    mags = np.array([draw(st.sampled_from(mag_choices)) for _ in range(C)])
    offsets = np.array([draw(st.sampled_from([0.0, 1.0, -3.0])) for _ in range(C)])
    raw = (rng.standard_normal((n, C, T)) + offsets[None, :, None]) * mags[None, :, None]
    if kind == "clean":
        dtype = draw(st.sampled_from(FLOAT_DTYPES + INT_DTYPES))
    else:
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
    if kind == "nan":
        raw[rng.random(raw.shape) < draw(st.sampled_from([0.3, 0.7, 0.9]))] = np.nan
        raw[:, :, 0] = np.where(np.isnan(raw[:, :, 0]).all(1, keepdims=True), 1.0, raw[:, :, 0])
    if kind == "padding":  # padding of every length short of the whole sample
        for i in range(n):
            pad = draw(st.integers(0, T - 1))
            if pad:
                raw[i, :, T - pad :] = np.nan
    if kind == "missing_channel":
        raw[:, draw(st.integers(0, C - 1)), :] = np.nan
    if kind == "empty_sample":
        raw[draw(st.integers(0, n - 1))] = np.nan
    if kind == "inf":
        raw[rng.integers(n), rng.integers(C), rng.integers(T)] = draw(st.sampled_from([np.inf, -np.inf]))
    user, ref = _apply_dtype(raw, dtype, rng)
    layouts = ["3d", "list2d", "object_array"] + (["2d", "list1d"] if C == 1 else [])
    layout = draw(st.sampled_from(layouts))
    X, ref = _layout(user, ref, layout, _lengths(ref))
    y = _labels(counts, draw(st.booleans()))
    return X, y, ref, f"{layout}/{dtype}"


@pytest.mark.parametrize("kind", PANEL_KINDS)
@given(data=st.data())
@_settings(15)
def test_fuzz_fit_panels(kind, data):
    X, y, ref, desc = data.draw(panel_cases(kind))
    note(f"{kind}: {desc} ref.shape={ref.shape}\nref={ref!r}\ny={y!r}")
    expected = _expected_error(ref)
    if kind == "empty_sample":
        assert expected is not None  # the oracle itself must see the fault
    _run_case("panel/" + kind, X, y, ref, expected)


TIME_FAULTS = [None, "repeated", "huge", "decrease", "nan_stamp", "overflow", "inf_stamp", "empty"]


@st.composite
def time_cases(draw, fault):
    """Panels whose channel 0 holds time stamps, with one kind of fault."""
    counts = _sample_counts(draw)
    n = sum(counts)
    F = draw(st.integers(1, 2))
    T = draw(st.integers(2 if fault in ("decrease", "overflow") else 1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mag = draw(st.sampled_from(MAGNITUDES))
    values = rng.standard_normal((n, F, T)) * mag
    values[rng.random(values.shape) < draw(st.sampled_from([0.0, 0.4]))] = np.nan
    span = draw(st.sampled_from([1.0, 1e-30, 1e30, 1e300] if fault == "huge" else [1.0, 0.25]))
    start = draw(st.sampled_from([0.0, -1.0, 1e6]))
    # Non-negative increments; zeros give repeated stamps.
    steps = rng.choice([0.0, 0.5, 1.0, 3.0], size=(n, T)) * span
    if fault == "repeated":
        steps[rng.random(n) < 0.5] = 0.0
    steps[:, 0] = 0.0
    times = start * span + np.cumsum(steps, axis=1)
    X = np.concatenate([times[:, None, :], values], axis=1)
    lengths = np.array([T - draw(st.integers(0, T - 1)) for _ in range(n)])
    i = draw(st.integers(0, n - 1))
    if fault in ("decrease", "overflow"):
        lengths[i] = max(lengths[i], 2)
    for j, L in enumerate(lengths):
        X[j, :, L:] = np.nan
        if np.isnan(X[j, 1:, :L]).all():  # every sample keeps a measured value
            X[j, 1 + rng.integers(F), rng.integers(L)] = 1.0
    L = int(lengths[i])
    if fault == "decrease":
        t = int(rng.integers(1, L))
        X[i, 0, t] = X[i, 0, t - 1] - max(abs(X[i, 0, t - 1]), 1.0)
    elif fault == "nan_stamp":
        t = int(rng.integers(L))
        X[i, 0, t] = np.nan
        X[i, 1, t] = 2.0  # keep the step inside the series
    elif fault == "overflow":
        X[i, 0, :L] = -1e308
        X[i, 0, L - 1] = 1e308
    elif fault == "inf_stamp":
        X[i, 0, int(rng.integers(L))] = np.inf
    elif fault == "empty":
        X[i, 1:, :] = np.nan
    y = _labels(counts, draw(st.booleans()))
    layout = draw(st.sampled_from(["3d", "list2d", "object_array"]))
    X, ref = _layout(X, X, layout, _lengths(X))
    return X, y, ref, layout


@pytest.mark.parametrize("fault", TIME_FAULTS)
@given(data=st.data())
@_settings(10)
def test_fuzz_fit_time_channel(fault, data):
    X, y, ref, desc = data.draw(time_cases(fault))
    note(f"{fault}: {desc}\nref={ref!r}\ny={y!r}")
    expected = _expected_error(ref, time_channel=0)
    if fault not in (None, "repeated", "huge"):
        assert expected is not None  # the oracle itself must see the fault
    _run_case(f"time/{fault}", X, y, ref, expected, time_channel=0)


# ----------------------------------------------------- predict on a fitted model
@pytest.fixture(scope="module")
def fitted_two_channel():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 2, 5))
    y = np.arange(12) % 2
    return MRMoEClassifier(**TINY).fit(X, y)


PREDICT_KINDS = ["valid", "sparse_nan", "channels", "inf", "empty_sample"]


@st.composite
def predict_cases(draw, kind):
    n = draw(st.integers(1, 5))
    C = draw(st.sampled_from([1, 3, 4])) if kind == "channels" else 2
    T = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mag = draw(st.sampled_from(MAGNITUDES))
    raw = rng.standard_normal((n, C, T)) * mag
    if kind == "sparse_nan":
        raw[rng.random(raw.shape) < draw(st.sampled_from([0.5, 0.9, 0.99]))] = np.nan
        for i in range(n):
            pad = draw(st.integers(0, T - 1))
            if pad:
                raw[i, :, T - pad :] = np.nan
            if np.isnan(raw[i]).all():
                raw[i, rng.integers(C), 0] = -mag
    if kind == "inf":
        raw[rng.integers(n), rng.integers(C), rng.integers(T)] = np.inf
    if kind == "empty_sample":
        raw[rng.integers(n)] = np.nan
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "object"]))
    user, ref = _apply_dtype(raw, dtype, rng)
    layout = draw(st.sampled_from(["3d", "list2d", "object_array"] + (["2d"] if C == 1 else [])))
    X, ref = _layout(user, ref, layout, _lengths(ref))
    return X, ref, f"{layout}/{dtype}"


@pytest.mark.parametrize("kind", PREDICT_KINDS)
@given(data=st.data())
@_settings(20)
def test_fuzz_predict_on_fitted(fitted_two_channel, kind, data):
    X, ref, desc = data.draw(predict_cases(kind))
    note(f"{kind}: {desc}\nref={ref!r}")
    clf = fitted_two_channel
    expected = (ValueError, ("channels",)) if ref.shape[1] != 2 else _expected_error(ref)
    if kind not in ("valid", "sparse_nan"):
        assert expected is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if expected is not None:
            with pytest.raises(expected[0]) as info:
                clf.predict_proba(X)
            _check_message(info.value, expected[1])
            CASES[("predict/" + kind, "rejected: " + expected[1][0])] += 1
            return
        proba = clf.predict_proba(X)
    assert proba.shape == (ref.shape[0], 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    CASES[("predict/" + kind, "predicted")] += 1


# ------------------------------------------------- check_series, cheap structure
def _ok_panel(rng, n, C, T):
    X = rng.standard_normal((n, C, T))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:, :, 0] = 1.0  # every sample observed
    return X


STRUCTURE_KINDS = [
    "valid",
    "valid_time",
    "bad_ndim",
    "zero_dim",
    "strings",
    "complex",
    "datetime",
    "sparse",
    "none",
    "list_channels",
    "list_ndim",
    "empty_list",
    "time_range",
    "time_type",
    "time_single",
    "n_channels",
]


@st.composite
def structure_cases(draw, kind):
    """(X, kwargs, expected) for check_series: malformed inputs and valid ones."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, C, T = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    X = _ok_panel(rng, n, C, T)
    if kind == "valid":
        return X, {}, None
    if kind == "valid_time":
        X = np.concatenate([np.cumsum(rng.random((n, 1, T)), axis=2), X], axis=1)
        return X, {"time_channel": draw(st.sampled_from([0, -(C + 1)]))}, None
    if kind == "bad_ndim":
        ndim = draw(st.sampled_from([0, 1, 4, 5]))
        return np.ones((2,) * ndim), {}, (ValueError, ("ndim",))
    if kind == "zero_dim":
        axis = draw(st.integers(0, 2))
        shape = [n, C, T]
        shape[axis] = 0
        word = ["sample", "channel", "time step"][axis]
        return np.ones(shape), {}, (ValueError, (f"0 {word}",))
    if kind == "strings":
        X = X.astype(object)
        X[rng.integers(n), rng.integers(C), rng.integers(T)] = draw(st.sampled_from(["abc", "", "1,5"]))
        if draw(st.booleans()):
            X = [a for a in X]  # list of 2D object arrays
        return X, {}, (TypeError, ("non-numeric",))
    if kind == "complex":
        return X + 1j, {}, (ValueError, ("complex",))
    if kind == "datetime":
        return np.zeros((n, T), dtype="datetime64[s]"), {}, (TypeError, ("dtype",))
    if kind == "sparse":
        return sp.csr_matrix(np.ones((n, T))), {}, (TypeError, ("sparse",))
    if kind == "none":
        return None, {}, (ValueError, ("none",))
    if kind == "list_channels":
        parts = [rng.standard_normal((C, T)) for _ in range(max(n, 2))]
        parts[-1] = rng.standard_normal((C + 1, T + 1))
        return parts, {}, (ValueError, ("channels",))
    if kind == "list_ndim":
        parts = [rng.standard_normal((C, T)), rng.standard_normal(T + 1)]
        return parts, {}, (ValueError, ("ndim",))
    if kind == "empty_list":
        return [], {}, (ValueError, ("0 sample",))
    if kind == "time_range":
        return X, {"time_channel": draw(st.sampled_from([C, -C - 1, 99]))}, (ValueError, ("out of range",))
    if kind == "time_type":
        return X, {"time_channel": draw(st.sampled_from([0.0, "0", True]))}, (TypeError, ("time_channel",))
    if kind == "time_single":
        return X[:, :1], {"time_channel": 0}, (ValueError, ("single channel",))
    if kind == "n_channels":
        return X, {"n_channels": C + draw(st.integers(1, 3))}, (ValueError, ("channels",))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", STRUCTURE_KINDS)
@given(data=st.data())
@_settings(12)
def test_fuzz_check_series_structure(kind, data):
    X, kwargs, expected = data.draw(structure_cases(kind))
    note(f"kind={kind} kwargs={kwargs}\nX={X!r}")
    if expected is not None:
        with pytest.raises(expected[0]) as info:
            check_series(X, **kwargs)
        _check_message(info.value, expected[1])
        CASES[("check_series", "rejected: " + kind)] += 1
        return
    data = check_series(X, **kwargs)
    tc = kwargs.get("time_channel")
    n, C, T = X.shape
    feats = X if tc is None else np.delete(X, tc % C, axis=1)
    assert data.values.shape == (n, T, feats.shape[1])
    np.testing.assert_array_equal(data.values, feats.transpose(0, 2, 1))
    np.testing.assert_array_equal(data.lengths, _lengths(X))
    if tc is None:
        assert data.times is None
    else:
        np.testing.assert_array_equal(data.times, X[:, tc % C, :])
    CASES[("check_series", "accepted: " + kind)] += 1


def test_zz_fuzz_case_count(capsys):
    """Print how many cases ran; fail if a category never reached its main outcome."""
    total = sum(CASES.values())
    if total == 0:
        pytest.skip("run the whole module to count the fuzzed cases")
    with capsys.disabled():
        print(f"\n[test_fuzz] {total} fuzzed cases ran:")
        for (category, outcome), count in sorted(CASES.items()):
            print(f"  {category:22s} {outcome:30s} {count:4d}")
    ran = {category for category, _ in CASES}
    for category, outcome in [
        *[(f"panel/{k}", "fitted") for k in ["clean", "nan", "padding", "missing_channel", "extreme"]],
        ("panel/empty_sample", "rejected: no observed value"),
        ("panel/inf", "rejected: infinity"),
        *[(f"time/{f}", "fitted") for f in [None, "repeated", "huge"]],
        ("time/decrease", "rejected: decrease"),
        ("time/nan_stamp", "rejected: time channel"),
        ("time/overflow", "rejected: elapsed time"),
        ("time/inf_stamp", "rejected: infinity"),
        ("time/empty", "rejected: no observed value"),
        ("predict/valid", "predicted"),
        ("predict/sparse_nan", "predicted"),
        ("predict/channels", "rejected: channels"),
        ("check_series", "accepted: valid"),
        ("check_series", "accepted: valid_time"),
    ]:
        if category in ran:
            assert CASES[(category, outcome)] > 0, f"no {category} case ended {outcome!r}: {dict(CASES)}"
