"""CfC cells: agreement with ncps, and the fused scan against autograd."""

import pytest
import torch

from mrmoe_sklearn.nn.cells import LECUN_INNER, LECUN_OUTER, CfCCell, cfc_scan
from tests._helpers import scan_problem

ncps = pytest.importorskip("ncps.torch")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cell_matches_ncps_default_mode(seed):
    torch.manual_seed(seed)
    theirs = ncps.CfCCell(5, 7, mode="default", backbone_units=11)
    ours = CfCCell.from_ncps(theirs)
    x, h = torch.randn(9, 5), torch.randn(9, 7)
    dt = torch.rand(9, 1) * 3  # (B, 1): ncps' own sequence wrapper mishandles (B,)
    expected, _ = theirs(x, h, dt)
    torch.testing.assert_close(ours(x, h, dt), expected, atol=1e-5, rtol=0)


def test_cell_from_ncps_rejects_other_modes():
    with pytest.raises(ValueError, match="default"):
        CfCCell.from_ncps(ncps.CfCCell(3, 4, mode="pure"))


def _reference_scan(xin, Wh, Wo, bo, dt, v, h0):
    """The CfC update written out with autograd, every expert every step."""
    H = Wh.shape[1]
    h, outs = h0, []
    for t in range(xin.shape[0]):
        th = torch.tanh(LECUN_INNER * (xin[t] + h @ Wh))
        heads = bo[:, None] + LECUN_OUTER * th @ Wo
        f1, f2 = torch.tanh(heads[..., :H]), torch.tanh(heads[..., H : 2 * H])
        s = torch.sigmoid(heads[..., 2 * H : 3 * H] * dt[t] + heads[..., 3 * H :])
        h = v[t] * (f1 * (1 - s) + s * f2) + (1 - v[t]) * h
        outs.append(h)
    return torch.stack(outs)


def _problem(dtype=torch.float64, S=7):
    return scan_problem(dtype, S=S)


@pytest.mark.parametrize("regular", [False, True])
@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize("max_run", [64, 3])
def test_scan_forward_and_gradients_match_autograd_reference(padding, max_run, regular, monkeypatch):
    import mrmoe_sklearn.nn.cells as cells

    monkeypatch.setattr(cells, "MAX_RUN", max_run)
    (xin, Wh, Wo, bo, h0), dt, v = _problem()
    if not padding:  # every step valid: the backward takes its branch without masks
        v = torch.ones_like(v)
    if regular:  # one elapsed time per expert: the time heads are folded into one product
        dt = torch.tensor([1.0, 2.0, 0.5], dtype=dt.dtype)[None, :, None, None].expand_as(dt)
    ours = torch.stack(cfc_scan(xin, Wh, Wo, bo, dt, v, h0=h0), dim=1)
    ref = _reference_scan(xin, Wh, Wo, bo, dt, v, h0)
    torch.testing.assert_close(ours, ref)
    w = torch.randn_like(ref)
    g_ours = torch.autograd.grad((ours * w).sum(), [xin, Wh, Wo, bo, h0])
    g_ref = torch.autograd.grad((ref * w).sum(), [xin, Wh, Wo, bo, h0])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("padding", [True, False])
def test_scan_with_finished_experts_passes_gradcheck(padding):
    (xin, Wh, Wo, bo, h0), dt, v = _problem(S=6)
    if not padding:
        v = torch.ones_like(v)
    active = (3, 3, 3, 2, 2, 1)
    assert torch.autograd.gradcheck(lambda *a: cfc_scan(*a[:4], dt, v, active, h0=a[4]), (xin, Wh, Wo, bo, h0))


def test_finished_experts_stop_and_earlier_states_are_unaffected():
    (xin, Wh, Wo, bo, h0), dt, v = _problem(dtype=torch.float32, S=5)
    full = cfc_scan(xin, Wh, Wo, bo, dt, v, h0=h0)
    part = cfc_scan(xin, Wh, Wo, bo, dt, v, active=(3, 3, 2, 1, 1), h0=h0)
    assert [h.shape[0] for h in part] == [5, 3, 2]
    for k in range(3):
        torch.testing.assert_close(part[k], full[k][: part[k].shape[0]])


def test_long_runs_are_split_without_changing_the_result(monkeypatch):
    import mrmoe_sklearn.nn.cells as cells

    (xin, Wh, Wo, bo, h0), dt, v = _problem(S=9)
    active = (3,) * 4 + (2,) * 3 + (1,) * 2
    whole = cfc_scan(xin, Wh, Wo, bo, dt, v, active, h0=h0)
    g_whole = torch.autograd.grad(sum(h.sum() for h in whole), [xin, Wh, Wo, bo, h0])
    monkeypatch.setattr(cells, "MAX_RUN", 2)
    assert len(cells._segments(active)) == 5
    split = cfc_scan(xin, Wh, Wo, bo, dt, v, active, h0=h0)
    g_split = torch.autograd.grad(sum(h.sum() for h in split), [xin, Wh, Wo, bo, h0])
    for a, b in zip(list(whole) + list(g_whole), list(split) + list(g_split)):
        torch.testing.assert_close(a, b)


def test_padding_steps_keep_the_state():
    (xin, Wh, Wo, bo, h0), dt, v = _problem(dtype=torch.float32)
    v = torch.ones_like(v)
    v[3:] = 0
    hs = torch.stack(cfc_scan(xin, Wh, Wo, bo, dt, v, h0=h0), dim=1)
    for t in range(3, hs.shape[0]):
        torch.testing.assert_close(hs[t], hs[2], rtol=0, atol=0)


def test_cell_uses_elapsed_time():
    torch.manual_seed(0)
    cell = CfCCell(3, 4, backbone_units=8)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    a = cell(x, h, torch.full((2, 1), 0.1))
    b = cell(x, h, torch.full((2, 1), 5.0))
    assert not torch.allclose(a, b)


def test_scan_without_gradients_gives_the_same_states():
    (xin, Wh, Wo, bo, h0), dt, v = _problem()  # float64: the PyTorch loop
    with torch.no_grad():
        quiet = cfc_scan(xin, Wh, Wo, bo, dt, v, active=(3, 3, 2, 2, 1, 1, 1), h0=h0)
    hs = cfc_scan(xin, Wh, Wo, bo, dt, v, active=(3, 3, 2, 2, 1, 1, 1), h0=h0)
    assert all(h.grad_fn is None for h in quiet) and all(h.grad_fn is not None for h in hs)
    for a, b in zip(quiet, hs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a, dt, v: (a[:4] + [a[4][:, :2]], dt, v), "h0"),
        (lambda a, dt, v: ([a[0], a[1][:, :, :-1], *a[2:]], dt, v), "xin of expert 0 .*U from recurrent_weight"),
        (lambda a, dt, v: ([a[0], a[1][0], *a[2:]], dt, v), r"recurrent_weight must have shape \(K, H, U\)"),
        (lambda a, dt, v: ([*a[:2], a[2][:, :, :-1], *a[3:]], dt, v), "head_weight"),
        (lambda a, dt, v: ([*a[:3], a[3][:1], a[4]], dt, v), "head_bias"),
        (lambda a, dt, v: ([a[0][..., :-1], *a[1:]], dt, v), "xin of expert 0"),
        (lambda a, dt, v: (a, dt[:, :, :1], v), "dt"),
        (lambda a, dt, v: (a, dt, v[..., :1, :]), "v"),
    ],
    ids=["h0", "recurrent_weight", "recurrent_weight-rank", "head_weight", "head_bias", "xin", "dt", "v"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scan_rejects_inconsistent_shapes(change, match, dtype):
    """Both paths (float32: the compiled kernel where available, float64: the loop) check shapes first."""
    args, dt, v = change(*scan_problem(dtype, S=5, K=2, B=4, U=6, H=3))
    with pytest.raises(ValueError, match=match):
        cfc_scan(*args[:4], dt, v, h0=args[4])
