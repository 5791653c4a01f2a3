"""Helpers shared by the test modules (fixtures are in ``conftest.py``).

Imported as ``from tests._helpers import ...``: ``tests`` is a package, so this
is an ordinary module (``conftest.py`` is pytest's, not one to import).
"""

import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import Callback

#: Small but real settings for estimator tests.
FAST = dict(hidden_size=8, backbone_units=16, max_epochs=4, batch_size=32, n_threads=1, random_state=0)


# --------------------------------------------------- callbacks
class EpochCount(Callback):
    """Counts the epochs whose end the callbacks saw (``ends_``)."""

    def initialize(self):
        self.ends_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.ends_ += 1


# --------------------------------------------------- flushing denormals in torch's threads
def loaded_libgomp():
    """The files of GNU's OpenMP runtime (``libgomp.so.1``, by its real name) this process has
    loaded, resolved; None where ``/proc`` is not there to tell."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    lines = maps.read_text().splitlines()
    return {Path(ln.split()[-1]).resolve() for ln in lines if "libgomp.so.1" in ln.split("/")[-1]}


def kernel_runs_torchs_threads():
    """Whether the compiled kernel is threaded and runs torch's own OpenMP threads: the process
    has one ``libgomp.so.1`` loaded, the one bundled with torch (Linux; else False)."""
    from mrmoe_sklearn.nn import kernel

    torch_lib = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    if not (kernel.threaded() and torch_lib.exists()):
        return False
    return loaded_libgomp() == {torch_lib.resolve()}


def flushing_testable():
    """Whether a test can tell which threads flush denormals: the kernel runs torch's threads
    (:func:`kernel_runs_torchs_threads`) on a processor with the setting."""
    from mrmoe_sklearn.nn import kernel

    return kernel_runs_torchs_threads() and kernel.flush_denormals(None) is not None


#: The reason a flushing test skips where :func:`flushing_testable` is False.
FLUSHING_UNTESTABLE = "needs the threaded kernel on torch's OpenMP runtime and a processor that flushes denormals"


def denormals_kept(x):
    """How many of ``x`` survive a multiplication by one (0 where every thread flushes)."""
    return int(((x * 1.0) != 0).sum())


def split_denormals():
    """Denormal float32s that torch's multiplication splits over its two threads, with neither
    thread flushing: the caller has set two threads. Skips the test where torch does not split
    them (then no result tells which threads flush)."""
    import pytest

    from mrmoe_sklearn.nn import kernel

    x = torch.full((1 << 20,), 1e-39)  # float32's smallest normal number is 1.2e-38
    kernel.flush_denormals(False, 2)
    torch.set_flush_denormal(True)  # torch's own function: the calling thread alone
    kept = denormals_kept(x)
    kernel.flush_denormals(False, 2)
    if not 0 < kept < x.numel():
        pytest.skip(f"torch did not split the multiplication over two threads ({kept} of {x.numel()} kept)")
    return x


# --------------------------------------------------- the CfC scan's and kernel's tests
def scan_problem(dtype=torch.float64, S=7, K=3, B=4, U=5, H=3, seed=0, weight_scale=0.5):
    """``[xin, Wh, Wo, bo, h0]`` (requiring gradients), ``dt`` and ``v`` of a scan of ``S`` steps.

    Weights are standard normal times ``weight_scale``; far above ``U ** -0.5`` the recurrence
    is chaotic over tens of steps and amplifies rounding errors at random.
    """
    g = torch.Generator().manual_seed(seed)
    args = [
        torch.randn(S, K, B, U, generator=g, dtype=dtype),
        torch.randn(K, H, U, generator=g, dtype=dtype) * weight_scale,
        torch.randn(K, U, 4 * H, generator=g, dtype=dtype) * weight_scale,
        torch.randn(K, 4 * H, generator=g, dtype=dtype),
        torch.randn(K, B, H, generator=g, dtype=dtype),
    ]
    for a in args:
        a.requires_grad_(True)
    dt = torch.rand(S, K, B, 1, generator=g, dtype=dtype) * 2
    v = (torch.rand(S, K, B, 1, generator=g) > 0.25).to(dtype)
    return args, dt, v


# ------------------------------------------------- PhysioNet 2012's own file format
def _record(record_id, label, rng):
    """One record file of PhysioNet 2012 whose HR, MAP and lactate depend on ``label``."""
    lines = [
        "Time,Parameter,Value",
        f"00:00,RecordID,{record_id}",
        f"00:00,Age,{rng.integers(20, 90)}",
        "00:00,Gender,1",
        "00:00,Height,-1",
        "00:00,ICUType,2",
        f"00:00,Weight,{rng.integers(50, 110)}",
    ]
    minutes = np.sort(rng.choice(np.arange(5, 48 * 60), size=int(rng.integers(4, 9)), replace=False))
    for m in minutes:
        stamp = f"{m // 60:02d}:{m % 60:02d}"
        lines.append(f"{stamp},HR,{int(80 + 25 * label + rng.normal(0, 8))}")
        if rng.random() < 0.5:
            lines.append(f"{stamp},MAP,{int(85 - 10 * label + rng.normal(0, 6))}")
        if rng.random() < 0.2:
            lines.append(f"{stamp},Lactate,{1.5 + 2 * label + rng.random():.1f}")
    return "\n".join(lines) + "\n"


def write_tiny_physionet(data_home, n_per_set=12, seed=0):
    """A few dozen records in PhysioNet 2012's files: set-{a,b,c}.tar.gz, Outcomes-*.txt, splits.csv."""
    rng = np.random.default_rng(seed)
    folder = data_home / "physionet2012"
    folder.mkdir(parents=True)
    ids, labels = [], []
    for k, s in enumerate("abc"):
        outcomes = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
        with tarfile.open(folder / f"set-{s}.tar.gz", "w:gz") as tar:
            folder_entry = tarfile.TarInfo(f"set-{s}")
            folder_entry.type = tarfile.DIRTYPE
            tar.addfile(folder_entry)
            for i in range(n_per_set):
                record_id, label = 132539 + 1000 * k + i, i % 2
                raw = _record(record_id, label, rng).encode()
                info = tarfile.TarInfo(f"set-{s}/{record_id}.txt")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
                outcomes.append(
                    f"{record_id},{rng.integers(5, 25)},{rng.integers(0, 12)},{rng.integers(2, 30)},"
                    f"{rng.integers(2, 30) if label else -1},{label}"
                )
                ids.append(record_id)
                labels.append(label)
        (folder / f"Outcomes-{s}.txt").write_text("\n".join(outcomes) + "\n")
    labels = np.array(labels)
    table = {"RecordID": ids}
    for split in range(1, 6):
        column = np.empty(len(ids), dtype=object)
        for label in (0, 1):  # 4 + 4 test, 4 + 4 val, the rest train: both classes in every part
            rows = rng.permutation(np.flatnonzero(labels == label))
            column[rows[:4]], column[rows[4:8]], column[rows[8:]] = "test", "val", "train"
        table[f"split{split}"] = column
    pd.DataFrame(table).to_csv(folder / "splits.csv", index=False)
    return ids
