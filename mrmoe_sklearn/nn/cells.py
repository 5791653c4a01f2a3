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

import torch
from torch import nn

__all__ = ["CfCCell", "cfc_scan", "LECUN_OUTER", "LECUN_INNER"]

#: LeCun's scaled tanh, ``1.7159 * tanh(0.666 * x)``, as used by ncps.
LECUN_OUTER = 1.7159
LECUN_INNER = 0.666


def _cfc_heads(th, h_prev, Wo, bo, dt, v, out_h=None, out_f=None, out_s=None):
    """One CfC update from the backbone's tanh output ``th``.

    Shapes: ``th (K, B, U)``, ``h_prev (K, B, H)``, ``Wo (K, U, 4H)`` already
    multiplied by ``LECUN_OUTER``, ``bo (K, 1, 4H)``, ``dt``/``v (K, B, 1)``.
    Returns ``h_new, f (K, B, 2H) = [f1, f2], s (K, B, H)``. Steps with ``v=0``
    keep ``h_prev``.
    """
    H = h_prev.shape[-1]
    heads = torch.baddbmm(bo, th, Wo)
    f = torch.tanh(heads[..., : 2 * H], out=out_f)
    s = torch.sigmoid(torch.addcmul(heads[..., 3 * H :], heads[..., 2 * H : 3 * H], dt), out=out_s)
    h_new = torch.lerp(f[..., :H], f[..., H:], s)
    h_new = torch.lerp(h_prev, h_new, v, out=out_h)
    return h_new, f, s


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
        pre = self.input_proj(x) + h @ self.recurrent_weight
        th = torch.tanh(LECUN_INNER * pre)
        Wo = (LECUN_OUTER * self.heads.weight.t())[None]
        ones = torch.ones_like(dt)
        h_new, _, _ = _cfc_heads(th[None], h[None], Wo, self.heads.bias[None, None], dt[None], ones[None])
        return h_new[0]

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


class _CfCScan(torch.autograd.Function):
    """K CfC cells over time-major sequences, with a hand-written backward."""

    @staticmethod
    def forward(ctx, xin, Wh, Wo, bo, dt, v, active):
        # xin (S, K, B, U) = LECUN_INNER * input half of the backbone
        # Wh (K, H, U) = LECUN_INNER * recurrent weight; Wo (K, U, 4H) = LECUN_OUTER * heads
        S, K, B, U = xin.shape
        H = Wh.shape[1]
        hs = xin.new_zeros(S + 1, K, B, H)  # hs[0] is the initial state
        TH = xin.new_zeros(S, K, B, U)
        Fb = xin.new_zeros(S, K, B, 2 * H)
        Sb = xin.new_zeros(S, K, B, H)
        bo3 = bo.unsqueeze(1)
        for t in range(S):
            a = active[t]
            th = torch.tanh(torch.baddbmm(xin[t, :a], hs[t, :a], Wh[:a]), out=TH[t, :a])
            _cfc_heads(th, hs[t, :a], Wo[:a], bo3[:a], dt[t, :a], v[t, :a], hs[t + 1, :a], Fb[t, :a], Sb[t, :a])
        ctx.save_for_backward(Wh, Wo, dt, v, hs, TH, Fb, Sb)
        ctx.active = active
        return hs[1:]

    @staticmethod
    def backward(ctx, grad_hs):
        Wh, Wo, dt, v, hs, TH, Fb, Sb = ctx.saved_tensors
        active = ctx.active
        S, K, B, H = grad_hs.shape
        U = TH.shape[-1]
        # Local derivatives of every step at once, outside the loop: the loop
        # then only chains them (G = dL/d heads, Gpre = dL/d backbone pre-activation).
        f1, f2 = Fb[..., :H], Fb[..., H:]
        ds = Sb * (1.0 - Sb) * (f2 - f1)
        D = torch.cat([(1.0 - Sb) * (1.0 - f1 * f1), Sb * (1.0 - f2 * f2), ds * dt, ds], dim=-1)
        D = D.view(S, K, B, 4, H)
        DTH = 1.0 - TH * TH
        G = grad_hs.new_zeros(S, K, B, 4, H)
        Gpre = grad_hs.new_zeros(S, K, B, U)
        carry = grad_hs.new_zeros(K, B, H)
        WoT = Wo.transpose(1, 2)
        WhT = Wh.transpose(1, 2)
        for t in range(S - 1, -1, -1):
            a = active[t]
            gh = grad_hs[t, :a] + carry[:a]
            g_new = gh * v[t, :a]
            g = torch.mul(D[t, :a], g_new.unsqueeze(2), out=G[t, :a])
            g_pre = torch.mul(torch.bmm(g.view(a, B, 4 * H), WoT[:a]), DTH[t, :a], out=Gpre[t, :a])
            carry[:a] = torch.baddbmm(gh - g_new, g_pre, WhT[:a])
        G = G.view(S, K, B, 4 * H)
        grad_Wo = torch.einsum("skbu,skbh->kuh", TH, G)
        grad_bo = G.sum(dim=(0, 2))
        grad_Wh = torch.einsum("skbh,skbu->khu", hs[:-1], Gpre)
        return Gpre, grad_Wh, grad_Wo, grad_bo, None, None, None


def cfc_scan(xin, recurrent_weight, head_weight, head_bias, dt, v, active=None):
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

    Returns
    -------
    hs : Tensor of shape (S, K, B, H)
        Hidden state after each step, starting from zeros.
    """
    S, K = xin.shape[:2]
    if active is None:
        active = (K,) * S
    return _CfCScan.apply(
        LECUN_INNER * xin,
        LECUN_INNER * recurrent_weight,
        LECUN_OUTER * head_weight,
        head_bias,
        dt,
        v,
        tuple(int(a) for a in active),
    )
