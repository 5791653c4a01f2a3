"""What a comparison reports: the result objects, the tables, their files and figures.

:class:`ComparisonResult` holds everything a cross-validated comparison
produced, :class:`SplitComparisonResult` what a comparison on fixed
train/validation/test splits produced; :func:`format_table` renders either's
summary; :func:`published_table` sets measured scores beside the published
ones (:data:`PUBLISHED_P12`); :func:`write_results`,
:func:`write_split_results`, :func:`save_figures` and
:func:`save_split_figures` write the tables and the PNG figures.
"""

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import validate_params

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
class _Summarised:
    """What both results share: the reference's name and the table as text."""

    @property
    def reference(self):
        """Name of the model the others were compared against."""
        return self.summary.attrs.get("reference")

    def __str__(self):
        return format_table(self.summary)


@dataclass
class ComparisonResult(_Summarised):
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


@dataclass
class SplitComparisonResult(_Summarised):
    """Everything a comparison on fixed train/validation/test splits produced.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model (index ``model``), as :class:`ComparisonResult`'s
        but over the splits: ``auroc_mean``, ``auroc_std``, ``auprc_mean``,
        ``auprc_std`` (mean and sample standard deviation over the splits'
        test parts), ``fit_seconds`` (mean per split), ``n_splits``, and the
        paired comparison with the reference (MR-MoE) over the splits:
        ``auroc_diff``, ``auroc_pvalue``, ``auroc_wins`` and the same for
        AUPRC. ``summary.attrs["reference"]`` names the reference and
        ``summary.attrs["unit"]`` is ``"split"``.
    split_scores : pandas.DataFrame
        One row per model and split: ``model``, ``split`` (its name), ``auroc``,
        ``auprc`` (on the test part), ``fit_seconds``, ``val_used`` (how the
        validation part reached the model: ``"fit"``, ``"last step"`` or
        ``"no"``), ``n_iter`` (iterations kept: the best validation epoch of a
        network that monitored one, else its epochs run; a gradient boosting's
        ``n_iter_``; NaN when unknown), ``n_train``, ``n_val``, ``n_test``.
    test_proba : dict
        Model name -> dict split name -> class scores on that split's test part
        (n_test, n_classes), columns following ``classes``.
    y : ndarray of shape (n_samples,)
        True labels of all samples.
    classes : ndarray of shape (n_classes,)
        Class labels in column order.
    parts : dict
        Split name -> ``(train, val, test)`` row indices.
    histories : dict
        Model name -> list (one per split) of training losses per epoch, or
        None for models without a history.
    estimators : dict
        Model name -> list of the fitted estimators, one per split.
    feature_importances : ndarray of shape (n_splits, n_features) or None
        The reference's ``feature_importances_`` of each split.
    feature_names : list of str or None
        Names of the features (time channel excluded), when known.
    """

    summary: pd.DataFrame
    split_scores: pd.DataFrame
    test_proba: dict
    y: np.ndarray
    classes: np.ndarray
    parts: dict
    histories: dict = field(default_factory=dict)
    estimators: dict = field(default_factory=dict)
    feature_importances: np.ndarray = None
    feature_names: list = None

    @property
    def splits(self):
        """Names of the splits, in the order run."""
        return list(self.parts)


#: The constraint on an ``output_dir`` argument.
_OUTPUT_DIR = [str, os.PathLike]


def _summarise(fold_scores, names, reference, unit="fold"):
    """Per-model mean and std over the ``unit`` column (folds or splits), and the paired comparison."""
    rows = []
    ref = fold_scores[fold_scores.model == reference].sort_values(unit) if reference else None
    for name in names:
        part = fold_scores[fold_scores.model == name].sort_values(unit)
        row = {
            "model": name,
            "auroc_mean": part.auroc.mean(),
            "auroc_std": part.auroc.std(ddof=1) if len(part) > 1 else np.nan,
            "auprc_mean": part.auprc.mean(),
            "auprc_std": part.auprc.std(ddof=1) if len(part) > 1 else np.nan,
            "fit_seconds": part.fit_seconds.mean(),
            f"n_{unit}s": len(part),
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
    summary.attrs["unit"] = unit
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
    unit = summary.attrs.get("unit", "fold")
    header = [
        "model",
        "AUROC",
        "AUPRC",
        f"fit s/{unit}",
        f"dAUROC vs {reference}",
        "p",
        "wins",
        f"dAUPRC vs {reference}",
        "p",
        "wins",
    ]
    rows = []
    for name, r in summary.iterrows():
        n = int(r[f"n_{unit}s"])
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


def _render(header, rows, markdown):
    """Aligned plain text, or a Markdown pipe table (``+-`` becomes ``±``)."""
    if markdown:
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


@validate_params({"summary": [pd.DataFrame], "markdown": ["boolean"]}, prefer_skip_nested_validation=True)
def format_table(summary, markdown=False):
    """Render a comparison summary as a plain-text or Markdown table.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``ComparisonResult.summary`` or ``SplitComparisonResult.summary``.
    markdown : bool, default=False
        Markdown (pipe table) instead of aligned plain text.

    Returns
    -------
    table : str
        AUROC and AUPRC as mean +- std over folds (or splits), mean fit
        seconds per fold (split), and for every model but the reference the
        mean difference reference minus model, the paired t-test p-value and
        the folds (splits) the reference won.
    """
    header, rows = _table_cells(summary)
    if markdown:
        header = [h.replace("dAUROC", "ΔAUROC").replace("dAUPRC", "ΔAUPRC") for h in header]
    return _render(header, rows, markdown)


# ---------------------------------------------------------- published figures
#: Published scores on PhysioNet 2012 (P12) under the protocol of
#: :func:`~mrmoe_sklearn.compare.compare_on_splits` with the same five splits.
PUBLISHED_P12 = {
    "citation": (
        'Li et al., "Time Series as Images: Vision Transformer for Irregularly Sampled Time Series", '
        "NeurIPS 2023, Table 2, P12"
    ),
    "short": "Li et al. 2023, Table 2",
    "note": "mean ± std over the same 5 splits (Raindrop's, Zhang et al. 2022), AUROC / AUPRC in %",
    # model: (AUROC mean, AUROC std, AUPRC mean, AUPRC std), in %
    "scores": {
        "ViTST": (85.1, 0.8, 51.1, 4.1),
        "DGM²-O": (84.4, 1.6, 47.3, 3.6),
        "mTAND": (84.2, 0.8, 48.2, 3.4),
        "Transformer": (83.3, 0.7, 47.9, 3.6),
        "Raindrop": (82.8, 1.7, 44.0, 3.0),
        "IP-Net": (82.6, 1.4, 47.6, 3.1),
        "GRU-D": (81.9, 2.1, 46.1, 4.7),
        "SeFT": (73.9, 2.5, 31.1, 4.1),
    },
}

_PUBLISHED_COLUMNS = ["auroc_mean", "auroc_std", "auprc_mean", "auprc_std", "n_splits", "source"]


@validate_params({"summary": [pd.DataFrame, None], "published": [dict]}, prefer_skip_nested_validation=True)
def published_table(summary=None, published=PUBLISHED_P12):
    """Measured scores beside published ones, in percent.

    Parameters
    ----------
    summary : pandas.DataFrame or None, default=None
        ``SplitComparisonResult.summary`` (scores as fractions); its models come
        first, marked ``"measured"``. None: the published rows only.
    published : dict, default=PUBLISHED_P12
        ``{"short": str, "scores": {model: (auroc_mean, auroc_std,
        auprc_mean, auprc_std)}}`` in percent, as :data:`PUBLISHED_P12`.

    Returns
    -------
    table : pandas.DataFrame
        Index ``model``; columns ``auroc_mean``, ``auroc_std``, ``auprc_mean``,
        ``auprc_std`` (percent), ``n_splits`` (the measured models' splits;
        NA for published rows) and ``source`` (``"measured"`` or the
        publication).
    """
    rows = []
    if summary is not None:
        for name, r in summary.iterrows():
            scores = [100 * float(r[c]) for c in _PUBLISHED_COLUMNS[:4]]
            rows.append([name, *scores, int(r.get("n_splits", r.get("n_folds"))), "measured"])
    for name, scores in published["scores"].items():
        rows.append([name, *scores, pd.NA, published["short"]])
    table = pd.DataFrame(rows, columns=["model"] + _PUBLISHED_COLUMNS).set_index("model")
    table["n_splits"] = table["n_splits"].astype("Int64")
    return table


@validate_params({"table": [pd.DataFrame], "markdown": ["boolean"]}, prefer_skip_nested_validation=True)
def format_published_table(table, markdown=False):
    """Render :func:`published_table` as plain text or Markdown.

    Parameters
    ----------
    table : pandas.DataFrame
        The result of :func:`published_table`.
    markdown : bool, default=False
        Markdown (pipe table) instead of aligned plain text.

    Returns
    -------
    text : str
    """
    header = ["model", "AUROC (%)", "AUPRC (%)", "source"]
    rows = []
    for name, r in table.iterrows():
        n = 0 if pd.isna(r.n_splits) else int(r.n_splits)
        source = r.source if r.source != "measured" else f"measured here ({n} split{'s' if n != 1 else ''})"
        rows.append(
            [
                str(name),
                f"{r.auroc_mean:.1f} +- {_fmt(r.auroc_std, '.1f') or 'nan'}",
                f"{r.auprc_mean:.1f} +- {_fmt(r.auprc_std, '.1f') or 'nan'}",
                source,
            ]
        )
    return _render(header, rows, markdown)


# --------------------------------------------------------------------- outputs
@validate_params({"result": [ComparisonResult], "output_dir": _OUTPUT_DIR}, prefer_skip_nested_validation=True)
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


@validate_params(
    {
        "result": [SplitComparisonResult],
        "output_dir": _OUTPUT_DIR,
        "title": [str, None],
        "published": [dict, None],
        "notes": [str, None],
    },
    prefer_skip_nested_validation=True,
)
def write_split_results(result, output_dir, *, title=None, published=None, notes=None):
    """Write ``results.csv``, ``results.md``, ``split_scores.csv`` (and ``published.csv``).

    Parameters
    ----------
    result : SplitComparisonResult
    output_dir : str or path-like
        Created if needed.
    title : str or None, default=None
        Heading of ``results.md``; None: "Comparison on N train/validation/test splits".
    published : dict or None, default=None
        Published scores to set beside the measured ones (e.g.
        :data:`PUBLISHED_P12`); then ``results.md`` holds that table too
        with the citation, and ``published.csv`` is :func:`published_table`.
    notes : str or None, default=None
        A paragraph added to ``results.md`` after the first table (the run's
        settings, say).

    Returns
    -------
    paths : list of str
        The files written.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, name) for name in ("results.csv", "split_scores.csv", "results.md")]
    result.summary.to_csv(paths[0])
    result.split_scores.to_csv(paths[1], index=False)
    with open(paths[2], "w", encoding="utf-8") as fh:
        fh.write(f"# {title or f'Comparison on {len(result.splits)} train/validation/test splits'}\n\n")
        fh.write(format_table(result.summary, markdown=True))
        fh.write(
            f"\nSplits: {', '.join(result.splits)}. Every model fitted on a split's train part; what it "
            "chooses (epochs, trees) chosen on the val part where its fit takes one (`val_used` in "
            "split_scores.csv); the test part scored once. AUROC and AUPRC: mean ± sample standard "
            f"deviation over the splits. Δ: mean over splits of {result.reference} minus the model "
            f"(positive favours {result.reference}); p: paired t-test over the splits; wins: splits where "
            f"{result.reference} scored higher.\n"
        )
        if notes:
            fh.write(f"\n{notes}\n")
        if published is not None:
            table = published_table(result.summary, published)
            fh.write(f"\n## Beside the published results\n\n{format_published_table(table, markdown=True)}")
            fh.write(f"\nPublished: {published['citation']} ({published['note']}).\n")
            paths.append(os.path.join(output_dir, "published.csv"))
            table.to_csv(paths[-1])
    return paths


#: Every file the comparison writes into its output folder (tables, then figures); a run of the
#: command line removes these, and only these, before writing its own (:func:`_remove_outputs`).
_OUTPUT_FILES = (
    "results.csv",
    "results.md",
    "fold_scores.csv",
    "split_scores.csv",
    "published.csv",
    "roc_pr_curves.png",
    "training_curves.png",
    "gate_weights.png",
    "feature_importances.png",
)


def _remove_outputs(output_dir):
    """Remove the files of ``_OUTPUT_FILES`` that an earlier run left in ``output_dir``.

    So that a figure a run does not draw (``--no-plots``, no gate weights
    without MR-MoE) cannot be taken for one of its own. Only those names,
    and only regular files: nothing else in the folder, no folder, and no
    symbolic link (nor what it points to) is touched. A missing folder is
    no error.

    Returns
    -------
    removed : list of str
        The names removed.
    """
    removed = []
    for name in _OUTPUT_FILES:
        path = os.path.join(output_dir, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            removed.append(name)
    return removed


def _figure_writer(output_dir):
    """matplotlib's ``Figure``, :mod:`~mrmoe_sklearn.inspection`, and ``save(fig, filename)``.

    Figures are made without :mod:`matplotlib.pyplot` (so no global backend is
    touched) and rendered by the Agg canvas; ``save`` appends each path
    written to ``save.paths``.
    """
    from .. import inspection

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(inspection._PLOT_EXTRA_MESSAGE.format(what="Drawing the figures")) from exc

    os.makedirs(output_dir, exist_ok=True)

    def save(fig, filename):
        FigureCanvasAgg(fig)
        fig.tight_layout()
        path = os.path.join(output_dir, filename)
        fig.savefig(path, dpi=110)
        save.paths.append(path)

    save.paths = []
    return Figure, inspection, save


def _draw_common(
    Figure, inspection, save, *, y, probas, classes, histories, which, importances, names, reference, unit
):
    """ROC/PR curves, the first fold's (split's) training curves and the feature importances."""
    fig = Figure(figsize=(11.5, 4.8))
    inspection.plot_roc_pr(y, probas, classes=classes, axes=fig.subplots(1, 2))
    save(fig, "roc_pr_curves.png")

    curves = {name: h[0] for name, h in histories.items() if h is not None and h[0] is not None}
    if curves:
        fig = Figure(figsize=(7, 4.5))
        ax = inspection.plot_training_curves(curves, ax=fig.subplots())
        ax.set_title(f"Training curves ({which})")
        save(fig, "training_curves.png")

    if importances is not None:
        fig = Figure(figsize=(max(7, 0.28 * importances.shape[1] + 2), 4.5))
        ax = inspection.plot_feature_importances(importances, names=names, ax=fig.subplots())
        ax.set_title(f"{reference} feature importances (mean and std over {len(importances)} {unit}s)")
        save(fig, "feature_importances.png")


@validate_params({"result": [ComparisonResult], "output_dir": _OUTPUT_DIR}, prefer_skip_nested_validation=True)
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
    Figure, inspection, save = _figure_writer(output_dir)
    _draw_common(
        Figure,
        inspection,
        save,
        y=result.y,
        probas=result.oof_proba,
        classes=result.classes,
        histories=result.histories,
        which="fold 0",
        importances=result.feature_importances,
        names=result.feature_names,
        reference=result.reference,
        unit="fold",
    )
    if result.explanation is not None:
        fig = Figure(figsize=(7, 4.5))
        ax = inspection.plot_gate_weights(result.explanation, result.y, ax=fig.subplots(), classes=result.classes)
        ax.set_title(f"{result.reference} gate weights by class (out of fold)")
        save(fig, "gate_weights.png")
    return save.paths


@validate_params({"result": [SplitComparisonResult], "output_dir": _OUTPUT_DIR}, prefer_skip_nested_validation=True)
def save_split_figures(result, output_dir):
    """Draw the figures of a comparison on fixed splits as PNG files.

    Writes ``roc_pr_curves.png`` (ROC and PR curves of every model on the
    first split's test part), ``training_curves.png`` (training loss per
    epoch, first split) and, when the reference (MR-MoE) has
    ``feature_importances_``, ``feature_importances.png`` (mean and spread
    over the splits, labelled with the channel names). No explanations are
    computed (on PhysioNet 2012 they would take longer than the figure is
    worth).

    Parameters
    ----------
    result : SplitComparisonResult
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
    Figure, inspection, save = _figure_writer(output_dir)
    first = result.splits[0]
    test = result.parts[first][2]
    _draw_common(
        Figure,
        inspection,
        save,
        y=result.y[test],
        probas={name: by_split[first] for name, by_split in result.test_proba.items()},
        classes=result.classes,
        histories=result.histories,
        which=first,
        importances=result.feature_importances,
        names=result.feature_names,
        reference=result.reference,
        unit="split",
    )
    return save.paths
