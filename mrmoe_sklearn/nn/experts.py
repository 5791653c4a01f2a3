"""Multi-rate resampling and the mixture of CfC experts running at their own rates."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .cells import cfc_scan

__all__ = ["resample", "MultiRateCfC"]


def resample(x, m, dt, v, rate):
    """Resample a batch to windows of ``rate`` steps.

    Parameters
    ----------
    x : Tensor of shape (B, T, F)
        Values, 0 where missing.
    m : Tensor of shape (B, T, F)
        Observed mask (float).
    dt : Tensor of shape (B, T)
        Elapsed time before each step.
    v : Tensor of shape (B, T)
        Valid-step mask (float).
    rate : int
        Window length in steps.

    Returns
    -------
    u : Tensor of shape (B, ceil(T / rate), 2 * F)
        Mask-aware mean of the observed values of each window, then the
        fraction of the window's steps in which each feature was observed.
    dt_w : Tensor of shape (B, ceil(T / rate))
        Elapsed time of each window (sum of its steps' elapsed times).
    v_w : Tensor of shape (B, ceil(T / rate))
        1 where the window holds at least one valid step.
    """
    if rate == 1:
        return torch.cat([x, m], dim=-1), dt, v
    B, T, n_feat = x.shape
    n = -(-T // rate)
    pad = n * rate - T
    if pad:
        x, m = F.pad(x, (0, 0, 0, pad)), F.pad(m, (0, 0, 0, pad))
        dt, v = F.pad(dt, (0, pad)), F.pad(v, (0, pad))
    count = m.view(B, n, rate, n_feat).sum(2)
    mean = x.view(B, n, rate, n_feat).sum(2) / count.clamp(min=1.0)
    u = torch.cat([mean, count / rate], dim=-1)
    return u, dt.view(B, n, rate).sum(2), v.view(B, n, rate).amax(2)


class MultiRateCfC(nn.Module):
    """``K`` CfC experts, expert ``k`` running on windows of ``rates[k]`` steps.

    All experts share one hidden size so that the experts of a step advance in
    one batched matrix product (:func:`~mrmoe_sklearn.nn.cells.cfc_scan`); an
    expert with rate ``r`` takes ``ceil(T / r)`` steps and stops there.

    Parameters
    ----------
    input_size : int
        Size of each window's input vector (``2 * n_features``).
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

    def forward(self, x, m, dt, v):
        """Run every expert over its resampled sequence.

        Parameters
        ----------
        x, m : Tensor of shape (B, T, F)
        dt, v : Tensor of shape (B, T)

        Returns
        -------
        hs : list of K Tensors of shape (n_k, B, H)
            Hidden states of expert ``k`` after each of its ``n_k = ceil(T / rates[k])`` steps.
        valid : list of K Tensors of shape (n_k, B), bool
            Valid windows of each expert.
        """
        B, T, _ = x.shape
        n_steps = [-(-T // r) for r in self.rates]
        S = n_steps[0]
        K = len(self.rates)
        xin = []  # one (n_k, B, U) tensor per expert: no padding to S steps
        dt_all = x.new_zeros(S, K, B, 1)
        v_all = x.new_zeros(S, K, B, 1)
        start = 0
        for rate in dict.fromkeys(self.rates):
            k = self.rates.count(rate)
            u, dt_w, v_w = resample(x, m, dt, v, rate)
            n = u.shape[1]
            sl = slice(start, start + k)
            group = torch.einsum("bni,kiu->knbu", u, self.input_weight[sl]) + self.input_bias[sl, None, None]
            xin.extend(group.unbind(0))
            dt_all[:n, sl] = dt_w.t()[:, None, :, None]
            v_all[:n, sl] = v_w.t()[:, None, :, None]
            start += k
        active = [sum(n > t for n in n_steps) for t in range(S)]
        hs = cfc_scan(xin, self.recurrent_weight, self.head_weight, self.head_bias, dt_all, v_all, active)
        valid = v_all.squeeze(-1) > 0
        return list(hs), [valid[:n, k] for k, n in enumerate(n_steps)]
