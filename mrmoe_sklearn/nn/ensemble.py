"""Several networks trained side by side on the same batches, predicting as one."""

import math

import torch
from torch import nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """Members of the same architecture with their own initial weights.

    In training every member sees the same batch and is trained on its own
    loss (the criterion is applied to each member's logits and averaged, see
    :attr:`member_logits`): the members stay independent models that differ by
    their initial weights and dropout. In evaluation the ensemble predicts the
    mean of the members' class probabilities, returned as log-probabilities
    (logits of that mean), so its validation loss, the early-stopping signal,
    is the ensemble's own.

    Parameters
    ----------
    members : sequence of nn.Module
        Networks mapping the keyword batch to logits ``(B, n_classes)``; each
        may set ``aux_loss`` (averaged over the members).
    combine : {"proba", "mean"}, default="proba"
        How the members' outputs are combined in evaluation: ``"proba"``, the
        mean class probability as log-probabilities (classifiers); ``"mean"``,
        the mean output (regressors).

    Attributes
    ----------
    member_logits : Tensor of shape (n_members, B, n_classes) or None
        The members' logits of the last forward pass in training mode.
    aux_loss : Tensor or None
        Mean of the members' auxiliary losses of that pass.
    """

    def __init__(self, members, combine="proba"):
        super().__init__()
        if combine not in ("proba", "mean"):
            raise ValueError(f"combine must be 'proba' or 'mean', got {combine!r}.")
        self.combine = combine
        self.members = nn.ModuleList(members)
        if len(self.members) < 1:
            raise ValueError("An ensemble needs at least one member.")
        self.member_logits = None
        self.aux_loss = None

    # the members' structure, for explanations and fitted attributes
    @property
    def rates(self):
        return self.members[0].rates

    @property
    def feature_attention(self):
        return self.members[0].feature_attention

    @property
    def summary(self):
        return self.members[0].summary

    @property
    def row_block(self):
        """The members' ``row_block`` where they share one (each computes its own copies), else 0."""
        blocks = {getattr(member, "row_block", 0) for member in self.members}
        return blocks.pop() if len(blocks) == 1 else 0

    def forward(self, return_details=False, **batch):
        """Mean class probabilities of the members as log-probabilities ``(B, n_classes)``
        (with ``combine="mean"``: the members' mean output).

        With ``return_details=True`` also the members' explanation details
        (feature, temporal and gate weights), averaged.
        """
        outs = [member(**batch, return_details=return_details) for member in self.members]
        logits = [o[0] for o in outs] if return_details else outs
        auxes = [m.aux_loss for m in self.members if getattr(m, "aux_loss", None) is not None]
        self.aux_loss = torch.stack(auxes).mean() if auxes else None
        stacked = torch.stack(logits)
        if self.training:
            self.member_logits = stacked
        if self.combine == "mean":
            out = stacked.mean(0)
        else:
            out = torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(len(logits))
        if not return_details:
            return out
        details = {k: torch.stack([o[1][k] for o in outs]).mean(0) for k in outs[0][1]}
        return out, details
