"""The command line: ``mrmoe-compare`` and ``python -m mrmoe_sklearn.compare``."""

import argparse
import os
import sys
import time

from ..datasets import make_multirate_classification
from ._io import _builtin_names, load_long_csv, load_npz
from ._peers import default_models, select_models
from ._protocol import compare_models
from ._report import format_table, save_figures, write_results

#: Default number of epochs of the command line (the estimators default to 30);
#: chosen so that the default run finishes in a few minutes on two CPU cores.
CLI_MAX_EPOCHS = 15


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="mrmoe-compare",
        description=(
            "Cross-validated comparison of MR-MoE with the LNN, MoE and LSTM baselines and "
            "its ablations (AUROC, AUPRC, paired tests), with figures. Without --csv or --npz "
            "it uses the built-in multi-rate dataset."
        ),
    )
    data = parser.add_argument_group("built-in dataset")
    data.add_argument("--n-samples", type=_positive_int, default=600, help="series to generate (default 600)")
    data.add_argument("--n-timesteps", type=_positive_int, default=96, help="steps per series (default 96)")
    data.add_argument("--n-classes", type=_positive_int, default=2, help="classes to generate (default 2)")
    user = parser.add_argument_group("your data")
    user.add_argument("--csv", metavar="PATH", help="long-format CSV, one row per observation")
    user.add_argument("--id-col", metavar="ID", help="CSV column with the sequence id")
    user.add_argument("--time-col", metavar="T", help="CSV column with the time stamp (numbers or datetimes)")
    user.add_argument("--label-col", metavar="L", help="CSV column with the label (one per id)")
    user.add_argument("--value-cols", metavar="a,b,c", help="CSV measured columns (default: all others)")
    user.add_argument("--npz", metavar="PATH", help=".npz file with arrays X (n, channels, steps) and y")
    user.add_argument(
        "--time-channel",
        metavar="C",
        help="time channel of the --npz data (an int, or 'none'); default: the file's time_channel",
    )
    run = parser.add_argument_group("comparison")
    run.add_argument("--cv", type=_positive_int, default=5, help="stratified folds (default 5)")
    run.add_argument(
        "--max-epochs",
        type=_positive_int,
        default=CLI_MAX_EPOCHS,
        help=f"training epochs of every model (default {CLI_MAX_EPOCHS})",
    )
    run.add_argument("--random-state", type=int, default=0, help="seed of the folds and the models (default 0)")
    run.add_argument("--n-jobs", type=int, default=1, help="parallel fits over folds x models (default 1)")
    run.add_argument(
        "--n-threads",
        type=_positive_int,
        default=1,
        help="torch threads per fit (default 1: robust when other processes share the cores; always 1 with --n-jobs)",
    )
    run.add_argument(
        "--models",
        metavar="A,B",
        help="comma-separated subset of: " + ", ".join(default_models()),
    )
    run.add_argument("--peers", metavar="NAME", default="", help="extra models from other libraries: minirocket")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", default="compare_results", help="where to write results (default compare_results)")
    out.add_argument("--no-plots", action="store_true", help="skip the figures")
    out.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 progress (default), 2 also per-epoch lines")
    return parser


def _load_data(args, parser):
    if args.csv and args.npz:
        parser.error("give either --csv or --npz, not both")
    if args.csv:
        needed = {"--id-col": args.id_col, "--time-col": args.time_col, "--label-col": args.label_col}
        absent = [k for k, v in needed.items() if not v]
        if absent:
            parser.error(f"--csv needs {', '.join(absent)}")
        X, y, _, names = load_long_csv(args.csv, args.id_col, args.time_col, args.label_col, args.value_cols)
        return X, y, 0, names, f"{args.csv}: {X.shape[0]} sequences, {X.shape[1] - 1} values, up to {X.shape[2]} steps"
    if args.npz:
        X, y, tc, names = load_npz(args.npz, args.time_channel)
        return X, y, tc, names, f"{args.npz}: X {X.shape}, time_channel={tc}"
    X, y, info = make_multirate_classification(
        n_samples=args.n_samples,
        n_timesteps=args.n_timesteps,
        n_classes=args.n_classes,
        random_state=args.random_state,
        return_info=True,
    )
    names = _builtin_names(info, X.shape[1])
    desc = (
        f"built-in dataset make_multirate_classification(n_samples={args.n_samples}, "
        f"n_timesteps={args.n_timesteps}, n_classes={args.n_classes}, random_state={args.random_state})"
    )
    return X, y, info["time_channel"], names, desc


def main(argv=None):
    """Command line entry point (``mrmoe-compare`` / ``python -m mrmoe_sklearn.compare``).

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success. Invalid arguments or data exit with status 2 and a
        message (argparse's convention).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        models = select_models(args.models) if args.models else None
        X, y, time_channel, names, desc = _load_data(args, parser)
    except (ValueError, TypeError, OSError) as exc:
        parser.error(str(exc))
    if args.n_jobs == 0:
        parser.error("--n-jobs must not be 0")
    if args.verbose:
        print(f"Data: {desc}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        result = compare_models(
            X,
            y,
            models=models,
            cv=args.cv,
            time_channel=time_channel,
            random_state=args.random_state,
            n_jobs=args.n_jobs,
            verbose=args.verbose,
            peers=args.peers,
            max_epochs=args.max_epochs,
            channel_names=names,
            n_threads=args.n_threads,
        )
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - start

    print(
        f"Cross-validated comparison: {len(result.folds)} folds, {len(y)} samples, "
        f"{len(result.classes)} classes, max_epochs={args.max_epochs}, random_state={args.random_state}"
    )
    print(format_table(result.summary))
    print(
        f"d = mean over folds of {result.reference} minus the model; p = paired t-test; "
        f"wins = folds where {result.reference} scored higher."
    )
    written = write_results(result, args.output_dir)
    if not args.no_plots:
        try:
            written += save_figures(result, args.output_dir)
        except ImportError as exc:
            print(f"Note: figures skipped. {exc}")
    print(f"Wrote {', '.join(os.path.basename(p) for p in written)} to {args.output_dir} ({elapsed:.0f}s of fitting).")
    return 0
