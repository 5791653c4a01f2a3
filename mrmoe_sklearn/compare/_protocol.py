"""How a comparison fits and scores: folds or fixed splits, one fit, one score.

:func:`compare_models` fits every model on the same seeded stratified folds
and scores the out-of-fold predictions. :func:`compare_on_splits` follows a
published protocol instead: fixed train/validation/test splits, every model
fitted on a split's train part, anything it chooses chosen on the val part,
the test part scored once. Every fit goes through :func:`_fit_timed` (which
hands the validation part to the estimators that take one) and every score
through :func:`_score_model`.
"""

import inspect
import sys
import time
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, validate_params

from .._params import POSITIVE_INT, TIME_CHANNEL
from ._io import _feature_names, _n_channels, _plain
from ._peers import MODELS, REFERENCE, peer_models, select_models
from ._report import ComparisonResult, SplitComparisonResult, _summarise


# ------------------------------------------------------------------ one model
def _scores(y_true, proba, classes):
    """AUROC and AUPRC (binary: of classes[1]; multiclass: macro one-vs-rest)."""
    if len(classes) == 2:
        truth = (np.asarray(y_true) == classes[1]).astype(int)
        return roc_auc_score(truth, proba[:, 1]), average_precision_score(truth, proba[:, 1])
    normalised = proba / proba.sum(axis=1, keepdims=True)
    auroc = roc_auc_score(y_true, normalised, multi_class="ovr", average="macro", labels=classes)
    auprc = average_precision_score(label_binarize(y_true, classes=classes), proba, average="macro")
    return auroc, auprc


def _take(X, idx):
    if isinstance(X, np.ndarray):
        return X[idx]
    return [X[i] for i in idx]


def _configure(estimator, *, random_state, time_channel, max_epochs, n_threads, est_verbose):
    """Clone ``estimator`` and set the shared parameters it has.

    ``random_state``, ``time_channel``, ``max_epochs`` (when not None) and
    ``n_threads`` (when not None; also as ``n_jobs``) are set wherever the
    estimator has them, in nested estimators too (a Pipeline's steps:
    ``summary__time_channel``, ``gbt__random_state``); ``verbose`` only at
    the top level.
    """
    est = clone(estimator)
    updates = {"random_state": random_state, "time_channel": time_channel}
    if max_epochs is not None:
        updates["max_epochs"] = max_epochs
    if n_threads is not None:
        updates["n_threads"] = n_threads
        updates["n_jobs"] = n_threads
    chosen = {}
    for key in est.get_params(deep=True):
        name = key.rsplit("__", 1)[-1]
        if name in updates:
            chosen[key] = updates[name]
    top = est.get_params(deep=False)
    if est_verbose is not None and "verbose" in top:
        # a Pipeline's verbose must be a bool
        chosen["verbose"] = bool(est_verbose) if isinstance(top["verbose"], bool) else est_verbose
    est.set_params(**chosen)
    return est


def _accepts_val(estimator):
    """Whether ``estimator.fit`` takes ``X_val`` and ``y_val`` by name (``**kwargs`` does not count)
    and would use them: not where the estimator's ``early_stopping`` is False (this package's
    estimators and scikit-learn's gradient boosting refuse validation data then)."""
    if getattr(estimator, "early_stopping", None) is False:
        return False
    try:
        params = inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return all(name in params and params[name].kind in named for name in ("X_val", "y_val"))


def _fit_timed(name, estimator, X_train, y_train, X_val=None, y_val=None):
    """Fit the model ``name`` on the training part, handing it the validation part where it takes one.

    The one place where a comparison fits a model. With ``X_val`` given:
    an estimator whose ``fit`` takes ``X_val`` and ``y_val`` gets them (the
    package's estimators, scikit-learn's HistGradientBoosting since 1.7); a
    :class:`~sklearn.pipeline.Pipeline` whose last step takes them is fitted
    step by step, the last step getting ``X_val`` transformed by the fitted
    steps before it; any other estimator is fitted on the training part
    alone.

    A bad parameter of the estimator is reported as a ``ValueError`` naming
    the model (scikit-learn's ``InvalidParameterError`` would be renamed
    after the comparison function by its ``validate_params``, as if it were
    the comparison's own parameter).

    Returns
    -------
    fit_seconds : float
    val_used : str
        ``"fit"``, ``"last step"`` or ``"no"`` (also when ``X_val`` is None).
    """
    try:
        return _fit_timed_unchecked(estimator, X_train, y_train, X_val, y_val)
    except InvalidParameterError as exc:
        raise ValueError(f"Model {name!r}: {exc}") from exc


def _fit_timed_unchecked(estimator, X_train, y_train, X_val, y_val):
    start = time.perf_counter()
    if X_val is None:
        estimator.fit(X_train, y_train)
        val_used = "no"
    elif _accepts_val(estimator):
        estimator.fit(X_train, y_train, X_val=X_val, y_val=y_val)
        val_used = "fit"
    elif isinstance(estimator, Pipeline) and _accepts_val(estimator.steps[-1][1]):
        head = estimator[:-1]  # the same step objects: fitting it fits the Pipeline's steps
        Xt_train = head.fit_transform(X_train, y_train)
        estimator.steps = head.steps + estimator.steps[-1:]  # where a memory made fitted copies
        estimator.steps[-1][1].fit(Xt_train, y_train, X_val=head.transform(X_val), y_val=y_val)
        val_used = "last step"
    else:
        estimator.fit(X_train, y_train)
        val_used = "no"
    return time.perf_counter() - start, val_used


def _score_model(estimator, X_test, y_test, classes):
    """Score the held-out part once: class scores (columns = ``classes``), AUROC, AUPRC."""
    proba = np.asarray(estimator.predict_proba(X_test), dtype=float)
    est_classes = getattr(estimator, "classes_", classes)
    if not np.array_equal(np.asarray(est_classes), classes):
        full = np.zeros((len(proba), len(classes)))
        for j, c in enumerate(est_classes):
            full[:, np.searchsorted(classes, c)] = proba[:, j]
        proba = full
    auroc, auprc = _scores(y_test, proba, classes)
    return proba, float(auroc), float(auprc)


def _train_losses(estimator):
    """Training loss per epoch from the estimator's ``history_``, or None."""
    history = getattr(estimator, "history_", None)
    if history is None:
        return None
    try:
        return np.asarray(history[:, "train_loss"], dtype=float)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _explanation(estimator, X_test):
    details = estimator.explain(X_test)
    return {
        "gate_weights": np.asarray(details["gate_weights"]),
        "feature_weights": np.asarray(details["feature_weights"]),
        "rates": tuple(details.get("rates", ())),
    }


def _fit_one(name, fold, estimator, X, y, train, test, classes, explain):
    """Fit one model on one fold; return its scores and what the figures need."""
    X_test = _take(X, test)
    fit_seconds, _ = _fit_timed(name, estimator, _take(X, train), y[train])
    proba, auroc, auprc = _score_model(estimator, X_test, y[test], classes)
    return {
        "model": name,
        "fold": fold,
        "auroc": auroc,
        "auprc": auprc,
        "fit_seconds": fit_seconds,
        "test": np.asarray(test),
        "proba": proba,
        "train_loss": _train_losses(estimator),
        "explanation": _explanation(estimator, X_test) if explain and hasattr(estimator, "explain") else None,
        "importances": getattr(estimator, "feature_importances_", None),
        "estimator": estimator,
    }


# ---------------------------------------------------------------- shared checks
def _progress(verbose):
    """A ``say(message, always=False)`` printing timed progress lines to stderr."""
    t0 = time.perf_counter()

    def say(message, always=False):
        if verbose or always:
            print(f"[compare {time.perf_counter() - t0:7.1f}s] {message}", file=sys.stderr, flush=True)

    return say


#: Constraints shared by :func:`compare_models` and :func:`compare_on_splits`.
_SHARED_CONSTRAINTS = {
    "X": ["array-like"],
    "y": ["array-like"],
    "models": MODELS,
    "time_channel": TIME_CHANNEL,
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "peers": [str, "array-like"],
    "max_epochs": [POSITIVE_INT, None],
    "channel_names": ["array-like", None],
    "n_threads": [POSITIVE_INT, None],
}


def _as_samples(X, y):
    """``X`` as an array or list of samples and ``y`` as an array of the same length."""
    y = np.asarray(y)
    if not isinstance(X, np.ndarray) and not isinstance(X, list):
        X = np.asarray(X)
    n_samples = X.shape[0] if isinstance(X, np.ndarray) else len(X)
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(y)}.")
    return X, y, n_samples


def _classes(y, caller):
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"{caller} needs at least 2 classes in y, got {len(classes)}.")
    return classes, counts


def _configure_all(chosen, *, verbose, **shared):
    """Every chosen model configured with the shared parameters (see :func:`_configure`)."""
    est_verbose = 1 if verbose >= 2 else 0
    return {name: _configure(est, est_verbose=est_verbose, **shared) for name, est in chosen.items()}


# ------------------------------------------------------------- cross-validation
def _make_folds(cv, y, counts, classes, random_state):
    """Train and test indices of every fold."""
    if isinstance(cv, Integral):
        if counts.min() < cv:
            raise ValueError(
                f"cv={cv} folds need at least {cv} samples of every class; class "
                f"{_plain(classes[np.argmin(counts)])!r} has {int(counts.min())}."
            )
        splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    else:  # a splitter (the constraint on cv)
        splitter = cv
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(np.zeros((len(y), 1)), y)]


def _run_fits(tasks, n_jobs, say, n_folds):
    """Run :func:`_fit_one` on every task's arguments, serially or with joblib."""

    def report(res):
        say(
            f"{res['model']} fold {res['fold'] + 1}/{n_folds}: AUROC {res['auroc']:.3f}, "
            f"AUPRC {res['auprc']:.3f}, fit {res['fit_seconds']:.1f}s"
        )
        return res

    if n_jobs == 1:
        results = []
        for args in tasks:
            say(f"{args[0]} fold {args[1] + 1}/{n_folds}: fitting")
            results.append(report(_fit_one(*args)))
        return results
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    return [report(res) for res in parallel(delayed(_fit_one)(*args) for args in tasks)]


def _out_of_fold_explanation(explained, folds, n_samples):
    """Each sample's explanation by the model of the fold it was tested in, or None."""
    if not explained or any(e is None for e in explained):
        return None
    first = explained[0]
    gate = np.zeros((n_samples, first["gate_weights"].shape[1]))
    feat = np.zeros((n_samples, first["feature_weights"].shape[1]))
    for (_, test), e in zip(folds, explained):
        gate[test] = e["gate_weights"]
        feat[test] = e["feature_weights"]
    return {"gate_weights": gate, "feature_weights": feat, "rates": first["rates"]}


def _collect(results, names, reference, folds, n_samples, n_classes):
    """Gather the fits' results by model: out-of-fold scores, histories, estimators, explanations."""
    n_folds = len(folds)
    oof = {name: np.full((n_samples, n_classes), np.nan) for name in names}
    histories = {name: [None] * n_folds for name in names}
    estimators = {name: [None] * n_folds for name in names}
    importances = [None] * n_folds
    explained = [None] * n_folds
    for r in results:
        oof[r["model"]][r["test"]] = r["proba"]
        histories[r["model"]][r["fold"]] = r["train_loss"]
        estimators[r["model"]][r["fold"]] = r["estimator"]
        if r["model"] == reference:
            importances[r["fold"]] = r["importances"]
            explained[r["fold"]] = r["explanation"]
    for name in names:
        if all(h is None for h in histories[name]):
            histories[name] = None
    feature_importances = None
    if all(i is not None for i in importances):
        feature_importances = np.vstack([np.asarray(i, dtype=float) for i in importances])
    return {
        "oof_proba": oof,
        "histories": histories,
        "estimators": estimators,
        "explanation": _out_of_fold_explanation(explained, folds, n_samples),
        "feature_importances": feature_importances,
    }


# Long only by its docstring (about 60 lines of parameters); the steps are the helpers above.
# prefer_skip_nested_validation=False: the estimators it is given must still check their parameters.
@validate_params(
    {
        **_SHARED_CONSTRAINTS,
        "cv": [Interval(Integral, 2, None, closed="left"), HasMethods("split")],
        "n_jobs": [Interval(Integral, None, -1, closed="right"), Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=False,
)
def compare_models(
    X,
    y,
    *,
    models=None,
    cv=5,
    time_channel=None,
    random_state=0,
    n_jobs=1,
    verbose=1,
    peers=(),
    max_epochs=None,
    channel_names=None,
    n_threads=1,
):
    """Cross-validated comparison of MR-MoE with baselines and ablations.

    Every model is a :func:`~sklearn.base.clone` of an estimator instance,
    given the same ``random_state`` and ``time_channel`` (and ``max_epochs``
    when set), and is fitted and scored on the same seeded
    :class:`~sklearn.model_selection.StratifiedKFold` folds.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_channels, n_timesteps) or list
        Channels first (aeon's ``numpy3D``), NaN for missing values; see
        :mod:`mrmoe_sklearn._data` for every accepted layout.
    y : array-like of shape (n_samples,)
        Class labels, two or more classes.
    models : dict, sequence of str, str or None, default=None
        None compares :func:`default_models`. A sequence of names (or a
        comma-separated string) selects some of them; case and punctuation are
        ignored, so ``"mrmoe"`` and ``"single-rate"`` work. A dict maps
        display names to estimator instances of your own.
    cv : int or cross-validation splitter, default=5
        Number of stratified folds (shuffled, seeded by ``random_state``), or
        a splitter with a ``split(X, y)`` method.
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps, passed to every model.
    random_state : int or None, default=0
        Seeds the folds and every model.
    n_jobs : int, default=1
        Parallel jobs (joblib) over the folds x models; with ``n_jobs != 1``
        every estimator is limited to one torch thread.
    verbose : int, default=1
        0 silent; 1 prints a progress line per model and fold (to stderr);
        2 also the estimators' per-epoch lines.
    peers : sequence of str, default=()
        Peers to add (see :func:`peer_models`): ``"minirocket"`` (aeon's
        ``MiniRocketClassifier``; skipped with a message when aeon is
        missing) and ``"gbt"`` (summary statistics into gradient-boosted
        trees, :func:`summary_gbt`).
    max_epochs : int or None, default=None
        Training epochs of every model; None keeps each estimator's own.
    channel_names : sequence of str or None, default=None
        Names of the channels of ``X`` (or of the measured channels only), used
        to label the feature importances.
    n_threads : int or None, default=1
        Torch threads of every fit with ``n_jobs=1`` (None keeps each
        estimator's own setting); with ``n_jobs != 1`` it is always 1. The
        networks are small: on a 2-core machine one thread measured 4 to 7
        times faster per epoch than two, and far faster when other processes
        keep the cores busy.

    Returns
    -------
    result : ComparisonResult
        ``result.summary`` is the comparison table (a DataFrame), with the
        per-fold scores, out-of-fold scores, training histories, fitted
        estimators and MR-MoE's explanations alongside.

    Raises
    ------
    ValueError
        Unknown model or peer name, fewer than two classes, or a class with
        fewer samples than folds.
    """
    verbose = int(verbose)
    say = _progress(verbose)
    chosen = select_models(models, say)
    chosen.update(peer_models(peers, say))
    names = list(chosen)
    X, y, n_samples = _as_samples(X, y)
    classes, counts = _classes(y, "compare_models")
    folds = _make_folds(cv, y, counts, classes, random_state)
    feature_names = _feature_names(channel_names, _n_channels(X), time_channel)
    reference = REFERENCE if REFERENCE in chosen else names[0]
    if n_jobs != 1:
        n_threads = 1
    configured = _configure_all(
        chosen,
        verbose=verbose,
        random_state=random_state,
        time_channel=time_channel,
        max_epochs=max_epochs,
        n_threads=n_threads,
    )
    say(
        f"{len(names)} model(s) x {len(folds)} folds on {n_samples} samples "
        f"({len(classes)} classes){f', n_jobs={n_jobs}' if n_jobs != 1 else ''}"
    )
    tasks = [
        (name, k, clone(configured[name]), X, y, train, test, classes, name == reference)
        for k, (train, test) in enumerate(folds)
        for name in names
    ]
    results = _run_fits(tasks, n_jobs, say, len(folds))
    say(f"done: {len(results)} fits")
    fold_scores = pd.DataFrame([{k: r[k] for k in ("model", "fold", "auroc", "auprc", "fit_seconds")} for r in results])
    return ComparisonResult(
        summary=_summarise(fold_scores, names, reference),
        fold_scores=fold_scores,
        y=y,
        classes=classes,
        folds=folds,
        feature_names=feature_names,
        **_collect(results, names, reference, folds, n_samples, len(classes)),
    )


# ------------------------------------------------------ fixed train/val/test splits
_PARTS = ("train", "val", "test")


def _parts_from_table(table, n_samples, ids):
    """Split name -> (train, val, test) row indices, from a table of ``train``/``val``/``test``."""
    if ids is not None:
        ids = np.asarray(ids)
        if len(ids) != n_samples:
            raise ValueError(f"ids has {len(ids)} entries but X has {n_samples} samples.")
        table = table.reindex(pd.Index(ids))
    elif len(table) != n_samples:
        raise ValueError(
            f"The split table has {len(table)} rows but X has {n_samples} samples; pass ids= to align it by its index."
        )
    parts = {}
    for column in table.columns:
        values = table[column].to_numpy(dtype=object)
        given = values[pd.notna(values)]
        unknown = sorted({str(v) for v in given} - set(_PARTS))
        if unknown:
            raise ValueError(f"Split {column!r} holds {unknown}; expected 'train', 'val', 'test' or missing.")
        parts[str(column)] = tuple(np.flatnonzero(values == part) for part in _PARTS)
    return parts


def _check_parts(splits, n_samples, ids):
    """The ``splits`` argument of :func:`compare_on_splits` as split name -> (train, val, test)."""
    if isinstance(splits, pd.DataFrame):
        parts = _parts_from_table(splits, n_samples, ids)
    else:  # a dict (the constraint on splits)
        parts = {str(k): tuple(np.asarray(p, dtype=np.intp).ravel() for p in v) for k, v in splits.items()}
    if not parts:
        raise ValueError("splits is empty: give at least one split.")
    for name, part in parts.items():
        if len(part) != 3:
            raise ValueError(f"Split {name!r} must give (train, val, test) indices, got {len(part)} parts.")
        joined = np.concatenate(part)
        if len(joined) and (joined.min() < 0 or joined.max() >= n_samples):
            raise ValueError(f"Split {name!r} has indices outside 0..{n_samples - 1}.")
        if len(np.unique(joined)) != len(joined):
            raise ValueError(f"Split {name!r}: its train, val and test parts overlap.")
        if not len(part[0]) or not len(part[2]):
            raise ValueError(f"Split {name!r} has an empty train or test part.")
    return parts


def _iterations_kept(estimator):
    """Iterations a fit kept: a boosting's ``n_iter_``, a network's best validation epoch or its epochs."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if hasattr(final, "n_iter_"):
        return float(np.max(final.n_iter_))
    history = getattr(final, "history_", None)
    if not history:
        return np.nan
    try:
        best = [k for k, epoch in enumerate(history) if epoch.get("valid_loss_best")]
    except (AttributeError, TypeError):
        best = []
    return float(best[-1] + 1 if best else len(history))


def _fit_split(name, split, estimator, data, classes):
    """Fit one model on one split's train part (val where it takes one); score the test part once."""
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = data
    with_val = len(y_val) > 0
    fit_seconds, val_used = _fit_timed(
        name, estimator, X_train, y_train, X_val if with_val else None, y_val if with_val else None
    )
    proba, auroc, auprc = _score_model(estimator, X_test, y_test, classes)
    row = {
        "model": name,
        "split": split,
        "auroc": auroc,
        "auprc": auprc,
        "fit_seconds": fit_seconds,
        "val_used": val_used,
        "n_iter": _iterations_kept(estimator),
        "n_train": len(y_train),
        "n_val": len(y_val),
        "n_test": len(y_test),
    }
    return row, proba


def _run_splits(configured, X, y, parts, classes, say):
    """Fit and score every configured model on every split, one fit at a time."""
    names = list(configured)
    rows, test_proba = [], {name: {} for name in names}
    estimators, histories = {name: [] for name in names}, {name: [] for name in names}
    for split, split_parts in parts.items():
        data = [(_take(X, idx), y[idx]) for idx in split_parts]  # sliced once per split
        for name in names:
            say(f"{name} {split}: fitting")
            estimator = clone(configured[name])
            row, test_proba[name][split] = _fit_split(name, split, estimator, data, classes)
            say(
                f"{name} {split}: AUROC {row['auroc']:.3f}, AUPRC {row['auprc']:.3f}, "
                f"fit {row['fit_seconds']:.1f}s, val used: {row['val_used']}"
            )
            rows.append(row)
            estimators[name].append(estimator)
            histories[name].append(_train_losses(estimator))
        del data
    return rows, test_proba, estimators, histories


# Long only by its docstring (about 70 lines of parameters); the steps are the helpers above.
# prefer_skip_nested_validation=False: the estimators it is given must still check their parameters.
@validate_params(
    {**_SHARED_CONSTRAINTS, "splits": [pd.DataFrame, dict], "ids": ["array-like", None]},
    prefer_skip_nested_validation=False,
)
def compare_on_splits(
    X,
    y,
    splits,
    *,
    models=None,
    ids=None,
    time_channel=None,
    random_state=0,
    verbose=1,
    peers=(),
    max_epochs=None,
    channel_names=None,
    n_threads=None,
):
    """Compare models on fixed train/validation/test splits (a published protocol).

    For every split, every model (a :func:`~sklearn.base.clone` given the
    same ``random_state`` and ``time_channel``) is fitted on the split's
    ``train`` part only. Whatever a model chooses during its fit (epochs by
    early stopping, a boosting's iterations) is chosen on the split's ``val``
    part: an estimator whose ``fit`` takes the keyword arguments ``X_val``
    and ``y_val`` gets them (the package's estimators, scikit-learn's
    HistGradientBoosting); a Pipeline whose last step takes them is fitted
    step by step, the last step getting the val part transformed by the
    fitted steps before it; other estimators never see the val part. The
    ``test`` part is scored exactly once (AUROC, AUPRC). One fit runs at a
    time.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_channels, n_timesteps) or list
        Channels first, NaN for missing values (see :mod:`mrmoe_sklearn._data`).
    y : array-like of shape (n_samples,)
        Class labels, two or more classes.
    splits : pandas.DataFrame or dict
        A DataFrame with one column per split (its name) holding ``"train"``,
        ``"val"``, ``"test"`` or NaN (in no part) per sample: one row per
        sample of ``X`` in order, or indexed by ``ids`` (as the ``splits`` of
        :func:`~mrmoe_sklearn.datasets.fetch_physionet2012`). Or a dict
        mapping each split's name to ``(train, val, test)`` row indices.
    models : dict, sequence of str, str or None, default=None
        As in :func:`compare_models`: None compares :func:`default_models`;
        names select some of them or peers (``"gbt"``); a dict maps display
        names to estimator instances of your own.
    ids : array-like of shape (n_samples,) or None, default=None
        The id of every sample of ``X``; a ``splits`` DataFrame is aligned by
        its index to them (ids it lacks are in no part).
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps, passed to every model.
    random_state : int or None, default=0
        Seeds every model.
    verbose : int, default=1
        0 silent; 1 a progress line per model and split (stderr); 2 also the
        estimators' per-epoch lines.
    peers : sequence of str, default=()
        Peers to add (see :func:`peer_models`).
    max_epochs : int or None, default=None
        Training epochs of every network; None keeps each estimator's default.
    channel_names : sequence of str or None, default=None
        Names of the channels of ``X`` (or of the measured ones only), for the
        feature importances.
    n_threads : int or None, default=None
        Torch threads of every fit; None keeps each estimator's own setting
        (the estimators' default: torch's).

    Returns
    -------
    result : SplitComparisonResult
        ``result.summary``: mean ± std over the splits and the paired
        comparison with MR-MoE; ``result.split_scores``: every model's scores,
        fit seconds and use of the val part per split.

    Raises
    ------
    ValueError
        Unknown model or peer name, fewer than two classes, a malformed split
        (unknown part name, overlapping parts, empty train or test part,
        indices out of range).
    """
    verbose = int(verbose)
    say = _progress(verbose)
    chosen = select_models(models, say)
    chosen.update(peer_models(peers, say))
    names = list(chosen)
    X, y, n_samples = _as_samples(X, y)
    classes, _ = _classes(y, "compare_on_splits")
    parts = _check_parts(splits, n_samples, ids)
    reference = REFERENCE if REFERENCE in chosen else names[0]
    configured = _configure_all(
        chosen,
        verbose=verbose,
        random_state=random_state,
        time_channel=time_channel,
        max_epochs=max_epochs,
        n_threads=n_threads,
    )
    say(f"{len(names)} model(s) x {len(parts)} split(s) on {n_samples} samples ({len(classes)} classes)")
    rows, test_proba, estimators, histories = _run_splits(configured, X, y, parts, classes, say)
    split_scores = pd.DataFrame(rows)
    importances = [getattr(e, "feature_importances_", None) for e in estimators[reference]]
    return SplitComparisonResult(
        summary=_summarise(split_scores, names, reference, unit="split"),
        split_scores=split_scores,
        test_proba=test_proba,
        y=y,
        classes=classes,
        parts=parts,
        histories={k: (None if all(h is None for h in v) else v) for k, v in histories.items()},
        estimators=estimators,
        feature_importances=(
            np.vstack([np.asarray(i, dtype=float) for i in importances])
            if all(i is not None for i in importances)
            else None
        ),
        feature_names=_feature_names(channel_names, _n_channels(X), time_channel),
    )
