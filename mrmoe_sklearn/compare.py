"""Cross-validated comparison of MR-MoE with its baselines and ablations.

This is the package's main job: fit every model on the same seeded
:class:`~sklearn.model_selection.StratifiedKFold` folds, score the out-of-fold
predictions by AUROC and AUPRC, compare MR-MoE with each other model over the
folds (mean difference, paired t-test, wins), and draw the figures.

Models compared by default (all with the same ``random_state`` and
``time_channel``):

========================== ======================================================
name                       estimator
========================== ======================================================
MR-MoE                     ``MRMoEClassifier()``
LNN                        ``LNNClassifier()`` (one liquid network)
MoE                        ``MoEClassifier()`` (experts all at rate 1)
LSTM                       ``LSTMClassifier()``
MR-MoE (no feature attn)   ``MRMoEClassifier(feature_attention=False)``
MR-MoE (no temporal attn)  ``MRMoEClassifier(temporal_attention=False)``
MR-MoE (single rate)       ``MRMoEClassifier(rates=(1,), n_experts=4)``
========================== ======================================================

Optional peers from other libraries join the same folds: ``"minirocket"``
(aeon's ``MiniRocketClassifier``, when aeon is installed).

Use it from Python with :func:`compare_models`, or from the command line::

    python -m mrmoe_sklearn.compare              # built-in dataset, figures in compare_results/
    mrmoe-compare --models MR-MoE,LSTM --cv 3 --max-epochs 5
    mrmoe-compare --csv stays.csv --id-col stay_id --time-col charttime --label-col died
    mrmoe-compare --npz data.npz --time-channel 0 --peers minirocket

Run ``mrmoe-compare --help`` for every option.
"""

import argparse
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import label_binarize

from ._data import to_sequences
from .classifier import LNNClassifier, LSTMClassifier, MoEClassifier, MRMoEClassifier
from .datasets import make_multirate_classification

__all__ = [
    "ComparisonResult",
    "compare_models",
    "default_models",
    "format_table",
    "load_long_csv",
    "load_npz",
    "main",
]

#: Name of the model the others are compared against.
REFERENCE = "MR-MoE"

#: Peers from other libraries that ``peers=`` accepts.
PEERS = ("minirocket",)

#: Default number of epochs of the command line (the estimators default to 30);
#: chosen so that the default run finishes in a few minutes on two CPU cores.
CLI_MAX_EPOCHS = 15


def default_models():
    """The models of the default comparison, unfitted.

    Returns
    -------
    models : dict
        Maps each model's display name to an estimator instance, in the
        order of the comparison table: MR-MoE, the baselines LNN, MoE and
        LSTM, then the MR-MoE ablations.
    """
    return {
        "MR-MoE": MRMoEClassifier(),
        "LNN": LNNClassifier(),
        "MoE": MoEClassifier(),
        "LSTM": LSTMClassifier(),
        "MR-MoE (no feature attn)": MRMoEClassifier(feature_attention=False),
        "MR-MoE (no temporal attn)": MRMoEClassifier(temporal_attention=False),
        "MR-MoE (single rate)": MRMoEClassifier(rates=(1,), n_experts=4),
    }


_ALIASES = {
    "nofeatureattn": "MR-MoE (no feature attn)",
    "nofeatureattention": "MR-MoE (no feature attn)",
    "notemporalattn": "MR-MoE (no temporal attn)",
    "notemporalattention": "MR-MoE (no temporal attn)",
    "singlerate": "MR-MoE (single rate)",
}


def _key(name):
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _select_models(models):
    """Resolve the ``models`` argument into an ordered dict name -> estimator."""
    available = default_models()
    if models is None:
        return available
    if isinstance(models, dict):
        if not models:
            raise ValueError("models is empty: name at least one model to compare.")
        for name, est in models.items():
            if not hasattr(est, "fit"):
                raise TypeError(f"models[{name!r}] is not an estimator (it has no fit method).")
        return dict(models)
    if isinstance(models, str):
        models = [m for m in models.split(",")]
    lookup = {_key(n): n for n in available}
    lookup.update({k: v for k, v in _ALIASES.items()})
    chosen = {}
    for raw in models:
        raw = str(raw).strip()
        if not raw:
            continue
        name = lookup.get(_key(raw))
        if name is None:
            raise ValueError(
                f"Unknown model {raw!r}. Available models: {', '.join(available)} "
                "(case and punctuation are ignored; aliases: no-feature-attn, "
                "no-temporal-attn, single-rate)."
            )
        chosen[name] = available[name]
    if not chosen:
        raise ValueError("models is empty: name at least one model to compare.")
    return chosen


# ----------------------------------------------------------------- MiniRocket peer
def impute_for_minirocket(X, time_channel=None):
    """Make a NaN-free, equal-length panel for convolution-based peers.

    Drops the time channel, then per sample and channel carries the last
    observed value forward and fills what is still missing (steps before the
    first observation, or a channel never observed) with 0.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_channels, n_timesteps)
        Channels first, NaN for missing values and padding.
    time_channel : int or None, default=None
        Channel to drop.

    Returns
    -------
    Xi : ndarray of shape (n_samples, n_channels - (time_channel is not None), n_timesteps)
        Float64 without NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim != 3:
        raise ValueError(f"Expected a 3D array (n_samples, n_channels, n_timesteps), got shape {X.shape}.")
    if time_channel is not None:
        X = np.delete(X, time_channel % X.shape[1], axis=1)
    observed = ~np.isnan(X)
    steps = np.arange(X.shape[2])
    last = np.where(observed, steps, 0)
    np.maximum.accumulate(last, axis=2, out=last)
    filled = np.take_along_axis(X, last, axis=2)
    return np.ascontiguousarray(np.nan_to_num(filled, nan=0.0))


def _softmax(scores):
    scores = scores - scores.max(axis=1, keepdims=True)
    out = np.exp(scores)
    return out / out.sum(axis=1, keepdims=True)


class MiniRocketPeer(ClassifierMixin, BaseEstimator):
    """aeon's ``MiniRocketClassifier`` behind this package's input contract.

    The input is imputed with :func:`impute_for_minirocket` (time channel
    dropped, forward fill, then 0). aeon's classifier ends in a
    ``RidgeClassifierCV``, whose ``predict_proba`` is a one-hot vote, useless
    for ROC or PR curves; the scores therefore come from the ridge decision
    values (``decision_function`` of the classifier, or of its fitted
    ``pipeline_``), and ``predict_proba`` only as a last resort.

    Parameters
    ----------
    n_kernels : int, default=10000
        Number of MiniRocket kernels.
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps; dropped before the transform.
    n_jobs : int, default=1
        Threads of the MiniRocket transform.
    random_state : int or None, default=None
        Seed of the transform.

    Attributes
    ----------
    estimator_ : aeon.classification.convolution_based.MiniRocketClassifier
        The fitted aeon classifier.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    """

    def __init__(self, n_kernels=10000, time_channel=None, n_jobs=1, random_state=None):
        self.n_kernels = n_kernels
        self.time_channel = time_channel
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        """Impute ``X`` and fit aeon's MiniRocket classifier.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, n_timesteps)
            Channels first; NaN for missing values.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : MiniRocketPeer
        """
        from aeon.classification.convolution_based import MiniRocketClassifier

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.estimator_ = MiniRocketClassifier(
            n_kernels=self.n_kernels, n_jobs=self.n_jobs, random_state=self.random_state
        )
        self.estimator_.fit(impute_for_minirocket(X, self.time_channel), y)
        return self

    def _decision(self, Xi):
        for owner in (self.estimator_, getattr(self.estimator_, "pipeline_", None)):
            method = getattr(owner, "decision_function", None)
            if callable(method):
                return np.asarray(method(Xi), dtype=float), owner
        return None, None

    def predict_proba(self, X):
        """Scores in [0, 1] per class, monotone in the ridge decision values.

        A logistic (binary) or softmax (multiclass) map of the decision values,
        for ranking metrics; not calibrated probabilities.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, n_timesteps)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        Xi = impute_for_minirocket(X, self.time_channel)
        scores, owner = self._decision(Xi)
        if scores is None:
            return np.asarray(self.estimator_.predict_proba(Xi), dtype=float)
        owner_classes = getattr(owner, "classes_", None)
        if owner_classes is None and hasattr(owner, "steps"):
            owner_classes = getattr(owner.steps[-1][1], "classes_", None)
        if scores.ndim == 1:
            scores = np.column_stack([-scores, scores]) / 2.0
        if owner_classes is not None and not np.array_equal(np.asarray(owner_classes), self.classes_):
            order = [list(np.asarray(owner_classes)).index(c) for c in self.classes_]
            scores = scores[:, order]
        return _softmax(scores)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, n_timesteps)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _peer_models(peers, say):
    """Instantiate the requested peers; skip (with a message) those not installed."""
    if isinstance(peers, str):
        peers = [p for p in peers.split(",") if p.strip()]
    out = {}
    for peer in peers or ():
        key = _key(peer)
        if key != "minirocket":
            raise ValueError(f"Unknown peer {peer!r}; available peers: {', '.join(PEERS)}.")
        try:
            import aeon  # noqa: F401
            from aeon.classification.convolution_based import MiniRocketClassifier  # noqa: F401
        except ImportError:
            say(
                "Skipping peer 'minirocket': it needs aeon, which is not installed "
                '(pip install "mrmoe-sklearn[aeon]" or pip install aeon).',
                always=True,
            )
            continue
        out["MiniRocket (aeon)"] = MiniRocketPeer()
    return out


# ------------------------------------------------------------------------ scoring
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


def _fit_one(name, fold, estimator, X, y, train, test, classes, explain):
    """Fit one model on one fold; return its scores and what the figures need."""
    X_train, X_test = _take(X, train), _take(X, test)
    start = time.perf_counter()
    estimator.fit(X_train, y[train])
    fit_seconds = time.perf_counter() - start
    proba = np.asarray(estimator.predict_proba(X_test), dtype=float)
    est_classes = getattr(estimator, "classes_", classes)
    if not np.array_equal(np.asarray(est_classes), classes):
        full = np.zeros((len(test), len(classes)))
        for j, c in enumerate(est_classes):
            full[:, np.searchsorted(classes, c)] = proba[:, j]
        proba = full
    auroc, auprc = _scores(y[test], proba, classes)
    out = {
        "model": name,
        "fold": fold,
        "auroc": float(auroc),
        "auprc": float(auprc),
        "fit_seconds": fit_seconds,
        "test": np.asarray(test),
        "proba": proba,
        "train_loss": None,
        "explanation": None,
        "importances": getattr(estimator, "feature_importances_", None),
        "estimator": estimator,
    }
    history = getattr(estimator, "history_", None)
    if history is not None:
        try:
            out["train_loss"] = np.asarray(history[:, "train_loss"], dtype=float)
        except (KeyError, IndexError, TypeError, ValueError):
            pass
    if explain and hasattr(estimator, "explain"):
        details = estimator.explain(X_test)
        out["explanation"] = {
            "gate_weights": np.asarray(details["gate_weights"]),
            "feature_weights": np.asarray(details["feature_weights"]),
            "rates": tuple(details.get("rates", ())),
        }
    return out


def _paired(ref, other):
    """Mean difference (ref - other), paired t-test p-value, wins of ref."""
    ref, other = np.asarray(ref, float), np.asarray(other, float)
    diff = ref - other
    p = np.nan
    if len(diff) > 1 and np.ptp(np.round(diff, 12)) > 0:
        from scipy.stats import ttest_rel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(ttest_rel(ref, other).pvalue)
    return float(diff.mean()), p, int((diff > 0).sum())


# ------------------------------------------------------------------------- result
@dataclass
class ComparisonResult:
    """Everything a cross-validated comparison produced.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model (index ``model``), in the order compared, with
        columns ``auroc_mean``, ``auroc_std``, ``auprc_mean``, ``auprc_std``
        (mean and sample standard deviation over the folds), ``fit_seconds``
        (mean per fold), ``n_folds`` and the paired comparison with the
        reference model (MR-MoE): ``auroc_diff`` / ``auprc_diff`` (mean over
        folds of reference minus this model; positive favours the reference),
        ``auroc_pvalue`` / ``auprc_pvalue`` (paired t-test over the folds, NaN
        when undefined) and ``auroc_wins`` / ``auprc_wins`` (folds where the
        reference scored higher). The reference's own row has NaN there.
        ``summary.attrs["reference"]`` names the reference.
    fold_scores : pandas.DataFrame
        One row per model and fold: ``model``, ``fold``, ``auroc``, ``auprc``,
        ``fit_seconds``.
    oof_proba : dict
        Model name -> out-of-fold class scores (n_samples, n_classes), columns
        following ``classes``.
    y : ndarray of shape (n_samples,)
        True labels.
    classes : ndarray of shape (n_classes,)
        Class labels in column order.
    folds : list of (ndarray, ndarray)
        Train and test indices of each fold.
    histories : dict
        Model name -> list (one per fold) of training losses per epoch, or
        None for models without a history.
    estimators : dict
        Model name -> list of the fitted estimators, one per fold.
    explanation : dict or None
        Out-of-fold explanation of the reference model (each sample explained
        by the model of the fold it was tested in): ``gate_weights``
        (n_samples, n_experts), ``feature_weights`` (n_samples, n_features),
        ``rates``. None if the reference has no ``explain``.
    feature_importances : ndarray of shape (n_folds, n_features) or None
        The reference's ``feature_importances_`` of each fold.
    feature_names : list of str or None
        Names of the features (time channel excluded), when known.
    """

    summary: pd.DataFrame
    fold_scores: pd.DataFrame
    oof_proba: dict
    y: np.ndarray
    classes: np.ndarray
    folds: list
    histories: dict = field(default_factory=dict)
    estimators: dict = field(default_factory=dict)
    explanation: dict = None
    feature_importances: np.ndarray = None
    feature_names: list = None

    @property
    def reference(self):
        """Name of the model the others were compared against."""
        return self.summary.attrs.get("reference")

    def __str__(self):
        return format_table(self.summary)


def _summarise(fold_scores, names, reference):
    rows = []
    ref = fold_scores[fold_scores.model == reference].sort_values("fold") if reference else None
    for name in names:
        part = fold_scores[fold_scores.model == name].sort_values("fold")
        row = {
            "model": name,
            "auroc_mean": part.auroc.mean(),
            "auroc_std": part.auroc.std(ddof=1) if len(part) > 1 else np.nan,
            "auprc_mean": part.auprc.mean(),
            "auprc_std": part.auprc.std(ddof=1) if len(part) > 1 else np.nan,
            "fit_seconds": part.fit_seconds.mean(),
            "n_folds": len(part),
        }
        for metric in ("auroc", "auprc"):
            if ref is None or name == reference:
                diff, p, wins = np.nan, np.nan, np.nan
            else:
                diff, p, wins = _paired(ref[metric].to_numpy(), part[metric].to_numpy())
            row[f"{metric}_diff"] = diff
            row[f"{metric}_pvalue"] = p
            row[f"{metric}_wins"] = wins
        rows.append(row)
    summary = pd.DataFrame(rows).set_index("model")
    summary["auroc_wins"] = summary["auroc_wins"].astype("Int64")
    summary["auprc_wins"] = summary["auprc_wins"].astype("Int64")
    summary.attrs["reference"] = reference
    return summary


def _fmt(value, spec):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return format(value, spec)


def _fmt_p(p):
    if p is None or pd.isna(p):
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def _table_cells(summary):
    reference = summary.attrs.get("reference") or REFERENCE
    header = [
        "model",
        "AUROC",
        "AUPRC",
        "fit s/fold",
        f"dAUROC vs {reference}",
        "p",
        "wins",
        f"dAUPRC vs {reference}",
        "p",
        "wins",
    ]
    rows = []
    for name, r in summary.iterrows():
        n = int(r["n_folds"])
        cells = [
            str(name),
            f"{r.auroc_mean:.3f} +- {_fmt(r.auroc_std, '.3f') or 'nan'}",
            f"{r.auprc_mean:.3f} +- {_fmt(r.auprc_std, '.3f') or 'nan'}",
            f"{r.fit_seconds:.2f}",
        ]
        for metric in ("auroc", "auprc"):
            wins = r[f"{metric}_wins"]
            if name == reference or wins is pd.NA or pd.isna(wins):
                cells += ["(ref)" if name == reference else "", "", ""]
            else:
                cells += [
                    f"{round(r[f'{metric}_diff'], 3) + 0.0:+.3f}",
                    _fmt_p(r[f"{metric}_pvalue"]),
                    f"{int(wins)}/{n}",
                ]
        rows.append(cells)
    return header, rows


def format_table(summary, markdown=False):
    """Render a comparison summary as a plain-text or Markdown table.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``ComparisonResult.summary``.
    markdown : bool, default=False
        Markdown (pipe table) instead of aligned plain text.

    Returns
    -------
    table : str
        AUROC and AUPRC as mean +- std over folds, mean fit seconds per fold,
        and for every model but the reference the mean difference reference
        minus model, the paired t-test p-value and the folds the reference
        won.
    """
    header, rows = _table_cells(summary)
    if markdown:
        header = [h.replace("dAUROC", "ΔAUROC").replace("dAUPRC", "ΔAUPRC") for h in header]
        rows = [[c.replace("+-", "±") for c in row] for row in rows]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------- driver
def _feature_names(channel_names, n_channels, time_channel):
    if n_channels is None:
        return None
    keep = [c for c in range(n_channels) if time_channel is None or c != time_channel % n_channels]
    if channel_names is None:
        return [f"ch{c}" for c in keep]
    names = [str(n) for n in channel_names]
    if len(names) == n_channels:
        return [names[c] for c in keep]
    if len(names) == len(keep):
        return names
    raise ValueError(
        f"channel_names has {len(names)} names but X has {n_channels} channels"
        + (f" ({len(keep)} without the time channel)." if time_channel is not None else ".")
    )


def _n_channels(X):
    if isinstance(X, np.ndarray):
        return X.shape[1] if X.ndim == 3 else 1
    first = np.asarray(X[0])
    return first.shape[0] if first.ndim == 2 else 1


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
    if verbose is None:
        verbose = 0
    t0 = time.perf_counter()

    def say(message, always=False):
        if verbose or always:
            print(f"[compare {time.perf_counter() - t0:7.1f}s] {message}", file=sys.stderr, flush=True)

    chosen = _select_models(models)
    for name, est in _peer_models(peers, say).items():
        chosen[name] = est
    names = list(chosen)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero int, got {n_jobs!r}.")
    if max_epochs is not None and (not isinstance(max_epochs, (int, np.integer)) or max_epochs < 1):
        raise ValueError(f"max_epochs must be a positive int or None, got {max_epochs!r}.")

    y = np.asarray(y)
    if not isinstance(X, np.ndarray) and not isinstance(X, list):
        X = np.asarray(X)
    n_samples = X.shape[0] if isinstance(X, np.ndarray) else len(X)
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(y)}.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"compare_models needs at least 2 classes in y, got {len(classes)}.")
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
    folds = [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(np.zeros((n_samples, 1)), y)]
    n_folds = len(folds)
    feature_names = _feature_names(channel_names, _n_channels(X), time_channel)
    reference = REFERENCE if REFERENCE in chosen else names[0]

    if n_jobs != 1:
        n_threads = 1
    elif n_threads is not None and (not isinstance(n_threads, (int, np.integer)) or n_threads < 1):
        raise ValueError(f"n_threads must be a positive int or None, got {n_threads!r}.")
    est_verbose = 1 if verbose >= 2 else 0
    configured = {
        name: _configure(
            est,
            random_state=random_state,
            time_channel=time_channel,
            max_epochs=max_epochs,
            n_threads=n_threads,
            est_verbose=est_verbose,
        )
        for name, est in chosen.items()
    }
    tasks = [(name, k) for k in range(n_folds) for name in names]
    say(
        f"{len(names)} model(s) x {n_folds} folds on {n_samples} samples "
        f"({len(classes)} classes){f', n_jobs={n_jobs}' if n_jobs != 1 else ''}"
    )

    def job(name, k):
        train, test = folds[k]
        return _fit_one(name, k, clone(configured[name]), X, y, train, test, classes, name == reference)

    def report(res):
        say(
            f"{res['model']} fold {res['fold'] + 1}/{n_folds}: AUROC {res['auroc']:.3f}, "
            f"AUPRC {res['auprc']:.3f}, fit {res['fit_seconds']:.1f}s"
        )

    results = []
    if n_jobs == 1:
        for name, k in tasks:
            say(f"{name} fold {k + 1}/{n_folds}: fitting")
            res = job(name, k)
            report(res)
            results.append(res)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
        calls = (
            delayed(_fit_one)(
                name, k, clone(configured[name]), X, y, folds[k][0], folds[k][1], classes, name == reference
            )
            for name, k in tasks
        )
        for res in parallel(calls):
            report(res)
            results.append(res)
    say(f"done: {len(results)} fits")

    fold_scores = pd.DataFrame(
        [{k: r[k] for k in ("model", "fold", "auroc", "auprc", "fit_seconds")} for r in results]
    )
    summary = _summarise(fold_scores, names, reference)

    oof = {name: np.full((n_samples, len(classes)), np.nan) for name in names}
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

    explanation = None
    if all(e is not None for e in explained):
        first = explained[0]
        gate = np.zeros((n_samples, first["gate_weights"].shape[1]))
        feat = np.zeros((n_samples, first["feature_weights"].shape[1]))
        for (_, test), e in zip(folds, explained):
            gate[test] = e["gate_weights"]
            feat[test] = e["feature_weights"]
        explanation = {"gate_weights": gate, "feature_weights": feat, "rates": first["rates"]}
    feature_importances = None
    if all(i is not None for i in importances):
        feature_importances = np.vstack([np.asarray(i, dtype=float) for i in importances])

    return ComparisonResult(
        summary=summary,
        fold_scores=fold_scores,
        oof_proba=oof,
        y=y,
        classes=classes,
        folds=folds,
        histories=histories,
        estimators=estimators,
        explanation=explanation,
        feature_importances=feature_importances,
        feature_names=feature_names,
    )


# --------------------------------------------------------------------- outputs
def write_results(result, output_dir):
    """Write ``results.csv``, ``results.md`` and ``fold_scores.csv``.

    Parameters
    ----------
    result : ComparisonResult
    output_dir : str or path-like
        Created if needed.

    Returns
    -------
    paths : list of str
        The files written.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    csv_path = os.path.join(output_dir, "results.csv")
    result.summary.to_csv(csv_path)
    paths.append(csv_path)
    md_path = os.path.join(output_dir, "results.md")
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write(f"# Cross-validated comparison ({int(result.summary['n_folds'].iloc[0])} folds)\n\n")
        fh.write(format_table(result.summary, markdown=True))
        fh.write(
            "\nAUROC and AUPRC: mean ± sample standard deviation over the folds"
            + (" (macro one-vs-rest)" if len(result.classes) > 2 else "")
            + f". Δ: mean over folds of {result.reference} minus the model (positive favours "
            f"{result.reference}); p: paired t-test over the folds; wins: folds where "
            f"{result.reference} scored higher.\n"
        )
    paths.append(md_path)
    folds_path = os.path.join(output_dir, "fold_scores.csv")
    result.fold_scores.to_csv(folds_path, index=False)
    paths.append(folds_path)
    return paths


def save_figures(result, output_dir):
    """Draw the comparison's figures as PNG files.

    Writes ``roc_pr_curves.png`` (out-of-fold ROC and PR curves of every
    model), ``training_curves.png`` (training loss per epoch, fold 0) and,
    when the reference (MR-MoE) provides them, ``gate_weights.png`` (mean gate
    weight per expert and class, out of fold) and ``feature_importances.png``
    (mean over folds).  Figures are made without :mod:`matplotlib.pyplot`
    (so no global backend is touched) and rendered by the Agg canvas.

    Parameters
    ----------
    result : ComparisonResult
    output_dir : str or path-like
        Created if needed.

    Returns
    -------
    paths : list of str
        The files written.

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message names the ``plot`` extra).
    """
    from . import inspection

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(inspection._PLOT_EXTRA_MESSAGE.format(what="Drawing the figures")) from exc

    os.makedirs(output_dir, exist_ok=True)
    paths = []

    def save(fig, filename):
        FigureCanvasAgg(fig)
        fig.tight_layout()
        path = os.path.join(output_dir, filename)
        fig.savefig(path, dpi=110)
        paths.append(path)

    fig = Figure(figsize=(11.5, 4.8))
    axes = fig.subplots(1, 2)
    inspection.plot_roc_pr(result.y, result.oof_proba, classes=result.classes, axes=axes)
    save(fig, "roc_pr_curves.png")

    curves = {name: h[0] for name, h in result.histories.items() if h is not None and h[0] is not None}
    if curves:
        fig = Figure(figsize=(7, 4.5))
        ax = inspection.plot_training_curves(curves, ax=fig.subplots())
        ax.set_title("Training curves (fold 0)")
        save(fig, "training_curves.png")

    if result.explanation is not None:
        fig = Figure(figsize=(7, 4.5))
        ax = inspection.plot_gate_weights(result.explanation, result.y, ax=fig.subplots(), classes=result.classes)
        ax.set_title(f"{result.reference} gate weights by class (out of fold)")
        save(fig, "gate_weights.png")

    if result.feature_importances is not None:
        fig = Figure(figsize=(7, 4.5))
        inspection.plot_feature_importances(result.feature_importances, names=result.feature_names, ax=fig.subplots())
        save(fig, "feature_importances.png")
    return paths


# -------------------------------------------------------------------- data input
def load_npz(path, time_channel=None):
    """Load ``X``, ``y`` (and optionally ``time_channel``) from a ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        File with arrays ``X`` (n_samples, n_channels, n_timesteps), ``y``
        (n_samples,), optionally a scalar ``time_channel`` (a negative value
        means none) and ``channel_names``.
    time_channel : int, "none" or None, default=None
        Overrides the file's ``time_channel``; ``"none"`` forces no time channel.

    Returns
    -------
    X : ndarray
    y : ndarray
    time_channel : int or None
    channel_names : list of str or None

    Raises
    ------
    ValueError
        If ``X`` or ``y`` is missing.
    """
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("X", "y") if k not in data.files]
        if missing:
            raise ValueError(f"{path}: the .npz file has no array(s) {missing}; it holds {data.files}.")
        X = np.asarray(data["X"], dtype=np.float64)
        y = np.asarray(data["y"])
        file_tc = data["time_channel"] if "time_channel" in data.files else None
        names = [str(n) for n in data["channel_names"]] if "channel_names" in data.files else None
    if isinstance(time_channel, str):
        time_channel = None if time_channel.lower() == "none" else int(time_channel)
    elif time_channel is None and file_tc is not None:
        if np.ndim(file_tc) != 0:
            raise ValueError(f"{path}: time_channel must be a scalar, got shape {np.shape(file_tc)}.")
        value = int(file_tc)
        time_channel = value if value >= 0 else None
    return X, y, time_channel, names


def load_long_csv(path_or_df, id_col, time_col, label_col, value_cols=None):
    """Read a long-format table (one row per observation) into ``X``, ``y``.

    Parameters
    ----------
    path_or_df : str, path-like or pandas.DataFrame
        CSV file or DataFrame with one row per observation time of one
        sequence.
    id_col, time_col, label_col : str
        Columns with the sequence id, the time stamp (numbers, or datetimes
        converted to hours since each sequence's first row) and the label.
    value_cols : sequence of str or None, default=None
        Measured columns; None takes every other column.

    Returns
    -------
    X : ndarray of shape (n_ids, 1 + n_values, n_timesteps)
        Channel 0 holds the time stamps (use ``time_channel=0``).
    y : ndarray of shape (n_ids,)
        Each id's label.
    ids : ndarray of shape (n_ids,)
        The ids, in the order of ``X``.
    channel_names : list of str
        ``[time_col] + value_cols``.

    Raises
    ------
    ValueError
        A column is missing, an id's rows carry different labels, or an id
        has no label.
    """
    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df.copy()
    else:
        df = pd.read_csv(path_or_df)
    for col in (id_col, time_col, label_col):
        if col not in df.columns:
            raise ValueError(f"Column {col!r} not found; the table has columns {list(df.columns)}.")
    if isinstance(value_cols, str):
        value_cols = [c.strip() for c in value_cols.split(",") if c.strip()]
    if value_cols is None:
        value_cols = [c for c in df.columns if c not in (id_col, time_col, label_col)]
    t = df[time_col]
    if not pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_datetime64_any_dtype(t):
        try:
            df[time_col] = pd.to_datetime(t)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Column {time_col!r} holds neither numbers nor datetimes: {exc}") from exc

    labels = df[[id_col, label_col]].dropna(subset=[label_col])
    n_labels = labels.groupby(id_col)[label_col].nunique()
    bad = n_labels[n_labels > 1]
    if len(bad):
        shown = ", ".join(repr(i) for i in bad.index[:5]) + (" ..." if len(bad) > 5 else "")
        raise ValueError(
            f"The label column {label_col!r} disagrees within {len(bad)} id(s) ({shown}); every row of "
            "an id must carry the same label (or none)."
        )
    per_id = labels.groupby(id_col)[label_col].first()
    X, ids, value_cols = to_sequences(df.drop(columns=[label_col]), id_col, time_col, value_cols)
    unlabeled = [i for i in ids if i not in per_id.index]
    if unlabeled:
        raise ValueError(f"{len(unlabeled)} id(s) have no label in {label_col!r}: {unlabeled[:5]!r}.")
    y = per_id.loc[ids].to_numpy()
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    return X, y, ids, [str(time_col)] + [str(c) for c in value_cols]


def _builtin_names(info, n_channels):
    """Channel names of the built-in dataset, with each channel's role."""
    roles = {c: [] for c in range(n_channels)}
    for role in ("slow", "fast", "noise"):
        for c in info[f"{role}_channels"]:
            roles[c].append(role)
    names = [f"ch{c} ({'+'.join(roles[c])})" if roles[c] else f"ch{c}" for c in range(n_channels)]
    names[info["time_channel"]] = "time"
    return names


# ------------------------------------------------------------------------- CLI
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
        models = _select_models(args.models) if args.models else None
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


if __name__ == "__main__":
    sys.exit(main())
