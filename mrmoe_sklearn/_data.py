"""The input contract: validation, padding, masks, elapsed times and scaling.

Every estimator of the package reads its ``X`` through :func:`check_series` and
:func:`prepare_batch`, so the accepted layouts and the error messages live in
this one module.

Accepted layouts of ``X``
-------------------------
* 3D array ``(n_samples, n_channels, n_timesteps)``: channels first, as aeon's
  ``numpy3D``.
* 2D array ``(n_samples, n_timesteps)``: univariate series (aeon's
  ``numpy2D``); this is what scikit-learn's own checks feed in.
* list of 2D arrays ``(n_channels, n_timesteps_i)`` (aeon's ``np-list``) or of
  1D arrays ``(n_timesteps_i,)`` (univariate): variable length, padded with NaN.
  A 1D object array or a :class:`pandas.Series` holding such arrays is read as
  the list.
* long-format :class:`pandas.DataFrame`: through :func:`to_sequences` only.

``NaN`` is a missing value. Trailing time steps whose every channel (the time
channel included) is NaN are padding. An interior step with nothing observed is
a step without observation that still advances time; so is a leading one
(pre-padding is not padding), which with a time channel lacks its time stamp.
"""

import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

from ._params import TIME_CHANNEL, IntInterval
from .nn import kernel

__all__ = [
    "SeriesData",
    "ScalingStats",
    "check_series",
    "fit_scaling",
    "prepare_batch",
    "to_sequences",
    "TimeSeriesScaler",
]

#: Standardised values are clipped to this magnitude so that far outliers at
#: predict time cannot overflow float32 inside the network.
VALUE_CLIP = 1e4
#: Normalised elapsed times are clipped to this value for the same reason.
DT_CLIP = 1e4


@dataclass
class SeriesData:
    """A validated batch of series in the model's time-major-per-sample layout.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_timesteps, n_features)
        Measured values (time channel removed), NaN where missing or padding.
    times : ndarray of shape (n_samples, n_timesteps) or None
        Time stamps from the time channel, NaN on padding; None without one.
    lengths : ndarray of shape (n_samples,)
        Number of valid (non-padding) steps per sample, at least 1.
    layout : {"2d", "3d", "list"}
        The form ``X`` came in.
    """

    values: np.ndarray
    times: np.ndarray | None
    lengths: np.ndarray
    layout: str = "3d"

    @property
    def n_features(self):
        return self.values.shape[2]

    @cached_property
    def gaps(self):
        """Elapsed time before each step ``(n_samples, n_timesteps)``: NaN at
        step 0 and on padding; None without a time channel."""
        if self.times is None:
            return None
        gaps = np.full(self.times.shape, np.nan)
        gaps[:, 1:] = np.diff(self.times, axis=1)
        return gaps

    @property
    def valid(self):
        """Boolean mask ``(n_samples, n_timesteps)`` of non-padding steps."""
        return np.arange(self.values.shape[1])[None, :] < self.lengths[:, None]

    @cached_property
    def summaries(self):
        """Per-channel summary statistics flattened to ``(n_samples, n_features * n_statistics)``
        (:data:`mrmoe_sklearn.summary.DEFAULT_STATISTICS`; counts as ``log1p``, they are skewed),
        NaN where undefined. Computed once: a fit both learns their scaling and feeds them."""
        from .summary import DEFAULT_STATISTICS, summary_statistics

        raw = summary_statistics(self.values, self.times, self.valid, DEFAULT_STATISTICS)
        count = DEFAULT_STATISTICS.index("count")
        raw[..., count] = np.log1p(raw[..., count])
        return raw.reshape(raw.shape[0], -1)


@dataclass
class ScalingStats:
    """Per-feature standardisation and time-scale statistics learned at fit.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
    scale : ndarray of shape (n_features,)
    time_scale : float
        Mean positive elapsed time between steps; elapsed times are divided by
        it so that a typical step lasts 1.
    summary_center, summary_scale : ndarray of shape (n_features * n_statistics,) or None
        Robust centre (median) and scale of each per-channel summary statistic
        (see :func:`summary_inputs`); None when the model takes no summaries.
    summary_edges : ndarray of shape (n_features * n_statistics, SUMMARY_BINS + 1) or None
        Quantiles of each summary statistic over the training series, the bin
        edges of the ``"quantile"`` encoding; None with the ``"robust"`` one.
    summary_columns : ndarray of int or None
        Columns of the encoded summaries that the network takes: those that
        vary over the training series (a column constant there, such as the
        count of a channel observed at every step, teaches nothing, and the
        network's response to other values in it would be untrained; a
        statistic's quantile bin fillings are kept all together where any of
        them varies); None for all (scalings fitted before the columns were
        chosen).
    """

    mean: np.ndarray
    scale: np.ndarray
    time_scale: float = 1.0
    summary_center: np.ndarray | None = None
    summary_scale: np.ndarray | None = None
    summary_edges: np.ndarray | None = None
    summary_columns: np.ndarray | None = None

    @property
    def summary_width(self):
        """Width of the summary input ``s`` (0 when the model takes no summaries)."""
        if self.summary_center is None:
            return 0
        if self.summary_columns is not None:
            return len(self.summary_columns)
        if self.summary_edges is None:
            return len(self.summary_center)
        return self.summary_edges.shape[0] * self.summary_edges.shape[1]


def _is_real_dtype(dtype):
    """Whether a pandas/numpy ``dtype`` holds real numbers (booleans and nullable types included)."""
    types = pd.api.types
    return types.is_bool_dtype(dtype) or (types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype))


def _as_float_array(arr, what):
    """Convert one array-like to a float array, with clear type errors."""
    if sp.issparse(arr):
        raise TypeError(
            "Sparse input is not supported: pass a dense array of shape (n_samples, n_channels, n_timesteps)."
        )
    if hasattr(arr, "iloc") and hasattr(arr, "columns"):
        frame, arr = arr, arr.to_numpy()
        if arr.dtype == object and all(_is_real_dtype(d) for d in frame.dtypes):
            # nullable columns (Float64, Int64, boolean) mark missing values with pd.NA: NaN here
            arr = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        arr = np.asarray(arr)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{what} could not be read as an array: {exc}") from exc
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {what} has dtype {arr.dtype}.")
    if arr.dtype.kind == "f" and arr.dtype.itemsize in (4, 8):
        return arr
    if arr.dtype.kind in "biuf":
        # float16 and extended precision (longdouble) become float64; values
        # beyond float64's range turn into inf here, which the caller rejects.
        with np.errstate(over="ignore"):
            return arr.astype(np.float64)
    if arr.dtype.kind in "USO":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{what} contains non-numeric data ({exc}); every value must be a number or NaN.") from exc
    raise TypeError(f"{what} has unsupported dtype {arr.dtype}; expected numbers.")


def _stack_list(X, input_name="X"):
    """Pad a list of 1D/2D arrays (channels first) into a 3D NaN-padded array (``input_name`` names it in errors)."""
    if len(X) == 0:
        raise ValueError(f"{input_name} is an empty list: found 0 sample(s), at least 1 is required.")
    arrays = [_as_float_array(a, f"sample {i} of {input_name}") for i, a in enumerate(X)]
    ndims = {a.ndim for a in arrays}
    if ndims == {1}:
        arrays = [a[None, :] for a in arrays]
    elif ndims != {2}:
        raise ValueError(
            f"A list {input_name} must hold 2D arrays (n_channels, n_timesteps_i) or 1D arrays "
            f"(n_timesteps_i,) alike; found arrays with ndim {sorted(ndims)}."
        )
    n_channels = {a.shape[0] for a in arrays}
    if len(n_channels) != 1:
        raise ValueError(
            f"All samples of a list {input_name} must have the same number of channels; found "
            f"{sorted(n_channels)} (arrays are (n_channels, n_timesteps_i))."
        )
    n_steps = max(a.shape[1] for a in arrays)
    dtype = np.result_type(*arrays)
    out = np.full((len(arrays), n_channels.pop(), n_steps), np.nan, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, :, : a.shape[1]] = a
    return out


# Long only by its docstring (about 40 lines of parameters, returns and raises).
def check_series(
    X, *, time_channel=None, n_channels=None, n_timesteps=None, estimator_name="estimator", input_name="X"
):
    """Validate ``X`` and bring it into the model's layout.

    Parameters
    ----------
    X : array-like or list of array-like
        3D array ``(n_samples, n_channels, n_timesteps)``, 2D array
        ``(n_samples, n_timesteps)`` (univariate) or a list of 2D arrays
        ``(n_channels, n_timesteps_i)`` / 1D arrays ``(n_timesteps_i,)``; a 1D
        object array or a :class:`pandas.Series` holding such arrays is read
        as that list.
    time_channel : int or None, default=None
        Index of the channel holding time stamps, removed from the features.
    n_channels : int or None, default=None
        Number of channels seen at fit (the time channel included); a different
        number raises ``ValueError``.
    n_timesteps : int or None, default=None
        Width of a 2D ``X`` seen at fit; a 2D ``X`` of another width raises
        ``ValueError`` (is it transposed?). Other layouts may vary in length.
    estimator_name : str, default="estimator"
        Used in error messages.
    input_name : str, default="X"
        The name of ``X`` in error messages (``"X_val"`` for validation data).

    Returns
    -------
    data : SeriesData

    Raises
    ------
    TypeError
        Sparse, non-numeric or otherwise unsupported input.
    ValueError
        Wrong dimensionality, no sample / step / channel, infinite values, a
        sample without any observation, a channel count that differs from fit,
        missing or decreasing time stamps, time stamps so far apart that the
        elapsed time overflows float64, an invalid ``time_channel``, a 2D ``X``
        whose width differs from ``n_timesteps``.
    """
    arr, layout = _read_layout(X, estimator_name, input_name)
    n_samples, n_ch, n_steps = arr.shape
    if n_channels is not None and n_ch != n_channels:
        raise ValueError(
            f"{input_name} has {n_ch} channels, but {estimator_name} was fitted with "
            f"{n_channels} channels (the time channel included)."
        )
    if n_timesteps is not None and layout == "2d" and n_steps != n_timesteps:
        raise ValueError(
            f"{input_name} has {n_steps} columns (time steps), but {estimator_name} was fitted on 2D "
            f"input with {n_timesteps}. A 2D {input_name} is a batch of univariate series of one "
            "length (is it transposed?); pass a 3D array or a list of arrays for other lengths."
        )
    if np.isinf(arr).any():
        i, c, t = np.argwhere(np.isinf(arr))[0]
        raise ValueError(
            f"{input_name} contains infinity (first at sample {i}, channel {c}, step {t}); use NaN for missing values."
        )

    nan = np.isnan(arr)
    step_empty = nan.all(axis=1)  # (n_samples, n_steps)
    not_empty = ~step_empty
    lengths = np.where(not_empty.any(1), n_steps - np.argmax(not_empty[:, ::-1], axis=1), 0)

    times = None
    if time_channel is not None:
        time_channel = _check_time_channel(time_channel, n_ch, input_name)
        times = arr[:, time_channel, :].astype(np.float64)
        arr = np.delete(arr, time_channel, axis=1)
        nan = np.delete(nan, time_channel, axis=1)

    observed = ~nan
    empty = np.flatnonzero(~observed.any(axis=(1, 2)))
    if empty.size:
        raise ValueError(
            f"Sample(s) {empty[:10].tolist()} of {input_name} have no observed value; every sample "
            "needs at least one non-NaN measurement."
        )
    valid = np.arange(n_steps)[None, :] < lengths[:, None]
    if times is not None:
        leading = ~np.logical_or.accumulate(not_empty, axis=1)  # all-NaN steps before the first observed one
        _check_times(times, valid, leading)
    values = np.ascontiguousarray(arr.transpose(0, 2, 1))
    return SeriesData(values=values, times=times, lengths=lengths.astype(np.int64), layout=layout)


def _read_layout(X, estimator_name, input_name="X"):
    """``X`` as a 3D float array ``(n_samples, n_channels, n_timesteps)`` and the layout it came in.

    Raises where ``X`` is None, empty (no sample, channel or step), not 2D or
    3D, or not numeric (see :func:`check_series`); the messages call it
    ``input_name``.
    """
    if X is None:
        raise ValueError(f"{estimator_name} expected {input_name}, got None.")
    if isinstance(X, pd.Series) and X.dtype == object:
        X = X.to_numpy()  # a Series of series arrays: the 1D object array it holds
    if isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1:
        if any(np.ndim(a) > 0 for a in X):
            # A 1D object array of series (as aeon and sktime nest them): a list.
            X = list(X)
    if isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError(f"{input_name} is an empty {type(X).__name__}: found 0 sample(s), at least 1 is required.")
    layout = None
    if isinstance(X, (list, tuple)) and not np.isscalar(X[0]):
        try:
            arr = _as_float_array(X, input_name)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.dtype == object or arr.ndim not in (2, 3):
            arr = _stack_list(X, input_name)
            layout = "list"
        elif not isinstance(X[0], (list, tuple)):
            # a list of series arrays (aeon's np-list) is variable length even where
            # its series share one length; nested Python lists are a 2D/3D array
            layout = "list"
    else:
        arr = _as_float_array(X, input_name)
    orig_shape = arr.shape
    layout = layout or ("2d" if arr.ndim == 2 else "3d")
    if arr.ndim == 2:
        arr = arr[:, None, :]
    elif arr.ndim != 3:
        raise ValueError(
            f"Expected 2D (n_samples, n_timesteps) or 3D (n_samples, n_channels, "
            f"n_timesteps) input, got an array with ndim={arr.ndim} and shape "
            f"{arr.shape}. Reshape your data: a single series is {input_name}.reshape(1, -1)."
        )
    n_samples, n_ch, n_steps = arr.shape
    if n_samples == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}); a minimum of 1 is required.")
    if n_ch == 0:
        raise ValueError(f"Found array with 0 channel(s) (shape={arr.shape}); a minimum of 1 is required.")
    if n_steps == 0:
        raise ValueError(
            f"{input_name} has 0 time steps: found array with 0 feature(s) (shape={orig_shape}) while a minimum "
            "of 1 is required."
        )
    return arr, layout


def _check_time_channel(time_channel, n_ch, input_name="X"):
    """``time_channel`` as an index in ``[0, n_ch)``; raises if it is not an int or out of range
    (for ``X`` of ``n_ch`` channels, called ``input_name`` in the messages)."""
    if not isinstance(time_channel, Integral) or isinstance(time_channel, bool):
        raise TypeError(f"time_channel must be an int or None, got {time_channel!r}.")
    if not -n_ch <= time_channel < n_ch:
        raise ValueError(f"time_channel={time_channel} is out of range for {input_name} with {n_ch} channel(s).")
    if n_ch < 2:
        raise ValueError(
            f"time_channel is set but {input_name} has a single channel: there would be no measured feature left."
        )
    return time_channel % n_ch


def _check_times(times, valid, leading):
    """Raise where the time stamps of the ``valid`` steps are missing, decrease or overflow.

    ``leading`` marks the all-NaN steps before a sample's first observed step,
    which are not padding (pre-padding): a NaN time stamp there says so.
    """
    missing = valid & np.isnan(times)
    if missing.any():
        i, t = np.argwhere(missing)[0]
        if leading[i, t]:
            raise ValueError(
                f"The time channel is NaN at sample {i}, step {t}, a leading step where every channel is NaN; "
                "only trailing all-NaN steps are padding (leading all-NaN steps, as from pre-padding, are not: "
                "pad at the end)."
            )
        raise ValueError(
            f"The time channel is NaN at sample {i}, step {t}, inside the series; every "
            "non-padding step needs a time stamp."
        )
    with np.errstate(over="ignore", invalid="ignore"):
        diffs = np.diff(times, axis=1)
    decreasing = valid[:, 1:] & (diffs < 0)
    if decreasing.any():
        i, t = np.argwhere(decreasing)[0]
        raise ValueError(
            f"Time stamps decrease in sample {i} at step {t + 1} "
            f"({float(times[i, t])!r} -> {float(times[i, t + 1])!r}); they must be non-decreasing."
        )
    overflow = valid[:, 1:] & np.isinf(diffs)
    if overflow.any():
        i, t = np.argwhere(overflow)[0]
        raise ValueError(
            f"The elapsed time between steps {t} and {t + 1} of sample {i} "
            f"({float(times[i, t])!r} -> {float(times[i, t + 1])!r}) overflows float64; rescale the "
            "time channel."
        )


def _nan_stats(values):
    """NaN-aware per-feature mean and standard deviation, overflow-safe."""
    n_features = values.shape[-1]
    flat = values.reshape(-1, n_features)
    mean = np.zeros(n_features)
    scale = np.ones(n_features)
    for f in range(n_features):
        col = flat[:, f]
        col = col[~np.isnan(col)].astype(np.float64)
        if col.size == 0:
            continue
        big = np.abs(col).max()
        if big == 0:
            continue
        unit = col / big
        mean[f] = unit.mean() * big
        std = unit.std() * big
        scale[f] = std if std > 0 and np.isfinite(std) else 1.0
    return mean, scale


#: Standardised summary statistics are clipped to this magnitude: slopes over
#: two close observations and erroneous chart values are heavy-tailed.
SUMMARY_CLIP = 5.0
#: Quantile bins of each summary statistic in the ``"quantile"`` encoding (4 bins
#: were measured on 2026-12-03: as good on PhysioNet 2012's val parts, 0.5 points
#: of AUPRC lower on its test parts; docs/physionet.md, sixth check).
SUMMARY_BINS = 8
#: Bin fillings computed at once by the numpy computation, in a reused float64
#: block of 1 MiB that stays in the processor's cache (for 2,000 series of 16
#: channels, the former full-size temporaries took 67 ms and this block 16 ms,
#: alternating in one process with a training job beside it; 13 ms on a quiet
#: machine).
_ENCODE_VALUES = 1 << 17

SUMMARY_ENCODINGS = ("quantile", "robust")


def summary_inputs(data, stats):
    """The summary vector ``s`` of each series, encoded as ``stats`` says.

    Parameters
    ----------
    data : SeriesData
    stats : ScalingStats
        With ``summary_center`` and ``summary_scale`` set, and
        ``summary_edges`` for the quantile encoding.

    Returns
    -------
    s : ndarray of float32 of shape (n_samples, stats.summary_width)
        Per-channel summary statistics (:data:`mrmoe_sklearn.summary.DEFAULT_STATISTICS`,
        counts as ``log1p``). Robust encoding: minus the fitted median over the
        fitted robust scale, clipped to ``+-SUMMARY_CLIP``, 0 (the median) where
        undefined. Quantile encoding (see :func:`quantile_encode`): per
        statistic, ``SUMMARY_BINS`` piecewise-linear bin fillings and a
        missing flag. Only the columns ``stats.summary_columns`` (all where it
        is None).
    """
    return _encode_summaries(data.summaries, stats, stats.summary_columns)


def _encode_summaries(raw, stats, columns):
    """The ``columns`` (None: all) of the encoding ``stats`` holds, of the raw summary statistics ``raw``."""
    if stats.summary_edges is not None:
        return quantile_encode(raw, stats.summary_edges, columns)
    s = (raw - stats.summary_center) / stats.summary_scale
    s = np.nan_to_num(np.clip(s, -SUMMARY_CLIP, SUMMARY_CLIP), nan=0.0).astype(np.float32)
    return s if columns is None else np.ascontiguousarray(s[:, columns])


def _varying_columns(raw, stats):
    """Indices of the encoded summary columns that vary over the rows of ``raw`` (the kept ones).

    A column varies where its value is not the same for every row. Of the
    quantile encoding, a statistic's bin fillings are kept all together where
    any of them varies (a filling can be constant beside others that are not,
    on bins of tied edges), its missing flag where that varies: the compiled
    encoder then computes only the kept statistics. Encoded ``_ENCODE_VALUES``
    values' worth of rows at a time: the training series' whole encoding never
    exists here (the training set's inputs are built later, of the kept
    columns only).
    """
    rows = max(1, _ENCODE_VALUES // max(raw.shape[1] * (SUMMARY_BINS + 1), 1))
    first, varies = None, np.zeros(0, dtype=bool)
    for start in range(0, len(raw), rows):
        block = _encode_summaries(raw[start : start + rows], stats, None)
        if first is None:
            first, varies = block[0].copy(), np.zeros(block.shape[1], dtype=bool)
        varies |= (block != first).any(axis=0)
    if stats.summary_edges is not None and varies.size:
        per_statistic = varies.reshape(len(stats.summary_edges), -1)
        per_statistic[:, :-1] = per_statistic[:, :-1].any(axis=1, keepdims=True)
    return np.flatnonzero(varies)


def quantile_edges(raw, n_bins=SUMMARY_BINS):
    """Bin edges of each column: its ``0, 1/n_bins, ..., 1`` quantiles over the finite values.

    Parameters
    ----------
    raw : ndarray of shape (n_samples, n_columns)
        NaN where undefined.
    n_bins : int, default=SUMMARY_BINS

    Returns
    -------
    edges : ndarray of shape (n_columns, n_bins + 1)
        Non-decreasing; repeated where a column has ties (its bins are then
        empty) and all 0 for a column without finite values.
    """
    q = np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.zeros((raw.shape[1], n_bins + 1))
    finite = np.isfinite(raw)
    for j in range(raw.shape[1]):
        col = raw[finite[:, j], j]
        if col.size:
            edges[j] = np.quantile(col, q)
    return edges


def quantile_encode(raw, edges, columns=None):
    """Piecewise-linear encoding of each column on its quantile bins, and a missing flag.

    A value ``x`` fills bin ``[lo, hi)`` by ``clip((x - lo) / (hi - lo), 0, 1)``:
    the bins below it are full (1), those above it empty (0), and its own
    partly filled; an empty bin (``lo == hi``, ties) is a step, 1 from ``hi``
    on. This is the numerical-feature encoding of Gorishniy et al., "On
    Embeddings for Numerical Features in Tabular Deep Learning" (NeurIPS 2022):
    it lets a small MLP cut a statistic at its quantiles as a tree does.
    Computed by the package's compiled library where it is in use
    (``mrmoe_sklearn.nn.kernel.quantile_encode``: the same float64
    operations, bit-identical), else in numpy.

    Parameters
    ----------
    raw : ndarray of shape (n_samples, n_columns)
        NaN where undefined.
    edges : ndarray of shape (n_columns, n_bins + 1)
        From :func:`quantile_edges`.
    columns : ndarray of int or None, default=None
        Increasing indices of the encoding's columns to return (of the
        ``n_columns * (n_bins + 1)``); None for all.

    Returns
    -------
    s : ndarray of float32 of shape (n_samples, n_columns * (n_bins + 1)) or (n_samples, len(columns))
        Per column, its ``n_bins`` fillings (all 0 where undefined) and a flag
        that is 1 where it is undefined; only ``columns`` where given.
    """
    compiled = kernel.quantile_encode(raw, edges, columns)
    if compiled is not None:  # the package's compiled library: the same operations in C
        return compiled
    n, J = raw.shape
    n_bins = edges.shape[1] - 1
    lo, hi = edges[:, :-1], edges[:, 1:]
    width = hi - lo
    empty = width <= 0
    width = np.where(empty, 1.0, width)
    tie_cols, tie_bins = np.nonzero(empty)
    out = np.empty((n, J, n_bins + 1), dtype=np.float32)
    rows = max(1, _ENCODE_VALUES // max(J * n_bins, 1))
    buffer = np.empty((min(rows, n), J, n_bins))
    for start in range(0, n, rows):
        x = raw[start : start + rows]
        fill = buffer[: len(x)]
        # in place on a cache-sized block: (x - lo) / width clipped to [0, 1]; NaN stays NaN
        np.subtract(x[:, :, None], lo, out=fill)
        np.divide(fill, width, out=fill)
        np.clip(fill, 0.0, 1.0, out=fill)
        if tie_cols.size:  # an empty bin is a step: 1 from its edge on
            fill[:, tie_cols, tie_bins] = x[:, tie_cols] >= hi[tie_cols, tie_bins]
        missing = ~np.isfinite(x)
        fill[missing] = 0.0
        block = out[start : start + rows]
        block[:, :, :n_bins] = fill
        block[:, :, n_bins] = missing
    out = out.reshape(n, J * (n_bins + 1))
    return out if columns is None else np.ascontiguousarray(out[:, columns])


def _robust_scale(raw):
    """Median and robust scale (IQR / 1.349, else the standard deviation, else 1) per column."""
    center = np.zeros(raw.shape[1])
    scale = np.ones(raw.shape[1])
    for j in range(raw.shape[1]):
        col = raw[:, j]
        col = col[np.isfinite(col)]
        if col.size == 0:
            continue
        q25, center[j], q75 = np.percentile(col, [25, 50, 75])
        spread = (q75 - q25) / 1.349
        if not spread > 0:
            big = np.abs(col).max()  # the standard deviation in units of the largest value: no overflow
            spread = (col / big).std() * big if big > 0 else 0.0
        scale[j] = spread if spread > 0 and np.isfinite(spread) else 1.0
    return center, scale


def fit_scaling(data, summaries=None):
    """Learn per-feature standardisation and the time scale from ``data``.

    Parameters
    ----------
    data : SeriesData
    summaries : {"quantile", "robust"} or None, default=None
        Also learn the encoding of the per-channel summary statistics that
        :func:`summary_inputs` gives the networks: their robust centre and
        scale, with ``"quantile"`` their quantile bin edges, and the encoded
        columns that vary over ``data``'s series (the ones kept).

    Returns
    -------
    stats : ScalingStats
    """
    mean, scale = _nan_stats(data.values)
    time_scale = 1.0
    dt = data.gaps
    if dt is not None:
        positive = dt[data.valid & (dt > 0)]
        if positive.size:
            time_scale = float(np.mean(positive / positive.max()) * positive.max())
    stats = ScalingStats(mean=mean, scale=scale, time_scale=time_scale)
    if summaries is not None:
        if summaries not in SUMMARY_ENCODINGS:
            raise ValueError(f"summaries must be one of {SUMMARY_ENCODINGS} or None, got {summaries!r}.")
        stats.summary_center, stats.summary_scale = _robust_scale(data.summaries)
        if summaries == "quantile":
            stats.summary_edges = quantile_edges(data.summaries)
        stats.summary_columns = _varying_columns(data.summaries, stats)
    return stats


#: Values standardised at once, in a reused float64 buffer of 4 MiB: fresh large
#: temporaries must be mapped and zeroed by the OS on every call (measured on the
#: development machine: 9 ms per 64 MiB, 170 ms where the memory was not yet backed).
CHUNK_VALUES = 1 << 19


def prepare_batch(data, stats, chunk_size=None):
    """Turn validated series into the float32 arrays the networks consume.

    Parameters
    ----------
    data : SeriesData
    stats : ScalingStats
    chunk_size : int or None, default=None
        Samples standardised at once in float64; None takes as many as hold
        ``CHUNK_VALUES`` values (at least one).

    Returns
    -------
    batch : dict of ndarray
        ``x`` (n, T, F) float32, standardised, 0 where missing; ``m`` (n, T, F)
        bool observed mask; ``dt`` (n, T) float32 elapsed time before each step
        in units of ``stats.time_scale`` (1 at the first step, 0 on padding);
        ``v`` (n, T) bool valid-step mask; ``s`` (n, stats.summary_width)
        float32 summary inputs (:func:`summary_inputs`) when ``stats`` holds
        their encoding.
    """
    values = data.values
    n, T, F = values.shape
    x = np.empty((n, T, F), dtype=np.float32)
    m = ~np.isnan(values)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_VALUES // max(T * F, 1))
    buffer = np.empty((min(chunk_size, n), T, F))
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        part = buffer[: stop - start]
        np.subtract(values[start:stop], stats.mean, out=part)
        np.divide(part, stats.scale, out=part)
        np.clip(part, -VALUE_CLIP, VALUE_CLIP, out=part)
        np.copyto(part, 0.0, where=~m[start:stop])  # missing values (NaN) become 0
        x[start:stop] = part
    v = data.valid
    dt = data.gaps
    if dt is None:
        dt = np.ones((n, T))
    else:
        dt = dt / stats.time_scale
        dt[:, 0] = 1.0
        np.clip(dt, 0.0, DT_CLIP, out=dt)
    dt = np.where(v, dt, 0.0).astype(np.float32)
    batch = {"x": x, "m": m, "dt": dt, "v": v}
    if stats.summary_center is not None:
        batch["s"] = summary_inputs(data, stats)
    return batch


# Long only by its docstring (about 50 lines of parameters and returns).
@validate_params(
    {
        "df": [pd.DataFrame],
        "id_col": [Hashable],
        "time_col": [Hashable],
        "value_cols": ["array-like", None],
        "var_col": [Hashable, None],
        "value_col": [Hashable, None],
        "time_unit": [str],
        "max_length": [IntInterval(1), None],
    },
    prefer_skip_nested_validation=True,
)
def to_sequences(
    df,
    id_col,
    time_col,
    value_cols=None,
    *,
    var_col=None,
    value_col=None,
    time_unit="h",
    max_length=None,
):
    """Turn a long-format DataFrame (one row per observation) into a 3D array.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per observation time of one sequence (``id_col``), e.g. one row
        per chart time of an ICU stay. Values not measured at that time are NaN.
    id_col : str
        Column identifying the sequence (sample); no id may be missing.
    time_col : str
        Column of time stamps: numbers (used as they are), datetimes
        (converted to ``time_unit`` elapsed since the sequence's first row) or
        timedeltas (converted to ``time_unit``, e.g. time since admission).
    value_cols : list of str or None, default=None
        Measured variables, in channel order. None takes every column except
        ``id_col`` and ``time_col`` (and ``var_col``/``value_col``). With
        ``var_col``, the variables as named there; one that no row of ``df``
        names is a channel of NaN, with a warning (a subset of the records, a
        test set, keeps the channels of the whole).
    var_col, value_col : str or None, default=None
        For "melted" data with one row per single measurement: the column that
        names the variable and the one that holds its value. Rows sharing an id
        and a time stamp become one time step (repeated measurements of one
        variable there are averaged). As with wide data, every id and time
        stamp of the rows is kept and every variable named there is a
        channel, even where all its values are NaN.
    time_unit : str, default="h"
        Unit for datetime and timedelta time stamps (a :func:`pandas.Timedelta` unit).
    max_length : int or None, default=None
        Keep at most the last ``max_length`` steps of each sequence. None keeps
        all of them (no data is dropped silently).

    Returns
    -------
    X : ndarray of shape (n_sequences, 1 + n_values, n_timesteps)
        Channels first; channel 0 is the time channel (pass ``time_channel=0``
        to the estimators), then ``value_cols`` in order. Shorter sequences are
        padded at the end with NaN in every channel.
    ids : ndarray of shape (n_sequences,)
        The sequence ids in the order of ``X``'s rows (sorted), to align ``y``.
    value_cols : list of str
        The channel names after the time channel (strings with ``var_col``).

    Raises
    ------
    TypeError
        A value column is not numeric (or complex), the time stamps are not
        numbers, datetimes or timedeltas, or ids cannot be sorted together.
    ValueError
        A parameter of the wrong type or value (scikit-learn's
        ``InvalidParameterError``, also a ``TypeError``), a named column is
        missing or repeated, the frame is empty, or an id or a time stamp is
        missing.
    """
    _check_long_frame(df, id_col, time_col, var_col, value_col)
    if var_col is not None:
        df, id_col, time_col, value_cols = _pivot_melted(df, id_col, time_col, var_col, value_col, value_cols)
    if value_cols is None:
        value_cols = [c for c in df.columns if c not in (id_col, time_col)]
    else:
        value_cols = list(value_cols)
        absent = [c for c in value_cols if c not in df.columns]
        if absent:
            raise ValueError(f"Value column(s) {absent} not found in the DataFrame.")
    if not value_cols:
        raise ValueError("No value column left besides the id and time columns.")
    _check_unique_columns(df, value_cols)
    for c in value_cols:
        if not _is_real_dtype(df[c].dtype):
            raise TypeError(f"Value column {c!r} is not numeric (dtype {df[c].dtype}).")

    try:
        df = df.sort_values([id_col, time_col], kind="stable")
        ids, starts, counts = np.unique(df[id_col].to_numpy(), return_index=True, return_counts=True)
    except TypeError as exc:
        raise TypeError(f"Column {id_col!r} holds ids that cannot be sorted together ({exc}).") from exc
    t = df[time_col]
    if pd.api.types.is_datetime64_any_dtype(t):
        first = t.groupby(df[id_col]).transform("min")
        t = (t - first) / pd.Timedelta(1, unit=time_unit)
    elif pd.api.types.is_timedelta64_dtype(t):
        t = t / pd.Timedelta(1, unit=time_unit)
    times = t.to_numpy(dtype=np.float64)
    values = df[value_cols].to_numpy(dtype=np.float64)
    n_steps = int(counts.max()) if max_length is None else min(int(counts.max()), max_length)
    X = np.full((len(ids), 1 + len(value_cols), n_steps), np.nan)
    for i, (s, c) in enumerate(zip(starts, counts)):
        keep = min(c, n_steps)
        rows = slice(s + c - keep, s + c)
        X[i, 0, :keep] = times[rows]
        X[i, 1:, :keep] = values[rows].T
    return X, ids, value_cols


def _check_long_frame(df, id_col, time_col, var_col, value_col):
    """The checks of :func:`to_sequences` on the frame as given: columns, rows, ids and time stamps."""
    needed = [id_col, time_col] + [c for c in (var_col, value_col) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not found in the DataFrame.")
    _check_unique_columns(df, needed)
    if (var_col is None) != (value_col is None):
        raise ValueError("var_col and value_col must be given together.")
    if len(df) == 0:
        raise ValueError("The DataFrame has no rows.")
    if df[id_col].isna().any():
        raise ValueError(f"Column {id_col!r} has missing ids; every row needs the id of its sequence.")
    if df[time_col].isna().any():
        raise ValueError(f"Column {time_col!r} has missing time stamps.")
    if not _is_time_dtype(df[time_col].dtype):  # strings would be sorted as text
        raise TypeError(
            f"Column {time_col!r} must hold numbers, datetimes or timedeltas as time stamps; found dtype "
            f"{df[time_col].dtype}."
        )
    if value_col is not None and not _is_real_dtype(df[value_col].dtype):
        raise TypeError(f"Value column {value_col!r} is not numeric (dtype {df[value_col].dtype}).")


def _is_time_dtype(dtype):
    """Whether a pandas/numpy ``dtype`` holds time stamps: real numbers (not booleans), datetimes or timedeltas."""
    types = pd.api.types
    if types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype):
        return True
    return _is_real_dtype(dtype) and not types.is_bool_dtype(dtype)


def _check_unique_columns(df, names):
    """Raise where a column of ``names`` is not the only one of its name in ``df``."""
    repeated = set(df.columns[df.columns.duplicated()])
    twice = [c for c in dict.fromkeys(names) if c in repeated]
    if twice:
        raise ValueError(f"Column(s) {twice} appear more than once in the DataFrame; give every column its own name.")


def _pivot_melted(df, id_col, time_col, var_col, value_col, value_cols):
    """Melted rows (one a measurement) as one row per id and time stamp, a column per variable.

    Returns the wide frame, its id and time column names and ``value_cols``:
    all variables where None, else the named ones, those in no row of ``df``
    added as columns of NaN (with a warning naming them). As in wide data,
    every id and time stamp of the rows is a step and every variable named
    there a column, even where all its values are NaN. Column names become
    strings.
    """
    keys = [id_col, time_col]
    # not pivot_table: it drops the steps and variables whose values are all NaN
    df_wide = df.groupby(keys + [var_col], observed=True)[value_col].mean().unstack(var_col)
    df_wide = df_wide.reindex(pd.MultiIndex.from_frame(df[keys].drop_duplicates()))
    df = df_wide.reset_index()
    df.columns = [str(c) for c in df.columns]
    if value_cols is not None:
        value_cols = [str(c) for c in value_cols]
        absent = [c for c in value_cols if c not in df.columns]
        if absent:  # variables not measured in these rows (a small test set), or misspelt: said
            warnings.warn(
                f"Variable(s) {absent} of value_cols occur in no row of column {var_col!r}: their channels "
                "are all NaN.",
                UserWarning,
                stacklevel=4,  # the caller of to_sequences, through validate_params' wrapper
            )
        for c in absent:
            df[c] = np.nan
    return df, str(id_col), str(time_col), value_cols


class TimeSeriesScaler(TransformerMixin, BaseEstimator):
    """Standardise each channel of a time-series panel, NaN-aware.

    The same statistics every estimator of the package learns internally at
    fit, exposed as a Pipeline step for users who want the step explicit.
    Missing values stay NaN, padding stays padding, the time channel is left
    untouched.

    Parameters
    ----------
    time_channel : int or None, default=None
        Channel holding time stamps, passed through unscaled.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the observed values (time channel excluded).
    scale_ : ndarray of shape (n_features,)
        Per-feature standard deviation (1 for constant or empty channels).
    n_features_in_ : int
        Number of channels seen at fit, the time channel included.
    n_timesteps_in_ : int or None
        Width of a 2D ``X`` seen at fit (a 2D ``X`` of another width is refused
        as by the estimators: is it transposed?); None for other layouts.

    Examples
    --------
    >>> import numpy as np
    >>> from mrmoe_sklearn import TimeSeriesScaler
    >>> X = np.random.RandomState(0).normal(5, 2, size=(4, 2, 10))
    >>> Xt = TimeSeriesScaler().fit_transform(X)
    >>> Xt.shape
    (4, 2, 10)
    """

    _parameter_constraints: dict = {"time_channel": TIME_CHANNEL}

    def __init__(self, time_channel=None):
        self.time_channel = time_channel

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the per-channel statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timesteps) or list
            See :func:`check_series` for the accepted layouts.
        y : ignored

        Returns
        -------
        self : TimeSeriesScaler
        """
        data = check_series(X, time_channel=self.time_channel, estimator_name="TimeSeriesScaler")
        self.mean_, self.scale_ = _nan_stats(data.values)
        self.n_features_in_ = data.n_features + (self.time_channel is not None)
        self.n_timesteps_in_ = data.values.shape[1] if data.layout == "2d" else None
        return self

    def transform(self, X):
        """Standardise ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timesteps) or list
            As for :meth:`fit`, with the same number of channels (and, for a
            2D ``X``, of time steps).

        Returns
        -------
        Xt : ndarray of shape (n_samples, n_channels, n_timesteps)
            Standardised, channels first, NaN kept; list input is padded.
        """
        check_is_fitted(self)
        data = check_series(
            X,
            time_channel=self.time_channel,
            n_channels=self.n_features_in_,
            n_timesteps=getattr(self, "n_timesteps_in_", None),  # absent from scalers pickled before it
            estimator_name="TimeSeriesScaler",
        )
        scaled = ((data.values - self.mean_) / self.scale_).transpose(0, 2, 1)
        if data.times is None:
            return scaled
        tc = self.time_channel % self.n_features_in_
        return np.insert(scaled, tc, data.times, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        return tags
