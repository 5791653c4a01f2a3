"""The compiled front and back of the network: agreement with their PyTorch computations,
thread-count invariance, and the cases that keep PyTorch."""

import copy

import pytest
import torch

from mrmoe_sklearn.nn import fused, kernel
from mrmoe_sklearn.nn.attention import FeatureAttention, TemporalAttention
from mrmoe_sklearn.nn.models import MRMoENet

needs_kernel = pytest.mark.skipif(not kernel.available(), reason=f"kernel: {kernel.status()}")


def _batch(B=37, T=13, F=5, seed=0):
    """Ragged (lengths 1 to T), irregular (random elapsed times) batch-major batch with missing
    values, cut to fewer steps than it was built with (samples strided, as the network cuts a
    batch to its longest series); one sample has a feature never observed."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    v = (torch.arange(T + 2)[None] < lengths[:, None]).float()
    m = (torch.rand(B, T + 2, F, generator=g) > 0.4).float() * v[..., None]
    m[0, :, 1] = 0.0
    x = torch.randn(B, T + 2, F, generator=g) * m
    dt = torch.rand(B, T + 2, generator=g) * 3 * v
    return x[:, :T], m[:, :T], dt[:, :T], v[:, :T]


def _torch_path(monkeypatch):
    monkeypatch.setattr(kernel, "available", lambda: False)


def _perturbed(module, seed=1, scale=0.5):
    """Parameters away from their initial values (zeros would hide terms)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module


def _front_and_grads(x, m, dt, v, attention, rates, summaries):
    windows, dts, valids, summ, p = fused.front(x, m, dt, v, attention, rates, summaries)
    g = torch.Generator().manual_seed(2)
    outs = [*windows] + ([summ] if summaries else [])
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
    grads = torch.autograd.grad(loss, list(attention.parameters())) if attention is not None else []
    return [*windows, *dts, *valids, *([summ] if summaries else []), *([p] if p is not None else [])], list(grads)


@needs_kernel
@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("summaries", [True, False])
@pytest.mark.parametrize("rates", [(1, 2, 4, 8), (3,), (1, 5)])
def test_front_matches_pytorch(attention, summaries, rates, monkeypatch):
    """Windows, elapsed times, valid windows, summaries, attention weights and the attention's
    gradients: the compiled front against the PyTorch computation, on ragged, irregular input
    with missing values."""
    x, m, dt, v = _batch()
    att = _perturbed(FeatureAttention(5)) if attention else None
    got = _front_and_grads(x, m, dt, v, att, rates, summaries)
    _torch_path(monkeypatch)
    want = _front_and_grads(x, m, dt, v, att, rates, summaries)
    for a, b in zip(got[0] + got[1], want[0] + want[1]):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-6)
    assert len(got[0]) == len(want[0]) and len(got[1]) == len(want[1])


def _states(B=37, K=3, H=6, steps=(13, 7, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    hs = [torch.randn(n, B, H, generator=g).requires_grad_() for n in steps]
    valids = []
    for n in steps:
        length = torch.randint(1, n + 1, (B,), generator=g)
        valids.append((torch.arange(n)[:, None] < length[None]).float())
    gates = torch.softmax(torch.randn(B, K, generator=g), 1).requires_grad_()
    return hs, valids, gates


def _back_and_grads(hs, valids, attention, proj_weight, proj_bias, gates):
    out, weights = fused.back(hs, valids, attention, proj_weight, proj_bias, gates)
    loss = (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(3))).sum()
    params = [*attention.parameters(), proj_weight, proj_bias]
    grads = torch.autograd.grad(loss, [*hs, gates, *params])
    return [out, *weights], list(grads)


@needs_kernel
def test_back_matches_pytorch(monkeypatch):
    """Mixture, attention weights (0 on padded windows) and the gradients by the states, the
    gates and every parameter."""
    hs, valids, gates = _states()
    att = _perturbed(TemporalAttention(3, 6))
    proj_weight = torch.randn(3, 6, 4, requires_grad=True)
    proj_bias = torch.randn(3, 4, requires_grad=True)
    got = _back_and_grads(hs, valids, att, proj_weight, proj_bias, gates)
    _torch_path(monkeypatch)
    want = _back_and_grads(hs, valids, att, proj_weight, proj_bias, gates)
    for a, b in zip(got[0], want[0]):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-6)
    # the attention's bias shifts every score of an expert alike: its true gradient is 0, both
    # computations give rounding noise
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        if i == len(hs) + 2:
            assert a.abs().max() < 1e-5 and b.abs().max() < 1e-5
        else:
            torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-5)
    assert all((w[v == 0] == 0).all() for w, v in zip(got[0][1:], valids))


def _thread_results(n_threads):
    x, m, dt, v = _batch(B=45, T=17, F=6)
    att = _perturbed(FeatureAttention(6))
    W, b = att.score.weight.detach(), att.score.bias.detach()
    rates = (1, 2, 3, 8)
    m, v = m.bool(), v.bool()
    p, windows, dts, valids, summ = kernel.front_forward(x, m, dt, v, W, b, rates, True, True, n_threads)
    g = torch.Generator().manual_seed(4)
    grad_windows = [torch.randn(w.shape, generator=g) for w in windows]
    grad_summ = torch.randn(summ.shape, generator=g)
    grads = kernel.front_backward(x, m, p, rates, grad_windows, summ, grad_summ, n_threads)
    hs, hv, gates = _states(B=45)
    hs = [h.detach() for h in hs]
    wt, bt = torch.randn(3, 6, generator=g), torch.randn(3, generator=g)
    Pw, Pb = torch.randn(3, 6, 4, generator=g), torch.randn(3, 4, generator=g)
    out, weights, context, z = kernel.back_forward(hs, hv, wt, bt, Pw, Pb, gates.detach(), n_threads)
    back = kernel.back_backward(
        torch.randn(out.shape, generator=g), hs, hv, wt, Pw, gates.detach(), weights, context, z, n_threads
    )
    flat = []
    for item in (p, *windows, *dts, *valids, summ, *grads, out, *weights, context, z, *back):
        flat.extend(item if isinstance(item, list) else [item])
    return flat


@needs_kernel
def test_results_do_not_depend_on_the_thread_count():
    """Every output and gradient of the compiled front and back bit-identical for 1, 2 and 3
    threads (the weights' gradients are summed per sample, then in sample order)."""
    ref = _thread_results(1)
    for n in (2, 3):
        for a, b in zip(ref, _thread_results(n)):
            assert torch.equal(a, b)


@needs_kernel
def test_compiled_path_is_taken_only_where_it_can_run(monkeypatch):
    """float32 CPU inputs take the library; float64 and inputs that need their own gradient
    (an attribution by input gradients) keep PyTorch, with the same results."""
    calls = []
    monkeypatch.setattr(kernel, "front_forward", lambda *a, _f=kernel.front_forward: calls.append(1) or _f(*a))
    x, m, dt, v = _batch()
    att = _perturbed(FeatureAttention(5))
    fused.front(x, m, dt, v, att, (1, 2), True)
    assert calls == [1]
    fused.front(*(z.double() for z in (x, m, dt, v)), att.double(), (1, 2), True)
    xg = x.clone().requires_grad_()
    windows = fused.front(xg, m, dt, v, att.float(), (1, 2), True)[0]
    assert calls == [1]
    (grad,) = torch.autograd.grad(windows[1].sum(), xg)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@needs_kernel
@pytest.mark.parametrize(
    "options",
    [{}, dict(rates=(1, 3, 3, 8)), dict(gate=False), dict(temporal_attention=False), dict(carry_forward=True)],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults",
)
def test_network_matches_its_pytorch_computation(options, monkeypatch):
    """The whole network, logits, explanation weights and every parameter's gradient, with
    the compiled front and back and without them."""
    x, m, dt, v = _batch()
    s = torch.randn(x.shape[0], 7, generator=torch.Generator().manual_seed(5))
    # at a trained network's scale: much larger weights make the recurrence chaotic, where
    # two float32 computations that round differently drift apart by chance
    net = _perturbed(MRMoENet(5, 3, n_summary=7, summary_hidden=6, dropout=0.0, **options), scale=0.1).train()

    def run():
        net.zero_grad()
        logits, details = net(x, m.bool(), dt, v.bool(), s, return_details=True)
        (logits**2).sum().add(net.aux_loss if net.aux_loss is not None else 0.0).backward()
        grads = {n: p.grad.clone() for n, p in net.named_parameters() if n != "temporal_attention.bias"}
        return logits.detach(), {k: d.detach() for k, d in details.items()}, grads

    got = run()
    _torch_path(monkeypatch)
    want = run()
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    for k in want[1]:
        torch.testing.assert_close(got[1][k], want[1][k], rtol=1e-5, atol=1e-5, msg=k)
    for n in want[2]:
        torch.testing.assert_close(got[2][n], want[2][n], rtol=1e-4, atol=1e-5, msg=n)


@needs_kernel
def test_build_without_threads_gives_the_same_results(monkeypatch, tmp_path):
    """MRMOE_SKLEARN_OPENMP=0 builds the library single-threaded: the same front and back,
    bit for bit, as the threaded build asked for two threads."""
    threaded = _thread_results(2)
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
    monkeypatch.setenv("MRMOE_SKLEARN_OPENMP", "0")
    assert kernel.load() is not None and not kernel.threaded()
    for a, b in zip(threaded, _thread_results(2)):
        assert torch.equal(a, b)


def _mixture_results(n_threads, B=45, T=17, F=6):
    """The compiled mixture's outputs and every gradient, run directly at a thread count."""
    x, m, dt, v = _batch(B=B, T=T, F=F)
    torch.manual_seed(0)
    net = _perturbed(MRMoENet(F, 2, rates=(1, 3, 3, 8), hidden_size=5, backbone_units=7, head_size=4), scale=0.1)
    params = fused._mixture_parameters(
        net.feature_attention, net.experts, net.gate, net.temporal_attention, net.proj_weight, net.proj_bias
    )
    params = [p.detach() for p in params]
    rates = (1, 3, 8)
    plan = kernel.mixture_plan(T, B, F, 4, 5, 7, 4, 16, rates, (0, 1, 1, 2), True, True, True, n_threads)
    m, v = m.bool(), v.bool()
    work, out, gates, p, weights = kernel.mixture_forward(plan, x, m, dt, v, params, True)
    g = torch.Generator().manual_seed(4)
    grads = kernel.mixture_backward(
        plan, x, m, p, params, work, gates, torch.randn(out.shape, generator=g), torch.randn(gates.shape, generator=g)
    )
    return [out, gates, p, *[w.clone() for w in weights], *grads]


@needs_kernel
def test_mixture_does_not_depend_on_the_thread_count():
    """The whole compiled mixture (front, projections, scans, gate, back) forward and backward:
    bit-identical for 1, 2 and 3 threads."""
    ref = _mixture_results(1)
    assert len(ref) == 3 + 4 + 15
    for n in (2, 3):
        for a, b in zip(ref, _mixture_results(n)):
            assert torch.equal(a, b)


@needs_kernel
@pytest.mark.parametrize("sizes", [(8, 8), (16, 32), (12, 20)])
def test_mixture_computes_each_sample_alone(sizes):
    """A sample's outputs are bit-identical whatever batch it is computed in: alone, at any position,
    in batches cut to other lengths (as the network cuts a batch to its longest series) and of odd
    or even size (a row without a partner in the kernel's pairs of rows: one vector of outputs,
    hidden and backbone 8, once rounded otherwise)."""
    from mrmoe_sklearn.nn.models import _trim

    H, U = sizes
    torch.manual_seed(0)
    net = _perturbed(MRMoENet(5, 2, hidden_size=H, backbone_units=U)).eval()
    parts = (net.feature_attention, net.experts, net.gate, net.temporal_attention, net.proj_weight, net.proj_bias)
    x, m, dt, v = _batch()
    with torch.no_grad():
        ref = fused.mixture(*_trim(x, m, dt, v, cast=False), *parts, False, False)[:2]
        for rows in ([0], [5], [36, 3, 17], list(range(4, 13)), list(range(20))):
            out = fused.mixture(*_trim(x[rows], m[rows], dt[rows], v[rows], cast=False), *parts, False, False)[:2]
            for a, b in zip(out, ref):
                assert torch.equal(a, b[rows]), rows


@needs_kernel
def test_mixture_build_without_threads_gives_the_same_results(monkeypatch, tmp_path):
    """The compiled mixture built without OpenMP: the same outputs and gradients, bit for bit."""
    threaded = _mixture_results(2)
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
    monkeypatch.setenv("MRMOE_SKLEARN_OPENMP", "0")
    kernel.mixture_plan.cache_clear()
    assert kernel.load() is not None and not kernel.threaded()
    for a, b in zip(threaded, _mixture_results(2)):
        assert torch.equal(a, b)


@needs_kernel
@pytest.mark.parametrize(
    "options",
    [
        {},
        dict(feature_attention=False),
        dict(gate=False, feature_attention=False),
        dict(rates=(2, 2)),
        dict(rates=(4,)),
        dict(gate_hidden=3, head_size=5),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults",
)
@pytest.mark.parametrize("shape", [(37, 13), (1, 1), (3, 1)])
def test_mixture_matches_its_pytorch_computation(options, shape, monkeypatch):
    """The compiled mixture against the PyTorch computation: logits, explanation weights and
    every parameter's gradient, in parts and sizes the network test leaves out (a single
    sample, a single step)."""
    calls = []
    monkeypatch.setattr(kernel, "mixture_forward", lambda *a, _f=kernel.mixture_forward: calls.append(1) or _f(*a))
    B, T = shape
    x, m, dt, v = _batch(B=B, T=T)
    net = _perturbed(MRMoENet(5, 3, dropout=0.0, **options), scale=0.1).train()

    def run():
        net.zero_grad()
        logits, details = net(x, m.bool(), dt, v.bool(), return_details=True)
        (logits**2).sum().add(net.aux_loss if net.aux_loss is not None else 0.0).backward()
        grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        return logits.detach(), {k: d.detach() for k, d in details.items()}, grads

    got = run()
    assert calls == [1]
    _torch_path(monkeypatch)
    want = run()
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    for k in want[1]:
        torch.testing.assert_close(got[1][k], want[1][k], rtol=1e-5, atol=1e-5, msg=k)
    assert got[2].keys() == want[2].keys()
    for n in want[2]:
        torch.testing.assert_close(got[2][n], want[2][n], rtol=1e-4, atol=1e-5, msg=n)


@needs_kernel
@pytest.mark.parametrize("kind", ["cv", "switch"])
def test_mixture_balance_loss_matches_its_pytorch_computation(kind, monkeypatch):
    """The load-balancing loss the compiled mixture returns from its own call, and the gradient
    it gives every parameter through the gates (the gate's, and the feature attention's through
    the gate's summaries), against :func:`load_balance_loss` on the gates of the PyTorch
    computation (the loss alone)."""
    calls = []
    monkeypatch.setattr(kernel, "mixture_forward", lambda *a, _f=kernel.mixture_forward: calls.append(1) or _f(*a))
    x, m, dt, v = _batch()
    net = _perturbed(MRMoENet(5, 3, dropout=0.0, load_balance=kind), scale=0.1).train()

    def run():
        net.zero_grad()
        net(x, m.bool(), dt, v.bool())
        aux = net.aux_loss
        (5 * aux).backward()
        grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        return aux, grads

    got = run()
    assert calls == [1]
    assert "_Mixture" in got[0].grad_fn.name()  # from the mixture's call, not a node of its own
    # not asked for (evaluation) or no gate: none, also from the compiled call
    net.eval()
    net(x, m.bool(), dt, v.bool())
    assert net.aux_loss is None
    parts = (net.feature_attention, net.experts, None, net.temporal_attention, net.proj_weight, net.proj_bias)
    with torch.no_grad():
        assert fused.mixture(x, m.bool(), dt, v.bool(), *parts, False, False, kind)[-1] is None
    assert calls == [1, 1, 1]
    net.train()
    _torch_path(monkeypatch)
    want = run()
    assert "_Mixture" not in want[0].grad_fn.name()
    torch.testing.assert_close(got[0].detach(), want[0].detach(), rtol=1e-5, atol=1e-7)
    # the compiled backward gives every mixture parameter a gradient (0 where the loss does not reach)
    assert want[1].keys() <= got[1].keys()
    assert {n.split(".")[0] for n, g in want[1].items() if g.abs().sum() > 0} == {"gate", "feature_attention"}
    for n, g in got[1].items():
        torch.testing.assert_close(g, want[1].get(n, torch.zeros_like(g)), rtol=1e-4, atol=1e-7, msg=n)


@needs_kernel
def test_mixture_is_compiled_only_where_it_can_run(monkeypatch):
    """Defaults in float32 take the one-call mixture; top_k, carry_forward, no temporal
    attention, float64 and inputs that need their own gradient take the parts (and run)."""
    calls = []
    monkeypatch.setattr(kernel, "mixture_forward", lambda *a, _f=kernel.mixture_forward: calls.append(1) or _f(*a))
    x, m, dt, v = _batch()
    MRMoENet(5, 2)(x, m, dt, v)
    MRMoENet(5, 2, top_k=4)(x, m, dt, v)  # top_k = K keeps every expert
    assert calls == [1, 1]
    for options in (dict(top_k=2), dict(carry_forward=True), dict(temporal_attention=False)):
        assert torch.isfinite(MRMoENet(5, 2, **options)(x, m, dt, v)).all()
    assert torch.isfinite(MRMoENet(5, 2).double()(*(z.double() for z in (x, m, dt, v)))).all()
    xg = x.clone().requires_grad_()
    MRMoENet(5, 2)(xg, m, dt, v).sum().backward()
    assert calls == [1, 1] and xg.grad.abs().sum() > 0


class _Scaled(torch.nn.Module):
    """A parametrization: the stored tensor times 2."""

    def forward(self, w):
        return 2 * w


@needs_kernel
def test_mixture_takes_parametrized_weights():
    """A weight under ``torch.nn.utils.parametrize`` (an attribute computed from the stored
    tensor, not an entry of the module's parameter table) goes to the one-call mixture as
    computed, and its gradient reaches the stored tensor as through the PyTorch path."""
    from torch.nn.utils import parametrize

    x, m, dt, v = _batch()
    net = _perturbed(MRMoENet(5, 2, dropout=0.0), scale=0.1)
    twice = copy.deepcopy(net)
    for layer in (twice.gate.net[0], twice.feature_attention.score, twice.temporal_attention):
        with torch.no_grad():
            layer.weight.mul_(0.5)
        parametrize.register_parametrization(layer, "weight", _Scaled())
    calls = []
    orig = kernel.mixture_forward
    kernel.mixture_forward = lambda *a: calls.append(1) or orig(*a)
    try:
        got, want = twice(x, m, dt, v), net(x, m, dt, v)
    finally:
        kernel.mixture_forward = orig
    assert calls == [1, 1]
    torch.testing.assert_close(got, want)
    got.sum().backward()
    want.sum().backward()
    stored = twice.gate.net[0].parametrizations.weight.original
    torch.testing.assert_close(stored.grad, 2 * net.gate.net[0].weight.grad)


@needs_kernel
def test_mixture_workspace_is_reused_only_after_its_graph_is_freed():
    """The forward's workspace goes back to the pool when the graph holding it is freed, not
    at the backward: a second backward through a retained graph gives the same gradients."""
    x, m, dt, v = _batch()
    net = _perturbed(MRMoENet(5, 2), scale=0.1)
    logits = net(x, m, dt, v)
    (first,) = torch.autograd.grad(logits.sum(), net.proj_weight, retain_graph=True)
    net(x * 2, m, dt, v).sum().backward()  # another forward and backward in between
    (again,) = torch.autograd.grad(logits.sum(), net.proj_weight)
    assert torch.equal(first, again)
    free = len(kernel.workspaces._free)
    del logits
    assert len(kernel.workspaces._free) == free + 1
