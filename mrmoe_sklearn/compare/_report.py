"""What a comparison reports: the result object, the summary table and its files and figures.

:class:`ComparisonResult` holds everything a cross-validated comparison
produced; :func:`format_table` renders its summary; :func:`write_results` and
:func:`save_figures` write the tables and the PNG figures.
"""

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._peers import REFERENCE


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
    from .. import inspection

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
