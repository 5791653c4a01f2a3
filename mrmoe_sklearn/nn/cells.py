"""Closed-form continuous-time (CfC) liquid cells.

The CfC update (Hasani et al. 2022, "default" mode of the ncps library) with
``z = lecun_tanh(W_x x + W_h h + b)``::

    f1 = tanh(W1 z + b1)
    f2 = tanh(W2 z + b2)
    s  = sigmoid((Wa z + ba) * dt + (Wb z + bb))
    h' = f1 * (1 - s) + s * f2

:class:`CfCCell` is one cell with ncps' weight layout, for checks against
ncps; it runs the same code as the experts (one step of :func:`cfc_scan`).
:func:`cfc_scan` runs ``K`` independent cells (the experts) over their
sequences at once: the input half of the backbone is
computed outside the recurrence, all experts of a step advance in one batched
matrix product, and the backward pass is written by hand so that each step is a
handful of tensor operations instead of an autograd graph.
"""

import collections
import itertools
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from . import kernel

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
        return hs[0][0]

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


#: Longest run of steps whose local derivatives are computed in one block
#: (longer runs are split: the blocks then stay in cache, measured faster).
MAX_RUN = 64


def _segments(active):
    """Runs ``(t0, t1, a)`` of at most ``MAX_RUN`` steps with the same number ``a`` of active experts."""
    max_len = MAX_RUN
    runs = []
    for t, a in enumerate(active):
        if runs and runs[-1][2] == a and t - runs[-1][0] < max_len:
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1, a])
    return [tuple(r) for r in runs]


def _run(seqs, t0, t1, a):
    """Steps ``t0:t1`` of the first ``a`` experts' sequences as one ``(n, a, B, C)`` tensor
    (a view, no copy, when only expert 0 runs)."""
    if a == 1:
        return seqs[0][t0:t1, None]
    return torch.stack([s[t0:t1] for s in seqs[:a]], dim=1)


class _CfCScan(torch.autograd.Function):
    """K CfC cells over time-major sequences, with a hand-written backward.

    The loops work on per-step views made in bulk (``unbind``) for each run of
    at most ``MAX_RUN`` steps with the same active experts, so that a step
    costs its arithmetic and nothing else: slicing a view per step costs as
    much as the step. Each expert's states are written in place into its own
    output ``(n_k, B, H)``; in training the steps also write what the backward
    needs into one ``(n, a, B, .)`` block per run, and the backward writes its
    per-step products into blocks likewise (nothing is stacked).
    """

    @staticmethod
    def forward(ctx, save, h0, Wh, Wo, bo, active, *seqs):
        # save: whether a backward will follow (see cfc_scan)
        # seqs: xin, dt, v, each as K tensors (n_k, B, .) of the expert's own steps
        K, B, H = h0.shape
        xin, dt, v = seqs[:K], seqs[K : 2 * K], seqs[2 * K :]
        segments = _segments(active)
        dt_segs, v_segs = [], []
        # Heads f = [ff1, ff2] and t = [time_a, time_b] as two products: elementwise
        # work on contiguous tensors is several times faster than on slices of one.
        Wf, Wt = Wo[..., : 2 * H].contiguous(), Wo[..., 2 * H :].contiguous()
        bf, bt = bo[:, None, : 2 * H].contiguous(), bo[:, None, 2 * H :].contiguous()
        blocks, seg_outs = [], []
        U = Wh.shape[-1]
        # Each expert's states, written in place: by the steps themselves while only
        # expert 0 runs, else through one (n, a, B, H) block per run.
        hs = [h0.new_empty(sum(t1 - t0 for t0, t1, a in segments if a > k), B, H) for k in range(K)]
        h = h0
        for t0, t1, a in segments:
            h = h[:a]
            Wh_a, Wf_a, Wt_a, bf_a, bt_a = Wh[:a], Wf[:a], Wt[:a], bf[:a], bt[:a]
            x_seg, dt_seg, v_seg = (_run(seq, t0, t1, a) for seq in (xin, dt, v))
            padded = not bool(v_seg.all())
            dt_segs.append(dt_seg)
            v_segs.append(v_seg if padded else None)
            block = hs[0][t0:t1, None] if a == 1 else h0.new_empty(t1 - t0, a, B, H)
            # One elapsed time per expert over the run (regular sampling): the time heads
            # fold into one product, s = sigmoid(th @ (W_b + dt W_a) + (b_b + dt b_a)).
            dt_run = dt_seg[:1, :, :1]
            regular = bool((dt_seg == dt_run).all())
            if regular:
                Ws_a = torch.addcmul(Wt_a[..., H:], Wt_a[..., :H], dt_run.view(a, 1, 1))
                bs_a = torch.addcmul(bt_a[..., H:], bt_a[..., :H], dt_run.view(a, 1, 1))
            if save:
                # What the backward needs, written by the steps straight into
                # (n, a, B, .) blocks of the run: no per-step tensors to stack later.
                run = (
                    h0.new_empty(t1 - t0, a, B, U),
                    h0.new_empty(t1 - t0, a, B, 2 * H),
                    h0.new_empty(t1 - t0, a, B, H),
                )
                blocks.append(run)
                saved = zip(*(r.unbind(0) for r in run))
            else:
                saved = itertools.repeat((None, None, None))
            steps = zip(x_seg.unbind(0), dt_seg.unbind(0), v_seg.unbind(0), block.unbind(0))
            for (x_t, dt_t, v_t, out_t), (th_t, f_t, s_t) in zip(steps, saved):
                th = torch.baddbmm(x_t, h, Wh_a, beta=LECUN_INNER, alpha=LECUN_INNER, out=th_t).tanh_()
                f = torch.baddbmm(bf_a, th, Wf_a, out=f_t).tanh_()
                if regular:
                    s = torch.baddbmm(bs_a, th, Ws_a, out=s_t).sigmoid_()
                else:
                    t = torch.baddbmm(bt_a, th, Wt_a)
                    s = torch.addcmul(t[..., H:], t[..., :H], dt_t, out=s_t).sigmoid_()
                if padded:
                    h = torch.lerp(h, torch.lerp(f[..., :H], f[..., H:], s), v_t, out=out_t)
                else:
                    h = torch.lerp(f[..., :H], f[..., H:], s, out=out_t)
            if a > 1:
                for k in range(a):
                    hs[k][t0:t1] = block[:, k]
            seg_outs.append(block if a > 1 else None)  # (views of an output would make a reference cycle)
        if save:
            ctx.save_for_backward(Wh, Wo, h0, hs[0])
            ctx.steps = (blocks, seg_outs, dt_segs, v_segs)
            ctx.segments = segments
        return tuple(hs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_hs):
        Wh, Wo, h0, hs0 = ctx.saved_tensors
        blocks, seg_outs, dt_segs, v_segs = ctx.steps
        seg_outs = [hs0[t0:t1, None] if block is None else block for block, (t0, t1, _) in zip(seg_outs, ctx.segments)]
        K, B, H = h0.shape
        U = Wh.shape[-1]
        # The inputs' gradients (the P of every step), written in place like the forward's
        # states: by the steps while only expert 0 runs, else through the run's block.
        grad_xin = [h0.new_empty(sum(t1 - t0 for t0, t1, a in ctx.segments if a > k), B, U) for k in range(K)]
        grad_Wh, grad_Wo, grad_bo = torch.zeros_like(Wh), torch.zeros_like(Wo), Wo.new_zeros(K, 4 * H)
        WoT = Wo.transpose(1, 2).contiguous()
        WhT = Wh.transpose(1, 2).contiguous()
        one, lecun_inner = h0.new_ones(()), h0.new_full((), LECUN_INNER)
        carry = h0.new_zeros(0, B, H)
        for j in range(len(ctx.segments) - 1, -1, -1):
            t0, t1, a = ctx.segments[j]
            n = t1 - t0
            if carry.shape[0] < a:
                carry = torch.cat([carry, carry.new_zeros(a - carry.shape[0], B, H)])
            # Local derivatives of the run's steps at once, laid out (n, a, B, .) like
            # the forward's blocks; the loop below only chains them.
            TH, Fs, s = blocks[j]
            f1, f2 = Fs[..., :H], Fs[..., H:]
            one_s = 1.0 - s
            # the derivatives of h' by the pre-activations of [ff1, ff2, time_a, time_b],
            # each written into its place in D (no concatenation)
            D = s.new_empty(n, a, B, 4, H)
            d_ff1, d_ff2, d_ta, d_tb = D.unbind(3)
            torch.addcmul(one, f1, f1, value=-1.0, out=d_ff1).mul_(one_s)
            torch.addcmul(one, f2, f2, value=-1.0, out=d_ff2).mul_(s)
            torch.mul(s, one_s, out=d_tb).mul_(f2 - f1)
            torch.mul(d_tb, dt_segs[j], out=d_ta)
            DTH = torch.addcmul(lecun_inner, TH, TH, value=-LECUN_INNER)
            v_seg = v_segs[j]
            g_seg = _run(grad_hs, t0, t1, a)
            G = D.new_empty(n, a, B, 4 * H)  # filled by the steps, as P is
            P = grad_xin[0][t0:t1, None] if a == 1 else D.new_empty(n, a, B, U)
            D_t, DTH_t, g_t = D.unbind(0), DTH.unbind(0), g_seg.unbind(0)
            G_t, P_t = G.view(n, a, B, 4, H).unbind(0), P.unbind(0)
            WoT_a, WhT_a = WoT[:a], WhT[:a]
            if v_seg is not None:
                v_t = v_seg.unbind(0)
                for i in range(n - 1, -1, -1):
                    gh = g_t[i] + carry
                    g_new = gh * v_t[i]
                    G_i = torch.mul(D_t[i], g_new.unsqueeze(2), out=G_t[i]).view(a, B, 4 * H)
                    P_i = torch.bmm(G_i, WoT_a, out=P_t[i]).mul_(DTH_t[i])
                    carry = torch.baddbmm(gh - g_new, P_i, WhT_a)
            else:
                gh = g_t[n - 1] + carry
                for i in range(n - 1, -1, -1):
                    G_i = torch.mul(D_t[i], gh.unsqueeze(2), out=G_t[i]).view(a, B, 4 * H)
                    P_i = torch.bmm(G_i, WoT_a, out=P_t[i]).mul_(DTH_t[i])
                    # the state's gradient for the step before, its output's gradient included
                    gh = torch.baddbmm(g_t[i - 1], P_i, WhT_a) if i else torch.bmm(P_i, WhT_a)
                carry = gh
            if a > 1:
                for k in range(a):
                    grad_xin[k][t0:t1] = P[:, k]
            prev = seg_outs[j - 1][-1, :a] if j > 0 else h0[:a]
            grad_Wo[:a].baddbmm_(_expert_major(TH).transpose(1, 2), _expert_major(G))
            grad_bo[:a] += G.sum((0, 2))
            # sum of h_{t-1}^T P_t: the state before the run, then the run's own states
            grad_Wh[:a].baddbmm_(prev.transpose(1, 2), P[0])
            if n > 1:
                grad_Wh[:a].baddbmm_(_expert_major(seg_outs[j][:-1]).transpose(1, 2), _expert_major(P[1:]))
        grad_h0 = torch.cat([carry, carry.new_zeros(K - carry.shape[0], B, H)])
        return (None, grad_h0, grad_Wh, grad_Wo, grad_bo, None, *grad_xin, *[None] * (2 * K))


class _CfCKernelScan(torch.autograd.Function):
    """K CfC cells with the compiled kernel (:mod:`~mrmoe_sklearn.nn.kernel`), float32 on the CPU.

    The kernel runs each expert over its own steps in one call, forward and
    backward (the backward also sums the weights' gradients), on torch's
    thread count. Same inputs and outputs as :class:`_CfCScan` (without
    ``active``: each expert's steps are the length of its sequences).
    """

    @staticmethod
    def forward(ctx, save, h0, Wh, Wo, bo, *seqs):
        K = h0.shape[0]
        xin, dt, v = seqs[:K], seqs[K : 2 * K], seqs[2 * K :]
        Wh, Wo, bo, h0 = Wh.contiguous(), Wo.contiguous(), bo.contiguous(), h0.contiguous()
        B = h0.shape[1]
        # the valid-step mask always passed (a check that it is all ones would cost a
        # synchronising reduction per expert)
        ds = [d.reshape(d.shape[0], B).contiguous() for d in dt]
        masks = [m.reshape(m.shape[0], B).contiguous() for m in v]
        hs, th, act = kernel.forward_experts(list(xin), ds, masks, h0, Wh, Wo, bo, save, torch.get_num_threads())
        if save:
            ctx.save_for_backward(h0, Wh, Wo, *hs)
            ctx.steps = (ds, masks, th, act)
        return tuple(hs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_hs):
        h0, Wh, Wo, *hs = ctx.saved_tensors
        K, B, H = h0.shape
        U = Wh.shape[-1]
        WoT, WhT = Wo.transpose(1, 2).contiguous(), Wh.transpose(1, 2).contiguous()
        # contiguous whatever h0's layout: the kernel writes grad_h0[k] as a dense (B, H) block
        grad_h0 = h0.new_zeros(h0.shape)
        # the kernel writes each expert's weight gradients into its slice of these
        grads = (Wh.new_empty(K, H, U), Wo.new_empty(K, U, 4 * H), Wo.new_empty(K, 4 * H))
        ds, masks, th, act = ctx.steps
        grad_xin = kernel.backward_experts(
            [g.contiguous() for g in grad_hs],
            ds,
            masks,
            th,
            act,
            hs,
            h0,
            WoT,
            WhT,
            grad_h0,
            grads,
            torch.get_num_threads(),
        )
        return (None, grad_h0, *grads, *grad_xin, *[None] * (2 * K))


def _use_kernel(tensors):
    """Whether :class:`_CfCKernelScan` can run these tensors (float32, CPU, kernel compiled)."""
    return all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors) and kernel.available()


def _expert_major(block):
    """A run's ``(n, a, B, C)`` block as ``(a, n * B, C)`` (a view when ``a == 1``)."""
    n, a, B, C = block.shape
    return block.transpose(0, 1).reshape(a, n * B, C)


def _per_expert(seq, n_steps, name):
    """``seq`` as K tensors of each expert's own steps (from a list, or a padded ``(S, K, B, C)`` tensor)."""
    if isinstance(seq, torch.Tensor):
        seq = [seq[:n, k] for k, n in enumerate(n_steps)]
    seq = list(seq)
    if len(seq) != len(n_steps) or any(s.shape[0] != n for s, n in zip(seq, n_steps)):
        raise ValueError(f"{name} must hold K={len(n_steps)} tensors of {n_steps} steps.")
    return seq


def _check_shapes(xin, dt, v, h0, recurrent_weight, head_weight, head_bias):
    """Raise a ValueError naming the argument whose shape disagrees (the compiled kernel
    reads raw memory: a wrong shape must not reach it). K, H and U come from
    ``recurrent_weight`` (whose rank :func:`cfc_scan` checked first), B from the first
    expert's ``xin``."""
    K, H, U = recurrent_weight.shape
    B = xin[0].shape[1] if xin[0].dim() == 3 else None
    for name, seq, width in (("xin", xin, U), ("dt", dt, 1), ("v", v, 1)):
        for k, t in enumerate(seq):
            if t.dim() != 3 or t.shape[1:] != (B, width):
                where = " (U from recurrent_weight)" if name == "xin" else ""
                raise ValueError(
                    f"{name} of expert {k} must have shape (n_steps, B={B}, {width}){where}, got {tuple(t.shape)}."
                )
    want = [("head_weight", head_weight, (K, U, 4 * H)), ("head_bias", head_bias, (K, 4 * H)), ("h0", h0, (K, B, H))]
    for name, t, shape in want:
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} (K={K}, H={H}, U={U} from recurrent_weight, "
                f"B={B} from xin), got {tuple(t.shape)}."
            )


def cfc_scan(xin, recurrent_weight, head_weight, head_bias, dt, v, active=None, h0=None):
    """Run ``K`` CfC cells over time-major sequences.

    Parameters
    ----------
    xin : Tensor of shape (S, K, B, U), or list of K Tensors of shape (n_k, B, U)
        Input half of each cell's backbone pre-activation (``W_x x + b``) for
        every step, computed outside the recurrence. As a list, expert ``k``'s
        tensor holds only its ``n_k`` steps (no padding is built or copied).
    recurrent_weight : Tensor of shape (K, H, U)
        Hidden half of the backbone weight.
    head_weight : Tensor of shape (K, U, 4H)
        The heads ``[ff1, ff2, time_a, time_b]`` stacked on the last axis.
    head_bias : Tensor of shape (K, 4H)
    dt : Tensor of shape (S, K, B, 1), or list of K Tensors of shape (n_k, B, 1)
        Elapsed time of each step.
    v : Tensor of shape (S, K, B, 1), or list of K Tensors of shape (n_k, B, 1)
        1.0 on valid steps, 0.0 on padding (the state is carried unchanged).
    active : sequence of int or None, default=None
        Number of leading experts still running at each step (non-increasing);
        expert ``k`` takes ``n_k`` steps, the number of steps with ``active > k``.
        None runs all ``K`` experts for all steps.
    h0 : Tensor of shape (K, B, H) or None, default=None
        Initial states; zeros when None.

    Returns
    -------
    hs : tuple of K Tensors of shape (n_k, B, H)
        Hidden state of each expert after each of its own ``n_k`` steps.

    Raises
    ------
    ValueError
        If a shape disagrees with the others (no broadcasting: ``dt`` and ``v``
        hold one value per sample and step).
    """
    if recurrent_weight.dim() != 3:  # K and H are read from it before anything else
        raise ValueError(f"recurrent_weight must have shape (K, H, U), got {tuple(recurrent_weight.shape)}.")
    K, H = recurrent_weight.shape[:2]
    if active is None:
        S = xin.shape[0] if isinstance(xin, torch.Tensor) else xin[0].shape[0]
        active = (K,) * S
    active = tuple(int(a) for a in active)
    counts = collections.Counter(active)
    n_steps = [sum(c for a, c in counts.items() if a > k) for k in range(K)]
    seqs = [_per_expert(s, n_steps, name) for s, name in ((xin, "xin"), (dt, "dt"), (v, "v"))]
    _check_shapes(*seqs, h0, recurrent_weight, head_weight, head_bias)
    if h0 is None:
        h0 = seqs[0][0].new_zeros(K, seqs[0][0].shape[1], H)
    Wo = LECUN_OUTER * head_weight
    # Whether a backward can follow: inside the Functions, needs_input_grad says so even
    # under no_grad, where saving the steps' intermediate values would be wasted work.
    save = torch.is_grad_enabled() and any(t.requires_grad for t in (h0, recurrent_weight, Wo, head_bias, *seqs[0]))
    if _use_kernel([h0, recurrent_weight, Wo, head_bias, *itertools.chain(*seqs)]):
        return _CfCKernelScan.apply(save, h0, recurrent_weight, Wo, head_bias, *seqs[0], *seqs[1], *seqs[2])
    return _CfCScan.apply(save, h0, recurrent_weight, Wo, head_bias, active, *seqs[0], *seqs[1], *seqs[2])
