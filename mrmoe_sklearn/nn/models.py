"""The complete networks: the multi-rate mixture of liquid experts and the LSTM baseline.

Both take the batch produced by :func:`mrmoe_sklearn._data.prepare_batch` as
keyword arguments ``x (B, T, F)``, ``m (B, T, F)``, ``dt (B, T)``, ``v (B, T)``
and return class logits ``(B, n_classes)``.
"""

import torch
import torch.nn.functional as F
from torch import nn

from . import fused
from .attention import FeatureAttention, TemporalAttention
from .experts import MultiRateCfC, carry_forward, window_sums
from .gating import Gate, check_balance

__all__ = ["MRMoENet", "LSTMNet", "carry_forward", "row_copies"]


def _trim(x, m, dt, v, cast=True):
    """Drop trailing steps that no sample uses; cast the masks to float (unless ``cast=False``)."""
    length = int(v.sum(1).max().item()) if v.numel() else 0
    length = max(length, 1)
    x, m, dt, v = x[:, :length], m[:, :length], dt[:, :length], v[:, :length]
    return (x, m.to(x.dtype), dt, v.to(x.dtype)) if cast else (x, m, dt, v)


def _rows_of(t, index):
    """``t``'s rows at ``index`` (None stays None)."""
    return None if t is None else t.index_select(0, index)


#: Modules that :meth:`MRMoENet._head` may run as their functions.
_PLAIN_MODULES = (nn.Linear, nn.GELU, nn.Dropout)


def _plain(*modules):
    """Whether calling each of ``modules`` is calling its function: a plain linear, GELU or dropout
    module (not a subclass) without forward hooks."""
    return all(type(m) in _PLAIN_MODULES and not (m._forward_hooks or m._forward_pre_hooks) for m in modules)


def row_copies(n, block, device=None):
    """The rows ``0, 1, ..., n - 1, 0, 1, ...`` up to a whole number of blocks of ``block`` rows.

    Parameters
    ----------
    n : int
        Rows of the batch.
    block : int
        Rows per block (0: none).
    device : torch.device or str or None, default=None

    Returns
    -------
    index : Tensor of shape (rows,) or None
        ``arange(rows) % n``; None where ``n`` is already a whole number of
        blocks, or ``block`` is 0.
    """
    rows = -(-n // block) * block if block else n
    return None if rows == n else torch.arange(rows, device=device) % n


class MRMoENet(nn.Module):
    """Multi-rate mixture of CfC experts with feature and temporal attention.

    Parameters
    ----------
    n_features : int
        Number of input features ``F`` (the time channel excluded).
    n_classes : int
        Number of output logits.
    rates : sequence of int, default=(1, 2, 4, 8)
        Rate of each expert (window length in steps), sorted internally.
    hidden_size : int, default=16
        Hidden units per expert.
    backbone_units : int, default=32
        Width of each expert's CfC backbone.
    feature_attention : bool, default=True
        Weight the features per step (else identity).
    temporal_attention : bool, default=True
        Pool each expert's states by attention (else its last valid state).
    gate : bool, default=True
        Weigh the experts per sample by a gating network (else uniformly).
    top_k : int or None, default=None
        Keep only the ``top_k`` largest gate weights.
    gate_hidden : int, default=16
        Hidden units of the gating network.
    head_size : int, default=32
        Common width the experts' contexts are projected to.
    dropout : float, default=0.1
        Dropout before the output layer.
    load_balance : {"cv", "switch"}, default="cv"
        Form of the load-balancing loss, see :func:`load_balance_loss`.
    carry_forward : bool, default=False
        Also give the experts, at every step, each feature's last observed
        value and the log of ``1 +`` the time since that observation
        (GRU-D-style inputs for sparse charts, see :func:`carry_forward`).
    n_summary : int, default=0
        Width of the per-sample summary vector ``s`` passed to
        :meth:`forward` (per-channel statistics, static descriptors); it
        enters the head through one linear layer added to the experts'
        mixture. 0 means no such input.
    summary_hidden : int, default=0
        With summaries, a hidden layer of this width (GELU, dropout) before
        that linear layer; 0 for the linear layer alone.
    row_block : int, default=0
        In evaluation, compute as if the batch were copied row by row up to a
        whole number of blocks of this many rows, so that a sample's result
        does not depend on how many samples it is computed with (CPU matrix
        products round differently for some row counts). Only the parts
        whose arithmetic spans the rows are given the copies: the head (the
        summaries' MLP and the output layer), and the mixture too where it
        does not run as the one compiled call (see
        :func:`~mrmoe_sklearn.nn.fused.per_sample`). 0: the batch as it is.

    Attributes
    ----------
    aux_loss : Tensor or None
        Load-balancing loss of the last forward pass in training mode.
    """

    def __init__(
        self,
        n_features,
        n_classes,
        rates=(1, 2, 4, 8),
        hidden_size=16,
        backbone_units=32,
        feature_attention=True,
        temporal_attention=True,
        gate=True,
        top_k=None,
        gate_hidden=16,
        head_size=32,
        dropout=0.1,
        load_balance="cv",
        carry_forward=False,
        n_summary=0,
        summary_hidden=0,
        row_block=0,
    ):
        super().__init__()
        self.row_block = int(row_block)
        self.rates = tuple(sorted(int(r) for r in rates))
        K = len(self.rates)
        check_balance(load_balance)
        self.load_balance = load_balance
        self.carry_forward = bool(carry_forward)
        self.feature_attention = FeatureAttention(n_features) if feature_attention else None
        n_inputs = (4 if self.carry_forward else 2) * n_features
        self.experts = MultiRateCfC(n_inputs, self.rates, hidden_size, backbone_units)
        self.temporal_attention = TemporalAttention(K, hidden_size) if temporal_attention else None
        self.gate = Gate(n_features, K, gate_hidden, top_k) if gate and K > 1 else None
        self.proj_weight = nn.Parameter(torch.empty(K, hidden_size, head_size))
        self.proj_bias = nn.Parameter(torch.zeros(K, head_size))
        nn.init.uniform_(self.proj_weight, -(hidden_size**-0.5), hidden_size**-0.5)
        self.summary = None
        if n_summary and summary_hidden:
            self.summary = nn.Sequential(
                nn.Linear(n_summary, summary_hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(summary_hidden, head_size),
            )
        elif n_summary:
            self.summary = nn.Linear(n_summary, head_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(head_size, n_classes)
        self.aux_loss = None

    def forward(self, x, m, dt, v, s=None, return_details=False):
        """Class logits of a batch.

        Parameters
        ----------
        x, m : Tensor of shape (B, T, F)
        dt, v : Tensor of shape (B, T)
        s : Tensor of shape (B, n_summary) or None
            Per-sample summary inputs; required when ``n_summary > 0``.
        return_details : bool, default=False
            Also return a dict with ``feature_weights (B, F)``, ``gate_weights
            (B, K)`` and ``temporal_weights (B, K, T)`` mapped to the input steps.

        Returns
        -------
        logits : Tensor of shape (B, n_classes)
        details : dict, only with ``return_details=True``
        """
        n = x.shape[0]
        # (row_block is 0 in networks pickled before it)
        copies = None if self.training else row_copies(n, getattr(self, "row_block", 0), x.device)
        if copies is None:
            return self._forward(x, m, dt, v, s, return_details)
        parts = (self.feature_attention, self.experts, self.gate, self.temporal_attention)
        if fused.per_sample(x, m, dt, v, *parts, self.proj_weight, self.proj_bias, self.carry_forward):
            return self._forward(x, m, dt, v, s, return_details, copy_head=True)
        # every part on the copies, cut back to the batch's own rows
        out = self._forward(x[copies], m[copies], dt[copies], v[copies], _rows_of(s, copies), return_details)
        if not return_details:
            return out[:n]
        return out[0][:n], {key: value[:n] for key, value in out[1].items()}

    def _forward(self, x, m, dt, v, s, return_details, copy_head=False):
        """:meth:`forward` on the batch as it is; with ``copy_head``, the head computed on whole blocks
        of ``row_block`` rows (the mixture computes each sample on its own)."""
        T_in = x.shape[1]
        x, m, dt, v = _trim(x, m, dt, v, cast=False)
        z, g, a, weights, self.aux_loss = fused.mixture(
            x,
            m,
            dt,
            v,
            self.feature_attention,
            self.experts,
            self.gate,
            self.temporal_attention,
            self.proj_weight,
            self.proj_bias,
            self.carry_forward,
            return_details,
            self.load_balance if self.training else None,
        )
        if self.summary is not None and s is None:
            raise ValueError("This network was built with n_summary > 0 and needs the summary input s.")
        if not copy_head:
            logits = self._head(z, s)
        else:
            # the whole blocks as they are; only the last, partial block is filled up (with copies of
            # its own rows), so a prediction batch copies at most one block of summaries
            n = z.shape[0]
            whole = n - n % self.row_block
            tail = whole + row_copies(n - whole, self.row_block, z.device)
            logits = self._head(z.index_select(0, tail), _rows_of(s, tail))[: n - whole]
            if whole:
                logits = torch.cat([self._head(z[:whole], None if s is None else s[:whole]), logits])
        if not return_details:
            return logits
        details = {"gate_weights": g}
        v = v.to(x.dtype)  # the valid-step mask as floats
        if a is not None:
            denom = v.sum(1, keepdim=True).clamp(min=1.0)
            details["feature_weights"] = (a * v[..., None]).sum(1) * a.shape[-1] / denom  # mean 1
        else:
            details["feature_weights"] = torch.ones_like(x[:, 0])
        details["temporal_weights"] = self._step_weights(weights, v, T_in)
        return logits, details

    def _head(self, z, s):
        """Logits from the mixture's output ``z`` and the summaries ``s``.

        Plain linear, GELU and dropout modules without hooks run as their
        functions: at a few steps per series, the module calls' own overhead
        (about 5 us each) was a measurable part of a training step. Any other
        module (a hook registered on it, a replaced or quantised layer) is
        called as a module.
        """
        summary, training = self.summary, self.training
        if summary is not None and not _plain(*summary.children() if isinstance(summary, nn.Sequential) else [summary]):
            z = z + summary(s)
        elif isinstance(summary, nn.Sequential):  # linear, GELU, dropout, linear
            first, gelu, dropout, second = summary
            h = F.gelu(F.linear(s, first.weight, first.bias), approximate=gelu.approximate)
            z = z + F.linear(F.dropout(h, dropout.p, training), second.weight, second.bias)
        elif summary is not None:
            z = z + F.linear(s, summary.weight, summary.bias)
        if not _plain(self.dropout, self.out):
            return self.out(self.dropout(z))
        return F.linear(F.dropout(z, self.dropout.p, training), self.out.weight, self.out.bias)

    def _step_weights(self, weights, v, T_in):
        """Map window attention weights (K tensors ``(n_k, B)``) back to steps ``(B, K, T_in)``."""
        B, T = v.shape
        out = v.new_zeros(B, len(self.rates), T_in)
        if weights is None:
            return out
        for k, rate in enumerate(self.rates):
            w = weights[k].t()  # (B, n)
            per_step = w.repeat_interleave(rate, dim=1)[:, :T]
            counts = window_sums(v.t(), rate).t()  # valid steps per window
            per_window = counts.clamp(min=1.0).repeat_interleave(rate, dim=1)[:, :T]
            out[:, k, :T] = per_step * v / per_window
        return out


class LSTMNet(nn.Module):
    """``torch.nn.LSTM`` on ``[x, m, dt]``, classified from the last valid state.

    Parameters
    ----------
    n_features : int
    n_classes : int
    hidden_size : int, default=64
    num_layers : int, default=1
    dropout : float, default=0.1
    """

    def __init__(self, n_features, n_classes, hidden_size=64, num_layers=1, dropout=0.1):
        super().__init__()
        self.lstm = nn.LSTM(2 * n_features + 1, hidden_size, num_layers=num_layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, n_classes)
        self.aux_loss = None

    def forward(self, x, m, dt, v, s=None, return_details=False):
        """Class logits ``(B, n_classes)``; no explanation details exist (``s`` is ignored)."""
        x, m, dt, v = _trim(x, m, dt, v)
        out, _ = self.lstm(torch.cat([x, m, dt[..., None]], dim=-1))
        last = (v.sum(1).long() - 1).clamp(min=0)
        h = out[torch.arange(out.shape[0], device=out.device), last]
        logits = self.out(self.dropout(h))
        if return_details:
            raise ValueError("LSTMNet has no attention or gate weights to explain.")
        return logits
