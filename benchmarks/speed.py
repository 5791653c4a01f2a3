#!/usr/bin/env python
"""Training speed, memory and prediction throughput of the classifiers.

Trains, on the same random data and with the same thread count, the package's
four estimators (``MRMoEClassifier``, ``LNNClassifier``, ``MoEClassifier``,
``LSTMClassifier``, all with their default architecture; and, for information,
``MRMoEClassifier(summary_head=False)``) and the ncps
library's ``CfC`` and ``LTC`` (64 hidden units, a linear head, a plain PyTorch
training loop), for every combination of sequence length (``--sizes``) and
number of samples (``--samples``). For each run it reports

* seconds per training epoch (median over the timed epochs),
* peak memory of a training epoch (MiB above the memory in use when the
  epoch starts; torch's allocated CUDA memory with ``--device cuda``),
* ``predict_proba`` throughput (samples per second, the four estimators),

each also as a ratio to ``LSTMClassifier`` measured in the same run, the
growth of time and memory from the shortest to the longest sequences, and
PASS/FAIL lines for the performance targets of the project.

Every (model, configuration) runs in a fresh Python process by default, so
that timings and memory figures do not leak between models.

Examples
--------
Full run (long; writes the results file)::

    python benchmarks/speed.py --output benchmarks/RESULTS.md

Thread scaling (every size at 1 and 2 threads; writes a scaling table)::

    python benchmarks/speed.py --samples 2000 --sizes 8,16,64,256,1024 --threads 1,2 \
        --models mrmoe,lstm,cfc,ltc --output benchmarks/RESULTS.md

A smoke run of a few seconds (what the test suite runs)::

    python benchmarks/speed.py --quick

See ``benchmarks/README.md`` for the meaning of every column.
"""

import argparse
import contextlib
import ctypes
import datetime
import gc
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

N_CHANNELS = 16
NCPS_UNITS = 64
LR = 5e-3
RESULT_MARKER = "@@SPEED_RESULT@@ "
#: Timed ``predict_proba`` calls after the warm-up (throughput: their median).
PREDICT_CALLS = 3

# key -> (display name, kind)
MODELS = {
    "mrmoe": ("MRMoEClassifier", "estimator"),
    "mrmoe-nohead": ("MRMoEClassifier (summary_head=False)", "estimator"),
    "lnn": ("LNNClassifier", "estimator"),
    "moe": ("MoEClassifier", "estimator"),
    "lstm": ("LSTMClassifier", "estimator"),
    "cfc": ("ncps CfC", "ncps"),
    "ltc": ("ncps LTC", "ncps"),
}
#: Estimators run with other than their defaults: key -> (class name, parameters). The MR-MoE
#: without its summary MLP shows what that head (the default, for accuracy) costs at short series.
VARIANTS = {"mrmoe-nohead": ("MRMoEClassifier", {"summary_head": False})}
REFERENCE = "lstm"
SMALLEST_ONLY = {"ltc"}  # too slow to run beyond the shortest sequences (or 64 steps, see below)
#: The targets defined from 64 steps (growth, LTC, CfC: issue 4's sizes were 64, 256 and 1024) take
#: that size where the run has it (a run from 8 steps then still measures them as before; the CfC
#: ratios of shorter sizes are shown without a verdict); else the shortest.
BASE_STEPS = 64


def base_size(sizes):
    """The size the growth and LTC targets start from: ``BASE_STEPS`` if run, else the shortest."""
    return BASE_STEPS if BASE_STEPS in sizes else sizes[0]


QUICK_DEFAULTS = dict(
    sizes=[8, 16],
    samples=[128],
    epochs=2,
    min_seconds=0.0,
    predict_samples=1000,
    isolation="none",
    max_seconds=math.inf,
)
FULL_DEFAULTS = dict(
    sizes=[64, 256, 1024],
    samples=[2000, 20000],
    epochs=3,
    min_seconds=2.0,
    predict_samples=2000,
    isolation="process",
    max_seconds=300.0,
)
#: The most epochs a run trains to reach ``--min-seconds``.
MAX_EPOCHS = 30
MIN_PREDICT_SAMPLES = 1000

TARGET_TIME_RATIO = 1.0  # MR-MoE s/epoch <= 1.0 x LSTM
TARGET_CFC_SPEEDUP = 3.0  # MR-MoE >= 3x faster than ncps CfC
TARGET_LTC_SPEEDUP = 50.0  # MR-MoE >= 50x faster than ncps LTC
TARGET_GROWTH = 17.0  # longest / shortest sequences
TARGET_TWO_THREADS = 0.65  # MR-MoE s/epoch with 2 threads / with 1, from 256 steps
TWO_THREAD_FROM = 256


# --------------------------------------------------------------------------- arguments
def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sorted(set(values))


def _model_list(text):
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if not keys or unknown:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if REFERENCE not in keys:
        keys.append(REFERENCE)  # every ratio needs the reference
    return [k for k in MODELS if k in keys]


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="python benchmarks/speed.py",
        description="Seconds per epoch, peak memory and predict throughput of MR-MoE, its baselines "
        "and the ncps library's CfC/LTC, as ratios to LSTMClassifier.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (steps 8,16; 128 samples; 2 epochs; in-process, no budget) for a smoke test",
    )
    p.add_argument(
        "--threads",
        type=_int_list,
        default=[1],
        help="torch CPU threads, comma-separated: every size runs at each (default 1)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--sizes",
        type=_int_list,
        default=None,
        help="comma-separated sequence lengths (time steps); default 64,256,1024",
    )
    p.add_argument(
        "--samples",
        type=_int_list,
        default=None,
        help="comma-separated numbers of training samples; default 2000,20000",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="epochs trained per configuration; the median s/epoch is reported, "
        "epoch 0 excluded as warm-up when there are >= 3 (default 3)",
    )
    p.add_argument(
        "--min-seconds",
        type=_non_negative_float,
        default=None,
        help="where epochs are short, train more of them: enough for this many seconds of timed "
        f"epochs per run (from the estimated epoch; at most {MAX_EPOCHS} epochs, never fewer than "
        "--epochs), so that a short configuration's median is not that of two epochs of a tenth "
        "of a second; 0: exactly --epochs (default 2; 0 with --quick)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=64, help="mini-batch size (default 64)")
    p.add_argument(
        "--max-seconds",
        type=_positive_float,
        default=None,
        help="skip a (model, configuration) whose estimated epoch (one timed batch step x "
        "number of batches) exceeds this many seconds; 'inf' runs everything "
        "(default 300; no limit with --quick)",
    )
    p.add_argument(
        "--predict-samples",
        type=_positive_int,
        default=None,
        help=f"samples in the timed predict_proba call (at least {MIN_PREDICT_SAMPLES}; "
        "the data is repeated when smaller; default 2000)",
    )
    p.add_argument(
        "--models",
        type=_model_list,
        default=list(MODELS),
        help=f"comma-separated subset of {','.join(MODELS)} (lstm is always included)",
    )
    p.add_argument(
        "--isolation",
        choices=["process", "none"],
        default=None,
        help="'process': every (model, configuration) in a fresh Python process "
        "(default); 'none': all in this process (default with --quick)",
    )
    p.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        help="runs of every configuration, the models taking turns in each round; the "
        "median over the runs of s/epoch, peak MiB and predict/s is reported (default 1)",
    )
    p.add_argument("--output", type=Path, default=None, help="write the results as Markdown to this file")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv):
    args = build_parser().parse_args(argv)
    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.predict_samples = max(args.predict_samples, MIN_PREDICT_SAMPLES)
    return args


# --------------------------------------------------------------------------- data
def make_data(n_samples, n_timesteps, seed=0):
    """Random ``(n_samples, 16, n_timesteps)`` float32 series and binary labels (both classes present)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, N_CHANNELS, n_timesteps), dtype=np.float32)
    y = rng.integers(0, 2, size=n_samples)
    y[:2] = (0, 1)
    return X, y


def _predict_set(X, n):
    """``n`` samples of ``X``, repeating it when it has fewer."""
    if len(X) >= n:
        return X[:n]
    reps = math.ceil(n / len(X))
    return np.concatenate([X] * reps)[:n]


# --------------------------------------------------------------------------- memory
def _read_proc(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _rss_bytes():
    statm = _read_proc("/proc/self/statm")
    if statm is None:
        return None
    return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes():
    status = _read_proc("/proc/self/status")
    if status is not None:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _reset_hwm():
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _release_free_memory():
    """Return memory freed by Python/torch to the OS, so the next peak starts from a clean floor."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory increase of each training epoch, in bytes.

    CPU: the peak resident set size during the epoch (the kernel's high-water
    mark, reset when the epoch starts) minus the resident set size when it
    starts, memory freed before the first epoch being returned to the OS
    when it starts (so that its allocations show however much memory the
    data preparation of ``fit`` left cached). CUDA: torch's peak allocated device memory
    minus the allocated memory at the start.
    """

    def __init__(self, device):
        self.cuda = device.startswith("cuda")
        self.peaks = []
        self._start = 0

    def begin(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            if not self.peaks:
                # Only before the first epoch (excluded from the timed median): a
                # trimmed heap makes the epoch fault its memory in again, which
                # costs time on some machines.
                _release_free_memory()
            reset = _reset_hwm()
            rss = _rss_bytes()
            self._start = rss if (reset and rss is not None) else _hwm_bytes()

    def end(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _hwm_bytes()
        self.peaks.append(max(peak - self._start, 0))

    @property
    def peak_mib(self):
        return max(self.peaks) / 2**20 if self.peaks else float("nan")


# --------------------------------------------------------------------------- one run
def _timed(durations):
    """The epochs whose median is reported: epoch 0 left out as warm-up when there are at least 3."""
    return durations[1:] if len(durations) >= 3 else durations


def epochs_to_run(spec, estimate):
    """Epochs one run trains: ``spec["epochs"]``, or more where that many epochs of ``estimate``
    seconds time less than ``spec["min_seconds"]`` (epoch 0 not counted from 3 epochs on, see
    :func:`_timed`): enough for it, at most ``MAX_EPOCHS``. An estimate of 0 (a coarse clock)
    takes ``MAX_EPOCHS``."""
    epochs = spec["epochs"]
    min_seconds = spec.get("min_seconds", 0.0)
    if not min_seconds > 0 or epochs >= MAX_EPOCHS:
        return epochs
    if not estimate > 0:
        return MAX_EPOCHS
    needed = min_seconds / estimate  # timed epochs
    if len(_timed(range(epochs))) >= needed:
        return epochs
    if needed >= MAX_EPOCHS:
        return MAX_EPOCHS
    return max(3, 1 + math.ceil(needed))


def _median_epoch(durations):
    """Median seconds per epoch over the timed epochs (:func:`_timed`)."""
    return float(statistics.median(_timed(list(durations))))


def _result(estimate, durations, meter, predict_per_s):
    """The record one successful (model, configuration) run reports."""
    return {
        "status": "ok",
        "estimate_s": estimate,
        "epoch_s": durations,
        "sec_per_epoch": _median_epoch(durations),
        "peak_mib": meter.peak_mib,
        "predict_per_s": predict_per_s,
    }


def combine_runs(runs):
    """One record from the repeated runs of one (model, configuration).

    The median over the runs of ``sec_per_epoch``, ``peak_mib`` and ``predict_per_s``
    (``epoch_s`` keeps every run's epochs, ``runs_s`` each run's s/epoch). When a run
    did not succeed, the first such run's record is returned: a model over budget or
    failing is reported as such, not as the median of what remains.
    """
    failed = [r for r in runs if r["status"] != "ok"]
    if failed or len(runs) == 1:
        return failed[0] if failed else runs[0]
    out = dict(runs[0])
    for field in ("sec_per_epoch", "peak_mib", "predict_per_s"):
        values = [r[field] for r in runs if r[field] is not None]
        out[field] = float(statistics.median(values)) if values else None
    out["epoch_s"] = [d for r in runs for d in r["epoch_s"]]
    out["runs_s"] = [r["sec_per_epoch"] for r in runs]
    return out


def _sync(device):
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _estimator(key, spec):
    import mrmoe_sklearn

    name, params = VARIANTS.get(key, (MODELS[key][0], {}))
    cls = getattr(mrmoe_sklearn, name)
    # early stopping off: every model trains its epochs on all the data (the default "auto" would
    # hold out 10% from 1,000 series on, and MR-MoE's ensemble_size="auto" would then train 3 networks)
    return cls(
        early_stopping=False,
        max_epochs=spec["epochs"],
        batch_size=spec["batch_size"],
        verbose=0,
        random_state=0,
        n_threads=spec["threads"],
        device=spec["device"],
        **params,
    )


def _attach_memory_probe(est, meter):
    """Make the skorch network the estimator builds in ``fit`` report to ``meter`` every epoch.

    Wraps the estimator instance's ``_make_net`` (the base class's hook that
    builds the network) to append a skorch callback; nothing else changes.
    """
    from skorch.callbacks import Callback

    class _EpochMemory(Callback):
        def on_epoch_begin(self, net, **kwargs):
            meter.begin()

        def on_epoch_end(self, net, **kwargs):
            meter.end()

    make_net = est._make_net

    def _make_net(*args, **kwargs):
        net = make_net(*args, **kwargs)
        net.callbacks = list(net.callbacks or []) + [("benchmark_memory", _EpochMemory())]
        return net

    est._make_net = _make_net


def _run_estimator(key, spec, X, y):
    from sklearn.base import clone

    bs = spec["batch_size"]
    n_batches = math.ceil(len(X) / bs)
    est = _estimator(key, spec)

    # Two epochs of one batch: the first warms torch up, the second estimates an epoch for the
    # budget (a fresh process's first step took up to 3.5x a later one).
    probe = clone(est).set_params(max_epochs=2)
    probe.fit(X[:bs], y[:bs])
    step = float(probe.history_[-1, "dur"])
    estimate = step * n_batches
    del probe
    if estimate > spec["max_seconds"]:
        return {"status": "skipped", "estimate_s": estimate}

    est.set_params(max_epochs=epochs_to_run(spec, estimate))
    meter = PeakMemory(spec["device"])
    _attach_memory_probe(est, meter)
    _release_free_memory()
    est.fit(X, y)
    durations = [float(d) for d in est.history_[:, "dur"]]

    Xp = _predict_set(X, spec["predict_samples"])
    est.predict_proba(Xp)  # warm-up on the whole set: its batch size, buffers and kernels
    times = []
    for _ in range(PREDICT_CALLS):
        _sync(spec["device"])
        t0 = time.perf_counter()
        proba = est.predict_proba(Xp)
        _sync(spec["device"])
        times.append(time.perf_counter() - t0)
    predict_s = statistics.median(times)
    if proba.shape != (len(Xp), 2) or not np.isfinite(proba).all():
        raise RuntimeError(f"predict_proba returned an unexpected result of shape {proba.shape}")
    return _result(estimate, durations, meter, len(Xp) / predict_s)


def warm_step_seconds(step, device):
    """Seconds of the second call of ``step()``: the first warms up (allocations, kernel choice)."""
    step()
    _sync(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - t0


def _ncps_model(key):
    import torch
    from ncps.torch import LTC, CfC

    class _Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            rnn = CfC if key == "cfc" else LTC
            # No timespans: ncps' handling of them is broken for batch > 1.
            self.rnn = rnn(N_CHANNELS, NCPS_UNITS, batch_first=True, return_sequences=False)
            self.head = torch.nn.Linear(NCPS_UNITS, 2)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out)

    return _Classifier()


def _run_ncps(key, spec, X, y):
    import torch

    device = spec["device"]
    bs = spec["batch_size"]
    Xt = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 2, 1)))  # (N, T, C)
    yt = torch.from_numpy(y.astype(np.int64))
    n_batches = math.ceil(len(X) / bs)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step(model, opt, xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb.to(device)), yb.to(device))
        loss.backward()
        opt.step()
        return loss.item()

    def probe_step_seconds():
        # Batch steps on a throwaway model: warm-up, then the step time.
        torch.manual_seed(1)
        probe = _ncps_model(key).to(device)
        probe_opt = torch.optim.Adam(probe.parameters(), lr=LR)
        return warm_step_seconds(lambda: train_step(probe, probe_opt, Xt[:bs], yt[:bs]), device)

    estimate = probe_step_seconds() * n_batches
    if estimate > spec["max_seconds"]:
        return {"status": "skipped", "estimate_s": estimate}

    torch.manual_seed(0)
    model = _ncps_model(key).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(Xt, yt),
        batch_size=bs,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    meter = PeakMemory(device)
    _release_free_memory()
    durations = []
    model.train()
    for _ in range(epochs_to_run(spec, estimate)):
        meter.begin()
        t0 = time.perf_counter()
        losses = [train_step(model, opt, xb, yb) for xb, yb in loader]
        _sync(device)
        durations.append(time.perf_counter() - t0)
        meter.end()
        if not np.isfinite(losses).all():
            raise RuntimeError("ncps training produced a non-finite loss")
    return _result(estimate, durations, meter, None)


def run_one(spec):
    """Train one model on one configuration; returns a JSON-serialisable dict.

    ``spec`` holds ``model`` (a key of ``MODELS``), ``steps``, ``samples``,
    ``epochs``, ``min_seconds`` (see :func:`epochs_to_run`), ``batch_size``,
    ``threads``, ``device``, ``max_seconds`` and ``predict_samples``.
    """
    import torch

    key = spec["model"]
    base = {"model": key, "steps": spec["steps"], "samples": spec["samples"]}
    if MODELS[key][1] == "ncps":
        try:
            import ncps.torch  # noqa: F401
        except ImportError:
            return {**base, "status": "error", "message": "ncps is not installed (pip install ncps)"}
    X, y = make_data(spec["samples"], spec["steps"])
    old_threads = torch.get_num_threads()
    torch.set_num_threads(spec["threads"])
    # The package's estimators flush denormals to zero while they fit, in every thread (see
    # mrmoe_sklearn._base._torch_threads); the plain ncps loops get the same, so that no model
    # pays the denormal slowdown of long backward passes.
    from mrmoe_sklearn.nn import kernel

    kernel.flush_denormals(True, spec["threads"])
    try:
        runner = _run_ncps if MODELS[key][1] == "ncps" else _run_estimator
        result = runner(key, spec, X, y)
    except Exception as exc:  # reported in the table, the other models still run
        return {**base, "status": "error", "message": f"{type(exc).__name__}: {exc}"}
    finally:
        kernel.flush_denormals(False, spec["threads"])
        torch.set_num_threads(old_threads)
    return {**base, **result}


def run_isolated(spec):
    """``run_one`` in a fresh Python process (timings and peak memory of this model alone)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(spec["threads"])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(spec)],
        capture_output=True,
        text=True,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {
        "model": spec["model"],
        "steps": spec["steps"],
        "samples": spec["samples"],
        "status": "error",
        "message": f"worker exited with code {proc.returncode}: {tail[0]}",
    }


# --------------------------------------------------------------------------- report
def _fmt(value, digits=3):
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if value < 1 else f"{value:.{max(digits - 1 - int(math.log10(value)), 0)}f}"


def _ratio(value, ref):
    if value is None or ref is None or not ref or not math.isfinite(value) or not math.isfinite(ref):
        return None
    return value / ref


def _fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}"


def _epoch_time(result):
    """(seconds per epoch, estimated?) of a result; skipped runs give their estimate."""
    if result is None:
        return None, False
    if result["status"] == "ok":
        return result["sec_per_epoch"], False
    if result["status"] == "skipped":
        return result["estimate_s"], True
    return None, False


COLUMNS = ["model", "steps", "s/epoch", "x LSTM", "peak MiB", "x LSTM", "predict/s", "x LSTM"]


def table_rows(results, n_samples, sizes, keys):
    """Rows (lists of strings) of the table of one sample count, plus notes for skipped/failed runs."""
    rows = []
    for steps in sizes:
        ref = results.get((REFERENCE, steps, n_samples))
        ref_ok = ref is not None and ref["status"] == "ok"
        for key in keys:
            r = results.get((key, steps, n_samples))
            if r is None:
                continue
            name = MODELS[key][0]
            if r["status"] == "skipped":
                rows.append([name, str(steps), f"skipped (over budget): estimated {_fmt(r['estimate_s'])} s/epoch"])
                continue
            if r["status"] != "ok":
                rows.append([name, str(steps), f"error: {r.get('message', '?')}"])
                continue
            tr = _ratio(r["sec_per_epoch"], ref["sec_per_epoch"]) if ref_ok else None
            mr = _ratio(r["peak_mib"], ref["peak_mib"]) if ref_ok else None
            pr = _ratio(r["predict_per_s"], ref["predict_per_s"]) if ref_ok else None
            rows.append(
                [
                    name,
                    str(steps),
                    _fmt(r["sec_per_epoch"]),
                    _fmt_ratio(tr),
                    _fmt(r["peak_mib"]),
                    _fmt_ratio(mr),
                    _fmt(r["predict_per_s"]),
                    _fmt_ratio(pr),
                ]
            )
    return rows


def growth_rows(results, n_samples, sizes, keys):
    lo, hi = base_size(sizes), sizes[-1]
    if lo == hi:
        return []
    rows = []
    for key in keys:
        a, b = results.get((key, lo, n_samples)), results.get((key, hi, n_samples))
        if a is None or b is None or a["status"] != "ok" or b["status"] != "ok":
            continue
        tg = _ratio(b["sec_per_epoch"], a["sec_per_epoch"])
        mg = _ratio(b["peak_mib"], a["peak_mib"])
        rows.append([MODELS[key][0], _fmt_ratio(tg) + "x" if tg else "-", _fmt_ratio(mg) + "x" if mg else "-"])
    return rows


def checks(results, n_samples, sizes):
    """PASS/FAIL/N/A lines for the project's targets at one sample count."""
    lines = []

    def get(key, steps):
        return results.get((key, steps, n_samples))

    def verdict(values, ok):
        if not values:
            return "N/A "
        return "PASS" if all(ok(v) for v in values) else "FAIL"

    def ratios_to_lstm(field, key="mrmoe"):
        """``key``'s (MR-MoE's) ``field`` over the LSTM's at every size: (text parts, values)."""
        parts, values = [], []
        for s in sizes:
            m, ref = get(key, s), get(REFERENCE, s)
            if m and ref and m["status"] == "ok" and ref["status"] == "ok":
                v = m[field] / ref[field]
                values.append(v)
                parts.append(f"{s}: {v:.2f}x")
            else:
                parts.append(f"{s}: n/a")
        return parts, values

    # 1. MR-MoE s/epoch <= 1.0 x LSTM at every size.
    parts, values = ratios_to_lstm("sec_per_epoch")
    lines.append(
        f"{verdict(values, lambda v: v <= TARGET_TIME_RATIO)}  MR-MoE s/epoch <= "
        f"{TARGET_TIME_RATIO:.1f}x LSTM at every size ({', '.join(parts)})"
    )

    # 2./3. MR-MoE faster than ncps CfC / LTC: targets from 64 steps (issue 4's sizes); the
    # shorter sizes' ratios are shown beside them, without a verdict
    def speedups(key, steps):
        parts, values = [], []
        for s in steps:
            m, other = get("mrmoe", s), get(key, s)
            if other is None:
                continue
            t_other, estimated = _epoch_time(other)
            if m and m["status"] == "ok" and t_other:
                v = t_other / m["sec_per_epoch"]
                values.append(v)
                parts.append(f"{s}: {'~' if estimated else ''}{v:.1f}x{' (estimated)' if estimated else ''}")
            else:
                parts.append(f"{s}: n/a")
        return parts, values

    for key, target in (("cfc", TARGET_CFC_SPEEDUP), ("ltc", TARGET_LTC_SPEEDUP)):
        if key in SMALLEST_ONLY:
            targeted, shorter = [base_size(sizes)], []
        else:
            targeted = [s for s in sizes if s >= BASE_STEPS] or list(sizes)
            shorter = [s for s in sizes if s not in targeted]
        parts, values = speedups(key, targeted)
        info, _ = speedups(key, shorter)
        label = MODELS[key][0]
        lines.append(
            f"{verdict(values, lambda v, t=target: v >= t)}  MR-MoE >= {target:g}x faster than "
            f"{label} ({', '.join(parts) or 'not run'})"
            + (f"; shorter series, no target: {', '.join(info)}" if info else "")
        )

    # 4. Growth from the shortest to the longest sequences.
    lo = base_size(sizes)
    if len(sizes) >= 2 and lo != sizes[-1]:
        a, b = get("mrmoe", lo), get("mrmoe", sizes[-1])
        if a and b and a["status"] == "ok" and b["status"] == "ok":
            tg = b["sec_per_epoch"] / a["sec_per_epoch"]
            mg = b["peak_mib"] / a["peak_mib"] if a["peak_mib"] > 0 else float("inf")
            ok = tg <= TARGET_GROWTH and mg <= TARGET_GROWTH
            lines.append(
                f"{'PASS' if ok else 'FAIL'}  MR-MoE growth {lo} -> {sizes[-1]} steps "
                f"<= {TARGET_GROWTH:g}x (s/epoch {tg:.1f}x, peak memory {mg:.1f}x)"
            )
        else:
            lines.append(f"N/A   MR-MoE growth {lo} -> {sizes[-1]} steps <= {TARGET_GROWTH:g}x (a run is missing)")
    else:
        lines.append(f"N/A   MR-MoE growth <= {TARGET_GROWTH:g}x (needs at least two sizes)")

    # 5. Predict throughput >= LSTM's.
    parts, values = ratios_to_lstm("predict_per_s")
    lines.append(
        f"{verdict(values, lambda v: v >= 1.0)}  MR-MoE predict_proba throughput >= LSTM's "
        f"at every size ({', '.join(parts)})"
    )

    # Without the summary head: the same ratios, for information (the targets are the defaults')
    if any(get("mrmoe-nohead", s) for s in sizes):
        time_parts, _ = ratios_to_lstm("sec_per_epoch", "mrmoe-nohead")
        predict_parts, _ = ratios_to_lstm("predict_per_s", "mrmoe-nohead")
        lines.append(
            f"INFO  MR-MoE with summary_head=False, no target: s/epoch x LSTM ({', '.join(time_parts)}); "
            f"predict_proba throughput x LSTM ({', '.join(predict_parts)})"
        )
    return lines


def _text_table(header, rows):
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) == len(header):
            widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) if len(cells) == len(header) else c)
        return "  ".join(out).rstrip()

    text = [line(header), "  ".join("-" * w for w in widths)]
    for row in rows:
        if len(row) == len(header):
            text.append(line(row))
        else:  # a note spanning the numeric columns
            text.append("  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2]]))
    return "\n".join(text)


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    for row in rows:
        cells = row + [""] * (len(header) - len(row))
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(out)


def _torch_version():
    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "unknown"


def environment(args, argv):
    uname = platform.uname()
    if args.device == "cuda":
        import torch

        device = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        device = args.device
    return {
        "machine": f"{uname.system} {uname.release} {uname.machine}",
        "processor": platform.processor() or _cpu_model() or "unknown",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": _torch_version(),
        "threads": ", ".join(map(str, args.threads)),
        "device": device,
        "scan": _scan_status(args.device),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": shlex.join(["python", "benchmarks/speed.py", *argv]),
    }


def _scan_status(device):
    """How the CfC experts' recurrence runs: the compiled CPU kernel or the PyTorch loop."""
    if device != "cpu":
        return "PyTorch loop (the compiled kernel is CPU-only)"
    from mrmoe_sklearn.nn import kernel

    return kernel.status()


def _cpu_model():
    info = _read_proc("/proc/cpuinfo") or ""
    for line in info.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def _epochs_text(args):
    """The epochs of a run, in words."""
    if args.min_seconds > 0 and args.epochs < MAX_EPOCHS:
        return f"{args.epochs} to {MAX_EPOCHS} epochs (more where short, for {args.min_seconds:g} s timed)"
    return f"{args.epochs} epoch(s)"


def _section_title(n, args, threads):
    return (
        f"{n} samples x {N_CHANNELS} channels, binary labels, batch {args.batch_size}, "
        f"{_epochs_text(args)}, {threads} thread(s), {args.device}"
    )


def _sections(by_threads, args):
    """(samples, threads, results at that thread count) of every section of the report."""
    return [(n, t, by_threads[t]) for n in args.samples for t in args.threads]


def scaling_rows(by_threads, n_samples, sizes, keys):
    """s/epoch and predict/s of each model and size at every thread count, with the speed-up
    over the fewest threads."""
    counts = sorted(by_threads)
    rows = []
    for key in keys:
        for s in sizes:
            cells, first = [], None
            for t in counts:
                r = by_threads[t].get((key, s, n_samples))
                ok = r is not None and r["status"] == "ok"
                sec = r["sec_per_epoch"] if ok else None
                first = sec if first is None else first
                ratio = _ratio(sec, first) if t != counts[0] else None
                cells += [_fmt(sec)] + ([] if t == counts[0] else [_fmt_ratio(ratio) + ("x" if ratio else "")])
                cells.append(_fmt(r["predict_per_s"]) if ok and r.get("predict_per_s") else "-")
            if any(c not in ("-", "") for c in cells):
                rows.append([MODELS[key][0], str(s), *cells])
    return rows


def scaling_header(by_threads):
    counts = sorted(by_threads)
    header = ["model", "steps"]
    for t in counts:
        header += [f"s/epoch {t}t", *([] if t == counts[0] else [f"vs {counts[0]}t"]), f"predict/s {t}t"]
    return header


def scaling_checks(by_threads, n_samples, sizes):
    """The two-thread target: MR-MoE with 2 threads from 256 steps on within 0.65x of 1 thread."""
    if 1 not in by_threads or 2 not in by_threads:
        return [f"N/A   MR-MoE 2 threads <= {TARGET_TWO_THREADS:g}x its 1-thread s/epoch (needs --threads 1,2)"]
    parts, values = [], []
    for s in sizes:
        if s < TWO_THREAD_FROM:
            continue
        a, b = by_threads[1].get(("mrmoe", s, n_samples)), by_threads[2].get(("mrmoe", s, n_samples))
        if a and b and a["status"] == "ok" and b["status"] == "ok":
            values.append(b["sec_per_epoch"] / a["sec_per_epoch"])
            parts.append(f"{s}: {values[-1]:.2f}x")
    verdict = "N/A " if not values else "PASS" if all(v <= TARGET_TWO_THREADS for v in values) else "FAIL"
    return [
        f"{verdict}  MR-MoE 2 threads <= {TARGET_TWO_THREADS:g}x its 1-thread s/epoch from "
        f"{TWO_THREAD_FROM} steps ({', '.join(parts) or 'no size run'})"
    ]


def render_text(by_threads, args, keys):
    out = []
    for n, threads, results in _sections(by_threads, args):
        out.append("")
        out.append(f"== {_section_title(n, args, threads)} ==")
        out.append(_text_table(COLUMNS, table_rows(results, n, args.sizes, keys)))
        growth = growth_rows(results, n, args.sizes, keys)
        if growth:
            out.append("")
            out.append(
                _text_table(
                    [f"growth {base_size(args.sizes)} -> {args.sizes[-1]} steps", "s/epoch", "peak MiB"], growth
                )
            )
        out.append("")
        out.extend(checks(results, n, args.sizes))
    if len(args.threads) > 1:
        for n in args.samples:
            out += [
                "",
                f"== thread scaling, {n} samples ==",
                _text_table(scaling_header(by_threads), scaling_rows(by_threads, n, args.sizes, keys)),
                "",
                *scaling_checks(by_threads, n, args.sizes),
            ]
    return "\n".join(out)


def render_markdown(by_threads, args, keys, env, elapsed):
    md = [
        "# Speed and memory benchmark",
        "",
        "Written by `benchmarks/speed.py`; see `benchmarks/README.md` for what the columns mean. "
        "Ratios are to `LSTMClassifier` measured in the same run (time and memory: lower is better; "
        "predict/s: higher is better).",
        "",
        f"- command: `{env['command']}`",
        f"- date: {env['date']}",
        f"- machine: {env['machine']}, processor: {env['processor']}, {env['cpus']} CPUs",
        f"- Python {env['python']}, torch {env['torch']}, {env['threads']} torch thread(s), device {env['device']}",
        f"- CfC recurrence: {env['scan']}",
        f"- epochs per run: {_epochs_text(args)}; median s/epoch, epoch 0 excluded from runs of 3 or more; "
        f"batch size {args.batch_size}, predict_proba on {args.predict_samples} samples, "
        f"isolation: {args.isolation}, budget per epoch: "
        f"{'none' if not math.isfinite(args.max_seconds) else f'{args.max_seconds:g} s'}",
        f"- runs per configuration: {args.repeat}"
        f"{' (the models taking turns; medians over the runs)' if args.repeat > 1 else ''}",
        f"- total benchmark time: {elapsed:.0f} s",
    ]
    if len(args.threads) > 1:
        for n in args.samples:
            md += [
                "",
                f"## Thread scaling, {n} samples",
                "",
                "s/epoch and predict_proba samples/s at each thread count; `vs` is the s/epoch ratio "
                "to the fewest threads (lower is better).",
                "",
                _md_table(scaling_header(by_threads), scaling_rows(by_threads, n, args.sizes, keys)),
                "",
                "```",
                *scaling_checks(by_threads, n, args.sizes),
                "```",
            ]
    for n, threads, results in _sections(by_threads, args):
        md += [
            "",
            f"## {_section_title(n, args, threads)}",
            "",
            _md_table(COLUMNS, table_rows(results, n, args.sizes, keys)),
        ]
        growth = growth_rows(results, n, args.sizes, keys)
        if growth:
            md += [
                "",
                f"Growth from {base_size(args.sizes)} to {args.sizes[-1]} steps "
                f"({args.sizes[-1] / base_size(args.sizes):g}x longer sequences):",
                "",
                _md_table(["model", "s/epoch", "peak MiB"], growth),
            ]
        md += ["", "Targets:", "", "```", *checks(results, n, args.sizes), "```"]
    return "\n".join(md) + "\n"


# --------------------------------------------------------------------------- main
def main(argv=None):
    """Run the benchmark; ``argv`` defaults to ``sys.argv[1:]``. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args._worker is not None:
        result = run_one(json.loads(args._worker))
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return 0

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda was requested but CUDA is not available", file=sys.stderr)
            return 2
    keys = args.models
    env = environment(args, argv)
    print(f"# {env['command']}")
    print(
        f"# {env['machine']}, {env['processor']}, {env['cpus']} CPUs, torch {env['torch']}, "
        f"{env['threads']} thread(s), device {env['device']}, isolation {args.isolation}"
    )
    print(f"# CfC recurrence: {env['scan']}")

    runner = run_isolated if args.isolation == "process" else run_one
    by_threads = {t: {} for t in args.threads}
    start = time.perf_counter()
    for n, threads in ((n, t) for n in args.samples for t in args.threads):
        results = by_threads[threads]
        for steps in args.sizes:
            runs = {key: [] for key in keys if key not in SMALLEST_ONLY or steps == base_size(args.sizes)}
            for round_ in range(args.repeat):
                for key, done in runs.items():
                    if done and done[-1]["status"] != "ok":
                        continue  # skipped or failed: not tried again
                    spec = dict(
                        model=key,
                        steps=steps,
                        samples=n,
                        epochs=args.epochs,
                        min_seconds=args.min_seconds,
                        batch_size=args.batch_size,
                        threads=threads,
                        device=args.device,
                        max_seconds=args.max_seconds,
                        predict_samples=args.predict_samples,
                    )
                    t0 = time.perf_counter()
                    r = runner(spec)
                    done.append(r)
                    run_label = f" (run {round_ + 1}/{args.repeat})" if args.repeat > 1 else ""
                    _print_run(
                        f"{MODELS[key][0]:<16} {steps:>5} steps x {n} samples, {threads} thread(s){run_label}:",
                        r,
                        args,
                        t0,
                    )
            for key, done in runs.items():
                results[(key, steps, n)] = combine_runs(done)
    elapsed = time.perf_counter() - start
    print(render_text(by_threads, args, keys))
    print(f"\ntotal: {elapsed:.1f} s")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render_markdown(by_threads, args, keys, env, elapsed))
        print(f"wrote {args.output}")
    return 0


def _print_run(label, r, args, t0):
    """The progress line of one run."""
    if r["status"] == "ok":
        print(
            f"{label} {_fmt(r['sec_per_epoch'])} s/epoch ({len(r['epoch_s'])} epochs trained), "
            f"{_fmt(r['peak_mib'])} MiB "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    elif r["status"] == "skipped":
        print(
            f"{label} skipped (over budget): estimated {_fmt(r['estimate_s'])} s/epoch > {args.max_seconds:g} s",
            flush=True,
        )
    else:
        print(f"{label} error: {r.get('message')}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
