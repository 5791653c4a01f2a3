"""Per-channel summary statistics of irregular series.

:func:`summary_statistics` computes them from the arrays of a validated
:class:`~mrmoe_sklearn._data.SeriesData`; :class:`SummaryFeatures` is the same
computation as a Pipeline step (the strong tabular baseline on sparse clinical
charts: summary statistics into a gradient-boosted tree).
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

from ._data import check_series
from ._params import POSITIVE_INT, TIME_CHANNEL, invalid_parameter
from .nn import kernel

__all__ = ["ALL_STATISTICS", "DEFAULT_STATISTICS", "summary_statistics", "SummaryFeatures"]

#: Every statistic :func:`summary_statistics` knows, in its canonical order.
ALL_STATISTICS = ("mean", "std", "min", "max", "first", "last", "count", "slope", "time_since_last")
#: The statistics computed when none are named.
DEFAULT_STATISTICS = ALL_STATISTICS
#: Values (samples x steps x channels) summarised at once; a chunk's few
#: float64 temporaries then take a few MiB each.
CHUNK_VALUES = 1 << 19


#: The constraint on ``statistics`` (a name or a sequence of names, or None);
#: ``_check_statistics`` checks the names themselves.
STATISTICS = [str, "array-like", None]


def _check_statistics(statistics, caller):
    """Return ``statistics`` as a tuple of known, distinct names.

    Raises :class:`~sklearn.utils._param_validation.InvalidParameterError`
    naming ``caller`` where a name is unknown or repeated, or none is given.
    """
    if statistics is None:
        return DEFAULT_STATISTICS
    names = (statistics,) if isinstance(statistics, str) else tuple(statistics)
    # names checked first: a nested sequence is unhashable, and set() would raise a bare TypeError
    known = all(isinstance(s, str) and s in ALL_STATISTICS for s in names)
    if not names or not known or len(set(names)) != len(names):
        allowed = f"None, or one or more distinct names among {{{', '.join(map(repr, ALL_STATISTICS))}}}"
        raise invalid_parameter("statistics", caller, allowed, statistics)
    return names


# Long only by its docstring (about 60 lines: the statistics' definitions).
@validate_params(
    {
        "values": ["array-like"],
        "times": ["array-like", None],
        "valid": ["array-like"],
        "statistics": STATISTICS,
        "chunk_size": [POSITIVE_INT, None],
    },
    prefer_skip_nested_validation=True,
)
def summary_statistics(values, times, valid, statistics=DEFAULT_STATISTICS, *, chunk_size=None):
    """Summarise every channel of every sample by NaN-aware statistics.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_timesteps, n_features)
        Measured values, NaN where missing (the layout of ``SeriesData.values``).
    times : ndarray of shape (n_samples, n_timesteps) or None
        Time stamps, non-decreasing over the valid steps of a sample (as
        :func:`~mrmoe_sklearn._data.check_series` ensures). None: steps are
        unit-spaced, at times 0, 1, 2, ...
    valid : ndarray of bool of shape (n_samples, n_timesteps)
        Non-padding steps (``SeriesData.valid``). A value counts as observed
        where it is not NaN and its step is valid.
    statistics : str, sequence of str or None, default=DEFAULT_STATISTICS
        Names among ``ALL_STATISTICS``, in the order wanted in the output (None:
        ``DEFAULT_STATISTICS``):

        - ``"mean"``, ``"std"`` (population, ``ddof=0``), ``"min"``, ``"max"``
          of the observed values;
        - ``"first"``, ``"last"``: the earliest and latest observed value;
        - ``"count"``: the number of observations (0, not NaN, when none);
        - ``"slope"``: least-squares slope of value against time over the
          observations, in value units per unit of the time channel (per step
          when ``times`` is None); NaN with fewer than 2 distinct observation
          times;
        - ``"time_since_last"``: time from the channel's last observation to
          the end of the record (the time stamp of the sample's last valid
          step), in units of the time channel (steps when ``times`` is None);
          0 when the channel is observed at the last step.

        Every statistic but ``"count"`` is NaN for a channel never observed.
    chunk_size : int or None, default=None
        Samples summarised at once by the numpy computation (see Notes); None
        takes as many as hold ``CHUNK_VALUES`` values (at least one). The
        result does not depend on it.

    Returns
    -------
    stats : ndarray of float64 of shape (n_samples, n_features, n_statistics)
        ``stats[i, f, s]`` is statistic ``statistics[s]`` of channel ``f`` of
        sample ``i``.

    Notes
    -----
    Where the package's compiled library is in use (``mrmoe_sklearn.nn.kernel``,
    built on first use with the system's C compiler; ``MRMOE_SKLEARN_KERNEL=0``
    switches it off) each sample is summarised in two passes in C, its
    samples shared over torch's threads (the result does not depend on their
    number); 2,000 series of 16 channels: 4 ms at 8 steps and 38 ms at 256
    (numpy: 16 and 148 ms; measured 2026-12-02 on the 2-core development
    machine while a training job shared it). Otherwise numpy computes the same
    vectorised over chunks of samples, so the extra memory is a few
    chunk-sized float64 arrays whatever ``n_samples``: a (12000, 215, 40)
    float64 panel (787 MiB) with 80% NaN and ragged lengths (20 to 215
    steps), all nine statistics, 1.6 to 2.0 s over four runs, peak memory 13
    MiB above the 33 MiB result (same machine and conditions). The two agree
    to rounding (sums in another order; relative differences below 1e-9).

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[[1.0], [np.nan], [3.0]]])
    >>> summary_statistics(values, np.array([[0.0, 1.0, 4.0]]), np.ones((1, 3), bool),
    ...                    ("mean", "slope", "count"))
    array([[[2. , 0.5, 2. ]]])
    """
    statistics = _check_statistics(statistics, "summary_statistics")
    values = np.asarray(values)
    valid = np.asarray(valid, dtype=bool)
    if values.ndim != 3 or valid.shape != values.shape[:2]:
        raise ValueError(
            f"values must be (n_samples, n_timesteps, n_features) and valid (n_samples, n_timesteps); "
            f"got shapes {values.shape} and {valid.shape}."
        )
    if times is not None:
        times = np.asarray(times, dtype=np.float64)
        if times.shape != valid.shape:
            raise ValueError(f"times must have shape {valid.shape}, got {times.shape}.")
    compiled = kernel.summary_statistics(values, times, valid)
    if compiled is not None:
        if statistics == kernel.SUMMARY_STATISTICS:  # all, in the library's order: no copy
            return compiled
        return compiled[:, :, [kernel.SUMMARY_STATISTICS.index(name) for name in statistics]]
    n, T, F = values.shape
    if chunk_size is None:
        chunk_size = max(1, CHUNK_VALUES // max(T * F, 1))
    out = np.empty((n, F, len(statistics)))
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, n, chunk_size):
            part = slice(start, min(start + chunk_size, n))
            found = _summarise_chunk(values[part], None if times is None else times[part], valid[part], set(statistics))
            for s, name in enumerate(statistics):
                out[part, :, s] = found[name]
    return out


def _summarise_chunk(values, times, valid, wanted):
    """The statistics in ``wanted`` for one chunk, as a dict of (c, F) arrays."""
    c, T, F = values.shape
    observed = ~np.isnan(values)
    if not valid.all() and (observed & ~valid[:, :, None]).any():  # values on padding: drop them
        values = np.where(valid[:, :, None], values, np.nan)
        observed &= valid[:, :, None]
    weight = observed.astype(np.float64)
    count = np.einsum("itf->if", weight)
    seen = count > 0
    n_obs = np.maximum(count, 1.0)
    found = {"count": count}
    if "min" in wanted:
        found["min"] = np.fmin.reduce(values, axis=1)  # fmin/fmax skip NaN
    if "max" in wanted:
        found["max"] = np.fmax.reduce(values, axis=1)
    # the values with NaN as 0 (branch-free, unlike a masked copy), then their deviations
    dev, spare = np.empty((c, T, F)), np.empty((c, T, F))
    np.fmax(values, 0.0, out=dev)
    dev += np.fmin(values, 0.0, out=spare)
    mean = np.einsum("itf->if", dev) / n_obs
    found["mean"] = mean
    if wanted & {"std", "slope"}:
        dev -= mean[:, None, :]
        dev *= weight
        found["std"] = np.sqrt(np.einsum("itf,itf->if", dev, dev) / n_obs)

    rows, cols = np.arange(c)[:, None], np.arange(F)
    first = np.argmax(observed, axis=1)
    last = T - 1 - np.argmax(observed[:, ::-1], axis=1)
    found["first"] = values[rows, first, cols]
    found["last"] = values[rows, last, cols]
    end = T - 1 - np.argmax(valid[:, ::-1], axis=1)  # the last valid step
    if times is None:
        found["time_since_last"] = end[:, None] - last
    else:
        found["time_since_last"] = times[np.arange(c), end][:, None] - times[rows, last]
    if "slope" in wanted:
        # times shifted to the sample's first step (0 on padding), then centred per channel
        if times is None:
            shifted = np.broadcast_to(np.arange(T, dtype=np.float64), (c, T))
        else:
            shifted = np.where(valid, times - times[:, :1], 0.0)
        # in units of each sample's time span, so that squares of huge time stamps cannot overflow
        span = np.abs(shifted).max(axis=1)
        span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
        scaled = shifted / span[:, None]
        t_mean = np.matmul(scaled[:, None, :], weight)[:, 0, :] / n_obs
        centred = np.subtract(scaled[:, :, None], t_mean[:, None, :], out=spare)
        centred *= weight
        slope = np.einsum("itf,itf->if", centred, dev) / np.einsum("itf,itf->if", centred, centred)
        slope /= span[:, None]
        # fewer than 2 distinct observation times (times are non-decreasing)
        found["slope"] = np.where(shifted[rows, last] > shifted[rows, first], slope, np.nan)
    return {k: v if k == "count" else np.where(seen, v, np.nan) for k, v in found.items() if k in wanted}


class SummaryFeatures(TransformerMixin, BaseEstimator):
    """Per-channel summary statistics of time series, as tabular features.

    Turns each series into one row of statistics per measured channel (see
    :func:`summary_statistics` for their definitions), the strongest simple
    baseline on sparse irregular clinical charts when fed to a gradient-boosted
    tree. Undefined statistics (a channel never observed, a slope from a single
    observation time) are NaN. :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
    takes NaN as missing, but not a column that is NaN throughout: a channel
    never observed in the training series (every statistic but ``"count"`` of
    it NaN for every sample) makes its ``fit`` fail ("window shape cannot be
    larger than input array shape", scikit-learn 1.9.1). Drop such columns
    between the two steps, learning which at fit: a
    :class:`~sklearn.compose.ColumnTransformer` whose columns are a callable
    (called on the training data only, the columns it picks kept for
    ``transform``) does it, as in the Examples. A stateless
    :class:`~sklearn.preprocessing.FunctionTransformer` would pick the columns
    anew for every ``X`` and so change their number between fit and predict;
    :class:`~sklearn.feature_selection.VarianceThreshold` drops constant columns
    too; ``SimpleImputer(keep_empty_features=False)`` drops them but fills the
    other NaN, which the tree uses as missing. Most estimators other than the
    tree need a :class:`~sklearn.impute.SimpleImputer` after this step.

    Parameters
    ----------
    statistics : sequence of str or None, default=None
        Names among ``ALL_STATISTICS``, in output order; None takes
        ``DEFAULT_STATISTICS`` (all nine).
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps, as for the estimators: removed from
        the features and used by ``"slope"`` and ``"time_since_last"``. None:
        unit-spaced steps.
    channel_names : sequence of str or None, default=None
        Names of the measured channels (the time channel excluded), e.g. the
        ``value_cols`` returned by :func:`~mrmoe_sklearn.to_sequences`; used by
        :meth:`get_feature_names_out`.

    Attributes
    ----------
    n_features_in_ : int
        Number of channels seen at fit, the time channel included.
    n_timesteps_in_ : int or None
        Width of a 2D ``X`` seen at fit (a 2D ``X`` of another width is refused
        as by the estimators: is it transposed?); None for other layouts.

    See Also
    --------
    summary_statistics : The computation itself, on validated arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from mrmoe_sklearn import SummaryFeatures
    >>> X = np.array([[[0.0, 1.0, 4.0], [5.0, np.nan, 9.0]]])  # time stamps, one channel
    >>> summary = SummaryFeatures(statistics=["last", "slope"], time_channel=0).fit(X)
    >>> summary.transform(X)
    array([[9., 1.]])
    >>> summary.get_feature_names_out()
    array(['x1__last', 'x1__slope'], dtype=object)

    Into a gradient-boosted tree, less the columns without any value in the
    training data (here channel 2, never observed):

    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> def observed_columns(X):
    ...     return ~np.isnan(X).all(axis=0)
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(40, 3, 6))
    >>> X[:, 0] = np.arange(6.0)  # time stamps
    >>> X[:, 2] = np.nan  # a channel never observed
    >>> y = (X[:, 1, -1] > 0).astype(int)
    >>> tree = make_pipeline(
    ...     SummaryFeatures(time_channel=0),
    ...     ColumnTransformer([("observed", "passthrough", observed_columns)],
    ...                       verbose_feature_names_out=False),
    ...     HistGradientBoostingClassifier(max_iter=20),
    ... ).fit(X, y)
    >>> tree[:-1].get_feature_names_out()[-2:]  # of channel 2, only its count is left
    array(['x1__time_since_last', 'x2__count'], dtype=object)
    >>> tree.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "statistics": STATISTICS,
        "time_channel": TIME_CHANNEL,
        "channel_names": ["array-like", None],
    }

    def __init__(self, statistics=None, time_channel=None, channel_names=None):
        self.statistics = statistics
        self.time_channel = time_channel
        self.channel_names = channel_names

    def _statistics(self):
        return _check_statistics(self.statistics, type(self).__name__)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check ``X`` and the parameters; learn the number of channels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timesteps) or list
            Channels first; a 2D array is univariate ``(n_samples,
            n_timesteps)``, a list holds arrays ``(n_channels, n_timesteps_i)``
            of varying length. NaN is missing.
        y : ignored

        Returns
        -------
        self : SummaryFeatures
        """
        self._statistics()
        data = check_series(X, time_channel=self.time_channel, estimator_name="SummaryFeatures")
        if self.channel_names is not None and len(self.channel_names) != data.n_features:
            raise ValueError(
                f"channel_names has {len(self.channel_names)} names but X has "
                f"{data.n_features} measured channel(s) (the time channel excluded)."
            )
        self.n_features_in_ = data.n_features + (self.time_channel is not None)
        self.n_timesteps_in_ = data.values.shape[1] if data.layout == "2d" else None
        return self

    def transform(self, X):
        """Summarise each channel of each series.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timesteps) or list
            As for :meth:`fit`, with the same number of channels (and, for a 2D
            ``X``, of time steps).

        Returns
        -------
        Xt : ndarray of float64 of shape (n_samples, n_features * n_statistics)
            Channel-major: all statistics of the first measured channel, then
            those of the next one; NaN where undefined.
        """
        check_is_fitted(self)
        data = check_series(
            X,
            time_channel=self.time_channel,
            n_channels=self.n_features_in_,
            n_timesteps=self.n_timesteps_in_,
            estimator_name="SummaryFeatures",
        )
        stats = summary_statistics(data.values, data.times, data.valid, self._statistics())
        return stats.reshape(len(stats), -1)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns, ``"<channel>__<statistic>"``.

        Parameters
        ----------
        input_features : sequence of str or None, default=None
            Names of all ``n_features_in_`` channels of ``X`` (the time channel
            included); ignored when ``channel_names`` is set. None: ``channel_names``,
            else ``"x<i>"`` with ``i`` the channel's index in ``X``.

        Returns
        -------
        names : ndarray of str objects of shape (n_features * n_statistics,)
        """
        check_is_fitted(self)
        n = self.n_features_in_
        if input_features is not None and len(input_features) != n:
            raise ValueError(
                f"input_features should have length equal to the number of channels of X, "
                f"n_features_in_={n}; got {len(input_features)}."
            )
        if self.channel_names is not None:
            channels = list(self.channel_names)
        else:
            channels = list(input_features) if input_features is not None else [f"x{i}" for i in range(n)]
            if self.time_channel is not None:
                del channels[self.time_channel % n]
        names = [f"{ch}__{s}" for ch in channels for s in self._statistics()]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        return tags
