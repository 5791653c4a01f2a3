"""Feature-level and temporal attention."""

import torch
from torch import nn

__all__ = ["FeatureAttention", "TemporalAttention"]


class FeatureAttention(nn.Module):
    """Per-step weights over features that can suppress noisy variables.

    Weights ``p (..., F)`` come from ``[x, m]`` by one linear layer and a
    softmax over features; the output is ``F * p * x``, so uniform weights are
    the identity.

    Parameters
    ----------
    n_features : int
        Number of features ``F``.
    """

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features
        self.score = nn.Linear(2 * n_features, n_features)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, x, m):
        """Weight the features.

        Parameters
        ----------
        x : Tensor of shape (..., F)
            Values, 0 where missing (any leading shape, e.g. time-major ``(T, B, F)``).
        m : Tensor of shape (..., F)
            Observed mask (float), same leading shape.

        Returns
        -------
        x_weighted : Tensor of shape (..., F)
            ``F * p * x``: uniform weights leave ``x`` unchanged.
        p : Tensor of shape (..., F)
            The weights (a softmax over features, summing to 1).
        """
        F = self.n_features
        W = self.score.weight
        # score([x, m]) as two products into one buffer: no concatenated copy of the input.
        scores = torch.addmm(self.score.bias, x.reshape(-1, F), W[:, :F].t())
        scores = scores.addmm_(m.reshape(-1, F), W[:, F:].t()).view(x.shape)
        p = torch.softmax(scores, dim=-1)
        return (p * x).mul_(F), p


class TemporalAttention(nn.Module):
    """Attention pooling over the hidden states of each expert.

    Parameters
    ----------
    n_experts : int
    hidden_size : int
    """

    def __init__(self, n_experts, hidden_size):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_experts, hidden_size))
        self.bias = nn.Parameter(torch.zeros(n_experts))
        nn.init.normal_(self.weight, std=hidden_size**-0.5)

    def forward(self, hs, valid):
        """Pool the states of valid windows.

        Parameters
        ----------
        hs : list of K Tensors of shape (n_k, B, H)
            States of each expert over its own windows.
        valid : list of K Tensors of shape (n_k, B), bool
            Valid windows; every (expert, sample) has at least one.

        Returns
        -------
        context : Tensor of shape (K, B, H)
        weights : list of K Tensors of shape (n_k, B)
            Softmax weights over each expert's windows, 0 on invalid ones.
        """
        # One expert at a time, on its own steps: the scores are one matrix-vector
        # product over contiguous states (a padded (S, K, B, H) block with
        # broadcast products was measured several times slower on CPU).
        contexts, weights = [], []
        # the experts' weights unbound once (not one parameter slice per expert)
        for h, ok, weight, bias in zip(hs, valid, self.weight.unbind(0), self.bias.unbind(0)):
            n, B, H = h.shape
            scores = torch.addmv(bias, h.reshape(n * B, H), weight).view(n, B)
            # the softmax over time on (B, n) rows: over the first axis of (n, B), torch's
            # vectorised and tail lanes round differently, so a sample's weights would depend
            # on its position in the batch (scikit-learn's sample-order invariance check)
            scores = scores.masked_fill(~ok, float("-inf")).t().contiguous()
            w = torch.softmax(scores, dim=1).t()
            contexts.append((w.unsqueeze(-1) * h).sum(0))
            weights.append(w)
        return torch.stack(contexts), weights
