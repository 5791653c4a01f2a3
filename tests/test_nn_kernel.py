"""The compiled CfC kernel: agreement with the PyTorch loop, fallbacks, numerical range."""

import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import mrmoe_sklearn.nn.cells as cells
from mrmoe_sklearn.nn import kernel
from mrmoe_sklearn.nn.cells import cfc_scan
from tests._helpers import (
    FLUSHING_UNTESTABLE,
    denormals_kept,
    flushing_testable,
    loaded_libgomp,
    scan_problem,
    split_denormals,
)

needs_kernel = pytest.mark.skipif(not kernel.available(), reason=f"kernel: {kernel.status()}")


def _problem(S, K, B, U, H, seed=0):
    """Weights at a trained network's scale: rounding errors stay at rounding level over the
    steps (much larger ones make the recurrence chaotic, where two float32 computations that
    round differently drift apart by chance, and no tolerance compares them)."""
    return scan_problem(torch.float32, S, K, B, U, H, seed, weight_scale=U**-0.5)


def _run(args, dt, v, active, dtype):
    """States and all gradients of the scan in ``dtype`` (float64 takes the PyTorch loop)."""
    leaves = [a.detach().to(dtype).requires_grad_() for a in args]
    hs = cfc_scan(*leaves[:4], dt.to(dtype), v.to(dtype), active, h0=leaves[4])
    w = torch.Generator().manual_seed(1)
    loss = sum((h.double() * torch.randn(h.shape, generator=w, dtype=torch.float64)).sum() for h in hs)
    return [h.double() for h in hs], [g.double() for g in torch.autograd.grad(loss, leaves)]


@pytest.fixture(params=["native", "avx2"])
def build(request, monkeypatch, tmp_path):
    """The kernel as compiled for this machine, and (on x86-64) for AVX2 without AVX-512:
    its other vector width."""
    if request.param == "avx2":
        if platform.machine() not in ("x86_64", "AMD64"):
            pytest.skip("the AVX2 build is x86-64 only")
        if not {"avx2", "fma"} <= set(kernel._cpu_id().split()):  # its flags line
            pytest.skip("this CPU does not run AVX2/FMA code")
        monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
        monkeypatch.setattr(kernel, "_NATIVE", "-march=x86-64-v3")
        monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
        assert kernel.load() is not None, kernel.status()
    return request.param


@needs_kernel
@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize(
    "sizes",
    [
        dict(B=5, U=16, H=8),
        dict(B=3, U=5, H=3),
        dict(B=4, U=40, H=10),
        dict(B=20, U=32, H=16),
        dict(B=6, U=48, H=24),
        dict(B=3, U=56, H=32),
        dict(B=2, U=112, H=20),
    ],
    # with the default sizes and the wide ones every register-blocked row product runs, at 8 and
    # at 16 floats a vector: 1 to 4 vectors a row in pairs of rows, 5 to 8 vectors row by row
    ids=["vector-sizes", "odd-sizes", "mixed-sizes", "default-sizes", "wide-48", "wide-56", "wide-112"],
)
def test_kernel_matches_the_pytorch_loop(sizes, padding, build, monkeypatch):
    calls = []
    monkeypatch.setattr(kernel, "forward_experts", lambda *a, _f=kernel.forward_experts: calls.append(1) or _f(*a))
    S, K = 30, 3
    args, dt, v = _problem(S, K, **sizes)
    if not padding:
        v = torch.ones_like(v)
    active = (3,) * 8 + (2,) * 10 + (1,) * 12
    hs32, g32 = _run(args, dt, v, active, torch.float32)
    assert calls, "float32 on the CPU must take the kernel"
    assert [h.shape[0] for h in hs32] == [30, 18, 8]
    hs64, g64 = _run(args, dt, v, active, torch.float64)  # the exact reference
    monkeypatch.setenv("MRMOE_SKLEARN_KERNEL", "0")
    n_calls = len(calls)
    loop32 = _run(args, dt, v, active, torch.float32)  # PyTorch's float32 loop: its rounding error
    assert len(calls) == n_calls
    for ours, loop, ref in zip(hs32 + g32, loop32[0] + loop32[1], hs64 + g64):
        scale = ref.abs().max()
        err, loop_err = (ours - ref).abs().max() / scale, (loop - ref).abs().max() / scale
        assert err <= 4 * loop_err + 2e-6, (err, loop_err)


@needs_kernel
def test_kernel_reads_strided_inputs():
    """Experts sharing a rate get views of one projection (rows not contiguous)."""
    S, K, B, U, H = 12, 2, 4, 16, 8
    (xin, Wh, Wo, bo, h0), dt, v = _problem(S, K, B, U, H)
    wide = torch.randn(S, B, 3, U)
    views = [wide[:, :, 0], wide[:, :, 2]]
    assert not views[0].is_contiguous()
    got = cfc_scan(views, Wh, Wo, bo, list(dt.unbind(1)), list(v.unbind(1)), h0=h0)
    want = cfc_scan([x.contiguous() for x in views], Wh, Wo, bo, list(dt.unbind(1)), list(v.unbind(1)), h0=h0)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_kernel
def test_kernel_saturates_without_overflow():
    """Pre-activations far beyond the exponential's range give +-1 and 0/1, never inf or NaN."""
    S, K, B, U, H = 6, 1, 4, 8, 8
    (xin, Wh, Wo, bo, h0), dt, v = _problem(S, K, B, U, H)
    for scale in (1e3, 1e30):
        x = (xin * scale).detach().requires_grad_()
        hs = cfc_scan(x, Wh * scale, Wo * scale, bo * scale, dt, torch.ones_like(v), h0=h0)
        (g,) = torch.autograd.grad(hs[0].sum(), [x])
        assert torch.isfinite(hs[0]).all() and torch.isfinite(g).all()
        assert hs[0].abs().max() <= 1.0


@needs_kernel
@pytest.mark.parametrize("through", ["tanh", "sigmoid"])
def test_activations_match_torch_over_their_range(build, through):
    """One step with H = U = 8 where the update is one activation of the backbone's tanh:
    tanh and sigmoid to float32 rounding."""
    B, U, H = 1, 8, 8
    z = torch.linspace(-30, 30, 4001)
    for chunk in z.split(8):
        x = torch.zeros(1, 1, B, U)
        x[0, 0, 0, : chunk.numel()] = chunk / cells.LECUN_INNER  # th = tanh(chunk)
        Wo, bo = torch.zeros(1, U, 4 * H), torch.zeros(1, 4 * H)
        th = torch.tanh(chunk.double())
        if through == "tanh":
            # f1 = 0, f2 = tanh(th), s = sigmoid(0): h = f2 / 2
            Wo[0, :, H : 2 * H] = torch.eye(U)
            want = 0.5 * torch.tanh(th)
        else:
            # f1 = 0, f2 = tanh(20) = 1 in float32, s = sigmoid(30 th): h = s, over (-30, 30)
            Wo[0, :, 3 * H :] = 30 * torch.eye(U)
            bo[0, H : 2 * H] = 20.0
            want = torch.sigmoid(30 * th)
        hs = cfc_scan(
            x,
            torch.zeros(1, H, U),
            Wo / cells.LECUN_OUTER,
            bo,
            torch.ones(1, 1, B, 1),
            torch.ones(1, 1, B, 1),
            h0=torch.zeros(1, B, H),
        )
        got = hs[0][0, 0, : chunk.numel()].double()
        # the sigmoid's argument carries th's float32 rounding times 30
        torch.testing.assert_close(got, want, rtol=0, atol=3e-7 if through == "tanh" else 1e-6)


def test_switched_off_by_environment_variable(monkeypatch):
    monkeypatch.setenv("MRMOE_SKLEARN_KERNEL", "0")
    assert not kernel.available() and "off" in kernel.status()
    monkeypatch.setattr(kernel, "forward", lambda *a: pytest.fail("the kernel ran although switched off"))
    args, dt, v = _problem(5, 2, 3, 8, 4)
    hs = cfc_scan(*args[:4], dt, v, h0=args[4])
    assert [h.shape for h in hs] == [(5, 3, 4)] * 2


def test_compiler_failure_falls_back_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    with pytest.warns(RuntimeWarning, match="kernel is unavailable"):
        assert kernel.load() is None
    assert "failed" in kernel.status() and not list(tmp_path.rglob("*.so"))
    args, dt, v = _problem(5, 2, 3, 8, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hs = cfc_scan(*args[:4], dt, v, h0=args[4])  # the PyTorch loop
    assert not caught, [str(w.message) for w in caught]  # warned once per process, not per call
    assert all(torch.isfinite(h).all() for h in hs)


@needs_kernel
def test_kernel_is_built_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
    assert kernel.load() is not None
    (built,) = tmp_path.rglob("*.so")
    stamp = built.stat().st_mtime_ns
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setattr(kernel, "_compile", lambda target: pytest.fail("compiled again"))
    assert kernel.load() is not None and built.stat().st_mtime_ns == stamp


@needs_kernel
def test_nothing_is_saved_for_a_backward_without_gradients(monkeypatch):
    seen = []
    save = lambda *a, _f=kernel.forward_experts: seen.append(a[7]) or _f(*a)  # noqa: E731
    monkeypatch.setattr(kernel, "forward_experts", save)
    args, dt, v = _problem(6, 2, 3, 8, 4)  # requiring gradients
    with torch.no_grad():
        quiet = cfc_scan(*args[:4], dt, v, h0=args[4])
    assert seen == [False] and all(h.grad_fn is None for h in quiet)
    hs = cfc_scan(*args[:4], dt, v, h0=args[4])
    assert seen[1:] == [True]
    for a, b in zip(quiet, hs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_kernel
def test_gradient_by_a_non_contiguous_initial_state():
    """h0 may be any view (here a permuted one); its gradient is laid out like h0."""
    args, dt, v = _problem(7, 3, 5, 16, 8)
    h0 = args[4].detach().permute(1, 0, 2).contiguous().permute(1, 0, 2).requires_grad_()
    assert not h0.is_contiguous()
    dense = args[4].detach().clone().requires_grad_()
    grads = []
    for start in (h0, dense):
        hs = cfc_scan(*args[:4], dt, v, h0=start)
        grads.append(torch.autograd.grad(sum((h * h).sum() for h in hs), [start])[0])
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


@needs_kernel
def test_backward_after_the_kernel_is_switched_off(monkeypatch):
    """A forward that ran the kernel finishes its backward with it."""
    args, dt, v = _problem(6, 2, 3, 8, 4)
    hs = cfc_scan(*args[:4], dt, v, h0=args[4])
    monkeypatch.setenv("MRMOE_SKLEARN_KERNEL", "0")
    grads = torch.autograd.grad(sum(h.sum() for h in hs), args)
    assert all(torch.isfinite(g).all() for g in grads)


@needs_kernel
def test_no_second_order_gradients():
    args, dt, v = _problem(4, 1, 2, 8, 4)
    hs = cfc_scan(*args[:4], dt, v, h0=args[4])
    (g,) = torch.autograd.grad((hs[0] ** 2).sum(), [args[0]], create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        g.sum().backward()


def test_warnings_as_errors_do_not_compile_again(monkeypatch, tmp_path):
    """With RuntimeWarning an error the first call raises it; later calls take the loop quietly."""
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="kernel is unavailable"):
            kernel.load()
        monkeypatch.setattr(kernel, "_compile", lambda target: pytest.fail("compiled again"))
        assert kernel.load() is None


def test_shared_temporary_folder_must_be_private(tmp_path):
    mine = tmp_path / "mine"
    assert kernel._private_dir(mine) and (mine.stat().st_mode & 0o777) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    assert not kernel._private_dir(shared)


def test_cache_folders_in_order(monkeypatch, tmp_path):
    """The user's cache first; the private temporary folder only when that fails."""
    monkeypatch.delenv("MRMOE_SKLEARN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(kernel.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(kernel, "_compile", lambda target: None)
    assert kernel._built("x.so").parent == tmp_path / "cache" / "mrmoe_sklearn"
    assert not any((tmp_path / "tmp").iterdir())  # nothing created there

    def compile_(target):
        if "cache" in target.parts:
            raise OSError("read-only")

    monkeypatch.setattr(kernel, "_compile", compile_)
    assert kernel._built("x.so").parent == tmp_path / "tmp" / f"mrmoe_sklearn-{os.getuid()}"


def _scan_and_grads(args, dt, v, active=None):
    hs = cfc_scan(*args[:4], dt, v, active, h0=args[4])
    w = torch.Generator().manual_seed(3)
    loss = sum((h * torch.randn(h.shape, generator=w)).sum() for h in hs)
    return list(hs) + list(torch.autograd.grad(loss, args))


# batches of several 16-sample blocks (the threads' unit), an odd last block, and fewer samples than a block
THREAD_SIZES = [dict(B=37, U=32, H=16), dict(B=70, U=5, H=3), dict(B=64, U=40, H=10), dict(B=5, U=16, H=8)]


@needs_kernel
@pytest.mark.parametrize("sizes", THREAD_SIZES, ids=lambda s: f"B{s['B']}-U{s['U']}-H{s['H']}")
def test_results_do_not_depend_on_the_thread_count(sizes, monkeypatch):
    """States, input and weight gradients bit-identical for 1, 2 and 3 threads (3 on a 2-core
    machine still runs three threads and tests the partition)."""
    args, dt, v = _problem(20, 3, **sizes)
    active = (3,) * 6 + (2,) * 6 + (1,) * 8
    threads = []
    monkeypatch.setattr(kernel, "forward_experts", lambda *a, _f=kernel.forward_experts: threads.append(a[8]) or _f(*a))
    old = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(_scan_and_grads(args, dt, v, active))
    finally:
        torch.set_num_threads(old)
    assert threads == [1, 2, 3]  # the kernel follows torch's setting (one call for all experts)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_kernel_thread_count_passed_explicitly(n_threads):
    """kernel.forward/backward take the count as an argument; more threads than blocks is fine."""
    (xin, Wh, Wo, bo, h0), dt, v = _problem(9, 1, 40, 16, 8)
    x, d, m, h = xin[:, 0].detach(), dt[:, 0, :, 0].contiguous(), v[:, 0, :, 0].contiguous(), h0[0].detach()
    Wh, Wo, bo = Wh[0].detach(), Wo[0].detach().contiguous(), bo[0].detach()
    ref = kernel.forward(x, d, m, h, Wh, Wo, bo, True, 1)
    got = kernel.forward(x, d, m, h, Wh, Wo, bo, True, n_threads)
    for a, b in zip(got, ref):
        assert torch.equal(a, b)
    g = torch.randn(ref[0].shape, generator=torch.Generator().manual_seed(0))
    WoT, WhT = Wo.t().contiguous(), Wh.t().contiguous()
    back = [
        kernel.backward(g, d, m, ref[1], ref[2], ref[0], h, WoT, WhT, carry, n) + (carry,)
        for n, carry in ((1, torch.zeros(40, 8)), (n_threads, torch.zeros(40, 8)))
    ]
    for a, b in zip(*back):
        assert torch.equal(a, b)


@needs_kernel
def test_kernel_built_without_threads_gives_the_same_results(monkeypatch, tmp_path):
    """MRMOE_SKLEARN_OPENMP=0 builds the single-threaded kernel (another cache key): the same
    results as the threaded build, asked for any thread count."""
    args, dt, v = _problem(15, 2, 45, 32, 16)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threaded = _scan_and_grads(args, dt, v)
        monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
        monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
        monkeypatch.setenv("MRMOE_SKLEARN_OPENMP", "0")
        assert kernel.load() is not None and not kernel.threaded()
        assert "one thread" in kernel.status()
        assert all("-fopenmp" not in flags for flags in kernel._attempts())
        plain = _scan_and_grads(args, dt, v)
    finally:
        torch.set_num_threads(old)
    (built,) = tmp_path.rglob("*.so")
    monkeypatch.delenv("MRMOE_SKLEARN_OPENMP")
    assert kernel._key() not in built.name  # with OpenMP: another library
    for a, b in zip(threaded, plain):
        assert torch.equal(a, b)


@needs_kernel
def test_unloadable_threaded_build_falls_back_to_one_thread(monkeypatch, tmp_path):
    """A library built with OpenMP that does not load (its runtime) is rebuilt without."""
    monkeypatch.setattr(kernel, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("MRMOE_SKLEARN_CACHE", str(tmp_path))
    real, names = kernel.ctypes.CDLL, []

    def cdll(name, *a, **k):
        names.append(name)
        if len(names) == 1:
            raise OSError("undefined symbol: GOMP_parallel")
        return real(name, *a, **k)

    monkeypatch.setattr(kernel.ctypes, "CDLL", cdll)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernel.load() is not None
    assert len(names) == 2 and names[0] != names[1] and not kernel.threaded()


@needs_kernel
def test_threaded_build_shares_torchs_openmp_runtime():
    """Where torch ships GNU's libgomp.so.1 the kernel links to that one: one pool of threads.

    Checked in a fresh process holding only torch and the kernel: other libraries that a test
    session imports (numba, under aeon) may load the system's libgomp beside them."""
    if not kernel.threaded() or loaded_libgomp() is None:
        pytest.skip("no threaded kernel or no /proc")
    torch_lib = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    if not torch_lib.exists():
        pytest.skip("this torch has no bundled libgomp.so.1")
    code = (
        "from mrmoe_sklearn.nn import kernel\n"
        "from tests._helpers import loaded_libgomp\n"
        "assert kernel.load() is not None\n"
        "print(sorted(str(p) for p in loaded_libgomp()))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr([str(torch_lib.resolve())]), out


def test_pytorch_loop_is_thread_count_independent_in_its_states(monkeypatch):
    """MRMOE_SKLEARN_KERNEL=0 keeps working at any thread count (torch's own reductions may
    round differently: compared to float32 rounding)."""
    monkeypatch.setenv("MRMOE_SKLEARN_KERNEL", "0")
    args, dt, v = _problem(10, 2, 37, 16, 8)
    old = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(_scan_and_grads(args, dt, v))
    finally:
        torch.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_experts_in_one_call_match_one_call_each():
    """forward_experts/backward_experts over all experts in one call (as the scan runs them)
    give bit for bit what each expert's own call gives (forward/backward): the experts do not
    touch each other's states, gradients or working memory."""
    (xin, Wh, Wo, bo, h0), dt, v = _problem(12, 3, 37, 16, 8)
    steps = [12, 7, 3]
    xs = [xin[:n, k].detach() for k, n in enumerate(steps)]  # strided rows, as the scan passes them
    ds = [dt[:n, k, :, 0].contiguous() for k, n in enumerate(steps)]
    ms = [v[:n, k, :, 0].contiguous() for k, n in enumerate(steps)]
    Wh, Wo, bo, h0 = (t.detach().contiguous() for t in (Wh, Wo, bo, h0))
    hs, th, act = kernel.forward_experts(xs, ds, ms, h0, Wh, Wo, bo, True, 2)
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(h.shape, generator=g) for h in hs]
    WoT, WhT = Wo.transpose(1, 2).contiguous(), Wh.transpose(1, 2).contiguous()
    carry = torch.zeros_like(h0)
    out = (torch.empty_like(Wh), torch.empty_like(Wo), torch.empty_like(bo))
    P = kernel.backward_experts(grads, ds, ms, th, act, hs, h0, WoT, WhT, carry, out, 2)
    for k in range(3):
        one = kernel.forward(xs[k], ds[k], ms[k], h0[k], Wh[k], Wo[k], bo[k], True, 1)
        for a, b in zip(one, (hs[k], th[k], act[k])):
            assert torch.equal(a, b)
        c = torch.zeros_like(h0[k])
        back = kernel.backward(grads[k], ds[k], ms[k], th[k], act[k], hs[k], h0[k], WoT[k], WhT[k], c, 1)
        for a, b in zip(back + (c,), (P[k], out[0][k], out[1][k], out[2][k], carry[k])):
            assert torch.equal(a, b)


def test_workspace_pool_reuses_the_smallest_fitting_buffer_and_keeps_a_bounded_number():
    """A buffer handed back is taken again by a request it can hold (the smallest such one);
    the pool keeps at most ``keep`` buffers and ``max_bytes``, dropping the smallest."""
    pool = kernel._Workspaces(keep=2, max_bytes=4 * 1000)
    a, b = pool.take(100), pool.take(500)
    assert a.numel() >= 100 and b.numel() >= 500
    pool.give(a)
    pool.give(b)
    assert pool.take(50).data_ptr() == a.data_ptr()  # the smallest that fits
    assert pool.take(50).data_ptr() == b.data_ptr()
    assert pool.take(50).data_ptr() not in (a.data_ptr(), b.data_ptr())  # none left: a new one
    for n in (10, 20, 30):
        pool.give(torch.empty(n))
    assert sorted(t.numel() for t in pool._free) == [20, 30]  # at most two, the largest kept
    pool.give(torch.empty(990))
    assert [t.numel() for t in pool._free] == [990]  # 4,000 bytes at most


def test_sample_blocks_contiguous():
    """A batch cut in time keeps each sample's block contiguous; one cut across features, or
    laid out time-major, does not (the compiled calls refuse it with the input's name)."""
    x = torch.zeros(6, 9, 4)
    assert kernel.sample_blocks_contiguous(x)
    assert kernel.sample_blocks_contiguous(x[:, :5])  # strided samples, contiguous blocks
    assert kernel.sample_blocks_contiguous(x[:0, :, :3])  # no samples
    for bad in (x[:, :, :3], x[:, :, :1], x.transpose(0, 1)):
        assert not kernel.sample_blocks_contiguous(bad)
        with pytest.raises(ValueError, match="x: each sample's block must be contiguous"):
            kernel._sample_rows(bad, "x")
    assert kernel._sample_rows(x[:, :5], "x") == 36


@needs_kernel
def test_flush_denormals_reaches_torchs_threads():
    if not flushing_testable():
        pytest.skip(FLUSHING_UNTESTABLE)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = split_denormals()
        torch.set_flush_denormal(True)  # the calling thread alone
        assert kernel.flush_denormals(None, 1) == 1 and kernel.flush_denormals(None, 2) == 1
        assert 0 < denormals_kept(x) < x.numel()
        assert kernel.flush_denormals(True, 2) == 2
        assert denormals_kept(x) == 0
        assert kernel.flush_denormals(False, 2) == 0
        assert kernel.flush_denormals(None, 1) == 0
        assert denormals_kept(x) == x.numel()
    finally:
        kernel.flush_denormals(False, 2)
        torch.set_num_threads(old)
