"""Multi-rate resampling and the mixture of CfC experts running at their own rates."""

import math

import torch
from torch import nn

from .cells import cfc_scan

__all__ = ["resample", "window_sums", "window_inputs", "carry_forward", "MultiRateCfC"]


def window_sums(z, width):
    """Sums of ``z`` over consecutive windows of ``width`` steps along the first (time) axis.

    Parameters
    ----------
    z : Tensor of shape (T, ...)
        Time-major; any strides.
    width : int

    Returns
    -------
    Tensor of shape (ceil(T / width), ...)
        The last window is completed with zeros.
    """
    if width == 1:
        return z
    T = z.shape[0]
    n = -(-T // width)
    if n * width != T:
        z = torch.cat([z, z.new_zeros(n * width - T, *z.shape[1:])])
    windows = z.view(n, width, *z.shape[1:])
    if width == 2 and not z.requires_grad:
        # One add of the two halves: 2-2.5x faster than a reduction over pairs
        # (measured). With a gradient the reduction stays: its backward is a
        # free broadcast where the halves' would be two zero-filled copies.
        return torch.add(windows[:, 0], windows[:, 1])
    return windows.sum(1)


class _Windows:
    """Window sums of a time-major batch at every rate asked for, each derived
    from the sums at the largest rate dividing it (rate 1 is the batch itself)."""

    def __init__(self, x, m, dt, v):
        self.sums = {1: (x, m, dt, v)}

    def at(self, rate):
        """``(sum x, count, sum dt, sum v)`` of windows of ``rate`` steps."""
        if rate not in self.sums:
            base = max(r for r in self.sums if rate % r == 0)
            self.sums[rate] = tuple(window_sums(z, rate // base) for z in self.sums[base])
        return self.sums[rate]


def carry_forward(x, m, dt):
    """Last observed value of each feature and the time since it, at every step.

    Parameters
    ----------
    x, m : Tensor of shape (T, B, F)
        Time-major values (0 where missing) and observed mask (float).
    dt : Tensor of shape (T, B)
        Elapsed time before each step.

    Returns
    -------
    Tensor of shape (T, B, 2 * F)
        ``[last, log1p(age)]``: the value at the feature's latest observed step
        up to and including this one (0, the standardised mean, before the
        first observation) and the time elapsed since that step (since the
        sequence's start before the first observation).
    """
    T = x.shape[0]
    steps = torch.arange(T, device=x.device)[:, None, None]
    idx = torch.where(m > 0, steps, 0).cummax(0).values
    last = x.gather(0, idx)
    clock = dt.cumsum(0) - dt[:1]  # time of each step since the first
    age = clock[..., None] - clock[..., None].expand_as(x).gather(0, idx)
    return torch.cat([last, torch.log1p(age.clamp(min=0.0))], dim=-1)


def resample(x, m, dt, v, rate):
    """Resample a time-major batch to windows of ``rate`` steps.

    Parameters
    ----------
    x : Tensor of shape (T, B, F)
        Values, 0 where missing.
    m : Tensor of shape (T, B, F)
        Observed mask (float).
    dt : Tensor of shape (T, B)
        Elapsed time before each step.
    v : Tensor of shape (T, B)
        Valid-step mask (float).
    rate : int
        Window length in steps.

    Returns
    -------
    mean : Tensor of shape (ceil(T / rate), B, F)
        Mask-aware mean of the observed values of each window (0 where none).
    frac : Tensor of shape (ceil(T / rate), B, F)
        Fraction of the window's steps in which each feature was observed.
    dt_w : Tensor of shape (ceil(T / rate), B)
        Elapsed time of each window (sum of its steps' elapsed times).
    v_w : Tensor of shape (ceil(T / rate), B)
        1 where the window holds at least one valid step.
    """
    mean, count, dt_w, valid = _window_stats(_Windows(x, m, dt, v), rate)
    return mean, count / rate, dt_w, valid.to(dt_w.dtype)


def _window_stats(windows, rate):
    """``(mean, count, dt, valid)`` of the windows of ``rate`` steps: the mean of the observed
    values (one step's mean is its value), the observed count, the elapsed time, and whether
    the window holds a valid step (bool)."""
    x_sum, count, dt_w, v_sum = windows.at(rate)
    mean = x_sum if rate == 1 else x_sum / count.clamp(min=1.0)
    return mean, count, dt_w, v_sum > 0


class MultiRateCfC(nn.Module):
    """``K`` CfC experts, expert ``k`` running on windows of ``rates[k]`` steps.

    All experts share one hidden size so that the experts of a step advance in
    one batched matrix product (:func:`~mrmoe_sklearn.nn.cells.cfc_scan`); an
    expert with rate ``r`` takes ``ceil(T / r)`` steps and stops there.

    Parameters
    ----------
    input_size : int
        Size of each window's input vector (``2 * n_features``, plus the
        width of ``extra`` when the forward pass is given one).
    rates : sequence of int
        Rate of each expert, non-decreasing (the fastest expert first).
    hidden_size : int
        Hidden units per expert.
    backbone_units : int
        Width of each expert's backbone layer.
    """

    def __init__(self, input_size, rates, hidden_size, backbone_units):
        super().__init__()
        rates = tuple(int(r) for r in rates)
        if any(r < 1 for r in rates) or list(rates) != sorted(rates):
            raise ValueError(f"rates must be positive and non-decreasing, got {rates}.")
        self.rates = rates
        K, H, U = len(rates), hidden_size, backbone_units
        self.hidden_size = H
        bound = math.sqrt(6.0 / (input_size + H + U))
        self.input_weight = nn.Parameter(torch.empty(K, input_size, U).uniform_(-bound, bound))
        self.input_bias = nn.Parameter(torch.zeros(K, U))
        self.recurrent_weight = nn.Parameter(torch.empty(K, H, U).uniform_(-bound, bound))
        hb = 1.0 / math.sqrt(U)
        self.head_weight = nn.Parameter(torch.empty(K, U, 4 * H).uniform_(-hb, hb))
        self.head_bias = nn.Parameter(torch.empty(K, 4 * H).uniform_(-hb, hb))

    def forward(self, x, m, dt, v, extra=None):
        """Run every expert over its resampled sequence.

        Parameters
        ----------
        x, m : Tensor of shape (T, B, F)
            Time-major values (0 where missing) and observed mask; any strides.
        dt, v : Tensor of shape (T, B)
        extra : Tensor of shape (T, B, E) or None, default=None
            Further per-step inputs defined at every step (such as the last
            observed values), averaged over each window's valid steps. The
            experts' ``input_size`` is then ``2 * F + E``.

        Returns
        -------
        hs : list of K Tensors of shape (n_k, B, H)
            Hidden states of expert ``k`` after each of its ``n_k = ceil(T / rates[k])`` steps.
        valid : list of K Tensors of shape (n_k, B), bool
            Valid windows of each expert.
        """
        windows, dts, valids = window_inputs(x, m, dt, v, self.distinct_rates, extra)
        return self.run(windows, dts, valids), [ok > 0 for ok in self.per_expert(valids)]

    @property
    def distinct_rates(self):
        """The rates once each, in order: the window inputs come one per distinct rate."""
        return tuple(dict.fromkeys(self.rates))

    def per_expert(self, per_rate):
        """Each expert's item of a sequence holding one item per distinct rate.

        Parameters
        ----------
        per_rate : sequence
            One item per entry of ``distinct_rates``.

        Returns
        -------
        list
            One item per expert (experts of the same rate share theirs).
        """
        by_rate = dict(zip(self.distinct_rates, per_rate))
        return [by_rate[rate] for rate in self.rates]

    def run(self, windows, dts, valids):
        """Run every expert over window inputs already computed.

        Parameters
        ----------
        windows : list of Tensors of shape (n_r, B, input_size)
            One per distinct rate, in the order of ``distinct_rates`` (:func:`window_inputs`).
        dts, valids : lists of Tensors of shape (n_r, B)
            Each rate's window elapsed times and valid-window mask (float).

        Returns
        -------
        hs : list of K Tensors of shape (n_k, B, H)
        """
        sizes = [self.rates.count(rate) for rate in self.distinct_rates]
        # the experts' input weights of each rate, cut in one split each (a slice of a
        # parameter per expert would be one more backward operation per slice)
        weights = self.input_weight.split(sizes) if len(sizes) > 1 else (self.input_weight,)
        biases = self.input_bias.split(sizes) if len(sizes) > 1 else (self.input_bias,)
        xin = []
        for win, k, W, bias in zip(windows, sizes, weights, biases):
            n, B, C = win.shape
            # every expert of the rate in one product: (n B, C) @ (C, k U)
            proj = torch.addmm(bias.reshape(-1), win.reshape(n * B, C), W.permute(1, 0, 2).reshape(C, -1))
            xin.extend(proj.view(n, B, k, -1).unbind(2) if k > 1 else [proj.view(n, B, -1)])
        dt_w = [d[..., None] for d in self.per_expert(dts)]
        v_w = [ok[..., None] for ok in self.per_expert(valids)]
        n_steps = [d.shape[0] for d in dt_w]
        active = []  # experts running at each step: k of them until the k-th stops
        for k in range(len(n_steps), 0, -1):
            active += [k] * (n_steps[k - 1] - len(active))
        return list(cfc_scan(xin, self.recurrent_weight, self.head_weight, self.head_bias, dt_w, v_w, active))


def window_inputs(x, m, dt, v, rates, extra=None):
    """The experts' inputs at each rate: their windows' mean values and observed fractions.

    Parameters
    ----------
    x, m : Tensor of shape (T, B, F)
        Time-major values (0 where missing) and observed mask (float); any strides.
    dt, v : Tensor of shape (T, B)
        Elapsed times and valid-step mask (float).
    rates : sequence of int
        Distinct window lengths.
    extra : Tensor of shape (T, B, E) or None, default=None
        Per-step inputs averaged over each window's valid steps.

    Returns
    -------
    windows : list of Tensors of shape (ceil(T / rate), B, 2F [+ E])
        ``[mean, count / rate (, extra mean)]`` of each rate's windows: the
        mean of the observed values (one step's mean is its value), the
        fraction of the window's steps in which each feature was observed.
    dts : list of Tensors of shape (ceil(T / rate), B)
        The windows' summed elapsed times.
    valids : list of Tensors of shape (ceil(T / rate), B)
        1.0 where a window holds a valid step.
    """
    windows = _Windows(x, m, dt, v)
    out, dts, valids = [], [], []
    for rate in rates:
        mean, count, d, ok = _window_stats(windows, rate)
        parts = [mean, count / rate]
        if extra is not None:
            parts.append(
                extra if rate == 1 else window_sums(extra, rate) / windows.at(rate)[3][..., None].clamp(min=1.0)
            )
        out.append(torch.cat(parts, dim=-1))
        dts.append(d)
        valids.append(ok.to(d.dtype))
    return out, dts, valids
