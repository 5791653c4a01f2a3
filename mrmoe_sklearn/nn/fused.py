"""The network's work around the recurrence, in one call where it can be.

:func:`mixture` is everything between the batch and the head: :func:`front`
(the feature attention, the experts' window inputs at every rate and the
gate's sequence summaries), the experts' input projections and scans, the
gate, and :func:`back` (the temporal attention, the experts' projections and
the gate's mixture). Each is defined by its PyTorch computation, built from
:mod:`~mrmoe_sklearn.nn.attention`, :mod:`~mrmoe_sklearn.nn.experts`,
:mod:`~mrmoe_sklearn.nn.cells` and :mod:`~mrmoe_sklearn.nn.gating`. On the
CPU in float32 with the compiled library (the CfC kernel's, see
:func:`~mrmoe_sklearn.nn.cells.cfc_scan`) the whole mixture runs as one
forward and one backward call of that library, its intermediate values in
one workspace reused from call to call (where a part it does not take is on,
``front`` and ``back`` still run as a call each): at a few steps per series
the dozens of small tensor operations, their backward nodes and their fresh
buffers cost more than the arithmetic. The results agree to float32 rounding
and do not depend on the thread count.
"""

import torch
from torch.autograd.function import once_differentiable

from . import kernel
from .experts import carry_forward, window_inputs
from .gating import balance_gradient, balance_terms, load_balance_loss, sequence_summaries

__all__ = ["front", "back", "mixture", "per_sample", "compiled", "time_major"]


def compiled(*tensors):
    """Whether the compiled computations can run these tensors (float32 on the CPU, the
    library loaded).

    Parameters
    ----------
    *tensors : Tensor or None
        The inputs and parameters (None entries are skipped).

    Returns
    -------
    bool
    """
    ok = all(t.dtype == torch.float32 and t.is_cpu for t in tensors if t is not None)
    return ok and kernel.available()


def time_major(z, dtype):
    """``z (B, T, ...)`` as a contiguous ``(T, B, ...)`` tensor of ``dtype``, in one copy."""
    out = torch.empty((z.shape[1], z.shape[0], *z.shape[2:]), dtype=dtype, device=z.device)
    return out.copy_(z.transpose(0, 1))


class _Front(torch.autograd.Function):
    """The compiled front with a feature attention: its gradients are the attention's."""

    @staticmethod
    def forward(ctx, x, m, dt, v, weight, bias, rates, summaries, keep_weights, save):
        p, windows, dts, valids, summ = kernel.front_forward(
            x, m, dt, v, weight, bias.contiguous(), rates, summaries, keep_weights or save
        )
        summ = summ if summ is not None else x.new_empty(0)
        p = p if p is not None else x.new_empty(0)
        if save:
            ctx.save_for_backward(x, m, p, summ)
        ctx.rates = rates
        ctx.mark_non_differentiable(p, *dts, *valids)
        return (p, summ, *windows, *dts, *valids)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_p, grad_summ, *grads):
        x, m, p, summ = ctx.saved_tensors
        grad_windows = [g.contiguous() if g is not None else None for g in grads[: len(ctx.rates)]]
        with_summ = summ.numel() > 0 and grad_summ is not None
        grad_weight, grad_bias = kernel.front_backward(
            x,
            m,
            p,
            ctx.rates,
            grad_windows,
            summ if with_summ else None,
            grad_summ.contiguous() if with_summ else None,
        )
        return None, None, None, None, grad_weight, grad_bias, None, None, None, None


def _bool(mask):
    return mask if mask.dtype == torch.bool else mask > 0


def _rows(t):
    """``t`` with each sample's block contiguous (a batch cut to its longest series is)."""
    return t if kernel.sample_blocks_contiguous(t) else t.contiguous()


def front(x, m, dt, v, attention, rates, summaries, carry=False, keep_weights=True):
    """The experts' window inputs (and the gate's summaries) from a batch.

    Parameters
    ----------
    x : Tensor of shape (B, T, F)
        Values, 0 where missing.
    m : Tensor of shape (B, T, F)
        Observed mask (bool, or 0/1 floats).
    dt : Tensor of shape (B, T)
        Elapsed times.
    v : Tensor of shape (B, T)
        Valid steps (bool, or 0/1 floats).
    attention : FeatureAttention or None
        Weighs the features first (None: the values as they are).
    rates : sequence of int
        Distinct window lengths.
    summaries : bool
        Also return :func:`~mrmoe_sklearn.nn.gating.sequence_summaries` of the
        weighted values.
    carry : bool, default=False
        Also give the windows :func:`~mrmoe_sklearn.nn.experts.carry_forward`
        of the weighted values (computed in PyTorch).
    keep_weights : bool, default=True
        Return the attention weights (else None where they need not be kept).

    Returns
    -------
    windows, dts, valids : lists of time-major Tensors
        As :func:`~mrmoe_sklearn.nn.experts.window_inputs` returns them.
    summ : Tensor of shape (B, 4F) or None
    p : Tensor of shape (B, T, F) or None
        The feature attention's weights.
    """
    rates = tuple(int(r) for r in rates)
    weight = attention.score.weight if attention is not None else None
    # the compiled backward gives the attention's gradients, not the inputs'
    data_only = not any(z.requires_grad for z in (x, m, dt, v))
    if not carry and data_only and compiled(x, dt, weight):
        x, dt, m, v = _rows(x), _rows(dt), _rows(_bool(m)), _rows(_bool(v))
        if attention is None:
            _, windows, dts, valids, summ = kernel.front_forward(x, m, dt, v, None, None, rates, summaries)
            return windows, dts, valids, summ, None
        G = len(rates)
        bias = attention.score.bias
        # whether a backward can follow (inside the Function, needs_input_grad says so even
        # under no_grad, where keeping the weights would be wasted memory)
        save = torch.is_grad_enabled() and (weight.requires_grad or bias.requires_grad)
        p, summ, *rest = _Front.apply(x, m, dt, v, weight, bias, rates, summaries, keep_weights, save)
        return rest[:G], rest[G : 2 * G], rest[2 * G :], summ if summaries else None, p if p.numel() else None
    # Time-major from here on: one contiguous copy of each input (the masks cast to float by
    # the same copy), so that every later reshape is a view.
    x, m, dt, v = (time_major(z, x.dtype) for z in (x, m, dt, v))
    p = None
    if attention is not None:
        x, p = attention(x, m)
        p = p.transpose(0, 1)
    extra = carry_forward(x, m, dt) if carry else None
    windows, dts, valids = window_inputs(x, m, dt, v, rates, extra)
    return windows, dts, valids, sequence_summaries(x, m, v) if summaries else None, p


class _Back(torch.autograd.Function):
    """The compiled temporal attention, projections and mixture."""

    @staticmethod
    def forward(ctx, weight, bias, proj_weight, proj_bias, gates, K, *seqs):
        hs, valids = [h.contiguous() for h in seqs[:K]], [v.contiguous() for v in seqs[K:]]
        weight, proj_weight, gates = weight.contiguous(), proj_weight.contiguous(), gates.contiguous()
        out, weights, context, z = kernel.back_forward(
            hs, valids, weight, bias.contiguous(), proj_weight, proj_bias.contiguous(), gates
        )
        ctx.save_for_backward(weight, proj_weight, gates, context, z, *hs, *valids, *weights)
        ctx.K = K
        ctx.mark_non_differentiable(*weights)
        return (out, *weights)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, *grad_weights):
        K = ctx.K
        weight, proj_weight, gates, context, z, *rest = ctx.saved_tensors
        hs, valids, weights = rest[:K], rest[K : 2 * K], rest[2 * K :]
        grad_hs, grad_gates, *grads = kernel.back_backward(
            grad_out.contiguous(), hs, valids, weight, proj_weight, gates, weights, context, z
        )
        return (*grads, grad_gates, None, *grad_hs, *[None] * K)


def back(hs, valids, attention, proj_weight, proj_bias, gates):
    """The gate's mixture of the experts' projected contexts.

    Parameters
    ----------
    hs : list of K Tensors of shape (n_k, B, H)
        Each expert's states over its windows.
    valids : list of K Tensors of shape (n_k, B)
        1.0 on valid windows (every sample has one per expert).
    attention : TemporalAttention or None
        Pools each expert's states (None: its last state, which padding carries).
    proj_weight : Tensor of shape (K, H, D)
    proj_bias : Tensor of shape (K, D)
        Each expert's projection to the common width.
    gates : Tensor of shape (B, K)
        The experts' weights.

    Returns
    -------
    out : Tensor of shape (B, D)
        ``sum_k gates[:, k] (context_k @ proj_weight[k] + proj_bias[k])``.
    weights : list of K Tensors of shape (n_k, B) or None
        The attention weights (0 on invalid windows).
    """
    K = len(hs)
    if attention is not None and compiled(*hs, *valids, gates, proj_weight, attention.weight):
        out, *weights = _Back.apply(attention.weight, attention.bias, proj_weight, proj_bias, gates, K, *hs, *valids)
        return out, weights
    weights = None
    if attention is not None:
        context, weights = attention(hs, [v > 0 for v in valids])
    else:
        context = torch.stack([h[-1] for h in hs])
    z = torch.einsum("kbh,khd->kbd", context, proj_weight) + proj_bias[:, None]
    return torch.einsum("bk,kbd->bd", gates, z), weights


#: Where the gate's first weight is among the mixture's parameters (None: no gate).
_GATE = kernel.MIXTURE_PARAMETERS.index("gate_weight")


class _Mixture(torch.autograd.Function):
    """The compiled mixture: front, projections, scans, gate and back in one call each way."""

    @staticmethod
    def forward(ctx, plan, x, m, dt, v, keep_weights, balance, *params):
        work, out, gates, p, weights = kernel.mixture_forward(plan, x, m, dt, v, params, keep_weights)
        if plan.save:
            ctx.plan, ctx.work = plan, work
            ctx.save_for_backward(x, m, p, gates, *params)
        if params[_GATE] is None:  # uniform weights
            ctx.mark_non_differentiable(gates)
        p = p if p is not None else x.new_empty(0)
        # the load-balancing loss from the gates' column sums, its gradient in closed form
        ctx.balance = None
        if balance is not None and params[_GATE] is not None:
            loss, ctx.balance = balance_terms(gates, balance)
            aux = x.new_tensor(loss)
        else:
            aux = x.new_empty(0)
            ctx.mark_non_differentiable(aux)
        # the weights are views of the workspace, which goes back to its pool when the graph
        # is freed: copies for the caller (an explanation)
        weights = [w.clone() for w in weights] if keep_weights else []
        ctx.mark_non_differentiable(p, *weights)
        return (out, gates, p, aux, *weights)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_gates, grad_p, grad_aux, *unused):
        x, m, p, gates, *params = ctx.saved_tensors
        if grad_aux is not None and ctx.balance is not None:
            from_aux = balance_gradient(ctx.balance, grad_aux, gates.shape[0])
            grad_gates = from_aux if grad_gates is None else from_aux.add_(grad_gates)
        grads = kernel.mixture_backward(
            ctx.plan,
            x,
            m,
            p,
            params,
            ctx.work,
            gates,
            grad_out.contiguous(),
            grad_gates.contiguous() if grad_gates is not None else None,
        )
        return (None,) * 7 + tuple(grads)


def _parameter(module, name):
    """``getattr(module, name)`` for a parameter (None where ``module`` is None: a part that is off),
    read from the module's own table where it is there.

    A fifth of the cost of the attribute lookup through ``nn.Module.__getattr__``
    (the mixture reads fifteen parameters a batch); anything else (a
    parametrized weight, say) is looked up as an attribute.
    """
    if module is None:
        return None
    table = module._parameters
    return table[name] if name in table else getattr(module, name)


def _mixture_parameters(attention, experts, gate, temporal_attention, proj_weight, proj_bias):
    """The parameters in the order of ``kernel.MIXTURE_PARAMETERS`` (None for a part that is off)."""
    score = attention.score if attention is not None else None
    hidden, out = (gate.net[0], gate.net[2]) if gate is not None else (None, None)
    return (
        _parameter(score, "weight"),
        _parameter(score, "bias"),
        _parameter(experts, "input_weight"),
        _parameter(experts, "input_bias"),
        _parameter(experts, "recurrent_weight"),
        _parameter(experts, "head_weight"),
        _parameter(experts, "head_bias"),
        _parameter(hidden, "weight"),
        _parameter(hidden, "bias"),
        _parameter(out, "weight"),
        _parameter(out, "bias"),
        _parameter(temporal_attention, "weight"),
        _parameter(temporal_attention, "bias"),
        proj_weight,
        proj_bias,
    )


def _compiled_mixture(x, m, dt, v, experts, params, gate_units, keep_weights, balance):
    """:func:`mixture` through the compiled library (the caller checked that it can run)."""
    x, dt, m, v = _rows(x), _rows(dt), _rows(_bool(m)), _rows(_bool(v))
    rates = experts.distinct_rates
    B, T, F = x.shape
    K, H, U = experts.recurrent_weight.shape
    save = torch.is_grad_enabled() and any(t.requires_grad for t in params if t is not None)
    plan = kernel.mixture_plan(
        T,
        B,
        F,
        K,
        H,
        U,
        params[-1].shape[-1],  # the projections' width
        gate_units,
        rates,
        tuple(rates.index(r) for r in experts.rates),
        params[0] is not None,
        params[_GATE] is not None,
        save,
        torch.get_num_threads(),
    )
    params = [t if t is None or t.is_contiguous() else t.contiguous() for t in params]
    out, gates, p, aux, *weights = _Mixture.apply(plan, x, m, dt, v, keep_weights, balance, *params)
    return out, gates, p if p.numel() else None, weights if keep_weights else None, aux if aux.numel() else None


def _one_call_parameters(x, m, dt, v, attention, experts, gate, temporal_attention, proj_weight, proj_bias, carry):
    """The parameters of the one compiled call (see :func:`mixture`) where it runs these inputs, else None."""
    K = len(experts.rates)
    gate_units = gate.net[0].out_features if gate is not None else 0
    one_call = (
        temporal_attention is not None
        and not carry
        and (gate is None or gate.top_k is None or gate.top_k >= K)
        and K <= kernel.MIXTURE_MAX_EXPERTS
        and gate_units <= kernel.MIXTURE_MAX_GATE_UNITS
        # the compiled backward gives the parameters' gradients, not the inputs'
        and not any(z.requires_grad for z in (x, m, dt, v))
    )
    if not one_call:
        return None
    params = _mixture_parameters(attention, experts, gate, temporal_attention, proj_weight, proj_bias)
    return params if compiled(x, dt, *params) else None


def per_sample(x, m, dt, v, attention, experts, gate, temporal_attention, proj_weight, proj_bias, carry=False):
    """Whether :func:`mixture` computes each sample of this batch on its own, whatever the other rows.

    True where it runs as the one compiled call: a sample's arithmetic is then
    the same, bit for bit, in any batch and at any position in it. Elsewhere
    matrix products over the batch's rows may round a sample differently with
    the number of rows (CPU kernels pick their blocking by it).

    Parameters
    ----------
    x, m, dt, v, attention, experts, gate, temporal_attention, proj_weight, proj_bias, carry
        As for :func:`mixture`.

    Returns
    -------
    bool
    """
    params = _one_call_parameters(
        x, m, dt, v, attention, experts, gate, temporal_attention, proj_weight, proj_bias, carry
    )
    return params is not None


def mixture(
    x,
    m,
    dt,
    v,
    attention,
    experts,
    gate,
    temporal_attention,
    proj_weight,
    proj_bias,
    carry=False,
    keep_weights=True,
    balance=None,
):
    """The gate's mixture of the experts' projected contexts: everything between the batch and the head.

    The feature attention and the experts' window inputs (:func:`front`),
    the experts' scans (:meth:`~mrmoe_sklearn.nn.experts.MultiRateCfC.run`),
    the gate, the temporal attention and the projections (:func:`back`). On
    the CPU in float32 with the compiled library, with the temporal attention
    on, no ``carry`` and a gate that keeps every expert (no ``top_k`` below
    their number), all of it runs as one call forward and one backward (the
    same results to float32 rounding, and for any thread count).

    Parameters
    ----------
    x, m, dt, v : Tensors
        The batch, as for :func:`front`.
    attention : FeatureAttention or None
    experts : MultiRateCfC
    gate : Gate or None
        None weighs the experts uniformly.
    temporal_attention : TemporalAttention or None
    proj_weight, proj_bias : Tensors of shape (K, H, D) and (K, D)
    carry : bool, default=False
        Also give the experts :func:`~mrmoe_sklearn.nn.experts.carry_forward` inputs.
    keep_weights : bool, default=True
        Return the attention weights (an explanation needs them).
    balance : {"cv", "switch"} or None, default=None
        Also return the gates' :func:`~mrmoe_sklearn.nn.gating.load_balance_loss`
        of this kind (in the one compiled call: from the gates it computes,
        its gradient added to theirs in the backward).

    Returns
    -------
    out : Tensor of shape (B, D)
    gates : Tensor of shape (B, K)
    p : Tensor of shape (B, T, F) or None
        The feature attention's weights (None without attention or ``keep_weights``).
    weights : list of K Tensors of shape (n_k, B) or None
        Each expert's temporal attention weights.
    aux : Tensor, scalar, or None
        The load-balancing loss (None without ``balance`` or without a gate).
    """
    K = len(experts.rates)
    params = _one_call_parameters(
        x, m, dt, v, attention, experts, gate, temporal_attention, proj_weight, proj_bias, carry
    )
    if params is not None:
        gate_units = gate.net[0].out_features if gate is not None else 0
        return _compiled_mixture(x, m, dt, v, experts, params, gate_units, keep_weights, balance)
    windows, dts, valids, summ, p = front(
        x, m, dt, v, attention, experts.distinct_rates, gate is not None, carry, keep_weights
    )
    hs = experts.run(windows, dts, valids)
    g = gate(summ) if gate is not None else x.new_full((x.shape[0], K), 1.0 / K)
    out, weights = back(hs, experts.per_expert(valids), temporal_attention, proj_weight, proj_bias, g)
    aux = load_balance_loss(g, balance) if balance is not None and gate is not None else None
    return out, g, p, weights, aux
