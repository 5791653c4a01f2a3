"""Gating network of the mixture and its load-balancing loss."""

import torch
from torch import nn
from torch.autograd.function import once_differentiable

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
        Differentiable once with respect to ``gates`` (its gradient has no
        graph of its own: no second derivatives).

    Notes
    -----
    Both forms depend on ``gates`` only through the K column sums (and, for
    ``"switch"``, each sample's first choice, which has no gradient), so the
    loss is computed from those K numbers in double precision and its
    gradient in closed form (:func:`balance_terms`): a few untracked small
    operations each way (the column sums read to the host, which on a GPU
    waits for the device) where autograd recorded and ran about twenty. The
    compiled mixture computes it inside its own call
    (:func:`~mrmoe_sklearn.nn.fused.mixture` with ``balance``).
    """
    return _LoadBalance.apply(gates, kind)


#: The forms of the load-balancing loss (:func:`load_balance_loss`).
BALANCE_KINDS = ("cv", "switch")


def check_balance(kind):
    """Raise a ValueError unless ``kind`` names a load-balancing loss (one of :data:`BALANCE_KINDS`)."""
    if kind not in BALANCE_KINDS:
        raise ValueError(f"The load-balancing loss must be {' or '.join(map(repr, BALANCE_KINDS))}, got {kind!r}.")


def balance_terms(gates, kind):
    """:func:`load_balance_loss` of ``gates`` as a number, and its gradient.

    Parameters
    ----------
    gates : Tensor of shape (B, K)
    kind : {"cv", "switch"}

    Returns
    -------
    loss : float
        0 for a batch without rows and for one expert (nothing to balance).
    grad : list of K floats
        ``d loss / d gates[b, k]``, the same for every sample b (the loss
        depends on the gates through their column sums; for ``"switch"``
        also through each sample's first choice, which has no gradient).

    Raises
    ------
    ValueError
        For another ``kind``.
    """
    check_balance(kind)
    n, K = gates.shape
    if n == 0 or K < 2:
        return 0.0, [0.0] * K
    sums = gates.detach().sum(0, dtype=torch.float64).tolist()
    if kind == "switch":
        first = torch.bincount(gates.detach().argmax(1), minlength=K).tolist()
        # K * sum_k (first_k / n) (sums_k / n)
        grad = [K * f / (n * n) for f in first]
        return sum(g * s for g, s in zip(grad, sums)), grad
    mean = sum(sums) / K
    var = sum((s - mean) ** 2 for s in sums) / K
    denom = mean * mean + 1e-10
    # d var / d s_k = 2 (s_k - mean) / K (the deviations sum to 0); d mean / d s_k = 1 / K
    grad = [2.0 / K * ((s - mean) / denom - var * mean / (denom * denom)) for s in sums]
    return var / denom, grad


def balance_gradient(grad, grad_loss, n_rows):
    """The gradient by the gates from the gradient by the load-balancing loss.

    Parameters
    ----------
    grad : list of K floats
        :func:`balance_terms`' gradient.
    grad_loss : Tensor, scalar
        The gradient by the loss.
    n_rows : int
        The gates' rows.

    Returns
    -------
    Tensor of shape (n_rows, K), contiguous
    """
    return (grad_loss.new_tensor(grad) * grad_loss).expand(n_rows, len(grad)).contiguous()


class _LoadBalance(torch.autograd.Function):
    """:func:`load_balance_loss` with its closed-form gradient."""

    @staticmethod
    def forward(ctx, gates, kind):
        loss, ctx.grad = balance_terms(gates, kind)
        ctx.rows = gates.shape[0]
        return gates.new_tensor(loss)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        return balance_gradient(ctx.grad, grad_loss, ctx.rows), None


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
