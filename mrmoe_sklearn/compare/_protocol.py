"""How a comparison fits and scores: folds, one fit, one score, the cross-validated run.

:func:`compare_models` fits every model on the same seeded stratified folds
and scores the out-of-fold predictions. Each fit goes through
:func:`_fit_one`, which times the fit, scores the held-out part once (AUROC,
AUPRC) and keeps what the report and the figures need.
"""

import sys
import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import label_binarize

from ._io import _feature_names, _n_channels
from ._peers import REFERENCE, peer_models, select_models
from ._report import ComparisonResult, _summarise


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
    """Clone ``estimator`` and set the shared parameters it has."""
    est = clone(estimator)
    params = est.get_params(deep=False)
    updates = {"random_state": random_state, "time_channel": time_channel}
    if max_epochs is not None:
        updates["max_epochs"] = max_epochs
    if n_threads is not None:
        updates["n_threads"] = n_threads
        updates["n_jobs"] = n_threads
    if est_verbose is not None:
        updates["verbose"] = est_verbose
    est.set_params(**{k: v for k, v in updates.items() if k in params})
    return est


def _fit_timed(estimator, X_train, y_train):
    """Fit ``estimator``; return the seconds it took."""
    start = time.perf_counter()
    estimator.fit(X_train, y_train)
    return time.perf_counter() - start


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
    fit_seconds = _fit_timed(estimator, _take(X, train), y[train])
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


def _check_positive_or_none(name, value):
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
    ):
        raise ValueError(f"{name} must be a positive int or None, got {value!r}.")


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
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise ValueError(f"cv must be >= 2, got {cv}.")
        if counts.min() < cv:
            raise ValueError(
                f"cv={cv} folds need at least {cv} samples of every class; class "
                f"{classes[np.argmin(counts)]!r} has {counts.min()}."
            )
        splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    elif hasattr(cv, "split"):
        splitter = cv
    else:
        raise TypeError(f"cv must be an int or a splitter with a split method, got {cv!r}.")
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
        Models from other libraries to add: ``"minirocket"`` (aeon's
        ``MiniRocketClassifier``; skipped with a message when aeon is missing).
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
    verbose = verbose or 0
    say = _progress(verbose)
    chosen = select_models(models)
    chosen.update(peer_models(peers, say))
    names = list(chosen)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero int, got {n_jobs!r}.")
    _check_positive_or_none("max_epochs", max_epochs)
    X, y, n_samples = _as_samples(X, y)
    classes, counts = _classes(y, "compare_models")
    folds = _make_folds(cv, y, counts, classes, random_state)
    feature_names = _feature_names(channel_names, _n_channels(X), time_channel)
    reference = REFERENCE if REFERENCE in chosen else names[0]
    if n_jobs != 1:
        n_threads = 1
    _check_positive_or_none("n_threads", n_threads)
    configured = _configure_all(
        chosen, verbose=verbose, random_state=random_state, time_channel=time_channel,
        max_epochs=max_epochs, n_threads=n_threads,
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
    fold_scores = pd.DataFrame(
        [{k: r[k] for k in ("model", "fold", "auroc", "auprc", "fit_seconds")} for r in results]
    )
    return ComparisonResult(
        summary=_summarise(fold_scores, names, reference),
        fold_scores=fold_scores,
        y=y,
        classes=classes,
        folds=folds,
        feature_names=feature_names,
        **_collect(results, names, reference, folds, n_samples, len(classes)),
    )
