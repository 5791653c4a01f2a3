"""PyTorch modules: attention, gating, resampling and the full networks."""

import pytest
import torch

from mrmoe_sklearn.nn import (
    FeatureAttention,
    Gate,
    LSTMNet,
    MRMoENet,
    MultiRateCfC,
    TemporalAttention,
    fused,
    load_balance_loss,
    resample,
    sequence_summaries,
)
from mrmoe_sklearn.nn.experts import window_sums


def _batch(B=6, T=13, F=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(B, T, F, generator=g) > 0.3).float()
    x = torch.randn(B, T, F, generator=g) * m
    dt = torch.rand(B, T, generator=g) + 0.1
    v = torch.ones(B, T)
    v[0, 9:] = 0
    dt = dt * v
    return x, m, dt, v


def test_resample_means_observed_values_and_sums_time():
    x = torch.tensor([[[1.0], [0.0], [3.0], [5.0], [7.0]]])
    m = torch.tensor([[[1.0], [0.0], [1.0], [1.0], [1.0]]])
    dt = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    v = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    tm = lambda t: t.transpose(0, 1)  # noqa: E731  (time-major)
    mean, frac, dt_w, v_w = resample(tm(x), tm(m), tm(dt), tm(v), 2)
    assert mean.shape == frac.shape == (3, 1, 1)
    torch.testing.assert_close(mean[:, 0, 0], torch.tensor([1.0, 4.0, 7.0]))  # mask-aware means
    torch.testing.assert_close(frac[:, 0, 0], torch.tensor([0.5, 1.0, 0.5]))  # observed fraction
    torch.testing.assert_close(dt_w[:, 0], torch.tensor([3.0, 7.0, 5.0]))
    torch.testing.assert_close(v_w[:, 0], torch.tensor([1.0, 1.0, 0.0]))
    # rate 4 from the rate-2 sums equals rate 4 from the steps
    x8, m8 = torch.randn(9, 2, 3), (torch.rand(9, 2, 3) > 0.4).float()
    d8, v8 = torch.rand(9, 2), torch.ones(9, 2)
    direct = [window_sums(t, 4) for t in (x8 * m8, m8, d8, v8)]
    torch.testing.assert_close(resample(x8 * m8, m8, d8, v8, 4)[0], direct[0] / direct[1].clamp(min=1.0))
    from mrmoe_sklearn.nn.experts import _Windows

    w = _Windows(x8 * m8, m8, d8, v8)
    w.at(2)
    for got, want in zip(w.at(4), direct):
        torch.testing.assert_close(got, want)


def test_feature_attention_starts_as_identity_and_sums_to_F():
    att = FeatureAttention(4)
    x, m, _, _ = _batch(F=4)
    out, a = att(x, m)
    torch.testing.assert_close(out, x)
    with torch.no_grad():
        att.score.weight.normal_()
    _, a = att(x, m)
    torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:2]))
    torch.testing.assert_close(att(x, m)[0], 4 * a * x)


@pytest.mark.parametrize("T", [8, 13])
def test_window_sums_pairs_match_with_and_without_gradient(T):
    # pairs are summed by an add without a gradient and by a reduction with one
    z = torch.randn(T, 5, 3)[..., :2]  # strided, like the slices of the packed batch
    expected = torch.stack([z[i : i + 2].sum(0) for i in range(0, T, 2)])
    plain = window_sums(z, 2)
    leaf = z.clone().requires_grad_(True)
    tracked = window_sums(leaf, 2)
    torch.testing.assert_close(plain, expected)
    assert torch.equal(plain, tracked.detach())
    tracked.sum().backward()
    assert torch.equal(leaf.grad, torch.ones_like(leaf))


def test_temporal_attention_ignores_invalid_windows():
    att = TemporalAttention(2, 3)
    hs = [torch.randn(5, 4, 3), torch.randn(3, 4, 3)]
    valid = [torch.ones(5, 4, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool)]
    valid[1][2:] = False
    ctx, w = att(hs, valid)
    assert ctx.shape == (2, 4, 3) and [wk.shape for wk in w] == [(5, 4), (3, 4)]
    assert (w[1][2:] == 0).all()
    for wk in w:
        torch.testing.assert_close(wk.sum(0), torch.ones(4))
    hs2 = [h.clone() for h in hs]
    hs2[1][2:] = 1e3  # changes only masked windows
    torch.testing.assert_close(att(hs2, valid)[0], ctx)
    # expert k is pooled with its own scoring vector
    expected = (torch.softmax(hs[0] @ att.weight[0] + att.bias[0], 0)[..., None] * hs[0]).sum(0)
    torch.testing.assert_close(ctx[0], expected)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_mrmoe_net_results_do_not_depend_on_sample_order(n_threads):
    """Bit for bit: a softmax over the first axis rounds vectorised and tail lanes apart."""
    old = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        torch.manual_seed(0)
        net = MRMoENet(3, 2).eval()
        x, m, dt, v = _batch(B=20, T=3)
        idx = torch.randperm(20)
        with torch.no_grad():
            out, det = net(x, m, dt, v, return_details=True)
            out_p, det_p = net(x[idx], m[idx], dt[idx], v[idx], return_details=True)
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(out_p, out[idx], rtol=0, atol=0)
    for key in det:
        torch.testing.assert_close(det_p[key], det[key][idx], rtol=0, atol=0)


def test_sequence_summaries_of_observed_values():
    x, m, _, v = _batch()
    summ = sequence_summaries(x.transpose(0, 1), m.transpose(0, 1), v.t())
    F = x.shape[-1]
    b, f = 0, 1  # sample 0 has padding after step 9
    obs = x[b, m[b, :, f] > 0, f]
    torch.testing.assert_close(summ[b, f], obs.mean())
    torch.testing.assert_close(summ[b, F + f], torch.sqrt(obs.var(unbiased=False) + 1e-6))
    torch.testing.assert_close(summ[b, 2 * F + f], obs[-1])
    torch.testing.assert_close(summ[b, 3 * F + f], m[b, :, f].sum() / v[b].sum())


def test_gate_top_k_and_load_balance():
    gate = Gate(3, 4, top_k=2)
    x, m, _, v = _batch()
    g = gate(sequence_summaries(x.transpose(0, 1), m.transpose(0, 1), v.t()))
    torch.testing.assert_close(g.sum(1), torch.ones(g.shape[0]))
    assert ((g > 0).sum(1) == 2).all()
    balanced = torch.full((8, 4), 0.25)
    skewed = torch.zeros(8, 4)
    skewed[:, 0] = 1
    assert load_balance_loss(balanced) < 1e-6 < load_balance_loss(skewed)
    assert load_balance_loss(balanced, "switch") == pytest.approx(1.0)
    assert load_balance_loss(skewed, "switch") == pytest.approx(4.0)


def _autograd_load_balance(gates, kind):
    """The load-balancing loss as tensor operations, for autograd to differentiate."""
    K = gates.shape[1]
    if kind == "switch":
        frac = torch.nn.functional.one_hot(gates.argmax(1), K).to(gates.dtype).mean(0)
        return K * (frac * gates.mean(0)).sum()
    importance = gates.sum(0)
    return importance.var(unbiased=False) / (importance.mean() ** 2 + 1e-10)


@pytest.mark.parametrize("kind", ["cv", "switch"])
@pytest.mark.parametrize("top_k", [None, 2])
def test_load_balance_loss_and_its_gradient_match_autograd(kind, top_k):
    """The closed-form loss and gradient against autograd's, in float32 and float64 (and
    gradcheck), also with the zeros of a top-k gate."""
    g = torch.softmax(torch.randn(37, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64), -1)
    if top_k:
        g = g * (g >= torch.topk(g, top_k, dim=-1).values[:, -1:])
        g = g / g.sum(-1, keepdim=True)
    for dtype in (torch.float64, torch.float32):
        a = g.to(dtype).clone().requires_grad_()
        b = g.to(dtype).clone().requires_grad_()
        want, got = _autograd_load_balance(a, kind), load_balance_loss(b, kind)
        assert got.dtype == dtype and got.shape == ()
        (3 * want).backward()
        (3 * got).backward()
        tol = dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(got, want, **tol)
        torch.testing.assert_close(b.grad, a.grad, **tol)
        assert b.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda x: load_balance_loss(x, kind), (g.clone().requires_grad_(),))


def test_load_balance_loss_of_one_expert_no_rows_and_unknown_kinds():
    for kind in ("cv", "switch"):
        assert load_balance_loss(torch.ones(6, 1), kind) == 0  # one expert: nothing to balance
    for kind in ("cv", "switch"):
        empty = torch.zeros(0, 3, requires_grad=True)
        loss = load_balance_loss(empty, kind)
        loss.backward()
        assert loss == 0 and empty.grad.shape == (0, 3)
    for kind in ("entropy", None):
        with pytest.raises(ValueError, match="load-balancing loss must be 'cv' or 'switch'"):
            load_balance_loss(torch.full((6, 2), 0.5), kind)
        with pytest.raises(ValueError, match="load-balancing loss must be 'cv' or 'switch'"):
            MRMoENet(3, 2, load_balance=kind)


def test_slow_experts_take_fewer_steps():
    experts = MultiRateCfC(6, (1, 2, 4, 8), hidden_size=5, backbone_units=7)
    x, m, dt, v = _batch(T=13)
    hs, valid = experts(x.transpose(0, 1), m.transpose(0, 1), dt.t(), v.t())
    assert [h.shape for h in hs] == [(13, 6, 5), (7, 6, 5), (4, 6, 5), (2, 6, 5)]
    assert [ok.shape for ok in valid] == [(13, 6), (7, 6), (4, 6), (2, 6)]
    assert valid[0][:, 0].sum() == 9 and valid[3][:, 0].sum() == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"feature_attention": False},
        {"temporal_attention": False},
        {"gate": False},
        {"rates": (1,)},
        {"top_k": 1, "load_balance": "switch"},
        {"rates": (3, 1, 1)},
    ],
)
def test_mrmoe_net_switches_give_finite_logits_and_gradients(kwargs):
    torch.manual_seed(0)
    net = MRMoENet(3, 2, hidden_size=4, backbone_units=6, **kwargs)
    x, m, dt, v = _batch()
    logits = net(x, m, dt, v)
    assert logits.shape == (6, 2)
    loss = logits.logsumexp(1).mean() + (net.aux_loss if net.aux_loss is not None else 0)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_mrmoe_details_shapes_and_padding_invariance():
    torch.manual_seed(0)
    net = MRMoENet(3, 2, hidden_size=4, backbone_units=6).eval()
    x, m, dt, v = _batch()
    logits, det = net(x, m, dt, v, return_details=True)
    assert det["feature_weights"].shape == (6, 3)
    assert det["gate_weights"].shape == (6, 4)
    assert det["temporal_weights"].shape == (6, 4, 13)
    torch.testing.assert_close(det["temporal_weights"].sum(-1), torch.ones(6, 4))
    assert (det["temporal_weights"][0, :, 9:] == 0).all()
    # extra trailing padding does not change any prediction
    pad = lambda t: torch.cat([t, torch.zeros_like(t[:, :5])], 1)  # noqa: E731
    torch.testing.assert_close(net(pad(x), pad(m), pad(dt), pad(v)), logits, atol=1e-5, rtol=1e-5)


def test_lstm_net_reads_last_valid_state():
    torch.manual_seed(0)
    net = LSTMNet(3, 2, hidden_size=5).eval()
    x, m, dt, v = _batch()
    out = net(x, m, dt, v)
    x2 = x.clone()
    x2[0, 9:] = 100.0  # padding of sample 0 only
    torch.testing.assert_close(net(x2, m, dt, v)[0], out[0])


def test_carry_forward_gives_last_value_and_its_age():
    from mrmoe_sklearn.nn.models import carry_forward

    # one sample, one feature observed at steps 1 and 3 of 5; dt 1 at step 0 (convention), then 2, 3, 4, 5
    x = torch.tensor([0.0, 7.0, 0.0, -2.0, 0.0])[:, None, None]
    m = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])[:, None, None]
    dt = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])[:, None]
    out = carry_forward(x, m, dt)
    assert out.shape == (5, 1, 2)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([0.0, 7.0, 7.0, -2.0, -2.0]))
    # clock since the first step: 0, 2, 5, 9, 14; ages: since start before the first observation
    age = torch.tensor([0.0, 0.0, 3.0, 0.0, 5.0])
    torch.testing.assert_close(out[:, 0, 1], torch.log1p(age))


def test_mrmoe_net_with_carry_forward_and_summaries():
    x, m, dt, v = _batch()
    s = torch.randn(x.shape[0], 5)
    torch.manual_seed(0)
    net = MRMoENet(3, 2, rates=(1, 2), carry_forward=True, n_summary=5)
    assert net.experts.input_weight.shape[1] == 12  # [mean, fraction, last value, age] x 3 features
    logits = net(x, m, dt, v, s=s)
    assert logits.shape == (6, 2) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert net.summary.weight.grad.abs().sum() > 0
    assert net.experts.input_weight.grad[:, 6:].abs().sum() > 0  # the carried-forward inputs are used
    net.eval()
    changed = net(x, m, dt, v, s=s + 1.0)
    assert not torch.allclose(changed, net(x, m, dt, v, s=s))
    with pytest.raises(ValueError, match="summary input s"):
        net(x, m, dt, v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_block_copies_rows_only_where_they_change_the_arithmetic(dtype, monkeypatch):
    """In evaluation a network with ``row_block`` computes as on its batch copied up to a whole block
    of rows, bit for bit; the compiled mixture (float32) computes each sample alone and gets the
    batch's own rows, the PyTorch one (float64) the copies."""
    from mrmoe_sklearn.nn import fused

    torch.manual_seed(0)
    net = MRMoENet(3, 2, rates=(1, 2, 4), n_summary=5, summary_hidden=8, row_block=8).to(dtype).eval()
    x, m, dt, v = (t.to(dtype) for t in _batch(B=5))
    s = torch.randn(5, 5, dtype=dtype)
    seen = []
    mixture = fused.mixture
    monkeypatch.setattr(fused, "mixture", lambda x, *args: seen.append(x.shape[0]) or mixture(x, *args))
    with torch.no_grad():
        logits, details = net(x, m, dt, v, s, return_details=True)
        net.row_block = 0
        copies = torch.arange(8) % 5
        padded, padded_details = net(x[copies], m[copies], dt[copies], v[copies], s[copies], return_details=True)
    compiled = fused.compiled(x) and dtype == torch.float32
    assert seen == [5 if compiled else 8, 8]
    assert logits.shape == (5, 2) and torch.equal(logits, padded[:5])
    for key, value in details.items():
        assert value.shape[0] == 5 and torch.equal(value, padded_details[key][:5]), key
    net.row_block = 8
    with torch.no_grad():  # a sample alone: its result in the batch
        assert torch.equal(net(x[2:3], m[2:3], dt[2:3], v[2:3], s[2:3]), logits[2:3])
    net.train()  # training takes the batch as it is
    seen.clear()
    net(x, m, dt, v, s)
    assert seen == [5]


def test_row_block_fills_up_only_the_last_partial_block():
    """A batch of two whole blocks and a partial one: the head computes the whole blocks as they are
    and copies only the last block's rows, and every sample's logits equal its logits alone."""
    torch.manual_seed(0)
    net = MRMoENet(3, 2, rates=(1, 2, 4), n_summary=5, summary_hidden=8, row_block=32).eval()
    x, m, dt, v = _batch(B=70)
    s = torch.randn(70, 5)
    rows = []
    head = net._head
    net._head = lambda z, s: rows.append(s.shape[0]) or head(z, s)
    with torch.no_grad():
        logits = net(x, m, dt, v, s)
        expected = [32, 64] if fused.compiled(x) else [96]  # the tail block first, then the whole ones
        assert rows == expected
        for i in range(1, 70, 3):  # (sample 0 ends in padding, which is trimmed alone)
            assert torch.equal(
                net(x[i : i + 1], m[i : i + 1], dt[i : i + 1], v[i : i + 1], s[i : i + 1]), logits[i : i + 1]
            )


def test_head_calls_modules_with_hooks_as_modules():
    """The head runs its plain layers as functions, and any layer with a hook (or replaced) as a module:
    the hooks fire, and the logits are the same either way."""
    torch.manual_seed(0)
    net = MRMoENet(3, 2, rates=(1, 2), n_summary=5, summary_hidden=8).eval()
    x, m, dt, v = _batch(B=6)
    s = torch.randn(6, 5)
    with torch.no_grad():
        plain = net(x, m, dt, v, s)
        seen = []
        hooks = [
            layer.register_forward_hook(lambda mod, i, o: seen.append(type(mod).__name__))
            for layer in (net.summary[0], net.out)
        ]
        assert torch.equal(net(x, m, dt, v, s), plain)
        assert seen == ["Linear", "Linear"]
        for hook in hooks:
            hook.remove()
        net.summary[1] = torch.nn.Tanh()  # a replaced layer is called, not assumed to be GELU
        assert not torch.allclose(net(x, m, dt, v, s), plain)
