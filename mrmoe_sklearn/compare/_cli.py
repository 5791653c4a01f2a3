"""The command line: ``mrmoe-compare`` and ``python -m mrmoe_sklearn.compare``.

Two datasets: ``--dataset builtin`` (the default: the built-in multi-rate set,
or the user's ``--csv`` / ``--npz``), compared by cross-validation
(:func:`compare_models`); ``--dataset physionet2012``, compared on the five
published train/validation/test splits (:func:`compare_on_splits`) beside the
published results (:data:`PUBLISHED_P12`).
"""

import argparse
import os
import sys
import time

from ..datasets import make_multirate_classification
from ._io import _builtin_names, load_long_csv, load_npz
from ._peers import PEERS, _peer_key, _split_names, default_models, select_models
from ._protocol import compare_models, compare_on_splits
from ._report import (
    PUBLISHED_P12,
    _remove_outputs,
    format_published_table,
    format_table,
    published_table,
    save_figures,
    save_split_figures,
    write_results,
    write_split_results,
)

#: Default number of epochs of the command line on the built-in dataset (the
#: estimators default to 30); chosen so that the default run finishes in a few
#: minutes on two CPU cores. Not applied on PhysioNet 2012, where the
#: estimators' defaults are what is measured.
CLI_MAX_EPOCHS = 15

#: The defaults of the built-in (cross-validated) run's own options, which
#: PhysioNet 2012 does not take: option -> default.
_BUILTIN_ONLY = {
    "n_samples": 600,
    "n_timesteps": 96,
    "n_classes": 2,
    "cv": 5,
    "n_jobs": 1,
}

#: The models compared on PhysioNet 2012 when ``--models`` is not given.
PHYSIONET_MODELS = (*default_models(), "gbt")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _split_list(text):
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be split numbers separated by commas, e.g. 1,2,3; got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be split numbers from 1 up, e.g. 1,2,3; got {text!r}")
    return values


def _time_channel(text):
    """``--time-channel``: an int or ``none``, passed on as given (see :func:`load_npz`)."""
    if text.strip().lower() != "none":
        try:
            int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a channel number or 'none', got {text!r}") from None
    return text


def _add_data_arguments(parser):
    parser.add_argument(
        "--dataset",
        choices=("builtin", "physionet2012"),
        default="builtin",
        help="builtin (default): cross-validation on the built-in set or on --csv/--npz data; "
        "physionet2012: the published train/val/test splits of PhysioNet 2012, beside published results",
    )
    data = parser.add_argument_group("built-in dataset")
    data.add_argument("--n-samples", type=_positive_int, help="series to generate (default 600)")
    data.add_argument("--n-timesteps", type=_positive_int, help="steps per series (default 96)")
    data.add_argument("--n-classes", type=_positive_int, help="classes to generate (default 2)")
    user = parser.add_argument_group("your data (with --dataset builtin)")
    user.add_argument("--csv", metavar="PATH", help="long-format CSV, one row per observation")
    user.add_argument("--id-col", metavar="ID", help="CSV column with the sequence id")
    user.add_argument("--time-col", metavar="T", help="CSV column with the time stamp (numbers or datetimes)")
    user.add_argument("--label-col", metavar="L", help="CSV column with the label (one per id)")
    user.add_argument("--value-cols", metavar="a,b,c", help="CSV measured columns (default: all others)")
    user.add_argument("--npz", metavar="PATH", help=".npz file with arrays X (n, channels, steps) and y")
    user.add_argument(
        "--time-channel",
        type=_time_channel,
        metavar="C",
        help="time channel of the --npz data (an int, or 'none'); default: the file's time_channel",
    )
    physio = parser.add_argument_group("PhysioNet 2012 (with --dataset physionet2012)")
    physio.add_argument(
        "--data-home",
        metavar="DIR",
        help="folder whose physionet2012/ subfolder holds the files (default: the loader's, "
        "fetch_physionet2012's data_home)",
    )
    physio.add_argument(
        "--splits", type=_split_list, metavar="1,2,3", help="published splits to run (default: all five)"
    )


def _add_run_arguments(parser):
    run = parser.add_argument_group("comparison")
    run.add_argument("--cv", type=_positive_int, help="stratified folds of the built-in run (default 5)")
    run.add_argument(
        "--max-epochs",
        type=_positive_int,
        help=f"training epochs of every network (default: {CLI_MAX_EPOCHS} on the built-in run; "
        "the estimators' own default on physionet2012)",
    )
    run.add_argument("--random-state", type=int, default=0, help="seed of the folds and the models (default 0)")
    run.add_argument(
        "--n-jobs",
        type=int,
        help="parallel fits over folds x models of the built-in run (default 1; physionet2012 runs one fit at a time)",
    )
    run.add_argument(
        "--n-threads",
        type=_positive_int,
        help="torch threads per fit (default: 1 on the built-in run, robust when other processes share "
        "the cores, always 1 with --n-jobs other than 1; torch's default on physionet2012)",
    )
    run.add_argument(
        "--models",
        metavar="A,B",
        help="comma-separated subset of: " + ", ".join(default_models()) + f", or peers ({', '.join(PEERS)}); "
        "default: the first seven, and gbt too on physionet2012",
    )
    run.add_argument(
        "--peers",
        metavar="NAME",
        default="",
        help=f"peers to add: {', '.join(PEERS)} (gbt: summary statistics into gradient-boosted trees)",
    )


def _add_output_arguments(parser):
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output-dir",
        "--output",
        dest="output_dir",
        help="where to write results (default compare_results, or compare_results/physionet2012); the files "
        "a comparison writes that an earlier run left there are removed first, nothing else",
    )
    out.add_argument("--no-plots", action="store_true", help="skip the figures")
    out.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 progress (default), 2 also per-epoch lines")


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="mrmoe-compare",
        description=(
            "Comparison of MR-MoE with the LNN, MoE and LSTM baselines and its ablations (AUROC, AUPRC, "
            "paired tests), with figures. By default cross-validated on the built-in multi-rate dataset "
            "(or on --csv / --npz data); with --dataset physionet2012 on the five published splits of "
            "PhysioNet 2012, beside the published results."
        ),
    )
    _add_data_arguments(parser)
    _add_run_arguments(parser)
    _add_output_arguments(parser)
    return parser


#: Options that describe a --csv or --npz file, by the file option they go with.
_FILE_OPTIONS = {"csv": ("id_col", "time_col", "label_col", "value_cols"), "npz": ("time_channel",)}


def _flags(names):
    return ", ".join(f"--{name.replace('_', '-')}" for name in names)


def _resolve_defaults(args, parser):
    """Check the options against the dataset and fill in the dataset's defaults."""
    for source, options in _FILE_OPTIONS.items():
        given = [name for name in options if getattr(args, name) is not None]
        if given and getattr(args, source) is None:
            parser.error(f"{_flags(given)} go(es) with --{source}, which is not given")
    unknown = [name for name in _split_names(args.peers) if _peer_key(name) is None]
    if unknown:  # before the data are read (PhysioNet's take seconds)
        parser.error(f"Unknown peer {unknown[0]!r}; available peers: {', '.join(PEERS)}.")
    builtin = args.dataset == "builtin"
    if builtin:
        generated = [name for name in ("n_samples", "n_timesteps", "n_classes") if getattr(args, name) is not None]
        if generated and (args.csv or args.npz):
            parser.error(f"{_flags(generated)} go(es) with the built-in dataset, not with --csv or --npz data")
        for name, default in _BUILTIN_ONLY.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        for option in ("data_home", "splits"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')} goes with --dataset physionet2012")
        args.max_epochs = args.max_epochs or CLI_MAX_EPOCHS
        args.n_threads = args.n_threads or 1
        args.output_dir = args.output_dir or "compare_results"
        return
    given = [name for name in _BUILTIN_ONLY if getattr(args, name) is not None]
    given += [name for name in ("csv", "npz", "time_channel") if getattr(args, name) is not None]
    if given:
        parser.error(f"{_flags(given)} do(es) not apply to --dataset physionet2012 (its published splits are fixed)")
    args.output_dir = args.output_dir or os.path.join("compare_results", "physionet2012")


def _check_output_dir(path, parser):
    """Fail before any fitting where the results could not be written: ``path`` or the
    nearest folder above it that exists must be a writable folder."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        parser.error(f"--output-dir {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        parser.error(f"--output-dir {path}: the folder {existing} is not writable")


def _check_models(names, parser):
    """Fail on unknown ``--models`` names before the data are read, and on a selection of skipped
    peers only, with the reason each was skipped (the comparison reports a skipped peer itself)."""
    skipped = []
    try:
        select_models(names, lambda message, always=False: skipped.append(message))
    except (ValueError, TypeError) as exc:
        parser.error(" ".join([*skipped, str(exc)]))


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


def _check_splits_file(args):
    """Fail on a missing ``splits.csv`` or a ``--splits`` number it lacks, before the data are loaded.

    The published splits are the columns ``split1`` ... ``splitN`` of
    ``splits.csv`` (N = 5 in the Raindrop split list; the loader reads them
    from there, as :func:`~mrmoe_sklearn.datasets.physionet2012_split` does),
    so this reads the file's existence and its header line only; loading the
    data takes seconds and about 2 GB. A header it cannot read is left to the
    loader, which says what is wrong with the file.
    """
    from ..datasets._physionet import _SPLITS_FILE, _SUBFOLDER, _split_count, get_data_home

    folder = os.path.join(get_data_home(args.data_home), _SUBFOLDER)
    path = os.path.join(folder, _SPLITS_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"No {_SPLITS_FILE} in {folder}: the published splits (RecordID,split1..split5 with train/val/test, "
            "the Raindrop split list) are read from it. It is not on PhysioNet and never downloaded: put it "
            "into the physionet2012/ folder of --data-home."
        )
    try:
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return
    n_splits = _split_count(header)
    if n_splits is None:
        return
    beyond = [k for k in args.splits or () if k > n_splits]
    if beyond:
        raise ValueError(
            f"--splits {','.join(map(str, beyond))}: {path} holds the published splits 1 to {n_splits} "
            f"(split1..split{n_splits})."
        )


def _load_physionet(args):
    """The PhysioNet 2012 Bunch and the split table of the chosen splits."""
    try:
        from ..datasets import fetch_physionet2012
    except ImportError as exc:
        raise ValueError(
            f"--dataset physionet2012 needs mrmoe_sklearn.datasets.fetch_physionet2012, which this "
            f"installation lacks ({exc})."
        ) from exc
    _check_splits_file(args)  # before the load: seconds and about 2 GB
    kwargs = {"verbose": bool(args.verbose)}
    if args.data_home is not None:
        kwargs["data_home"] = args.data_home
    bunch = fetch_physionet2012(**kwargs)
    if bunch.splits is None:
        raise ValueError(
            "The PhysioNet 2012 data has no splits.csv (RecordID,split1..split5): put it into the "
            "physionet2012/ folder of --data-home."
        )
    columns = [f"split{k}" for k in args.splits] if args.splits else list(bunch.splits.columns)
    missing = [c for c in columns if c not in bunch.splits.columns]
    if missing:
        raise ValueError(f"No {', '.join(missing)} in splits.csv; it has {', '.join(bunch.splits.columns)}.")
    return bunch, bunch.splits[columns]


def _run_builtin(args, parser):
    """The cross-validated comparison of the command line; returns the result and the fitting seconds."""
    models = args.models or None
    if models:
        _check_models(models, parser)
    try:
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
    print(
        f"Cross-validated comparison: {len(result.folds)} folds, {len(y)} samples, "
        f"{len(result.classes)} classes, max_epochs={args.max_epochs}, random_state={args.random_state}"
    )
    print(format_table(result.summary))
    print(
        f"d = mean over folds of {result.reference} minus the model; p = paired t-test; "
        f"wins = folds where {result.reference} scored higher."
    )
    return result, time.perf_counter() - start, write_results, save_figures


def _run_physionet(args, parser):
    """The PhysioNet 2012 comparison on the published splits; returns like :func:`_run_builtin`."""
    models = args.models or ",".join(PHYSIONET_MODELS)
    _check_models(models, parser)
    try:
        bunch, splits = _load_physionet(args)
    except (ValueError, TypeError, OSError) as exc:
        parser.error(str(exc))
    X = bunch.data
    if args.verbose:
        print(
            f"Data: PhysioNet 2012, X {X.shape}, {int(bunch.target.sum())} deaths, splits {', '.join(splits.columns)}",
            file=sys.stderr,
            flush=True,
        )
    start = time.perf_counter()
    try:
        result = compare_on_splits(
            X,
            bunch.target,
            splits,
            models=models,
            ids=bunch.record_ids,
            time_channel=bunch.time_channel,
            random_state=args.random_state,
            verbose=args.verbose,
            peers=args.peers,
            max_epochs=args.max_epochs,
            channel_names=bunch.feature_names,
            n_threads=args.n_threads,
        )
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - start
    epochs = args.max_epochs or "each estimator's default"
    threads = args.n_threads or "torch's default"
    settings = (
        f"{len(bunch.target)} records, splits {', '.join(result.splits)}, max_epochs: {epochs}, n_threads: "
        f"{threads}, random_state={args.random_state}, {elapsed:.0f} s of fitting"
    )
    print(f"PhysioNet 2012 (P12), published splits: {settings}")
    print(format_table(result.summary))
    print(f"\nBeside the published results ({PUBLISHED_P12['citation']}; {PUBLISHED_P12['note']}):")
    print(format_published_table(published_table(result.summary)))

    def write(result, output_dir):
        return write_split_results(
            result,
            output_dir,
            title="PhysioNet 2012 (P12) in-hospital mortality, published splits",
            published=PUBLISHED_P12,
            notes=f"Run: {settings}.",
        )

    return result, elapsed, write, save_split_figures


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

    Notes
    -----
    Before it writes, a run removes from the output folder the files that a
    comparison writes there (the tables and the PNG figures, by name) left by
    an earlier run, so that a figure this run does not draw (``--no-plots``,
    no MR-MoE) cannot pass for one of its own. Nothing else in the folder is
    touched.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    _resolve_defaults(args, parser)
    _check_output_dir(args.output_dir, parser)
    run = _run_physionet if args.dataset == "physionet2012" else _run_builtin
    result, elapsed, write, draw = run(args, parser)
    try:
        # the files of an earlier run, figures this run may not draw included, cannot pass for this run's
        removed = _remove_outputs(args.output_dir)
        written = write(result, args.output_dir)
    except OSError as exc:
        parser.error(f"--output-dir {args.output_dir}: the results could not be written ({exc})")
    if not args.no_plots:
        try:
            written += draw(result, args.output_dir)
        except ImportError as exc:
            print(f"Note: figures skipped. {exc}")
    names = [os.path.basename(p) for p in written]
    print(f"Wrote {', '.join(names)} to {args.output_dir} ({elapsed:.0f}s of fitting).")
    stale = [name for name in removed if name not in names]
    if stale:
        print(f"Removed {', '.join(stale)} of an earlier run from {args.output_dir} (not written by this run).")
    return 0
