"""Plotting helpers for fitted models and model comparisons.

The functions draw with matplotlib, an optional dependency of the package
(``pip install "mrmoe-sklearn[plot]"``); matplotlib is imported only when a
function is called, so the rest of the package works without it.

Each function draws into the Axes it is given or, without one, into a new
figure made with :func:`matplotlib.pyplot.subplots`, and returns what it drew
into (the Axes, or the Figure for :func:`plot_roc_pr`, which has two panels).

* :func:`plot_gate_weights`: MR-MoE's mean gate weight of each expert per class,
  from the dict returned by ``MRMoEClassifier.explain``.
* :func:`plot_feature_importances`: feature importances, optionally one row per
  cross-validation fold (drawn as mean and standard deviation).
* :func:`plot_training_curves`: training loss per epoch of several models.
* :func:`plot_roc_pr`: ROC and precision-recall curves of several models.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.utils._param_validation import HasMethods, validate_params

__all__ = [
    "plot_gate_weights",
    "plot_feature_importances",
    "plot_training_curves",
    "plot_roc_pr",
]

_PLOT_EXTRA_MESSAGE = (
    "{what} requires matplotlib, an optional dependency of mrmoe-sklearn. Install it "
    'with `pip install "mrmoe-sklearn[plot]"` (the `plot` extra) or `pip install matplotlib`.'
)


def _pyplot(what):
    """Import :mod:`matplotlib.pyplot` lazily with an error naming the ``plot`` extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(_PLOT_EXTRA_MESSAGE.format(what=what)) from exc
    return plt


def _new_axes(what, ncols=1, figsize=(6.0, 4.0)):
    plt = _pyplot(what)
    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    return fig, axes


#: The constraint on an ``ax`` argument: a matplotlib Axes (or anything that draws like one) or None.
_AX = [HasMethods(["plot", "bar"]), None]


def _check_ax(ax, what):
    """Return ``ax`` or a fresh Axes (importing matplotlib either way)."""
    if ax is None:
        _, ax = _new_axes(what)
    else:
        _pyplot(what)
    return ax


@validate_params(
    {"explanation": [Mapping, "array-like"], "y": ["array-like"], "ax": _AX, "classes": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def plot_gate_weights(explanation, y, ax=None, *, classes=None):
    """Bar chart of MR-MoE's mean gate weight of each expert, one bar per class.

    Parameters
    ----------
    explanation : dict or array-like
        The dict returned by ``MRMoEClassifier.explain`` (its
        ``"gate_weights"`` of shape (n_samples, n_experts) is used, and its
        ``"rates"`` label the experts), or the gate weights themselves.
    y : array-like of shape (n_samples,)
        Class label of each sample (true or predicted) to group by.
    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw into; None makes a new figure.
    classes : array-like or None, default=None
        Classes to show, in order; None uses the sorted unique labels of ``y``.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn into.

    Raises
    ------
    ValueError
        If ``explanation`` is a dict without ``"gate_weights"``, the gate
        weights are not 2D or ``y`` has a different length.
    ImportError
        If matplotlib is not installed.
    """
    if isinstance(explanation, Mapping):
        if "gate_weights" not in explanation:
            raise ValueError(
                f"explanation has no 'gate_weights' (it has {sorted(map(str, explanation))}): pass the dict "
                "returned by explain(X) or the gate weights themselves."
            )
        gates = explanation["gate_weights"]
        rates = explanation.get("rates")
    else:
        gates, rates = explanation, None
    gates = np.asarray(gates, dtype=float)
    if gates.ndim != 2:
        raise ValueError(f"gate weights must be 2D (n_samples, n_experts), got shape {gates.shape}.")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != gates.shape[0]:
        raise ValueError(f"y must be 1D with {gates.shape[0]} labels (one per sample), got shape {y.shape}.")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    n_experts = gates.shape[1]
    if rates is None or len(rates) != n_experts:
        rates = [None] * n_experts
    ax = _check_ax(ax, "plot_gate_weights")

    positions = np.arange(n_experts)
    width = 0.8 / max(len(classes), 1)
    for i, label in enumerate(classes):
        rows = y == label
        means = gates[rows].mean(axis=0) if rows.any() else np.full(n_experts, np.nan)
        offset = (i - (len(classes) - 1) / 2) * width
        ax.bar(positions + offset, means, width=width, label=f"class {label} (n={int(rows.sum())})")
    ax.set_xticks(positions)
    ax.set_xticklabels([f"expert {k}" + (f"\nrate {r}" if r is not None else "") for k, r in enumerate(rates)])
    ax.axhline(1.0 / n_experts, color="grey", linestyle="--", linewidth=1, label="uniform")
    ax.set_ylabel("mean gate weight")
    ax.set_title("MR-MoE gate weights by class")
    ax.legend(fontsize="small")
    return ax


@validate_params(
    {"importances": ["array-like"], "names": ["array-like", None], "ax": _AX}, prefer_skip_nested_validation=True
)
def plot_feature_importances(importances, names=None, ax=None):
    """Bar chart of feature importances, with the spread over folds when given.

    Parameters
    ----------
    importances : array-like of shape (n_features,) or (n_folds, n_features)
        Importances, e.g. ``MRMoEClassifier.feature_importances_``; a 2D array
        holds one row per fold and is drawn as the mean with the standard
        deviation as error bars.
    names : sequence of str or None, default=None
        Feature names; None numbers the features.
    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw into; None makes a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn into.

    Raises
    ------
    ValueError
        If ``importances`` is not 1D or 2D or ``names`` has the wrong length.
    ImportError
        If matplotlib is not installed.
    """
    values = np.asarray(importances, dtype=float)
    if values.ndim == 1:
        mean, err = values, None
    elif values.ndim == 2:
        mean = values.mean(axis=0)
        err = values.std(axis=0) if values.shape[0] > 1 else None
    else:
        raise ValueError(f"importances must be 1D (n_features,) or 2D (n_folds, n_features), got shape {values.shape}.")
    n_features = mean.shape[0]
    if names is None:
        names = [f"feature {i}" for i in range(n_features)]
    names = [str(n) for n in names]
    if len(names) != n_features:
        raise ValueError(f"names has {len(names)} entries but there are {n_features} features.")
    ax = _check_ax(ax, "plot_feature_importances")
    positions = np.arange(n_features)
    ax.bar(positions, mean, yerr=err, capsize=3 if err is not None else 0, color="tab:blue")
    if n_features:
        ax.axhline(mean.sum() / n_features, color="grey", linestyle="--", linewidth=1, label="uniform")
        ax.legend(fontsize="small")
    ax.set_xticks(positions)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("importance (mean feature attention)")
    ax.set_title("Feature importances" + (" (mean ± std over folds)" if err is not None else ""))
    return ax


def _loss_curve(history, name):
    """Training losses from a skorch History, a list of epoch dicts or numbers."""
    if hasattr(history, "history_"):  # a fitted estimator
        history = history.history_
    elif hasattr(history, "fit"):
        raise ValueError(
            f"histories[{name!r}] is an estimator without a training history (history_): it is not "
            "fitted, or it is not one of this package's networks."
        )
    try:
        return np.asarray(history[:, "train_loss"], dtype=float)
    except (TypeError, KeyError, IndexError, ValueError):
        pass
    items = list(history)
    if items and isinstance(items[0], Mapping):
        return np.asarray([row["train_loss"] for row in items], dtype=float)
    return np.asarray(items, dtype=float).ravel()


@validate_params({"histories": [Mapping], "ax": _AX}, prefer_skip_nested_validation=True)
def plot_training_curves(histories, ax=None):
    """Training loss per epoch, one line per model.

    Parameters
    ----------
    histories : dict
        Maps a model name to its training history: a skorch ``History``
        (``estimator.history_``), a fitted estimator, a list of per-epoch
        dicts with a ``"train_loss"`` key, or a sequence of losses.
    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw into; None makes a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn into.

    Raises
    ------
    ValueError
        If a value is an estimator without ``history_`` (not fitted).
    ImportError
        If matplotlib is not installed.
    """
    ax = _check_ax(ax, "plot_training_curves")
    for name, history in histories.items():
        losses = _loss_curve(history, name)
        if losses.size:
            ax.plot(np.arange(1, losses.size + 1), losses, marker="o", markersize=3, label=str(name))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title("Training curves")
    if histories:
        ax.legend(fontsize="small")
    return ax


def _as_score_matrix(proba, n_samples, n_classes, name):
    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 1 and n_classes == 2:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape != (n_samples, n_classes):
        raise ValueError(
            f"probas[{name!r}] must have shape ({n_samples}, {n_classes}) (one column per class), got {proba.shape}."
        )
    return proba


# Long only by its docstring (about 35 lines); the code is about 50.
@validate_params(
    {"y": ["array-like"], "probas": [Mapping], "classes": ["array-like", None], "axes": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def plot_roc_pr(y, probas, *, classes=None, axes=None):
    """ROC and precision-recall curves of several models side by side.

    Binary problems use the positive class (the second of ``classes``);
    multiclass problems show the micro-averaged one-vs-rest curve. The legend
    gives each model's area (AUROC, and average precision for the PR curve;
    macro-averaged one-vs-rest for multiclass).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True labels.
    probas : dict
        Maps a model name to its scores: an array (n_samples, n_classes) whose
        columns follow ``classes``; for binary problems also a 1D array of
        positive-class scores.
    classes : array-like or None, default=None
        Class labels in column order; None uses the sorted unique labels of
        ``y``.
    axes : sequence of two matplotlib.axes.Axes or None, default=None
        Axes for the ROC and PR panels; None makes a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding both panels.

    Raises
    ------
    ValueError
        If a score array has the wrong shape, or ``axes`` is not two Axes.
    ImportError
        If matplotlib is not installed.
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )
    from sklearn.preprocessing import label_binarize

    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    if len(classes) < 2:
        raise ValueError(f"ROC and PR curves need at least 2 classes, got {len(classes)}.")
    if axes is None:
        fig, axes = _new_axes("plot_roc_pr", ncols=2, figsize=(11.0, 4.5))
    else:
        _pyplot("plot_roc_pr")
        if len(axes) != 2 or not all(hasattr(ax, "plot") for ax in axes):
            raise ValueError(f"axes must be two matplotlib Axes (ROC, then PR), got {axes!r}.")
        fig = axes[0].figure
    ax_roc, ax_pr = axes[0], axes[1]
    binary = len(classes) == 2
    Y = label_binarize(y, classes=classes)
    if binary:
        Y = Y.ravel()
    for name, proba in probas.items():
        proba = _as_score_matrix(proba, len(y), len(classes), name)
        if binary:
            truth, score = Y, proba[:, 1]
            auroc = roc_auc_score(truth, score)
            auprc = average_precision_score(truth, score)
        else:
            truth, score = Y.ravel(), proba.ravel()
            auroc = roc_auc_score(y, proba / proba.sum(axis=1, keepdims=True), multi_class="ovr", labels=classes)
            auprc = average_precision_score(Y, proba, average="macro")
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        ax_roc.plot(fpr, tpr, label=f"{name} (AUROC {auroc:.3f})")
        ax_pr.step(recall, precision, where="post", label=f"{name} (AP {auprc:.3f})")
    suffix = "" if binary else " (micro-averaged one-vs-rest)"
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_roc.set_title("ROC curves" + suffix)
    prevalence = float(np.mean(Y)) if binary else 1.0 / len(classes)
    ax_pr.axhline(prevalence, color="grey", linestyle="--", linewidth=1)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("Precision-recall curves" + suffix)
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        if probas:
            ax.legend(fontsize="small", loc="lower right" if ax is ax_roc else "lower left")
    return fig
