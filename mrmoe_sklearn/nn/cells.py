"""Closed-form continuous-time (CfC) liquid cells.

The CfC update (Hasani et al. 2022, "default" mode of the ncps library) with
``z = lecun_tanh(W_x x + W_h h + b)``::

    f1 = tanh(W1 z + b1)
    f2 = tanh(W2 z + b2)
    s  = sigmoid((Wa z + ba) * dt + (Wb z + bb))
    h' = f1 * (1 - s) + s * f2

:class:`CfCCell` is one cell with autograd, kept as the readable reference and
for checks against ncps. :func:`cfc_scan` runs ``K`` independent cells (the
experts) over their sequences at once: the input half of the backbone is
computed outside the recurrence, all experts of a step advance in one batched
matrix product, and the backward pass is written by hand so that each step is a
handful of fused tensor operations instead of an autograd graph.
"""

import math
import warnings
from typing import List, Tuple

import torch
from torch import nn

__all__ = ["CfCCell", "cfc_scan", "LECUN_OUTER", "LECUN_INNER"]

#: LeCun's scaled tanh, ``1.7159 * tanh(0.666 * x)``, as used by ncps.
LECUN_OUTER = 1.7159
LECUN_INNER = 0.666


class CfCCell(nn.Module):
    """One CfC cell (ncps "default" mode, LeCun-tanh backbone of one layer).

    Parameters
    ----------
    input_size : int
        Number of input features.
    hidden_size : int
        Number of hidden units.
    backbone_units : int, default=128
        Width of the backbone layer.

    Notes
    -----
    The backbone weight of ncps, ``Linear(input_size + hidden_size, units)``, is
    split here into ``input_proj`` (with the bias) and ``recurrent_weight`` so
    that the input half can be computed for a whole sequence at once. The four
    heads ``ff1, ff2, time_a, time_b`` are stacked in ``heads``.
    """

    def __init__(self, input_size, hidden_size, backbone_units=128):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.backbone_units = backbone_units
        self.input_proj = nn.Linear(input_size, backbone_units)
        self.recurrent_weight = nn.Parameter(torch.empty(hidden_size, backbone_units))
        self.heads = nn.Linear(backbone_units, 4 * hidden_size)
        bound = math.sqrt(6.0 / (input_size + hidden_size + backbone_units))
        nn.init.uniform_(self.input_proj.weight, -bound, bound)
        nn.init.uniform_(self.recurrent_weight, -bound, bound)

    def forward(self, x, h, dt):
        """Advance one step.

        Parameters
        ----------
        x : Tensor of shape (B, input_size)
        h : Tensor of shape (B, hidden_size)
        dt : Tensor of shape (B, 1)
            Elapsed time of the step.

        Returns
        -------
        h_new : Tensor of shape (B, hidden_size)
        """
        xin = self.input_proj(x)[None, None]
        hs = cfc_scan(
            xin,
            self.recurrent_weight[None],
            self.heads.weight.t()[None],
            self.heads.bias[None],
            dt[None, None],
            torch.ones_like(dt)[None, None],
            h0=h[None],
        )
        return hs[0, 0]

    @classmethod
    def from_ncps(cls, cell):
        """Build a cell holding the weights of an ``ncps.torch.CfCCell``.

        Parameters
        ----------
        cell : ncps.torch.CfCCell
            A cell in "default" mode with a one-layer LeCun-tanh backbone.

        Returns
        -------
        CfCCell
        """
        if getattr(cell, "mode", "default") != "default" or cell.backbone_layers != 1:
            raise ValueError("Only ncps cells in 'default' mode with one backbone layer map onto CfCCell.")
        lin = cell.backbone[0]
        ours = cls(cell.input_size, cell.hidden_size, lin.out_features)
        with torch.no_grad():
            ours.input_proj.weight.copy_(lin.weight[:, : cell.input_size])
            ours.input_proj.bias.copy_(lin.bias)
            ours.recurrent_weight.copy_(lin.weight[:, cell.input_size :].t())
            heads = [cell.ff1, cell.ff2, cell.time_a, cell.time_b]
            ours.heads.weight.copy_(torch.cat([m.weight for m in heads], 0))
            ours.heads.bias.copy_(torch.cat([m.bias for m in heads], 0))
        return ours


def _scan_forward(
    xin: torch.Tensor,
    h0: torch.Tensor,
    Wh: torch.Tensor,
    Wo: torch.Tensor,
    bo: torch.Tensor,
    dt: torch.Tensor,
    v: torch.Tensor,
    active: List[int],
    save: bool,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward recurrence; returns the states and what the backward pass needs.

    With ``save=False`` (inference) the intermediate buffers hold one step only.

    ``Wo`` comes pre-multiplied by ``LECUN_OUTER``; ``LECUN_INNER`` is applied
    inside the backbone's matrix product. ``hs[0]`` is ``h0``; ``hs[t + 1]`` the state after step t.
    """
    S, K, B, U = xin.shape
    H = Wh.shape[1]
    hs = xin.new_zeros(S + 1, K, B, H)
    hs[0] = h0
    # Only entries of active steps are written, and only those are read back.
    n_saved = S if save else 1
    TH = xin.new_empty(n_saved, K, B, U)
    Fb = xin.new_empty(n_saved, K, B, 2 * H)
    Sb = xin.new_empty(n_saved, K, B, H)
    bo3 = bo.unsqueeze(1)
    for t in range(S):
        a = active[t]
        i = t if save else 0
        h_prev = hs[t, :a]
        pre = torch.baddbmm(xin[t, :a], h_prev, Wh[:a], beta=LECUN_INNER, alpha=LECUN_INNER)
        th = torch.tanh(pre, out=TH[i, :a])
        heads = torch.baddbmm(bo3[:a], th, Wo[:a])
        f = torch.tanh(heads[:, :, : 2 * H], out=Fb[i, :a])
        logit = torch.addcmul(heads[:, :, 3 * H :], heads[:, :, 2 * H : 3 * H], dt[t, :a])
        s = torch.sigmoid(logit, out=Sb[i, :a])
        h_new = torch.lerp(f[:, :, :H], f[:, :, H:], s)
        torch.lerp(h_prev, h_new, v[t, :a], out=hs[t + 1, :a])
    return hs, TH, Fb, Sb


def _scan_backward(
    grad_hs: torch.Tensor,
    Wh: torch.Tensor,
    Wo: torch.Tensor,
    dt: torch.Tensor,
    v: torch.Tensor,
    hs: torch.Tensor,
    TH: torch.Tensor,
    Fb: torch.Tensor,
    Sb: torch.Tensor,
    active: List[int],
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward recurrence: gradients of xin, h0, Wh, Wo (scaled) and bo."""
    S, K, B, H = grad_hs.shape
    U = TH.shape[-1]
    # Steps each expert took (active is non-increasing): entries past them are
    # never read, so nothing is computed or zero-filled there.
    n_steps: List[int] = []
    for k in range(K):
        n = 0
        for t in range(S):
            if active[t] > k:
                n = t + 1
        n_steps.append(n)
    # Local derivatives of every step at once, outside the loop: the loop then
    # only chains them (G = dL/d heads, Gpre = dL/d backbone pre-activation).
    D = TH.new_empty(S, K, B, 4, H)
    DTH = torch.empty_like(TH)
    for k in range(K):
        n = n_steps[k]
        f1 = Fb[:n, k, :, :H]
        f2 = Fb[:n, k, :, H:]
        s = Sb[:n, k]
        ds = s * (1.0 - s) * (f2 - f1)
        D[:n, k, :, 0] = (1.0 - s) * (1.0 - f1 * f1)
        D[:n, k, :, 1] = s * (1.0 - f2 * f2)
        D[:n, k, :, 2] = ds * dt[:n, k]
        D[:n, k, :, 3] = ds
        th = TH[:n, k]
        DTH[:n, k] = LECUN_INNER * (1.0 - th * th)
    G = torch.empty_like(D)
    Gpre = torch.empty_like(TH)
    carry = grad_hs.new_zeros(K, B, H)
    WoT = Wo.transpose(1, 2).contiguous()
    WhT = Wh.transpose(1, 2).contiguous()
    for i in range(S):
        t = S - 1 - i
        a = active[t]
        gh = grad_hs[t, :a] + carry[:a]
        g_new = gh * v[t, :a]
        g = torch.mul(D[t, :a], g_new.unsqueeze(2), out=G[t, :a])
        g_pre = torch.mul(torch.bmm(g.view(a, B, 4 * H), WoT[:a]), DTH[t, :a], out=Gpre[t, :a])
        carry[:a] = torch.baddbmm(gh - g_new, g_pre, WhT[:a])
    G4 = G.view(S, K, B, 4 * H)
    grad_Wo = torch.zeros_like(Wo)
    grad_bo = Wo.new_zeros(K, 4 * H)
    grad_Wh = torch.zeros_like(Wh)
    for k in range(K):
        n = n_steps[k]
        Gpre[n:, k] = 0.0
        g_k = G4[:n, k].reshape(n * B, 4 * H)
        gp_k = Gpre[:n, k].reshape(n * B, U)
        grad_Wo[k] = TH[:n, k].reshape(n * B, U).t() @ g_k
        grad_bo[k] = g_k.sum(0)
        grad_Wh[k] = hs[:n, k].reshape(n * B, H).t() @ gp_k
    return Gpre, carry, grad_Wh, grad_Wo, grad_bo


def _script(fn):
    """TorchScript-compile a loop (removes the interpreter's per-operation
    overhead); the same function runs eagerly where TorchScript is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(fn)
    except Exception:  # pragma: no cover - depends on the torch build
        return fn


_scan_forward_impl = _script(_scan_forward)
_scan_backward_impl = _script(_scan_backward)


class _CfCScan(torch.autograd.Function):
    """K CfC cells over time-major sequences, with a hand-written backward."""

    @staticmethod
    def forward(ctx, xin, h0, Wh, Wo, bo, dt, v, active):
        save = any(ctx.needs_input_grad[:5])
        hs, TH, Fb, Sb = _scan_forward_impl(xin, h0, Wh, Wo, bo, dt, v, list(active), save)
        ctx.save_for_backward(Wh, Wo, dt, v, hs, TH, Fb, Sb)
        ctx.active = list(active)
        return hs[1:]

    @staticmethod
    def backward(ctx, grad_hs):
        Wh, Wo, dt, v, hs, TH, Fb, Sb = ctx.saved_tensors
        g_xin, g_h0, g_Wh, g_Wo, g_bo = _scan_backward_impl(
            grad_hs.contiguous(), Wh, Wo, dt, v, hs, TH, Fb, Sb, ctx.active
        )
        return g_xin, g_h0, g_Wh, g_Wo, g_bo, None, None, None


def cfc_scan(xin, recurrent_weight, head_weight, head_bias, dt, v, active=None, h0=None):
    """Run ``K`` CfC cells over time-major sequences.

    Parameters
    ----------
    xin : Tensor of shape (S, K, B, U)
        Input half of each cell's backbone pre-activation (``W_x x + b``) for
        every step, computed outside the recurrence.
    recurrent_weight : Tensor of shape (K, H, U)
        Hidden half of the backbone weight.
    head_weight : Tensor of shape (K, U, 4H)
        The heads ``[ff1, ff2, time_a, time_b]`` stacked on the last axis.
    head_bias : Tensor of shape (K, 4H)
    dt : Tensor of shape (S, K, B, 1)
        Elapsed time of each step.
    v : Tensor of shape (S, K, B, 1)
        1.0 on valid steps, 0.0 on padding (the state is carried unchanged).
    active : sequence of int or None, default=None
        Number of leading experts still running at each step (non-increasing);
        experts past their last step are skipped. None runs all ``K``.
    h0 : Tensor of shape (K, B, H) or None, default=None
        Initial states; zeros when None.

    Returns
    -------
    hs : Tensor of shape (S, K, B, H)
        Hidden state after each step. An expert's entries after its last
        active step are zeros.
    """
    S, K, B, _ = xin.shape
    if active is None:
        active = (K,) * S
    if h0 is None:
        h0 = xin.new_zeros(K, B, recurrent_weight.shape[1])
    return _CfCScan.apply(
        xin,
        h0,
        recurrent_weight,
        LECUN_OUTER * head_weight,
        head_bias,
        dt,
        v,
        tuple(int(a) for a in active),
    )
