"""Feature-level and temporal attention."""

import torch
from torch import nn

__all__ = ["FeatureAttention", "TemporalAttention"]


class FeatureAttention(nn.Module):
    """Per-step weights over features that can suppress noisy variables.

    Weights ``a (B, T, F)`` come from ``[x, m]`` by one linear layer, a softmax
    over features and a factor ``F``, so uniform weights are the identity.

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
        x : Tensor of shape (B, T, F)
            Values, 0 where missing.
        m : Tensor of shape (B, T, F)
            Observed mask (float).

        Returns
        -------
        x_weighted : Tensor of shape (B, T, F)
        a : Tensor of shape (B, T, F)
            The weights (mean 1 over features).
        """
        a = torch.softmax(self.score(torch.cat([x, m], dim=-1)), dim=-1) * self.n_features
        return a * x, a


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
        hs : Tensor of shape (S, K, B, H)
        valid : Tensor of shape (S, K, B), bool
            Valid windows; every (expert, sample) has at least one.

        Returns
        -------
        context : Tensor of shape (K, B, H)
        weights : Tensor of shape (S, K, B)
            Softmax weights over windows, 0 on invalid ones.
        """
        # Broadcast products rather than einsum: einsum maps these shapes to
        # batched matrix products of width 1, several times slower on CPU.
        scores = (hs * self.weight[:, None, :]).sum(-1) + self.bias[:, None]
        scores = scores.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(scores, dim=0)
        return (weights.unsqueeze(-1) * hs).sum(0), weights
