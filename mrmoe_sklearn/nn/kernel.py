"""The compiled CfC kernel: every expert's whole sequence in one call, forward and backward.

``_cfc_kernel.c`` is compiled with the system's C compiler on first use into a
per-user cache and loaded with :mod:`ctypes`; nothing is compiled at install
time and no Python package is needed for it. Where no compiler works, or for
anything but float32 tensors on the CPU, :func:`~mrmoe_sklearn.nn.cells.cfc_scan`
runs its PyTorch loop instead (the same update; results agree to float32
rounding). Set the environment variable ``MRMOE_SKLEARN_KERNEL=0`` to always
use the PyTorch loop.

The same library runs the network's work around the recurrence
(:mod:`mrmoe_sklearn.nn.fused`): the front and the back, one call each, and
the whole mixture between the batch and the head in one call each way
(:func:`mixture_forward`, :func:`mixture_backward`), whose intermediate
values live in a :class:`Workspace` reused between calls.

The same library holds the per-channel summary statistics of
:func:`mrmoe_sklearn.summary.summary_statistics` (:func:`summary_statistics`
here, two passes over each sample) and their quantile-bin encoding
(:func:`quantile_encode`); without it both run their numpy computation.

Threads: where the compiler takes ``-fopenmp`` the kernel splits each call's
samples over threads (``n_threads``, by default torch's own setting,
:func:`torch.get_num_threads`, which the estimators' ``n_threads`` sets). It
then shares torch's OpenMP runtime where torch has one (GNU's ``libgomp.so.1``,
as in torch's Linux wheels), so the two never run two pools of threads at
once. Samples are cut into fixed blocks that threads take whole, so the
results are bit-identical for any thread count. Without OpenMP (or with
``MRMOE_SKLEARN_OPENMP=0``, which builds without it) it runs on one thread with
the same results.
"""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "load",
    "available",
    "status",
    "threaded",
    "flush_denormals",
    "forward",
    "backward",
    "forward_experts",
    "backward_experts",
    "front_forward",
    "front_backward",
    "back_forward",
    "back_backward",
    "summary_statistics",
    "quantile_encode",
]

_SOURCE = Path(__file__).with_name("_cfc_kernel.c")
_FLAGS = ["-O3", "-fno-math-errno", "-fPIC", "-shared"]
#: Tried first; compilers that reject it (some targets) build without.
_NATIVE = "-march=native"
#: Threads; compilers without OpenMP (Apple's clang) build without.
_OPENMP = "-fopenmp"
_lock = threading.Lock()
_state = {"lib": None, "tried": False, "error": None}


def _off(variable):
    return os.environ.get(variable, "1").strip().lower() in ("0", "false", "no", "off")


def _switched_off():
    return _off("MRMOE_SKLEARN_KERNEL")


def _attempts():
    """The extra flags of each compile, tried in order until one succeeds: with threads
    (unless ``MRMOE_SKLEARN_OPENMP=0``) and the machine's instructions first."""
    threads = [[]] if _off("MRMOE_SKLEARN_OPENMP") or _state.get("no_openmp") else [[_OPENMP], []]
    return [[*native, *omp] for omp in threads for native in ([_NATIVE], [])]


def _cache_dirs():
    """Where the library may be built, in order: ``$MRMOE_SKLEARN_CACHE``, else the user's
    cache, else a private folder in the temporary folder (a generator: later folders are only
    looked at when the earlier ones fail)."""
    explicit = os.environ.get("MRMOE_SKLEARN_CACHE")
    if explicit:
        yield Path(explicit)
        return
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home folder
        base = None
    if base is not None:
        yield Path(base) / "mrmoe_sklearn"
    # reached only when the user's cache failed: nothing is created in /tmp otherwise
    shared = Path(tempfile.gettempdir()) / f"mrmoe_sklearn-{os.getuid()}"
    if _private_dir(shared):
        yield shared


def _private_dir(path):
    """Create ``path`` for this user alone (mode 0700); False if it exists and another user
    owns it or may write to it: a library found there could have been planted."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


# /proc/cpuinfo lines naming the CPU and its extensions (x86: model, flags; ARM: parts, features)
_CPU_LINES = ("model name", "flags", "Features", "CPU implementer", "CPU architecture", "CPU variant", "CPU part")


def _cpu_id():
    """What the machine code depends on (``-march=native``): the CPU model and its extensions."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    lines = {}
    for ln in info.splitlines():
        key = ln.split(":", 1)[0].strip()
        if key in _CPU_LINES:
            lines.setdefault(key, ln)
    return "\n".join([platform.machine(), platform.processor(), *lines.values()])


def _compile(target):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Compile to a private name, then rename: processes starting together (joblib
    # workers) never load a half-written library.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        for extra in _attempts():
            cmd = [*cc.split(), *_FLAGS, *extra, str(_SOURCE), "-o", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if done.returncode == 0:
                break
        else:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[:500]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _built(name):
    """The library's path, compiled into the first cache folder that can hold it."""
    errors = []
    for folder in _cache_dirs():
        target = folder / name
        if target.exists():
            return target
        try:
            _compile(target)
            return target
        except OSError as exc:  # folder not writable: try the next
            errors.append(f"{folder}: {exc}")
    raise OSError("; ".join(errors) or "no cache folder for the compiled kernel")


def _bind(lib):
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.cfc_forward_scratch.argtypes = [i64] * 4
    lib.cfc_forward_scratch.restype = i64
    lib.cfc_forward_experts.argtypes = [i64, ptr] + [i64] * 3 + [ptr] * 13 + [i64]
    lib.cfc_forward_experts.restype = None
    lib.cfc_backward_experts.argtypes = [i64, ptr] + [i64] * 3 + [ptr] * 15 + [i64]
    lib.cfc_backward_experts.restype = None
    lib.cfc_backward_experts_scratch.argtypes = [i64] * 5
    lib.cfc_backward_experts_scratch.restype = i64
    lib.cfc_threaded.argtypes = []
    lib.cfc_threaded.restype = ctypes.c_int
    lib.flush_denormals.argtypes = [i64, i64]
    lib.flush_denormals.restype = i64
    lib.summary_stats.argtypes = [i64] * 3 + [ptr, i64] + [ptr] * 4 + [i64]
    lib.summary_stats.restype = None
    lib.quantile_encode.argtypes = [i64] * 3 + [ptr] * 5 + [i64] * 2
    lib.quantile_encode.restype = None
    lib.summary_stats_scratch.argtypes = [i64] * 2
    lib.summary_stats_scratch.restype = i64
    lib.front_forward.argtypes = [i64] * 3 + [ptr, i64] * 4 + [ptr] * 3 + [i64] + [ptr] * 6 + [i64]
    lib.front_backward.argtypes = [i64] * 3 + [ptr, i64] * 2 + [ptr] + [i64] + [ptr] * 7 + [i64]
    lib.back_forward.argtypes = [i64] * 4 + [ptr] * 13 + [i64]
    lib.back_backward.argtypes = [i64] * 4 + [ptr] * 15 + [i64]
    lib.mixture_layout.argtypes = [ptr] * 4
    lib.mixture_layout.restype = i64
    lib.mixture_forward.argtypes = [ptr] * 3 + [ptr, i64] * 4 + [ptr] * 5
    lib.mixture_backward.argtypes = [ptr] * 3 + [ptr, i64] * 2 + [ptr] * 8
    for name in (
        "front_forward",
        "front_backward",
        "back_forward",
        "back_backward",
        "mixture_forward",
        "mixture_backward",
    ):
        getattr(lib, name).restype = None
    return lib


def _key():
    """The library's cache key: its source, every flag tried, and the CPU."""
    flags = " ".join([*_FLAGS, *(" ".join(a) + ";" for a in _attempts())])
    return hashlib.sha256(_SOURCE.read_bytes() + flags.encode() + _cpu_id().encode()).hexdigest()[:16]


def load():
    """The compiled kernel, compiling it on first use; None where that is off or fails.

    Returns
    -------
    ctypes.CDLL or None
    """
    if _switched_off():
        return None
    if _state["tried"]:
        return _state["lib"]
    with _lock:
        if not _state["tried"]:
            try:
                if not sys.platform.startswith(("linux", "darwin")):
                    raise RuntimeError(f"not built on {sys.platform}")
                try:
                    _state["lib"] = _bind(ctypes.CDLL(str(_built(f"cfc_kernel_{_key()}.so"))))
                except OSError:
                    if [_OPENMP] not in _attempts():
                        raise
                    # built with OpenMP but not loadable (its runtime): without threads
                    _state["no_openmp"] = True
                    _state["lib"] = _bind(ctypes.CDLL(str(_built(f"cfc_kernel_{_key()}.so"))))
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                _state["error"] = f"{type(exc).__name__}: {exc}"
            # recorded before warning: a warning raised as an error must not make every
            # later call compile again
            _state["tried"] = True
            if _state["lib"] is None:
                warnings.warn(
                    f"mrmoe_sklearn: the compiled CfC kernel is unavailable ({_state['error']}); "
                    "the experts run their PyTorch loop and the summary statistics their numpy computation instead "
                    "(the same model, slower training). "
                    "Set MRMOE_SKLEARN_KERNEL=0 to choose that loop and silence this warning.",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return _state["lib"]


def available():
    """Whether the compiled kernel is in use (see the module's description).

    Returns
    -------
    bool
    """
    return load() is not None


def status():
    """Why the compiled kernel is or is not in use, in words.

    Returns
    -------
    str
    """
    if _switched_off():
        return "off (MRMOE_SKLEARN_KERNEL=0): PyTorch loop"
    if load() is not None:
        threads = "threads: OpenMP" if threaded() else "one thread (built without OpenMP)"
        return f"compiled kernel in use, {threads} ({_state['lib']._name})"
    return f"unavailable ({_state['error']}): PyTorch loop"


def threaded():
    """Whether the compiled kernel runs threads (built with OpenMP).

    Returns
    -------
    bool
        False also where the kernel is not in use.
    """
    lib = load()
    return lib is not None and bool(lib.cfc_threaded())


def flush_denormals(on, n_threads=None, load_library=True):
    """Flush denormal floats to zero, or stop, in the calling thread and its OpenMP threads.

    :func:`torch.set_flush_denormal` changes the calling thread's setting
    only; OpenMP threads keep the one they inherited when they started. This
    sets the calling thread's with torch's function and gives it to every
    thread of the calling thread's parallel regions of ``n_threads``
    threads: torch's own threads where the kernel shares torch's OpenMP
    runtime (GNU's ``libgomp.so.1``, as in torch's Linux wheels), else the
    kernel's.

    Parameters
    ----------
    on : bool or None
        True to flush, False not to; None only reads the setting.
    n_threads : int or None, default=None
        Threads of the regions to reach (the calling thread included); None:
        :func:`torch.get_num_threads`. 1 reads or sets the calling thread's.
    load_library : bool, default=True
        Load (and on first use compile) the kernel; False uses it only where
        it is loaded already.

    Returns
    -------
    int or None
        How many of those threads flush afterwards (without OpenMP: whether
        the calling thread does, 0 or 1); None where the kernel is not in use
        (then only the calling thread's setting is changed) or the processor
        has no such setting (x86 and AArch64 have).
    """
    if on is not None:
        torch.set_flush_denormal(bool(on))
    lib = load() if load_library else (None if _switched_off() else _state["lib"])
    if lib is None:
        return None
    flushing = lib.flush_denormals(_threads(n_threads), int(on is not None))
    return None if flushing < 0 else int(flushing)


#: Samples per block, the unit threads take and weight gradients are summed over (the C
#: source's BLOCK).
_BLOCK = 16


def _threads(n_threads):
    return torch.get_num_threads() if n_threads is None else max(1, int(n_threads))


def _p(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def _pointers(tensors):
    """A C array of the tensors' data pointers (NULL for None)."""
    return (ctypes.c_void_p * len(tensors))(*[t.data_ptr() if t is not None else None for t in tensors])


def _i64s(values):
    return (ctypes.c_int64 * len(values))(*values)


def forward(x, dt, v, h0, Wh, Wo, bo, save, n_threads=None):
    """Run one expert over its ``n`` steps with the compiled kernel.

    The one-expert case of :func:`forward_experts`.

    Parameters
    ----------
    x : Tensor of shape (n, B, U)
        Input half of the backbone pre-activation; rows may be strided.
    dt : Tensor of shape (n, B)
    v : Tensor of shape (n, B) or None
        Valid-step mask (1.0 / 0.0); None when every step is valid.
    h0 : Tensor of shape (B, H)
    Wh : Tensor of shape (H, U)
    Wo : Tensor of shape (U, 4H)
        Heads, LeCun's outer factor included.
    bo : Tensor of shape (4H,)
        Contiguous.
    save : bool
        Also return what :func:`backward` needs.
    n_threads : int or None, default=None
        Threads to run; None for :func:`torch.get_num_threads`. The results do
        not depend on it.

    Returns
    -------
    hs : Tensor of shape (n, B, H)
    th, act : Tensors of shape (n, B, U) and (n, B, 3H), or None without ``save``
    """
    hs, th, act = forward_experts([x], [dt], [v], h0[None], Wh[None], Wo[None], bo[None], save, n_threads)
    return hs[0], th[0] if save else None, act[0] if save else None


def backward(grad_hs, dt, v, th, act, hs, h0, WoT, WhT, carry, n_threads=None, out=None):
    """The gradients of one expert's sequence with the compiled kernel.

    The one-expert case of :func:`backward_experts`.

    Parameters
    ----------
    grad_hs : Tensor of shape (n, B, H)
    dt, v : as for :func:`forward`
    th, act : what :func:`forward` saved
    hs : Tensor of shape (n, B, H)
        The forward's states.
    h0 : Tensor of shape (B, H)
        The initial state, contiguous.
    WoT : Tensor of shape (4H, U)
    WhT : Tensor of shape (U, H)
    carry : Tensor of shape (B, H)
        Overwritten: the gradient by the last state from beyond the sequence on
        entry (zeros), by the initial state on return.
    n_threads : int or None, default=None
        As for :func:`forward`; the results do not depend on it.
    out : tuple of 3 Tensors or None, default=None
        Contiguous tensors to write ``grad_Wh, grad_Wo, grad_bo`` into.

    Returns
    -------
    P : Tensor of shape (n, B, U)
        Gradient by the input half ``x``.
    grad_Wh : Tensor of shape (H, U)
    grad_Wo : Tensor of shape (U, 4H)
    grad_bo : Tensor of shape (4H,)
        The weights' gradients: sums over samples in a fixed order.
    """
    H, U = h0.shape[-1], th.shape[-1]
    out = out if out is not None else (th.new_empty(H, U), th.new_empty(U, 4 * H), th.new_empty(4 * H))
    (P,) = backward_experts(
        [grad_hs],
        [dt],
        [v],
        [th],
        [act],
        [hs],
        h0[None],
        WoT[None],
        WhT[None],
        carry[None],
        tuple(g[None] for g in out),
        n_threads,
    )
    return (P, *out)


def sample_blocks_contiguous(t):
    """Whether each sample's block of ``t`` (its rows along the first axis) is contiguous, as the
    compiled calls take it (the whole tensor is checked first: the common case costs no indexing)."""
    return t.is_contiguous() or not len(t) or t[0].is_contiguous()


def _sample_rows(t, name):
    """``t``'s stride between samples, after checking that each sample's block is contiguous."""
    if not sample_blocks_contiguous(t):
        raise ValueError(f"{name}: each sample's block must be contiguous, got strides {t.stride()}.")
    return t.stride(0)


def front_forward(x, m, dt, v, weight, bias, rates, summaries, keep_weights=True, n_threads=None):
    """The experts' window inputs (and the gate's summaries) from a batch-major batch.

    The computation of :func:`mrmoe_sklearn.nn.fused.front` (whose PyTorch
    path defines it) in one call: the feature attention, the window
    statistics at every rate and the gate's sequence summaries, one sample
    at a time.

    Parameters
    ----------
    x : Tensor of shape (B, T, F)
        float32 values (0 where missing).
    m : Tensor of shape (B, T, F), bool
        Observed mask.
    dt : Tensor of shape (B, T)
        float32 elapsed times.
    v : Tensor of shape (B, T), bool
        Valid steps.
        Each sample's block of each input contiguous (samples may be strided,
        as in a batch cut to its longest series).
    weight : Tensor of shape (F, 2F) or None
        The feature attention's score weights; None for no attention.
    bias : Tensor of shape (F,) or None
    rates : sequence of int
        Window lengths.
    summaries : bool
        Also compute the gate's summaries.
    keep_weights : bool, default=True
        Return the attention weights (a backward needs them).
    n_threads : int or None, default=None
        Threads to run; None for :func:`torch.get_num_threads`. The results do
        not depend on it.

    Returns
    -------
    p : Tensor of shape (B, T, F) or None
        The attention weights (with attention and ``keep_weights``).
    windows : list of Tensors of shape (ceil(T / rate), B, 2F)
        ``[mean, count / rate]`` of each rate's windows, time-major.
    dts, valids : lists of Tensors of shape (ceil(T / rate), B)
        The windows' elapsed times and 1.0 where they hold a valid step.
    summ : Tensor of shape (B, 4F) or None
    """
    lib = load()
    B, T, F = x.shape
    strides = [_sample_rows(t, name) for t, name in ((x, "x"), (m, "m"), (dt, "dt"), (v, "v"))]
    attention = weight is not None
    p = x.new_empty(B, T, F) if attention and keep_weights else None
    sizes = [-(-T // r) for r in rates]
    windows = [x.new_empty(n, B, 2 * F) for n in sizes]
    dts = [x.new_empty(n, B) for n in sizes]
    valids = [x.new_empty(n, B) for n in sizes]
    summ = x.new_empty(B, 4 * F) if summaries else None
    nt = _threads(n_threads)
    weight_t = weight.t().contiguous() if attention else None
    scratch = x.new_empty(3 * nt * T * F)
    lib.front_forward(
        T,
        B,
        F,
        *[a for t, st in zip((x, m, dt, v), strides) for a in (_p(t), st)],
        *map(_p, (weight_t, bias, p)),
        len(rates),
        _i64s(rates),
        _pointers(windows),
        _pointers(dts),
        _pointers(valids),
        _p(summ),
        _p(scratch),
        nt,
    )
    return p, windows, dts, valids, summ


def front_backward(x, m, p, rates, grad_windows, summ, grad_summ, n_threads=None):
    """The feature attention's gradients from those of :func:`front_forward`'s outputs.

    Parameters
    ----------
    x, m, p, rates
        As given to and returned by :func:`front_forward` (with attention).
    grad_windows : list of Tensors or None
        Contiguous gradients by each rate's windows (None where there is none).
    summ, grad_summ : Tensor of shape (B, 4F) or None
        The summaries and their contiguous gradient.
    n_threads : int or None, default=None

    Returns
    -------
    grad_weight : Tensor of shape (F, 2F)
    grad_bias : Tensor of shape (F,)
        Sums over the samples in sample order (the same for any thread count).
    """
    lib = load()
    B, T, F = x.shape
    nt = _threads(n_threads)
    grads = x.new_empty(2 * F * F + F)
    # scratch held here: a pointer alone would not keep a tensor alive during the call
    # the gradients are summed per block of samples
    rows, scratch = x.new_empty(-(-B // _BLOCK), 2 * F * F + F), x.new_empty(2 * nt * T * F)
    lib.front_backward(
        T,
        B,
        F,
        _p(x),
        _sample_rows(x, "x"),
        _p(m),
        _sample_rows(m, "m"),
        _p(p),
        len(rates),
        _i64s(rates),
        _pointers(grad_windows),
        _p(summ),
        _p(grad_summ),
        _p(rows),
        _p(scratch),
        _p(grads),
        nt,
    )
    return grads[: 2 * F * F].view(F, 2 * F), grads[2 * F * F :]


def back_forward(hs, valids, weight, bias, proj_weight, proj_bias, gates, n_threads=None):
    """The temporal attention's contexts, projected and mixed by the gate.

    The computation of :func:`mrmoe_sklearn.nn.fused.back` (whose PyTorch
    path defines it) in one call.

    Parameters
    ----------
    hs : list of K contiguous Tensors of shape (n_k, B, H)
        Each expert's states.
    valids : list of K contiguous Tensors of shape (n_k, B)
        1.0 on valid windows (every sample has one per expert).
    weight : Tensor of shape (K, H)
    bias : Tensor of shape (K,)
        The attention's scores.
    proj_weight : Tensor of shape (K, H, D)
    proj_bias : Tensor of shape (K, D)
    gates : Tensor of shape (B, K)
    n_threads : int or None, default=None

    Returns
    -------
    out : Tensor of shape (B, D)
    weights : list of K Tensors of shape (n_k, B)
        The attention weights (0 on invalid windows).
    context : Tensor of shape (K, B, H)
    z : Tensor of shape (K, B, D)
        The projected contexts.
    """
    lib = load()
    K, H, D = proj_weight.shape
    B = gates.shape[0]
    steps = [h.shape[0] for h in hs]
    weights = [h.new_empty(n, B) for h, n in zip(hs, steps)]
    context, z, out = gates.new_empty(K, B, H), gates.new_empty(K, B, D), gates.new_empty(B, D)
    scratch = gates.new_empty(2 * B)
    lib.back_forward(
        K,
        B,
        H,
        D,
        _i64s(steps),
        _pointers(hs),
        _pointers(valids),
        *map(_p, (weight, bias, proj_weight, proj_bias, gates)),
        _pointers(weights),
        *map(_p, (context, z, out, scratch)),
        _threads(n_threads),
    )
    return out, weights, context, z


def back_backward(grad_out, hs, valids, weight, proj_weight, gates, weights, context, z, n_threads=None):
    """The gradients of :func:`back_forward`.

    Parameters
    ----------
    grad_out : Tensor of shape (B, D), contiguous
    hs, valids, weight, proj_weight, gates
        As given to :func:`back_forward`.
    weights, context, z
        As returned by it.
    n_threads : int or None, default=None

    Returns
    -------
    grad_hs : list of K Tensors of shape (n_k, B, H)
    grad_gates : Tensor of shape (B, K)
    grad_weight, grad_bias, grad_proj_weight, grad_proj_bias : Tensors
        Of the shapes of the parameters: sums over the samples in sample order.
    """
    lib = load()
    K, H, D = proj_weight.shape
    B = gates.shape[0]
    grad_hs = [torch.empty_like(h) for h in hs]
    grad_gates = torch.empty_like(gates)
    per_k = H + 1 + H * D + D
    # the weights' gradients are summed per block of samples
    grads, rows, dc = (
        gates.new_empty(K, per_k),
        gates.new_empty(-(-B // _BLOCK), K * per_k),
        gates.new_empty(B * (H + 1)),
    )
    proj_weight_t = proj_weight.transpose(1, 2).contiguous()
    lib.back_backward(
        K,
        B,
        H,
        D,
        _i64s([h.shape[0] for h in hs]),
        _pointers(hs),
        _pointers(valids),
        *map(_p, (weight, proj_weight_t, gates)),
        _pointers(weights),
        *map(_p, (context, z, grad_out)),
        _pointers(grad_hs),
        _p(grad_gates),
        _p(rows),
        _p(dc),
        _p(grads),
        _threads(n_threads),
    )
    gw, gb, gP, gPb = grads.split([H, 1, H * D, D], dim=1)
    return grad_hs, grad_gates, gw, gb.view(K), gP.view(K, H, D), gPb


def forward_experts(xs, dts, vs, h0, Wh, Wo, bo, save, n_threads=None):
    """Run K experts over their own steps in one call of the compiled kernel.

    The same results as :func:`forward` once per expert, in one parallel
    region instead of K.

    Parameters
    ----------
    xs : list of K Tensors of shape (n_k, B, U)
        Each expert's input half; rows may be strided.
    dts, vs : lists of K contiguous Tensors of shape (n_k, B)
        Elapsed times and valid-step masks (1.0 / 0.0).
    h0 : Tensor of shape (K, B, H)
    Wh : Tensor of shape (K, H, U)
    Wo : Tensor of shape (K, U, 4H)
    bo : Tensor of shape (K, 4H)
        Contiguous.
    save : bool
        Also return what :func:`backward_experts` needs.
    n_threads : int or None, default=None

    Returns
    -------
    hs : list of K Tensors of shape (n_k, B, H)
    th, act : lists of K Tensors, or None without ``save``
    """
    lib = load()
    K, B, H = h0.shape
    U = Wh.shape[-1]
    xs = [x if x.stride(2) == 1 else x.contiguous() for x in xs]
    steps = [x.shape[0] for x in xs]
    hs = [h0.new_empty(n, B, H) for n in steps]
    th = [h0.new_empty(n, B, U) for n in steps] if save else None
    act = [h0.new_empty(n, B, 3 * H) for n in steps] if save else None
    nt = _threads(n_threads)
    scratch = h0.new_empty(lib.cfc_forward_scratch(B, H, U, nt))
    lib.cfc_forward_experts(
        K,
        _i64s(steps),
        B,
        H,
        U,
        _pointers(xs),
        _i64s([x.stride(0) for x in xs]),
        _i64s([x.stride(1) for x in xs]),
        _pointers(dts),
        _pointers(vs),
        *map(_p, (h0, Wh, Wo, bo)),
        _pointers(hs),
        _pointers(th) if save else None,
        _pointers(act) if save else None,
        _p(scratch),
        nt,
    )
    return hs, th, act


def backward_experts(grad_hs, dts, vs, th, act, hs, h0, WoT, WhT, carry, out, n_threads=None):
    """The gradients of K experts' sequences in one call of the compiled kernel.

    Parameters
    ----------
    grad_hs : list of K contiguous Tensors of shape (n_k, B, H)
    dts, vs, th, act, hs
        As given to and returned by :func:`forward_experts`.
    h0 : Tensor of shape (K, B, H), contiguous
    WoT : Tensor of shape (K, 4H, U)
    WhT : Tensor of shape (K, U, H)
        The weights transposed, contiguous.
    carry : Tensor of shape (K, B, H)
        Zeros on entry; the gradient by the initial states on return.
    out : tuple of 3 Tensors
        Contiguous ``(K, H, U)``, ``(K, U, 4H)``, ``(K, 4H)`` tensors the weights'
        gradients are written into (sums over samples in a fixed order).
    n_threads : int or None, default=None

    Returns
    -------
    P : list of K Tensors of shape (n_k, B, U)
        The gradients by each expert's input half.
    """
    lib = _state["lib"]  # loaded by the forward (even if switched off since)
    K, B, H = h0.shape
    U = th[0].shape[-1]
    nt = _threads(n_threads)
    P = [t.new_empty(t.shape) for t in th]
    scratch = h0.new_empty(lib.cfc_backward_experts_scratch(K, B, H, U, nt))
    lib.cfc_backward_experts(
        K,
        _i64s([g.shape[0] for g in grad_hs]),
        B,
        H,
        U,
        *map(_pointers, (grad_hs, dts, vs, th, act, hs)),
        *map(_p, (h0, WoT, WhT)),
        _pointers(P),
        *map(_p, (carry, *out, scratch)),
        nt,
    )
    return P


#: The parameters :func:`mixture_forward` takes, in the order of the C source's ``prm``.
MIXTURE_PARAMETERS = (
    "attention_weight",
    "attention_bias",
    "input_weight",
    "input_bias",
    "recurrent_weight",
    "head_weight",
    "head_bias",
    "gate_weight",
    "gate_bias",
    "gate_out_weight",
    "gate_out_bias",
    "temporal_weight",
    "temporal_bias",
    "proj_weight",
    "proj_bias",
)
#: The most experts (and distinct rates) and gate units the compiled mixture takes (the C
#: source's MAX_EXPERTS and MAX_GATE_UNITS).
MIXTURE_MAX_EXPERTS = 64
MIXTURE_MAX_GATE_UNITS = 256


class _Workspaces:
    """Float32 CPU buffers kept between calls of the compiled mixture.

    A fresh buffer of tens of megabytes is mapped from the system on every
    allocation and every page of it faults on first touch (on this project's
    machine about 0.8 ms per MB: more than the arithmetic that fills it); a
    buffer handed back is reused by a later call of at most its size. At most
    ``keep`` buffers and ``max_bytes`` are kept.
    """

    def __init__(self, keep=8, max_bytes=1 << 30):
        self.keep, self.max_bytes = keep, max_bytes
        self._free = []
        self._lock = threading.Lock()

    def take(self, n):
        """A float32 tensor of at least ``n`` elements (its contents undefined)."""
        with self._lock:
            fits = [i for i, t in enumerate(self._free) if t.numel() >= n]
            if fits:
                return self._free.pop(min(fits, key=lambda i: self._free[i].numel()))
        return torch.empty(max(n, 1), dtype=torch.float32)

    def give(self, t):
        """Hand ``t`` back (nothing may use it afterwards)."""
        with self._lock:
            self._free.append(t)
            self._free.sort(key=lambda b: -b.numel())
            while len(self._free) > self.keep or sum(b.numel() for b in self._free) * 4 > self.max_bytes:
                self._free.pop()


workspaces = _Workspaces()


class Workspace:
    """A buffer of :data:`workspaces`, handed back when this object is released.

    A backward's saved values are kept in one: it goes back to the pool when
    the autograd graph that holds it is freed (after its backward, or with its
    outputs), never while a second backward (``retain_graph``) could still
    read it.

    Parameters
    ----------
    n : int
        Floats needed.
    """

    def __init__(self, n):
        self.tensor = workspaces.take(n)

    def __del__(self):
        tensor, self.tensor = getattr(self, "tensor", None), None
        if tensor is not None and workspaces is not None:  # (None at interpreter shutdown)
            workspaces.give(tensor)


class MixturePlan:
    """The shapes of one call of the compiled mixture and its workspace's layout.

    Built by :func:`mixture_plan`; holds the C arrays the calls take and the
    offsets of what the caller reads from the workspaces.
    """

    def __init__(self, dims, rates, rate_of, save):
        T, K = dims[0], dims[3]
        self.shape = dims
        self.save = save
        self.steps = [-(-T // rates[g]) for g in rate_of]
        self.dims, self.rates, self.rate_of = _i64s(dims), _i64s(rates), _i64s(rate_of)
        n = len(MIXTURE_PARAMETERS)
        info = _i64s([0] * (4 + n + K))
        if load().mixture_layout(self.dims, self.rates, self.rate_of, info) != 0:
            raise ValueError(f"the compiled mixture takes at most {MIXTURE_MAX_EXPERTS} experts and rates.")
        self.work, self.bwork, self.n_grads = info[0], info[1], info[2]
        self.grad_offsets = list(info[3 : 4 + n])
        self.att_offsets = list(info[4 + n : 4 + n + K])


@functools.lru_cache(maxsize=128)
def mixture_plan(T, B, F, K, H, U, D, gate_units, rates, rate_of, attention, gate, save, n_threads):
    """The plan of a call of :func:`mixture_forward` (cached: a training run repeats a few shapes).

    Parameters
    ----------
    T, B, F : int
        Steps, samples and features of the batch.
    K, H, U, D : int
        Experts, their hidden units, their backbones' width and the projections' width.
    gate_units : int
        The gate's hidden units (ignored without a gate).
    rates : tuple of int
        The distinct rates.
    rate_of : tuple of int
        Each expert's index in ``rates``.
    attention, gate, save : bool
        Whether there is a feature attention, a gate, and a backward to follow.
    n_threads : int
        Threads the calls run (part of the cache key: no default read from torch here).

    Returns
    -------
    MixturePlan
    """
    dims = (T, B, F, K, H, U, D, len(rates), gate_units, int(attention), int(gate), int(save), max(1, int(n_threads)))
    return MixturePlan(dims, rates, rate_of, save)


def mixture_forward(plan, x, m, dt, v, params, keep_weights):
    """The mixture's forward in one call: front, projections, scans, gate and back.

    Parameters
    ----------
    plan : MixturePlan
    x, m, dt, v : Tensors
        The batch as :func:`front_forward` takes it (masks as bool).
    params : sequence of Tensors or None
        In the order of ``MIXTURE_PARAMETERS``, contiguous; None for the
        attention's or the gate's when that part is off.
    keep_weights : bool
        Return the feature attention's weights (a backward needs them too) and
        the temporal attention's (else an empty list).

    Returns
    -------
    work : Workspace
        What the backward needs (back to the pool when it is released).
    out : Tensor of shape (B, D)
        The gate's mixture of the experts' projected contexts.
    gates : Tensor of shape (B, K)
    p : Tensor of shape (B, T, F) or None
        The feature attention's weights.
    weights : list of K Tensors of shape (n_k, B)
        Each expert's temporal attention weights (views of ``work``; none
        without ``keep_weights``).
    """
    lib = load()
    T, B, F, K, H, U, D = plan.shape[:7]
    strides = [_sample_rows(t, name) for t, name in ((x, "x"), (m, "m"), (dt, "dt"), (v, "v"))]
    work = Workspace(plan.work)
    out, gates = x.new_empty(B, D), x.new_empty(B, K)
    p = x.new_empty(B, T, F) if params[0] is not None and (keep_weights or plan.save) else None
    lib.mixture_forward(
        plan.dims,
        plan.rates,
        plan.rate_of,
        *[a for t, st in zip((x, m, dt, v), strides) for a in (_p(t), st)],
        _pointers(params),
        *map(_p, (work.tensor, out, gates, p)),
    )
    if not keep_weights:
        return work, out, gates, p, []
    weights = [work.tensor.as_strided((n, B), (B, 1), o) for o, n in zip(plan.att_offsets, plan.steps)]
    return work, out, gates, p, weights


def mixture_backward(plan, x, m, p, params, work, gates, grad_out, grad_gates):
    """Every parameter's gradient of :func:`mixture_forward` in one call.

    Parameters
    ----------
    plan, x, m, params
        As given to :func:`mixture_forward` (a plan with ``save``).
    p, work, gates
        As it returned them (``work`` the :class:`Workspace`).
    grad_out : Tensor of shape (B, D), contiguous
    grad_gates : Tensor of shape (B, K), contiguous, or None

    Returns
    -------
    list of Tensors or None
        The gradients in the order of ``params`` (None where a parameter is None): sums
        over the samples in a fixed order, the same for any thread count.
    """
    lib = _state["lib"]  # loaded by the forward (even if switched off since)
    bwork, grads = Workspace(plan.bwork), x.new_empty(plan.n_grads)
    lib.mixture_backward(
        plan.dims,
        plan.rates,
        plan.rate_of,
        _p(x),
        _sample_rows(x, "x"),
        _p(m),
        _sample_rows(m, "m"),
        _pointers(params),
        *map(_p, (p, work.tensor, gates, grad_out, grad_gates, bwork.tensor, grads)),
    )
    del bwork  # back to the pool
    # as_strided: a quarter of the time of slicing and view (15 tensors a step)
    offsets = plan.grad_offsets
    return [None if t is None else grads.as_strided(t.shape, t.stride(), offsets[j]) for j, t in enumerate(params)]


#: Order of the statistics in :func:`summary_statistics`' output (the C source's enum).
SUMMARY_STATISTICS = ("mean", "std", "min", "max", "first", "last", "count", "slope", "time_since_last")


def summary_statistics(values, times, valid, n_threads=None):
    """Per-channel summary statistics with the compiled library, or None where it is not in use.

    The definitions are those of :func:`mrmoe_sklearn.summary.summary_statistics`
    (which calls this first and computes the same in numpy otherwise); two
    passes of the library over each sample instead of a dozen array passes.

    Parameters
    ----------
    values : ndarray of float32 or float64 of shape (n, T, F)
        Read in its own precision (other types are converted to float64).
    times : ndarray of float64 of shape (n, T) or None
    valid : ndarray of bool of shape (n, T)
    n_threads : int or None, default=None
        Threads to run; None for :func:`torch.get_num_threads`. Threads take
        whole samples: the results do not depend on it.

    Returns
    -------
    ndarray of float64 of shape (n, F, len(SUMMARY_STATISTICS)) or None
    """
    lib = load()
    if lib is None:
        return None
    # float32 panels are read as they are (a float64 copy of a large one costs more than the statistics)
    f32 = np.asarray(values).dtype == np.float32
    values = np.ascontiguousarray(values, dtype=np.float32 if f32 else np.float64)
    valid = np.ascontiguousarray(valid, dtype=np.bool_)
    times = None if times is None else np.ascontiguousarray(times, dtype=np.float64)
    n, T, F = values.shape
    out = np.empty((n, F, len(SUMMARY_STATISTICS)))
    if out.size == 0:
        return out
    nt = _threads(n_threads)
    scratch = np.empty(lib.summary_stats_scratch(F, nt))
    ptr = ctypes.c_void_p
    lib.summary_stats(
        n,
        T,
        F,
        ptr(values.ctypes.data),
        int(f32),
        None if times is None else ptr(times.ctypes.data),
        ptr(valid.ctypes.data),
        ptr(out.ctypes.data),
        ptr(scratch.ctypes.data),
        nt,
    )
    return out


def quantile_encode(raw, edges, columns=None, n_threads=None):
    """The piecewise-linear quantile-bin encoding with the compiled library, or None where it is not in use.

    The definition is that of :func:`mrmoe_sklearn._data.quantile_encode`
    (which calls this first and computes the same in numpy otherwise); the
    same float64 operations, so the results are bit-identical.

    Parameters
    ----------
    raw : ndarray of shape (n, J)
    edges : ndarray of shape (J, n_bins + 1)
    columns : ndarray of int or None, default=None
        Indices of the encoding's columns to return; None for all. Where they
        increase and keep of each statistic all its fillings or none (its
        flag only with its fillings), only those statistics are computed;
        else the whole encoding is, and the columns are taken from it.
    n_threads : int or None, default=None
        Threads to run (rows are shared); None for :func:`torch.get_num_threads`.

    Returns
    -------
    ndarray of float32 of shape (n, J * (n_bins + 1)) or (n, len(columns)), or None
    """
    lib = load()
    if lib is None:
        return None
    raw = np.ascontiguousarray(raw, dtype=np.float64)
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    (n, J), width = raw.shape, edges.shape[1]
    plan = _encoding_plan(J, width, None if columns is None else np.asarray(columns, dtype=np.int64).tobytes())
    if plan is None:  # columns that split a statistic's fillings: the whole encoding, then those
        return np.ascontiguousarray(quantile_encode(raw, edges, None, n_threads)[:, columns])
    offset, flag, n_out = plan
    out = np.empty((n, n_out), dtype=np.float32)
    if out.size:
        ptr = ctypes.c_void_p
        lib.quantile_encode(
            n,
            J,
            width - 1,
            ptr(raw.ctypes.data),
            ptr(edges.ctypes.data),
            ptr(out.ctypes.data),
            ptr(offset.ctypes.data),
            ptr(flag.ctypes.data),
            n_out,
            _threads(n_threads),
        )
    return out


@functools.lru_cache(maxsize=16)
def _encoding_plan(J, width, columns):
    """Where each statistic's values go in a row of the quantile encoding's kept ``columns``
    (the bytes of their int64 indices, or None for all; the plan of a fitted model's columns is
    made once, not on every prediction batch).

    Returns
    -------
    offset, flag : ndarray of int64 of shape (J,)
        The first place of statistic ``j``'s fillings (-1: none of its
        values is kept), and whether its missing flag follows them.
    n_out : int
        Columns of the output.
    None where ``columns`` keep some but not all of a statistic's fillings.
    """
    if columns is None:
        offset, flag = np.arange(J, dtype=np.int64) * width, np.ones(J, dtype=np.int64)
        offset.flags.writeable = flag.flags.writeable = False  # shared by the calls the cache serves
        return offset, flag, J * width
    indices = np.frombuffer(columns, dtype=np.int64)
    if (np.diff(indices) <= 0).any():  # not increasing: the whole encoding's columns in that order
        return None
    kept = np.zeros(J * width, dtype=bool)
    kept[indices] = True
    kept = kept.reshape(J, width)
    fillings = kept[:, :-1]
    whole = fillings.all(axis=1) | ~fillings.any(axis=1)
    if not whole.all() or (kept[:, -1] & ~fillings.any(axis=1) & (width > 1)).any():
        return None
    counts = kept.sum(axis=1)
    offset = np.where(counts > 0, np.cumsum(counts) - counts, -1).astype(np.int64)
    flag = kept[:, -1].astype(np.int64)
    offset.flags.writeable = flag.flags.writeable = False
    return offset, flag, int(counts.sum())
