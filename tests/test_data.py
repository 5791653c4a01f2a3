"""The input contract (mrmoe_sklearn._data)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError

from mrmoe_sklearn import TimeSeriesScaler, _data, to_sequences
from mrmoe_sklearn._data import (
    SUMMARY_BINS,
    check_series,
    fit_scaling,
    prepare_batch,
    quantile_edges,
    quantile_encode,
)


def test_3d_is_channels_first_and_transposed(rng):
    X = rng.normal(size=(5, 3, 7))
    data = check_series(X)
    assert data.values.shape == (5, 7, 3)
    np.testing.assert_array_equal(data.values[2, 4], X[2, :, 4])
    assert data.layout == "3d"
    assert (data.lengths == 7).all()


def test_2d_is_univariate(rng):
    data = check_series(rng.normal(size=(4, 9)))
    assert data.values.shape == (4, 9, 1)
    assert data.layout == "2d"


def test_list_of_variable_length_is_padded(rng):
    X = [rng.normal(size=(2, n)) for n in (3, 6, 4)]
    data = check_series(X)
    assert data.values.shape == (3, 6, 2)
    assert data.lengths.tolist() == [3, 6, 4]
    assert np.isnan(data.values[0, 3:]).all()
    assert data.valid.sum(1).tolist() == [3, 6, 4]


def test_trailing_all_nan_is_padding_interior_gap_is_not(rng):
    X = rng.normal(size=(2, 2, 6))
    X[0, :, 4:] = np.nan  # padding
    X[1, :, 2] = np.nan  # interior step without observation
    data = check_series(X)
    assert data.lengths.tolist() == [4, 6]


def test_time_channel_gives_elapsed_times(rng):
    X = rng.normal(size=(2, 3, 5))
    X[:, 0] = [[0, 1, 3, 3, 7], [0, 2, 4, 6, 8]]
    data = check_series(X, time_channel=0)
    assert data.values.shape == (2, 5, 2)
    stats = fit_scaling(data)
    batch = prepare_batch(data, stats)
    # time scale = mean positive gap (1, 2, 4, 2, 2, 2, 2) = 15/7; the first
    # step counts as one typical step; repeated stamps give dt = 0
    assert stats.time_scale == pytest.approx(15 / 7)
    np.testing.assert_allclose(batch["dt"][0], np.array([15 / 7, 1, 2, 0, 4]) / (15 / 7), rtol=1e-6)
    assert batch["x"].dtype == np.float32


def test_prepare_batch_chunks_agree(rng):
    X = rng.normal(loc=5, scale=3, size=(7, 3, 11))
    X[rng.rand(*X.shape) < 0.2] = np.nan
    X[0, 1, 2] = 1e9  # clipped
    data = check_series(X)
    stats = fit_scaling(data)
    whole = prepare_batch(data, stats)
    for chunk_size in (1, 3, 100):
        parts = prepare_batch(data, stats, chunk_size=chunk_size)
        for key in whole:
            np.testing.assert_array_equal(parts[key], whole[key])
    expected = np.clip((data.values - stats.mean) / stats.scale, -1e4, 1e4)
    np.testing.assert_allclose(whole["x"], np.nan_to_num(expected, nan=0.0).astype(np.float32))


def test_standardisation_is_nan_aware(rng):
    X = rng.normal(loc=100, scale=10, size=(50, 2, 20))
    X[rng.rand(*X.shape) < 0.3] = np.nan
    data = check_series(X)
    stats = fit_scaling(data)
    np.testing.assert_allclose(stats.mean, np.nanmean(X, axis=(0, 2)), rtol=1e-10)
    batch = prepare_batch(data, stats)
    observed = batch["m"]
    assert abs(batch["x"][observed].mean()) < 0.05
    assert (batch["x"][~observed] == 0).all()


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.zeros(5), ValueError, "ndim=1"),
        (np.zeros((2, 2, 2, 2)), ValueError, "ndim=4"),
        (np.zeros((0, 3)), ValueError, "0 sample"),
        (np.zeros((3, 0)), ValueError, "0 feature"),
        (np.array([[1.0, np.inf]]), ValueError, "infinity"),
        (np.array([["a", "b"]], dtype=object), TypeError, "non-numeric"),
        (np.array([[1.0, 2.0]]) * 1j, ValueError, "Complex"),
        (sp.csr_matrix(np.eye(3)), TypeError, "parse|Sparse"),
        (np.array([[np.nan, np.nan], [1.0, 2.0]]), ValueError, r"Sample\(s\) \[0\]"),
    ],
)
def test_bad_inputs_raise_clear_errors(X, error, match):
    with pytest.raises(error, match=match):
        check_series(X)


@pytest.mark.parametrize(
    "X, kwargs, match",
    [
        (np.array([[1.0, np.inf]]), {}, "^X_val contains infinity"),
        (np.array([[np.nan, np.nan], [1.0, 2.0]]), {}, r"^Sample\(s\) \[0\] of X_val have no observed value"),
        (np.array([["a", "b"]], dtype=object), {}, "^X_val contains non-numeric data"),
        ([np.zeros((2, 3)), np.zeros(3)], {}, "^A list X_val must hold"),
        ([np.zeros((2, 3)), np.zeros((1, 3))], {}, "^All samples of a list X_val"),
        ([np.zeros(3), ["a"]], {}, "^sample 1 of X_val contains non-numeric"),
        ([], {}, "^X_val is an empty list"),
        (np.zeros((2, 0)), {}, "^X_val has 0 time steps"),
        (np.zeros(5), {}, r"a single series is X_val\.reshape"),
        (np.zeros((2, 3, 4)), {"n_channels": 2}, "^X_val has 3 channels, but est was fitted with 2"),
        (np.zeros((2, 5)), {"n_timesteps": 4}, "^X_val has 5 columns .* A 2D X_val is a batch"),
        (np.zeros((2, 1, 4)), {"time_channel": 0}, "^time_channel is set but X_val has a single channel"),
        (np.zeros((2, 2, 4)), {"time_channel": 3}, "^time_channel=3 is out of range for X_val"),
    ],
)
def test_messages_name_the_input(X, kwargs, match):
    """``input_name`` names the input in every message that names one (``X`` by default)."""
    with pytest.raises((TypeError, ValueError), match=match) as caught:
        check_series(X, estimator_name="est", input_name="X_val", **kwargs)
    message = str(caught.value)
    assert " X " not in f" {message} " and "of X " not in message and not message.startswith("X ")
    with pytest.raises((TypeError, ValueError), match=match.replace("X_val", "X")):
        check_series(X, estimator_name="est", **kwargs)


def test_channel_count_must_match_fit(rng):
    with pytest.raises(ValueError, match="4 channels, but .* fitted with 3"):
        check_series(rng.normal(size=(2, 4, 5)), n_channels=3)


def test_decreasing_time_stamps_name_the_sample(rng):
    X = rng.normal(size=(3, 2, 4))
    X[:, 0] = [0, 1, 2, 3]
    X[2, 0, 2] = 0.5
    with pytest.raises(ValueError, match="decrease in sample 2"):
        check_series(X, time_channel=0)


def test_time_channel_out_of_range(rng):
    with pytest.raises(ValueError, match="time_channel=5"):
        check_series(rng.normal(size=(2, 2, 4)), time_channel=5)


def test_to_sequences_long_format():
    df = pd.DataFrame(
        {
            "stay": [2, 2, 1, 1, 1],
            "t": [0.0, 1.5, 0.0, 2.0, 5.0],
            "hr": [80, 82, 90, np.nan, 95],
            "lac": [np.nan, 1.1, 2.0, 2.5, np.nan],
        }
    )
    X, ids, cols = to_sequences(df, "stay", "t")
    assert ids.tolist() == [1, 2]
    assert cols == ["hr", "lac"]
    assert X.shape == (2, 3, 3)
    np.testing.assert_array_equal(X[0, 0], [0, 2, 5])
    np.testing.assert_array_equal(X[1, 1, :2], [80, 82])
    assert np.isnan(X[1, :, 2]).all()  # padding in every channel


def test_to_sequences_melted_and_datetimes():
    df = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b"],
            "time": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:00", "2026-01-01 03:00", "2026-01-02 00:00"]),
            "var": ["hr", "map", "hr", "map"],
            "val": [80.0, 70.0, 85.0, 65.0],
        }
    )
    X, ids, cols = to_sequences(df, "id", "time", var_col="var", value_col="val")
    assert cols == ["hr", "map"]
    np.testing.assert_array_equal(X[0, 0, :2], [0.0, 3.0])  # hours since first row
    np.testing.assert_array_equal(X[0, 1, :2], [80.0, 85.0])


def test_to_sequences_errors():
    df = pd.DataFrame({"id": [1], "t": [0.0], "x": ["a"]})
    with pytest.raises(ValueError, match="not found"):
        to_sequences(df, "id", "missing")
    with pytest.raises(TypeError, match="not numeric"):
        to_sequences(df, "id", "t")
    with pytest.raises(TypeError, match="DataFrame"):
        to_sequences(np.zeros((2, 2)), "id", "t")


def test_to_sequences_timedelta_time_stamps_are_in_time_unit():
    # times since admission as timedeltas: converted to time_unit, not nanoseconds
    df = pd.DataFrame({"id": [1, 1, 2], "t": pd.to_timedelta([30, 90, 60], unit="min"), "x": [1.0, 2.0, 3.0]})
    X, _, _ = to_sequences(df, "id", "t")
    np.testing.assert_array_equal(X[0, 0], [0.5, 1.5])
    np.testing.assert_array_equal(X[1, 0, :1], [1.0])
    X, _, _ = to_sequences(df, "id", "t", time_unit="min")
    np.testing.assert_array_equal(X[0, 0], [30.0, 90.0])


def test_to_sequences_rejects_unusable_ids_and_time_stamps():
    df = pd.DataFrame({"id": [1, 1, 2], "t": [0.0, 1.0, 0.0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(TypeError, match="Column 't' .*dtype"):
        to_sequences(df.assign(t=["00:00", "01:00", "00:00"]), "id", "t")
    for frame in (df.assign(id=[1.0, np.nan, 2.0]), df.assign(id=["a", None, "b"])):
        with pytest.raises(ValueError, match="Column 'id' has missing ids"):
            to_sequences(frame, "id", "t")  # not a sequence of its own, nor dropped
    melted = pd.DataFrame({"id": [1, np.nan], "t": [0.0, 0.0], "var": ["x", "x"], "val": [1.0, 2.0]})
    with pytest.raises(ValueError, match="Column 'id' has missing ids"):
        to_sequences(melted, "id", "t", var_col="var", value_col="val")
    with pytest.raises(TypeError, match="Column 'id'"):
        to_sequences(df.assign(id=[1, 1, "b"]), "id", "t")


def test_to_sequences_duplicate_column_names_are_named():
    # a merge of two tables can repeat a column name: which one is meant?
    df = pd.DataFrame([[1, 0.0, 1.0, 2.0], [1, 1.0, 3.0, 4.0]], columns=["id", "t", "hr", "hr"])
    for value_cols in (None, ["hr"]):
        with pytest.raises(ValueError, match=r"Column\(s\) \['hr'\] appear more than once"):
            to_sequences(df, "id", "t", value_cols)
    with pytest.raises(ValueError, match=r"Column\(s\) \['t'\] appear more than once"):
        to_sequences(df.set_axis(["id", "t", "t", "hr"], axis=1), "id", "t")
    X, _, cols = to_sequences(df.set_axis(["id", "t", "x", "x"], axis=1).assign(hr=0.0), "id", "t", ["hr"])
    assert cols == ["hr"] and X.shape == (1, 2, 2)  # a repeated column that is not used is no matter


def test_to_sequences_rejects_complex_and_non_numeric_melted_values():
    df = pd.DataFrame({"id": [1, 1], "t": [0.0, 1.0], "x": [1 + 2j, 3.0]})
    with pytest.raises(TypeError, match="Value column 'x' is not numeric"):
        to_sequences(df, "id", "t")  # the imaginary part would be dropped silently
    melted = pd.DataFrame({"id": [1, 1], "t": [0.0, 1.0], "var": ["x", "x"], "val": ["1.0", "high"]})
    with pytest.raises(TypeError, match="Value column 'val' is not numeric"):
        to_sequences(melted, "id", "t", var_col="var", value_col="val")


def test_to_sequences_melted_value_cols_name_the_variables():
    melted = pd.DataFrame(
        {"id": [1, 1, 2], "t": [0.0, 1.0, 0.0], "code": [101, 102, 101], "val": [1.0, 2.0, 3.0]},
    )
    # variables named as they appear in var_col (here ints), in the order given
    X, _, cols = to_sequences(melted, "id", "t", [102, 101], var_col="code", value_col="val")
    np.testing.assert_array_equal(X[0, 1:], [[np.nan, 2.0], [1.0, np.nan]])
    assert cols == ["102", "101"]
    # a variable never measured in these rows (a small test set) is a channel of NaN
    with pytest.warns(UserWarning, match=r"Variable\(s\) \['103'\] of value_cols occur in no row of column 'code'"):
        X, _, cols = to_sequences(melted, "id", "t", [101, 103, 102], var_col="code", value_col="val")
    assert X.shape == (2, 4, 2) and cols == ["101", "103", "102"]
    assert np.isnan(X[:, 2]).all()
    np.testing.assert_array_equal(X[0, 3], [np.nan, 2.0])
    with pytest.raises(ValueError, match=r"Value column\(s\) \['absent'\] not found"):
        to_sequences(melted, "id", "t", ["val", "absent"])  # wide data: value_cols are columns


def test_to_sequences_refuses_time_stamps_that_are_not_numbers():
    # strings would be sorted as text: "10" < "11" < "9"
    df = pd.DataFrame({"id": [1, 1, 1], "t": ["9", "10", "11"], "HR": [1.0, 2.0, 3.0]})
    with pytest.raises(TypeError, match="Column 't' must hold numbers, datetimes or timedeltas .*found dtype"):
        to_sequences(df, "id", "t")
    melted = df.assign(var="HR").rename(columns={"HR": "val"})
    with pytest.raises(TypeError, match="Column 't' must hold numbers"):
        to_sequences(melted, "id", "t", var_col="var", value_col="val")
    with pytest.raises(TypeError, match="Column 't' .*found dtype bool"):
        to_sequences(df.assign(t=[False, True, True]), "id", "t")


def test_to_sequences_melted_keeps_all_nan_steps_and_variables_as_wide_does():
    melted = pd.DataFrame(
        {"id": [3, 1, 1, 2], "t": [5, 0, 1, 0], "var": ["Temp", "HR", "HR", "HR"], "val": [np.nan, 60, np.nan, 70]}
    )
    wide = pd.DataFrame({"id": [3, 1, 1, 2], "t": [5, 0, 1, 0], "HR": [np.nan, 60, np.nan, 70], "Temp": np.nan})
    X_wide, ids_wide, cols_wide = to_sequences(wide, "id", "t")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 'Temp' is in column 'var', only its values are NaN
        for value_cols in (None, ["HR", "Temp"]):
            X, ids, cols = to_sequences(melted, "id", "t", value_cols, var_col="var", value_col="val")
            assert ids.tolist() == ids_wide.tolist() == [1, 2, 3] and cols == cols_wide == ["HR", "Temp"]
            np.testing.assert_array_equal(X, X_wide)
    np.testing.assert_array_equal(X[:, 0], [[0, 1], [0, np.nan], [5, np.nan]])  # id 1 keeps t=1, id 3 is kept
    with pytest.warns(UserWarning, match=r"Variable\(s\) \['MAP'\] of value_cols"):  # absent from 'var'
        X, _, cols = to_sequences(melted, "id", "t", ["HR", "MAP", "Temp"], var_col="var", value_col="val")
    assert cols == ["HR", "MAP", "Temp"] and X.shape == (3, 4, 2) and np.isnan(X[:, 2]).all()


def test_to_sequences_warning_points_at_the_caller():
    melted = pd.DataFrame({"id": [1], "t": [0.0], "var": ["HR"], "val": [60.0]})
    with pytest.warns(UserWarning, match="occur in no row") as record:
        to_sequences(melted, "id", "t", ["HR", "MAP"], var_col="var", value_col="val")
    assert [w.filename for w in record] == [__file__]


def test_to_sequences_refuses_bool_max_length():
    df = pd.DataFrame({"id": [1, 1], "t": [0.0, 1.0], "x": [1.0, 2.0]})
    for max_length in (True, False):  # bool is an Integral, not a length
        with pytest.raises(InvalidParameterError, match=r"'max_length' parameter .* \[1, inf\) or None. Got"):
            to_sequences(df, "id", "t", max_length=max_length)
    assert to_sequences(df, "id", "t", max_length=np.int64(1))[0].shape == (1, 2, 1)


def test_list_of_equal_length_1d_series_is_still_variable_length(rng):
    # a list of univariate series (aeon's np-list) is variable length even when
    # its series happen to share one length: no 2D width check at predict
    series = [rng.normal(size=6) for _ in range(3)]
    for X in (series, np.array(series + [None], dtype=object)[:3]):
        assert check_series(X).layout == "list"
        assert check_series(X, n_timesteps=9).values.shape == (3, 6, 1)
    assert check_series([s.tolist() for s in series]).layout == "2d"  # nested lists: a 2D array
    with pytest.raises(ValueError, match="X has 6 columns"):
        check_series([s.tolist() for s in series], n_timesteps=9)


def test_series_of_arrays_is_read_as_the_list(rng):
    # a pandas Series of series arrays (a DataFrame column of them) is the 1D object array it holds
    X = rng.normal(size=(6, 3, 9))
    X[:, 0] = np.cumsum(rng.uniform(0.5, 1.5, (6, 9)), axis=1)
    cases = [
        ([X[i][:, : 5 + i % 4] for i in range(6)], {"time_channel": 0}),  # multivariate, variable length
        ([X[i][1, : 5 + i % 4] for i in range(6)], {}),  # univariate
        (list(X), {}),  # one length: still a list
    ]
    for arrays, kwargs in cases:
        nested = np.empty(len(arrays), dtype=object)
        nested[:] = arrays
        expected = check_series(nested, **kwargs)
        for series in (pd.Series(arrays), pd.Series(arrays, index=np.arange(6)[::-1] * 10)):
            data = check_series(series, **kwargs)
            assert data.layout == expected.layout == "list"
            np.testing.assert_array_equal(data.values, expected.values)
            np.testing.assert_array_equal(data.lengths, expected.lengths)
            assert (data.times is None) == ("time_channel" not in kwargs)
            if data.times is not None:
                np.testing.assert_array_equal(data.times, expected.times)
    for series in (pd.Series([1.0, 2.0, np.nan]), pd.Series([1.0, 2.0], dtype=object)):
        with pytest.raises(ValueError, match="ndim=1"):  # a Series of numbers: one series, as before
            check_series(series)


def test_leading_all_nan_steps_are_not_padding(rng):
    X = rng.normal(size=(3, 3, 6))
    X[:, 0] = np.arange(6.0)
    X[1, :, :2] = np.nan  # pre-padding, as Keras's pad_sequences does by default
    with pytest.raises(ValueError, match=r"NaN at sample 1, step 0.* only trailing all-NaN steps are padding"):
        check_series(X, time_channel=0)
    X[0, :, 3] = np.nan  # an interior all-NaN step first: the message as before
    with pytest.raises(ValueError, match="NaN at sample 0, step 3, inside the series"):
        check_series(X, time_channel=0)
    # without a time channel a leading step with nothing observed is a step without observation
    data = check_series(X)
    assert data.lengths.tolist() == [6, 6, 6]
    assert data.valid[1].all() and np.isnan(data.values[1, :2]).all()


def test_dataframe_with_nullable_dtypes_reads_missing_as_nan():
    df = pd.DataFrame({"a": [1.0, None, 3.0], "b": [4, 5, None]}).astype({"a": "Float64", "b": "Int64"})
    data = check_series(df)  # 2D: a row is a univariate series, a column a time step
    assert data.layout == "2d"
    np.testing.assert_array_equal(data.values[:, :, 0], [[1.0, 4.0], [np.nan, 5.0], [3.0, np.nan]])
    with pytest.raises(TypeError, match="non-numeric"):
        check_series(pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}))


def test_time_series_scaler_keeps_layout_nan_and_time(rng):
    X = rng.normal(loc=5, scale=3, size=(20, 3, 8))
    X[:, 0] = np.arange(8) * 2.0
    X[0, 1, 3] = np.nan
    Xt = TimeSeriesScaler(time_channel=0).fit_transform(X)
    assert Xt.shape == X.shape
    np.testing.assert_array_equal(Xt[:, 0], X[:, 0])
    assert np.isnan(Xt[0, 1, 3])
    np.testing.assert_allclose(np.nanmean(Xt[:, 1:], axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(np.nanstd(Xt[:, 1:], axis=(0, 2)), 1, atol=1e-12)


def test_time_series_scaler_refuses_a_transposed_2d_x(rng):
    # its output is 3D, so the estimator after it in a Pipeline cannot tell a 2D X of
    # another width (transposed?) any more: the scaler has to, as the estimators do
    X = rng.normal(size=(20, 10))
    scaler = TimeSeriesScaler().fit(X)
    assert scaler.n_timesteps_in_ == 10
    with pytest.raises(ValueError, match="X has 5 columns .* fitted on 2D input with 10"):
        scaler.transform(X[:5].T)
    assert scaler.transform(X[:5]).shape == (5, 1, 10)
    assert scaler.transform([X[0, :4], X[1]]).shape == (2, 1, 10)  # other lengths: as a list
    assert TimeSeriesScaler().fit(X[:, None, :]).n_timesteps_in_ is None


@pytest.fixture(params=["compiled", "numpy"])
def encoding(request, monkeypatch):
    """The quantile encoding's two computations: the compiled library's (where built) and numpy's."""
    if request.param == "numpy":
        monkeypatch.setattr(_data.kernel, "quantile_encode", lambda *args, **kwargs: None)
    elif not _data.kernel.available():
        pytest.skip(f"the compiled library is not in use: {_data.kernel.status()}")
    return request.param


def test_quantile_encoding_fills_bins_below_the_value(encoding):
    raw = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, np.nan], [3.0, 5.0], [4.0, np.nan]])
    edges = quantile_edges(raw, n_bins=4)
    np.testing.assert_allclose(edges[0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(edges[1], [5, 5, 5, 5, 5])  # ties: every bin is empty
    s = quantile_encode(np.array([[2.5, 5.0], [-1.0, 4.0], [9.0, np.nan]]), edges)
    assert s.shape == (3, 2 * 5) and s.dtype == np.float32
    np.testing.assert_allclose(s[0, :5], [1, 1, 0.5, 0, 0])  # 2.5: two full bins, half of the third
    np.testing.assert_allclose(s[0, 5:], [1, 1, 1, 1, 0])  # at a tie: every step reached
    np.testing.assert_allclose(s[1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # below the lowest edges
    np.testing.assert_allclose(s[2], [1, 1, 1, 1, 0, 0, 0, 0, 0, 1])  # above; undefined: the flag alone


def test_quantile_encoding_is_the_same_in_blocks_of_any_size(rng, monkeypatch, encoding):
    # the encoding works through cache-sized row blocks: a block's edges must not show
    raw = rng.randn(50, 6)
    raw[:, :2] = np.round(raw[:, :2])  # ties: empty bins
    raw[rng.rand(50, 6) < 0.2] = np.nan
    raw[0, 0], raw[1, 3] = np.inf, -np.inf
    edges = quantile_edges(raw[2:])
    lo, hi = edges[:, :-1], edges[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.clip((raw[:, :, None] - lo) / (hi - lo), 0.0, 1.0)
    fill = np.where(hi - lo > 0, fill, raw[:, :, None] >= hi)
    missing = ~np.isfinite(raw)
    fill[missing] = 0.0
    expected = np.concatenate([fill, missing[:, :, None]], axis=2).reshape(50, -1).astype(np.float32)
    for values in (1, 7 * 6 * 8, 1 << 17):  # a row per block, 7 rows (6 columns of 8 bins), all rows
        monkeypatch.setattr(_data, "_ENCODE_VALUES", values)
        np.testing.assert_array_equal(quantile_encode(raw, edges), expected)


def test_compiled_quantile_encoding_is_bit_identical_to_numpy(rng, monkeypatch):
    if not _data.kernel.available():
        pytest.skip(f"the compiled library is not in use: {_data.kernel.status()}")
    raw = rng.randn(300, 20) * 10.0 ** rng.randint(-3, 4, 20)
    raw[:, :5] = np.round(raw[:, :5])  # ties
    raw[rng.rand(300, 20) < 0.3] = np.nan
    raw[0, :3] = [np.inf, -np.inf, np.nan]
    edges = quantile_edges(raw[1:])
    raw = np.vstack([raw, edges.T, np.nextafter(edges.T, -np.inf)])  # on the edges and just below them
    compiled = quantile_encode(raw, edges)
    width = edges.shape[1]
    # kept columns as fitting chooses them (each column's fillings all or none, its flag or not; only
    # those computed), and any others (some of a column's fillings: taken from the whole encoding)
    chosen = np.zeros((20, width), dtype=bool)
    chosen[:, :-1] = (rng.rand(20) < 0.6)[:, None]
    chosen[:, -1] = chosen[:, 0] & (rng.rand(20) < 0.5)
    assert _data.kernel._encoding_plan(20, width, np.flatnonzero(chosen).tobytes()) is not None
    selections = [np.flatnonzero(chosen), np.flatnonzero(rng.rand(compiled.shape[1]) < 0.6)]
    selections += [np.r_[width : 2 * width, 0:width], np.r_[0:width, 0:width]]  # reordered, repeated
    kept = [quantile_encode(raw, edges, columns) for columns in selections]
    for columns, part in zip(selections, kept):
        np.testing.assert_array_equal(part, compiled[:, columns])
    for n_threads in (1, 2, 3):
        np.testing.assert_array_equal(_data.kernel.quantile_encode(raw, edges, n_threads=n_threads), compiled)
        for columns, part in zip(selections, kept):
            np.testing.assert_array_equal(_data.kernel.quantile_encode(raw, edges, columns, n_threads), part)
    monkeypatch.setattr(_data.kernel, "quantile_encode", lambda *args, **kwargs: None)
    assert compiled.tobytes() == quantile_encode(raw, edges).tobytes()
    for columns, part in zip(selections, kept):
        assert part.tobytes() == quantile_encode(raw, edges, columns).tobytes()


def test_quantile_edges_of_an_undefined_column_are_zero(encoding):
    raw = np.array([[np.nan, 1.0], [np.nan, 2.0]])
    edges = quantile_edges(raw, n_bins=2)
    np.testing.assert_array_equal(edges[0], [0, 0, 0])
    s = quantile_encode(raw, edges)
    np.testing.assert_array_equal(s[:, :3], [[0, 0, 1], [0, 0, 1]])
    assert np.isfinite(s).all()


def test_fit_scaling_summary_encodings(rng):
    X = rng.randn(30, 3, 12)
    X[:, 1, 4:] = np.nan
    data = check_series(X)
    robust = fit_scaling(data, summaries="robust")
    quantile = fit_scaling(data, summaries="quantile")
    width = SUMMARY_BINS + 1  # the bins' fillings and a missing flag
    assert robust.summary_edges is None and quantile.summary_edges.shape == (3 * 9, width)
    for stats, n_columns in ((robust, 3 * 9), (quantile, 3 * 9 * width)):
        # the columns kept are those that vary over the training series: every channel's count and
        # time since its last observation are the same for all 30 series, and so is every flag here
        full = _data._encode_summaries(data.summaries, stats, None)
        assert full.shape == (30, n_columns)
        varying = full.std(axis=0) > 0
        if stats is quantile:  # a statistic's fillings all together where any of them varies
            per_statistic = varying.reshape(3 * 9, width)
            per_statistic[:, :-1] = per_statistic[:, :-1].any(axis=1, keepdims=True)
        varying = np.flatnonzero(varying)
        np.testing.assert_array_equal(stats.summary_columns, varying)
        assert stats.summary_width == len(varying) < n_columns
        np.testing.assert_array_equal(prepare_batch(data, stats)["s"], full[:, varying])
    # ties: a statistic of a few values (the minimum of 0/1/2 series) has constant fillings beside
    # varying ones, kept with them; the compiled encoder then computes the kept statistics only
    few = check_series(rng.randint(0, 3, (40, 1, 6)).astype(float))
    ties = fit_scaling(few, summaries="quantile")
    full = _data._encode_summaries(few.summaries, ties, None)
    minimum = full.reshape(40, 9, width)[:, 2, :-1]
    assert (minimum.std(axis=0) == 0).any() and (minimum.std(axis=0) > 0).any()
    assert set(range(2 * width, 3 * width - 1)) <= set(ties.summary_columns)
    np.testing.assert_array_equal(prepare_batch(few, ties)["s"], full[:, ties.summary_columns])
    assert fit_scaling(data).summary_width == 0 and "s" not in prepare_batch(data, fit_scaling(data))
    with pytest.raises(ValueError, match="summaries must be one of"):
        fit_scaling(data, summaries="rank")
