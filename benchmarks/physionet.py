#!/usr/bin/env python
"""The real-data benchmark: PhysioNet 2012 in-hospital mortality on the five published splits.

Runs the package's main job on the real data,
``python -m mrmoe_sklearn.compare --dataset physionet2012``, with every model
at its default parameters (only ``time_channel=0``): on each split every
model is fitted on the ``train`` part, chooses what it chooses (the networks'
stopping epoch) on the ``val`` part and is scored once on the ``test`` part.
The results file holds the measured table beside the published figures of
the same splits, with the date, the machine and the command.

The data are read from ``--data-home`` (default: ``shared/data`` beside the
repository, where this project keeps PhysioNet's files; see
``mrmoe_sklearn.datasets.fetch_physionet2012``); they are never copied into
the repository.

Examples
--------
The full benchmark (about an hour on a 2-core machine; writes
``benchmarks/PHYSIONET.md`` and the tables and figures in
``benchmarks/physionet2012/``)::

    python benchmarks/physionet.py

MR-MoE and the gradient-boosted tree only, on two splits::

    python benchmarks/physionet.py --models mrmoe,gbt --splits 1,2 --output /tmp/p12.md
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA_HOME = HERE.parent.parent / "shared" / "data"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", default=str(DEFAULT_DATA_HOME), help="folder holding physionet2012/")
    parser.add_argument("--models", help="comma-separated models (default: all of the comparison)")
    parser.add_argument("--splits", help="comma-separated split numbers (default: 1,2,3,4,5)")
    parser.add_argument("--output", default=str(HERE / "PHYSIONET.md"), help="results file (markdown)")
    parser.add_argument("--tables", default=str(HERE / "physionet2012"), help="folder for tables and figures")
    args = parser.parse_args(argv)
    if not (Path(args.data_home) / "physionet2012").is_dir():
        parser.error(f"no physionet2012/ folder in {args.data_home}; pass --data-home")

    from mrmoe_sklearn.compare import main as compare_main

    cli = ["--dataset", "physionet2012", "--data-home", args.data_home, "--output-dir", args.tables]
    if args.models:
        cli += ["--models", args.models]
    if args.splits:
        cli += ["--splits", args.splits]
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    code = compare_main(cli)
    elapsed = time.perf_counter() - t0
    if code:
        return code
    import torch

    header = [
        "# PhysioNet 2012 (P12) in-hospital mortality: measured on the published splits",
        "",
        f"- Run: {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min in all",
        f"- Machine: {_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__} (torch threads: {torch.get_num_threads()})",
        f"- Command: `python benchmarks/physionet.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        "  (= `python -m mrmoe_sklearn.compare " + shlex.join(cli) + "`)",
        "",
    ]
    body = (Path(args.tables) / "results.md").read_text()
    body = body.replace("# PhysioNet 2012 (P12) in-hospital mortality, published splits", "## Results", 1)
    Path(args.output).write_text("\n".join(header) + "\n" + body)
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
