"""Gating network of the mixture and its load-balancing loss."""

import torch
from torch import nn

__all__ = ["Gate", "sequence_summaries", "load_balance_loss"]


def sequence_summaries(x, m, v):
    """Per-sample summaries of each feature: mean, std, last value, observed fraction.

    Parameters
    ----------
    x : Tensor of shape (T, B, F)
        Values (time-major), 0 where missing.
    m : Tensor of shape (T, B, F)
        Observed mask (float).
    v : Tensor of shape (T, B)
        Valid-step mask (float).

    Returns
    -------
    summaries : Tensor of shape (B, 4 * F)
    """
    count = m.sum(0)
    denom = count.clamp(min=1.0)
    mean = x.sum(0) / denom  # x is 0 where missing
    dev = (x - mean).mul_(m)
    var = (dev * dev).sum(0) / denom
    std = torch.sqrt(var + 1e-6)
    steps = torch.arange(1, x.shape[0] + 1, device=x.device, dtype=x.dtype)
    last_idx = (m * steps[:, None, None]).amax(0).long().clamp(min=1) - 1
    last = torch.gather(x, 0, last_idx[None]).squeeze(0)
    frac = count / v.sum(0)[:, None].clamp(min=1.0)
    return torch.cat([mean, std, last, frac], dim=-1)


def load_balance_loss(gates, kind="cv"):
    """Auxiliary loss that keeps the experts in use.

    Parameters
    ----------
    gates : Tensor of shape (B, K)
        Gate weights (rows sum to 1; zeros where ``top_k`` dropped an expert).
    kind : {"cv", "switch"}, default="cv"
        ``"cv"``: squared coefficient of variation of the batch's summed gates
        (Shazeer et al. 2017). ``"switch"``: ``K * sum_k f_k P_k`` with ``f_k``
        the fraction of samples routed to expert k first and ``P_k`` its mean
        gate (Switch Transformer); its minimum is 1.

    Returns
    -------
    loss : Tensor, scalar
    """
    K = gates.shape[1]
    if K < 2:
        return gates.new_zeros(())
    if kind == "switch":
        frac = torch.nn.functional.one_hot(gates.argmax(1), K).to(gates.dtype).mean(0)
        return K * (frac * gates.mean(0)).sum()
    importance = gates.sum(0)
    return importance.var(unbiased=False) / (importance.mean() ** 2 + 1e-10)


class Gate(nn.Module):
    """Softmax gate over experts from sequence summaries, optionally top-k.

    Parameters
    ----------
    n_features : int
    n_experts : int
    hidden_size : int, default=16
    top_k : int or None, default=None
        Keep the ``top_k`` largest weights per sample and renormalise.
    """

    def __init__(self, n_features, n_experts, hidden_size=16, top_k=None):
        super().__init__()
        self.top_k = top_k
        self.net = nn.Sequential(nn.Linear(4 * n_features, hidden_size), nn.Tanh(), nn.Linear(hidden_size, n_experts))

    def forward(self, summaries):
        """Gate weights ``(B, K)`` whose rows sum to 1."""
        g = torch.softmax(self.net(summaries), dim=-1)
        if self.top_k is not None and self.top_k < g.shape[1]:
            kth = torch.topk(g, self.top_k, dim=-1).values[:, -1:]
            g = g * (g >= kth)
            g = g / g.sum(-1, keepdim=True)
        return g
