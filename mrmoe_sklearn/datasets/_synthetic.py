"""Synthetic multi-rate, irregularly sampled time-series classification data.

This module provides :func:`make_multirate_classification`, a generator of
labelled multivariate time series whose class information lives at *two
different time scales* and is observed at *irregular* time stamps with
missing values.  It is meant as a controlled test bed for a multi-rate
mixture of liquid (continuous-time) experts, and it is built so that each
component of such a model has something specific to do:

* **Slow experts.**  On the *slow* channels the class only changes a gentle
  trend that spans the whole series.  Step to step, that trend is buried
  under a fast nuisance oscillation and white noise whose per-step amplitude
  is far larger than the trend's per-step change.  An expert that runs at a
  coarse rate (on window averages) sees the drift in a handful of steps with
  most of the nuisance averaged away, whereas a per-step recurrent cell has
  to integrate it over about a hundred noisy updates.
* **Fast expert.**  On the *fast* channels the class shows up only as short
  transient bursts, two to four time steps wide, at random positions (often
  early in the series).  Window averaging smears them out, so a full-rate
  expert is needed to catch them.
* **Feature attention.**  Some channels are pure noise (random walks and
  AR(1)/Ornstein-Uhlenbeck processes of comparable variance) with
  arbitrary scales and offsets.  Weighting channels by relevance lets the
  model suppress them instead of fitting their drifts.
* **Temporal attention.**  Because bursts may happen anywhere, and early
  ones are easily forgotten by a model that keeps only its last hidden
  state, attention pooling over all time steps can pick up the evidence
  wherever it occurred.
* **Elapsed-time-aware cells.**  Trends and burst shapes are defined in
  continuous time and evaluated at the irregular sampling instants, so the
  gap between two observations carries information; cells whose dynamics
  depend on the elapsed time (liquid time-constant / ODE-style cells) can use
  it, while index-based models see a distorted signal.

The per-channel means carry almost no class information (trends are
centred on the sample's own time span and burst shapes integrate to zero),
so a linear model on channel averages stays close to chance.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._params import IntInterval, invalid_parameter

__all__ = ["make_multirate_classification"]

# ---------------------------------------------------------------------------
# Generator constants (in "unit" scale, before the per-channel affine map).
# Effect sizes (_SLOPE, _BURST_AMP) are multiplied by ``class_sep``; the
# nuisance terms are not.
# ---------------------------------------------------------------------------
_SLOPE = 0.011  # class-dependent slope (value units per time unit) at level +-1
_SLOPE_JITTER = 0.016  # per-sample slope jitter (not class related)
_SLOPE_JITTER_SHARED = 0.7  # share of the jitter common to all slow channels
_OSC_AMP = 1.0  # fast nuisance oscillation on slow channels
_OSC_PERIOD = (2.2, 4.0)  # its period range, in time units
_SLOW_WHITE = 0.7  # white noise on slow channels
_BURST_AMP = 2.2  # peak amplitude of a class burst
_BURST_WIDTH = (0.6, 1.0)  # burst width parameter, in time units
_BURST_MISS = 0.25  # probability a fast channel shows no burst in a sample
_DECOY_PROB = 0.15  # probability of a one-step artefact spike (any class)
_DECOY_AMP = 2.0
_FAST_OU = 0.5  # OU background on fast channels
_FAST_WHITE = 0.7  # white noise on fast channels
_NOISE_WHITE = 0.5  # white noise added on noise channels


def _as_random_state(random_state):
    """Return a ``RandomState``; a ``Generator`` seeds a fresh one."""
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(0, 2**32 - 1)))
    return check_random_state(random_state)


def _validate_weights(weights, n_classes):
    """Return class proportions as a float array of length ``n_classes``."""
    if weights is None:
        return np.full(n_classes, 1.0 / n_classes)
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape[0] == n_classes - 1 and n_classes > 1:
        # Same convenience as sklearn.datasets.make_classification: the last
        # proportion is inferred.
        w = np.append(w, 1.0 - w.sum())
    problem = None
    if w.shape[0] != n_classes:
        problem = f"of length n_classes ({n_classes}) or n_classes - 1"
    elif not np.all(np.isfinite(w)) or np.any(w < 0):
        problem = "of finite, non-negative proportions"
    elif abs(w.sum() - 1.0) > 1e-3:
        problem = f"of proportions that sum to 1 (these sum to {w.sum():.6g})"
    if problem:
        raise invalid_parameter("weights", "make_multirate_classification", f"None or an array-like {problem}", weights)
    return w / w.sum()


def _class_counts(n_samples, weights):
    """Largest-remainder rounding of ``n_samples * weights``, each count >= 1."""
    raw = n_samples * weights
    counts = np.floor(raw).astype(int)
    remainder = n_samples - counts.sum()
    if remainder > 0:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:remainder]] += 1
    for k in np.flatnonzero(counts == 0):
        donor = int(np.argmax(counts))
        counts[donor] -= 1
        counts[k] += 1
    return counts


def _class_codes(n_classes):
    """Map each class to a (slope level, burst type) pair.

    Levels live on an ``n_levels x n_levels`` grid.  Classes are taken along
    the diagonals first so that, for two classes, both the trend and the
    burst cue differ; every class gets a distinct pair.
    """
    n_levels = max(2, int(np.ceil(np.sqrt(n_classes))))
    pairs = sorted(
        ((i, j) for i in range(n_levels) for j in range(n_levels)),
        key=lambda p: ((p[1] - p[0]) % n_levels, p[0]),
    )[:n_classes]
    slope_idx = np.array([p[0] for p in pairs])
    burst_type = np.array([p[1] for p in pairs])
    slope_level = 2.0 * slope_idx / (n_levels - 1) - 1.0
    return slope_level, burst_type


def _burst_shape(u, burst_type):
    """Zero-mean burst waveform of the given type at scaled offsets ``u``.

    Type 0 is "no burst".  Types 1, 2 are a biphasic pulse (derivative of a
    Gaussian, positive lobe first / negative lobe first); types 3, 4 a
    Mexican-hat pulse (positive / inverted); higher types repeat the cycle
    with wider pulses.  ``u`` must already include the width factor returned
    by :func:`_burst_width_factor`.
    """
    j = burst_type - 1
    family = (j // 2) % 2
    sign = 1.0 if j % 2 == 0 else -1.0
    if family == 0:
        wave = -u * np.exp(0.5 - 0.5 * u * u)
    else:
        wave = (1.0 - u * u) * np.exp(-0.5 * u * u)
    return sign * wave


def _burst_width_factor(burst_type):
    return 1.0 + 0.5 * ((burst_type - 1) // 4)


def _ou_paths(rng, dt, n_paths, tau, sigma):
    """Stationary Ornstein-Uhlenbeck paths at irregular steps.

    ``dt`` has shape ``(n_samples, n_timesteps - 1)``; ``tau`` and ``sigma``
    broadcast against ``(n_samples, n_paths)``.  Returns an array of shape
    ``(n_samples, n_paths, n_timesteps)``.
    """
    n_samples, n_gaps = dt.shape
    out = np.empty((n_samples, n_paths, n_gaps + 1))
    eps = rng.normal(size=out.shape)
    out[:, :, 0] = eps[:, :, 0]
    for k in range(n_gaps):
        a = np.exp(-dt[:, k, None] / tau)
        out[:, :, k + 1] = a * out[:, :, k] + np.sqrt(1.0 - a * a) * eps[:, :, k + 1]
    return out * sigma


# Long only by its docstring (about 110 lines); the stages are the helpers below.
@validate_params(
    {
        "n_samples": [IntInterval(1)],
        "n_channels": [IntInterval(1)],
        "n_timesteps": [IntInterval(8)],
        "n_classes": [IntInterval(2)],
        "n_noise_channels": [IntInterval(0), None],
        "irregular": ["boolean"],
        "missing_rate": [Interval(Real, 0, 1, closed="left")],
        "variable_length": ["boolean"],
        "weights": ["array-like", None],
        "class_sep": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state", np.random.Generator],
        "return_info": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_multirate_classification(
    n_samples=600,
    n_channels=6,
    n_timesteps=96,
    *,
    n_classes=2,
    n_noise_channels=None,
    irregular=True,
    missing_rate=0.2,
    variable_length=False,
    weights=None,
    class_sep=1.0,
    random_state=None,
    return_info=False,
):
    """Generate a multi-rate, irregularly sampled time-series classification problem.

    Each sample is a multivariate series stored channels-first (the aeon
    ``numpy3D`` layout) whose channel 0 holds the observation time stamps.
    The measured channels play one of three roles:

    * **slow** channels: the class sets the slope of a gentle linear drift
      over the whole series (centred on the sample's own time span, so it
      does not move the mean).  It is hidden under a fast sinusoidal nuisance
      (period 2.2-4 time units, random phase) plus white noise, whose
      per-step amplitude is roughly a hundred times the drift's per-step
      change.  Slopes also vary from sample to sample (partly in common
      across the slow channels), so the classes overlap.
    * **fast** channels: the class sets the type of short transient bursts
      (zero-mean waveforms two to four time steps wide; one or two per
      channel, placed anywhere with a bias towards the start of the series)
      on an Ornstein-Uhlenbeck plus white-noise background.  With two
      classes, class 0 has no bursts and class 1 has biphasic bursts.  A
      channel sometimes shows no burst at all, and any sample may carry a
      one-step artefact spike, so single bursts are informative but not
      decisive.
    * **noise** channels: random walks or Ornstein-Uhlenbeck processes plus
      white noise, independent of the label.

    Every measured channel is finally mapped through its own affine
    transform (scales from about 0.1 to 20, offsets up to a few hundred), so
    standardisation matters.  Trend and burst shapes are functions of
    continuous time evaluated at the (possibly irregular) time stamps.

    Why a multi-rate mixture of liquid experts should help: slow experts,
    which see window-averaged inputs, recover the drift in a few steps with
    the nuisance averaged out; a fast expert running at the full rate
    catches the bursts that averaging would smear; feature attention can
    suppress the noise channels; temporal attention can pool the bursts
    wherever they occurred rather than relying on a last hidden state that
    may have forgotten an early burst; and because the signal is defined in
    continuous time, cells whose update depends on the elapsed time between
    observations read the irregular series correctly.

    Parameters
    ----------
    n_samples : int, default=600
        Number of series.  Must be at least ``n_classes``.
    n_channels : int, default=6
        Number of measured channels (the time channel comes on top).
    n_timesteps : int, default=96
        Number of time steps per series (maximum length).  At least 8.
    n_classes : int, default=2
        Number of classes, at least 2.  With more than two classes, classes
        differ by combinations of slope level and burst type.
    n_noise_channels : int or None, default=None
        Number of label-independent channels.  ``None`` means
        ``n_channels // 3``.  At most ``n_channels - 1``.  The informative
        channels are split into slow (the larger half) and fast ones; a
        single informative channel carries both cues and is listed as both.
    irregular : bool, default=True
        If True, gaps between time stamps are drawn i.i.d. in [0.2, 3] with
        mean about 1 (a gamma body with occasional long gaps); the first
        stamp lies in [0, 0.5).  If False, time stamps are 0, 1, 2, ...
    missing_rate : float, default=0.2
        Fraction of measured values (not time stamps) replaced by NaN at
        random, in [0, 1).  Every channel of every sample keeps at least one
        observation.
    variable_length : bool, default=False
        If True, sample ``i`` has a random length in
        ``[n_timesteps // 2, n_timesteps]`` and the remaining steps are NaN
        in every channel, time included (trailing padding).
    weights : array-like of shape (n_classes,) or (n_classes - 1,), default=None
        Class proportions; ``None`` gives balanced classes.  As in
        :func:`sklearn.datasets.make_classification`, the last proportion is
        inferred when ``n_classes - 1`` values are given.  Counts are
        obtained by rounding, and every class gets at least one sample.
    class_sep : float, default=1.0
        Multiplier of the class effect sizes (slope difference and burst
        amplitude).  Larger values make the problem easier.
    random_state : int, RandomState, Generator or None, default=None
        Controls all randomness; the same seed gives identical arrays.
    return_info : bool, default=False
        If True, also return a dict describing the channel roles.

    Returns
    -------
    X : ndarray of shape (n_samples, 1 + n_channels, n_timesteps), float64
        Channel 0 is time (strictly increasing on the valid steps of each
        sample); channels 1 to ``n_channels`` are measurements with NaN for
        missing values.
    y : ndarray of shape (n_samples,), int
        Labels in ``0 .. n_classes - 1``, in shuffled order.
    info : dict, only if ``return_info=True``
        ``{"time_channel": 0, "slow_channels": [...], "fast_channels":
        [...], "noise_channels": [...]}`` with indices into the channel axis
        of ``X`` (measured channels are therefore numbered from 1).

    Notes
    -----
    With the default settings a well-suited model should reach a ROC AUC of
    roughly 0.85-0.95, whereas logistic regression on per-channel means is
    close to chance.

    Examples
    --------
    >>> from mrmoe_sklearn.datasets import make_multirate_classification
    >>> X, y, info = make_multirate_classification(
    ...     n_samples=50, random_state=0, return_info=True)
    >>> X.shape
    (50, 7, 96)
    >>> info["time_channel"]
    0
    """
    n_noise = _check_sizes(n_samples, n_channels, n_classes, n_noise_channels)
    w = _validate_weights(weights, n_classes)
    rng = _as_random_state(random_state)
    # The stages draw from ``rng`` in this order; changing it changes every data set.
    y = _draw_labels(rng, n_samples, w)
    slow_ch, fast_ch, noise_ch = _channel_roles(rng, n_channels, n_noise)
    t, gaps = _time_stamps(rng, n_samples, n_timesteps, irregular)
    lengths, valid = _lengths(rng, n_samples, n_timesteps, variable_length)
    slope_level, burst_type = _class_codes(n_classes)
    values = np.empty((n_samples, n_channels, n_timesteps))
    if slow_ch.size:
        values[:, slow_ch - 1, :] = _slow_channels(rng, t, valid, lengths, slope_level[y], slow_ch.size, class_sep)
    if fast_ch.size:
        fast = _fast_channels(rng, t, gaps, lengths, burst_type[y], fast_ch.size, class_sep)
        if n_channels - n_noise == 1:  # the one informative channel carries both cues
            values[:, fast_ch - 1, :] += fast
        else:
            values[:, fast_ch - 1, :] = fast
    if noise_ch.size:
        values[:, noise_ch - 1, :] = _noise_channels(rng, gaps, noise_ch.size)
    values = _affine_map(rng, values)
    if missing_rate > 0:
        _drop_values(rng, values, valid, lengths, missing_rate)

    X = np.empty((n_samples, 1 + n_channels, n_timesteps), dtype=np.float64)
    X[:, 0, :] = t
    X[:, 1:, :] = values
    X[~np.broadcast_to(valid[:, None, :], X.shape)] = np.nan
    y = y.astype(np.int64)
    if return_info:
        info = {
            "time_channel": 0,
            "slow_channels": [int(c) for c in slow_ch],
            "fast_channels": [int(c) for c in fast_ch],
            "noise_channels": [int(c) for c in noise_ch],
        }
        return X, y, info
    return X, y


# --------------------------------------------------------------------------- stages
def _check_sizes(n_samples, n_channels, n_classes, n_noise_channels):
    """Check what the constraints cannot (sizes bounded by others); return the number of noise channels."""
    caller = "make_multirate_classification"
    if n_samples < n_classes:
        raise invalid_parameter("n_samples", caller, f"an int >= n_classes ({n_classes})", n_samples)
    if n_noise_channels is None:
        return n_channels // 3
    if n_noise_channels > n_channels - 1:
        allowed = f"None or an int in the range [0, {n_channels - 1}] (n_channels - 1: one channel is informative)"
        raise invalid_parameter("n_noise_channels", caller, allowed, n_noise_channels)
    return int(n_noise_channels)


def _draw_labels(rng, n, weights):
    """Labels with counts rounded from ``weights`` (each class at least once), in shuffled order."""
    counts = _class_counts(n, weights)
    y = np.repeat(np.arange(len(weights)), counts)
    return y[rng.permutation(n)]


def _channel_roles(rng, n_channels, n_noise):
    """Indices (from 1, channel 0 is time) of the slow, fast and noise channels.

    The informative channels are split into slow (the larger half) and fast
    ones; a single informative channel is both.
    """
    n_inf = n_channels - n_noise
    n_slow = (n_inf + 1) // 2
    perm = rng.permutation(n_channels) + 1
    noise_ch = np.sort(perm[:n_noise])
    slow_ch = np.sort(perm[n_noise : n_noise + n_slow])
    fast_ch = np.sort(perm[n_noise + n_slow :])
    if n_inf == 1:
        fast_ch = slow_ch.copy()
    return slow_ch, fast_ch, noise_ch


def _time_stamps(rng, n, T, irregular):
    """Time stamps ``(n, T)`` and the gaps between them ``(n, T - 1)``.

    Irregular gaps are a gamma body in [0.2, 3] with occasional long gaps
    (15%) and a first stamp in [0, 0.5); regular stamps are 0, 1, 2, ...
    """
    if irregular:
        long_gap = rng.random_sample((n, T - 1)) < 0.15
        gaps = np.where(
            long_gap,
            rng.uniform(1.2, 3.0, size=(n, T - 1)),
            0.2 + rng.gamma(4.0, 0.15, size=(n, T - 1)),
        )
        gaps = np.clip(gaps, 0.2, 3.0)
        t0 = rng.uniform(0.0, 0.5, size=n)
    else:
        gaps = np.ones((n, T - 1))
        t0 = np.zeros(n)
    t = np.concatenate([t0[:, None], t0[:, None] + np.cumsum(gaps, axis=1)], axis=1)
    return t, gaps


def _lengths(rng, n, T, variable_length):
    """Valid length of every series (in ``[T // 2, T]`` when variable) and the valid-step mask ``(n, T)``."""
    if variable_length:
        low = T // 2
        lengths = low + np.floor(rng.random_sample(n) * (T - low + 1)).astype(int)
        lengths = np.minimum(lengths, T)
    else:
        lengths = np.full(n, T)
    valid = np.arange(T)[None, :] < lengths[:, None]
    return lengths, valid


def _slow_channels(rng, t, valid, lengths, sample_slope, k, class_sep):
    """``k`` slow channels ``(n, k, T)``: a class-dependent drift under a fast oscillation and noise."""
    n, T = t.shape
    t_centre = np.where(valid, t, 0.0).sum(axis=1) / lengths
    shared = rng.normal(size=(n, 1))
    own = rng.normal(size=(n, k))
    rho = _SLOPE_JITTER_SHARED
    slope = class_sep * _SLOPE * sample_slope[:, None] + _SLOPE_JITTER * (
        np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * own
    )
    period = rng.uniform(*_OSC_PERIOD, size=(n, k))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, k))
    level = rng.normal(size=(n, k))
    tt = t[:, None, :]
    return (
        level[:, :, None]
        + slope[:, :, None] * (tt - t_centre[:, None, None])
        + _OSC_AMP * np.sin(2.0 * np.pi * tt / period[:, :, None] + phase[:, :, None])
        + _SLOW_WHITE * rng.normal(size=(n, k, T))
    )


def _fast_channels(rng, t, gaps, lengths, sample_burst, k, class_sep):
    """``k`` fast channels ``(n, k, T)``: class bursts and artefact spikes on an OU and white-noise background."""
    n, T = t.shape
    background = _ou_paths(rng, gaps, k, tau=4.0, sigma=_FAST_OU)
    background += _FAST_WHITE * rng.normal(size=(n, k, T))
    signal = _class_bursts(rng, t, lengths, sample_burst, k, class_sep)
    # Label-independent artefacts: a single-step spike of random sign.
    decoy = rng.random_sample((n, k)) < _DECOY_PROB
    pos = np.floor(rng.random_sample((n, k)) * lengths[:, None]).astype(int)
    sign = np.where(rng.random_sample((n, k)) < 0.5, -1.0, 1.0)
    amp = _DECOY_AMP * rng.uniform(0.8, 1.2, size=(n, k)) * sign * decoy
    ii, cc = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    signal[ii, cc, pos] += amp
    return background + signal


def _class_bursts(rng, t, lengths, sample_burst, k, class_sep):
    """The class bursts ``(n, k, T)``: one or two per channel (sometimes none), often early."""
    n, T = t.shape
    signal = np.zeros((n, k, T))
    t_start = t[:, 0]
    span = np.maximum(t[np.arange(n), lengths - 1] - t_start, 1e-9)
    tt = t[:, None, :]
    for b_type in np.unique(sample_burst):
        if b_type == 0:
            continue
        rows = np.flatnonzero(sample_burst == b_type)
        m = rows.size
        width_f = _burst_width_factor(b_type)
        n_bursts = 1 + (rng.random_sample((m, k)) < 0.5)
        shown = rng.random_sample((m, k)) >= _BURST_MISS
        for slot in range(2):
            present = shown & (n_bursts > slot)
            # Beta(1, 2) position along the valid span: often early.
            frac = rng.beta(1.0, 2.0, size=(m, k))
            centre = t_start[rows, None] + 1.0 + frac * np.maximum(span[rows, None] - 2.0, 0.0)
            width = rng.uniform(*_BURST_WIDTH, size=(m, k)) * width_f
            amp = class_sep * _BURST_AMP * rng.uniform(0.6, 1.4, size=(m, k))
            amp = np.where(present, amp, 0.0)
            u = (tt[rows] - centre[:, :, None]) / width[:, :, None]
            signal[rows] += amp[:, :, None] * _burst_shape(u, b_type)
    return signal


def _noise_channels(rng, gaps, k):
    """``k`` label-independent channels ``(n, k, T)``: OU processes and random walks (alternately), plus noise."""
    n, T = gaps.shape[0], gaps.shape[1] + 1
    is_walk = (np.arange(k) % 2) == 1
    tau = rng.uniform(3.0, 15.0, size=(1, k))
    ou = _ou_paths(rng, gaps, k, tau=tau, sigma=1.0)
    steps = rng.normal(size=(n, k, T - 1)) * np.sqrt(gaps)[:, None, :] * 0.15
    walk = np.concatenate([rng.normal(size=(n, k, 1)), np.cumsum(steps, axis=2)], axis=2)
    walk[:, :, 1:] += walk[:, :, :1]
    noise = np.where(is_walk[None, :, None], walk, ou)
    noise += _NOISE_WHITE * rng.normal(size=(n, k, T))
    return noise


def _affine_map(rng, values):
    """Every channel scaled by about 0.1 to 20 and offset by up to a few hundred."""
    n_channels = values.shape[1]
    scale = 10.0 ** rng.uniform(-1.0, 1.3, size=n_channels)
    offset = scale * rng.uniform(-3.0, 12.0, size=n_channels)
    return values * scale[None, :, None] + offset[None, :, None]


def _drop_values(rng, values, valid, lengths, missing_rate):
    """Set a ``missing_rate`` of the valid values to NaN in place, keeping one per sample and channel."""
    n, n_channels, T = values.shape
    miss = (rng.random_sample((n, n_channels, T)) < missing_rate) & valid[:, None, :]
    empty = ~np.any(valid[:, None, :] & ~miss, axis=2)
    if np.any(empty):
        rows, chans = np.nonzero(empty)
        keep = np.floor(rng.random_sample(rows.size) * lengths[rows]).astype(int)
        miss[rows, chans, keep] = False
    values[miss] = np.nan
