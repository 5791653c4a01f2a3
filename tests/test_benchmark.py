"""Smoke tests of the benchmark scripts (``benchmarks/speed.py``, ``benchmarks/physionet.py``).

The benchmark runs in a subprocess: it sets torch's thread count and trains
several models, which must not leak into the test process.
"""

import importlib.util
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrmoe_sklearn.nn import kernel

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


def _load_speed():
    spec = importlib.util.spec_from_file_location("benchmark_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


speed = _load_speed()

HEADER = re.compile(r"^model\s+steps\s+s/epoch\s+x LSTM\s+peak MiB\s+x LSTM\s+predict/s\s+x LSTM$", re.M)
VERDICT = re.compile(r"^(PASS|FAIL|N/A)\s+MR-MoE ", re.M)


def _run(*args, timeout=120):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def _number(cell):
    return float(cell.replace(",", ""))


def _row(stdout, name, steps):
    """The numeric cells of the table row of ``name`` at ``steps`` (after the header)."""
    table = stdout[HEADER.search(stdout).end() :]
    pattern = re.compile(rf"^{re.escape(name)}\s+{steps}\s+(.*)$", re.M)
    match = pattern.search(table)
    assert match, f"no row for {name} at {steps} steps in:\n{stdout}"
    return match.group(1).split()


def _assert_positive(cells, what):
    for cell in cells:
        value = _number(cell)
        assert math.isfinite(value) and value > 0, f"{what}: {cell!r} is not a finite positive number"


def test_quick_run_prints_every_row_and_writes_markdown(tmp_path):
    out = tmp_path / "x.md"
    stdout = _run("--quick", "--output", str(out))

    assert HEADER.search(stdout), stdout
    sizes = speed.QUICK_DEFAULTS["sizes"]
    for key, (name, kind) in speed.MODELS.items():
        for steps in sizes:
            if key in speed.SMALLEST_ONLY and steps != speed.base_size(sizes):
                assert not re.search(rf"^{re.escape(name)}\s+{steps}\s", stdout, re.M)
                continue
            cells = _row(stdout, name, steps)
            assert len(cells) == 6, f"{name} at {steps}: {cells}"
            s_epoch, t_ratio, mem, m_ratio, pred, p_ratio = cells
            if kind == "estimator":
                _assert_positive(cells, f"{name} at {steps}")
            else:  # the ncps models have no predict_proba
                _assert_positive([s_epoch, t_ratio, mem, m_ratio], f"{name} at {steps}")
                assert (pred, p_ratio) == ("-", "-")
            if key == speed.REFERENCE:
                assert (t_ratio, m_ratio, p_ratio) == ("1.00", "1.00", "1.00")

    # growth table and the five target lines
    assert re.search(rf"^growth {sizes[0]} -> {sizes[-1]} steps\s+s/epoch\s+peak MiB$", stdout, re.M)
    assert len(VERDICT.findall(stdout)) == 5, stdout

    md = out.read_text()
    assert "| model | steps | s/epoch | x LSTM | peak MiB | x LSTM | predict/s | x LSTM |" in md
    assert f"python benchmarks/speed.py --quick --output {out}" in md
    for name, _ in speed.MODELS.values():
        assert f"| {name} | {sizes[0]} |" in md
    assert "torch" in md and "thread" in md and "runs per configuration: 1" in md
    assert f"- CfC recurrence: {kernel.status()}" in md and f"# CfC recurrence: {kernel.status()}" in stdout
    assert md.count("PASS") + md.count("FAIL") + md.count("N/A") >= 5


def test_isolated_worker_and_budget_skip():
    # A fresh process per model (the default of full runs), reference model only.
    # Run twice: a progress line per run, one row of medians.
    stdout = _run(
        "--sizes",
        "8",
        "--samples",
        "64",
        "--epochs",
        "1",
        "--models",
        "lstm",
        "--predict-samples",
        "1000",
        "--isolation",
        "process",
        "--repeat",
        "2",
    )
    assert (
        len(re.findall(r"^LSTMClassifier\s+8 steps x 64 samples, 1 thread\(s\) \(run [12]/2\): ", stdout, re.M)) == 2
    ), stdout
    _assert_positive(_row(stdout, "LSTMClassifier", 8), "isolated LSTMClassifier")
    # an epoch of one batch is short: each run trains more epochs than --epochs (--min-seconds 2)
    epochs = [int(n) for n in re.findall(r"s/epoch \((\d+) epochs trained\)", stdout)]
    assert len(epochs) == 2 and all(3 <= n <= speed.MAX_EPOCHS for n in epochs), stdout

    # A budget no epoch can meet: every run is skipped (and not tried again), the targets are
    # not applicable.
    stdout = _run("--quick", "--models", "lstm,cfc", "--sizes", "8", "--max-seconds", "1e-9", "--repeat", "2")
    assert stdout.count("skipped (over budget)") == 4, stdout  # progress line + table row, per model
    assert "run 2/2" not in stdout
    assert "FAIL" not in stdout


def test_budget_estimate_leaves_out_the_warm_up_step():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)  # a slow first step (warm-up)

    assert speed.warm_step_seconds(step, "cpu") < 0.25
    assert len(calls) == 2


def _record(status="ok", s=1.0, mib=10.0, pred=100.0):
    if status != "ok":
        return {"status": status, "estimate_s": s}
    return {
        "status": "ok",
        "estimate_s": s,
        "epoch_s": [s, s],
        "sec_per_epoch": s,
        "peak_mib": mib,
        "predict_per_s": pred,
    }


def test_combine_runs_takes_medians_and_keeps_failures():
    runs = [
        _record(s=3.0, mib=12.0, pred=90.0),
        _record(s=1.0, mib=10.0, pred=300.0),
        _record(s=2.0, mib=30.0, pred=100.0),
    ]
    combined = speed.combine_runs(runs)
    assert (combined["sec_per_epoch"], combined["peak_mib"], combined["predict_per_s"]) == (2.0, 12.0, 100.0)
    assert combined["runs_s"] == [3.0, 1.0, 2.0] and len(combined["epoch_s"]) == 6
    assert speed.combine_runs(runs[:1]) is runs[0]
    skipped = _record("skipped", s=50.0)
    assert speed.combine_runs([runs[0], skipped]) is skipped
    no_predict = [_record(pred=None), _record(s=3.0, pred=None)]
    assert speed.combine_runs(no_predict)["predict_per_s"] is None


@pytest.mark.parametrize(
    "durations, expected",
    [([5.0, 1.0, 2.0, 3.0], 2.0), ([5.0, 1.0], 3.0), ([4.0], 4.0), ([9.0, 2.0, 1.0], 1.5)],
)
def test_median_epoch_skips_warm_up_from_three_epochs(durations, expected):
    assert speed._median_epoch(durations) == pytest.approx(expected)


@pytest.mark.parametrize(
    "epochs, min_seconds, estimate, expected",
    [
        (3, 2.0, 0.1, 21),  # 20 timed epochs after the warm-up
        (3, 2.0, 1.5, 3),  # two timed epochs already take 3 s
        (3, 2.0, 0.5, 5),
        (3, 2.0, 0.001, 30),  # at most MAX_EPOCHS
        (3, 2.0, 5e-324, 30),
        (3, 2.0, 0.0, 30),  # a coarse clock: the epochs are short
        (3, 0.0, 0.1, 3),  # off
        (40, 2.0, 0.1, 40),  # never fewer than asked
        (1, 2.0, 200.0, 1),  # long epochs: no more
        (2, 2.0, 1.5, 2),  # two epochs, both timed, take 3 s
        (2, 2.0, 0.5, 5),  # from 3 epochs on the first is not timed
    ],
)
def test_short_epochs_are_timed_for_at_least_min_seconds(epochs, min_seconds, estimate, expected):
    spec = {"epochs": epochs, "min_seconds": min_seconds}
    assert speed.epochs_to_run(spec, estimate) == expected


def test_options():
    args = speed.parse_args(["--sizes", "256,64,64", "--samples", "100", "--predict-samples", "10"])
    assert args.sizes == [64, 256] and args.samples == [100]
    assert args.predict_samples == speed.MIN_PREDICT_SAMPLES
    assert args.epochs == 3 and args.batch_size == 64 and args.threads == [1] and args.device == "cpu"
    assert args.isolation == "process" and args.output is None and args.repeat == 1 and args.min_seconds == 2.0
    quick = speed.parse_args(["--quick", "--epochs", "4"])
    assert quick.epochs == 4 and quick.isolation == "none" and quick.min_seconds == 0.0
    for bad in ("-1", "inf", "nan"):
        with pytest.raises(SystemExit):
            speed.parse_args(["--min-seconds", bad])
    assert speed.parse_args(["--models", "mrmoe"]).models == ["mrmoe", "lstm"]
    with pytest.raises(SystemExit):
        speed.parse_args(["--sizes", "0"])
    with pytest.raises(SystemExit):
        speed.parse_args(["--models", "gru"])


def test_physionet_benchmark_script_writes_its_results_file(tmp_path):
    """benchmarks/physionet.py on a tiny data set in PhysioNet's own file format (two models, one split)."""
    import importlib.util

    from tests._helpers import write_tiny_physionet

    spec = importlib.util.spec_from_file_location("physionet_bench", SCRIPT.parent / "physionet.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(SystemExit):
        bench.main(["--data-home", str(tmp_path / "nowhere")])
    write_tiny_physionet(tmp_path / "data")
    out = tmp_path / "P12.md"
    args = [
        "--data-home",
        str(tmp_path / "data"),
        "--models",
        "mrmoe,gbt",
        "--splits",
        "1",
        "--output",
        str(out),
        "--tables",
        str(tmp_path / "tables"),
    ]
    assert bench.main(args) == 0
    text = out.read_text()
    assert text.startswith("# PhysioNet 2012 (P12)") and "## Results" in text
    assert "| MR-MoE |" in text and "GBT (summary stats)" in text and "ViTST" in text
    assert "Machine:" in text and "python -m mrmoe_sklearn.compare" in text


def test_thread_scaling_table_and_two_thread_target():
    by_threads = {
        1: {
            ("mrmoe", 64, 100): _record(s=1.0),
            ("mrmoe", 256, 100): _record(s=4.0),
            ("lstm", 64, 100): _record(s=2.0),
            ("lstm", 256, 100): _record(s=8.0),
        },
        2: {
            ("mrmoe", 64, 100): _record(s=0.9),
            ("mrmoe", 256, 100): _record(s=2.4, pred=150.0),
            ("lstm", 64, 100): _record(s=1.5),
            ("lstm", 256, 100): _record("skipped", s=9.0),
        },
    }
    header = speed.scaling_header(by_threads)
    assert header == ["model", "steps", "s/epoch 1t", "predict/s 1t", "s/epoch 2t", "vs 1t", "predict/s 2t"]
    rows = speed.scaling_rows(by_threads, 100, [64, 256], ["mrmoe", "lstm"])
    assert rows[1] == ["MRMoEClassifier", "256", "4.00", "100", "2.40", "0.60x", "150"]
    assert rows[3][4:6] == ["-", "-"]  # a skipped run has no figures
    (line,) = speed.scaling_checks(by_threads, 100, [64, 256])
    assert line.startswith("PASS") and "256: 0.60x" in line and "64:" not in line
    by_threads[2][("mrmoe", 256, 100)] = _record(s=3.0)
    assert speed.scaling_checks(by_threads, 100, [64, 256])[0].startswith("FAIL")
    assert speed.scaling_checks({1: by_threads[1]}, 100, [256])[0].startswith("N/A")
    assert speed.parse_args(["--threads", "2,1"]).threads == [1, 2]


def test_targets_from_64_steps_when_shorter_sizes_run():
    """With 8 and 16 steps in the run, growth and the LTC and CfC targets still start from 64 steps
    (the CfC ratios of the shorter sizes shown without a verdict)."""
    assert speed.base_size([8, 16, 64, 256]) == 64 and speed.base_size([8, 16]) == 8
    results = {
        (k, s, 10): _record(s=t)
        for k, s, t in [
            ("mrmoe", 8, 0.5),
            ("mrmoe", 64, 1.0),
            ("mrmoe", 256, 3.0),
            ("lstm", 8, 0.5),
            ("lstm", 64, 2.0),
            ("lstm", 256, 9.0),
            ("ltc", 64, 60.0),
            ("cfc", 8, 1.0),
            ("cfc", 64, 3.5),
            ("cfc", 256, 9.0),
        ]
    }
    lines = speed.checks(results, 10, [8, 64, 256])
    cfc = [ln for ln in lines if "CfC" in ln]
    assert cfc == ["PASS  MR-MoE >= 3x faster than ncps CfC (64: 3.5x, 256: 3.0x); shorter series, no target: 8: 2.0x"]
    results[("cfc", 256, 10)] = _record(s=8.0)
    assert [ln for ln in speed.checks(results, 10, [8, 64, 256]) if "CfC" in ln][0].startswith("FAIL")
    # only shorter sizes run (a quick run): the target is checked on them
    short = [ln for ln in speed.checks(results, 10, [8]) if "CfC" in ln]
    assert short == ["FAIL  MR-MoE >= 3x faster than ncps CfC (8: 2.0x)"]
    assert any(ln.startswith("PASS") and "LTC (64: 60.0x)" in ln for ln in lines), lines
    assert any(ln.startswith("PASS") and "growth 64 -> 256" in ln for ln in lines), lines
    assert speed.growth_rows(results, 10, [8, 64, 256], ["mrmoe"])[0][1] == "3.00x"


def test_mrmoe_without_its_summary_head_is_reported_without_a_target():
    """``mrmoe-nohead`` builds MRMoEClassifier(summary_head=False) and adds an INFO line of its ratios to
    the LSTM; the targets' lines stay those of the defaults."""
    spec = {"epochs": 2, "batch_size": 8, "threads": 1, "device": "cpu"}
    assert speed._estimator("mrmoe-nohead", spec).summary_head is False
    assert speed._estimator("mrmoe", spec).summary_head is True
    results = {(k, 8, 10): _record(s=t) for k, t in [("mrmoe", 1.2), ("mrmoe-nohead", 0.9), ("lstm", 1.0)]}
    lines = speed.checks(results, 10, [8])
    assert lines[0].startswith("FAIL  MR-MoE s/epoch") and "8: 1.20x" in lines[0]
    assert lines[-1].startswith("INFO  MR-MoE with summary_head=False") and "s/epoch x LSTM (8: 0.90x)" in lines[-1]
    del results[("mrmoe-nohead", 8, 10)]
    assert not any(ln.startswith("INFO") for ln in speed.checks(results, 10, [8]))
