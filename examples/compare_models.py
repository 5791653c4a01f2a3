"""
Comparing MR-MoE with its baselines
===================================

Cross-validated comparison of MR-MoE with its baselines and ablations.

A reduced version of what ``python -m mrmoe_sklearn.compare`` (or the console
script ``mrmoe-compare``) does on the full built-in dataset: every model is
fitted on the same stratified folds and scored by AUROC and AUPRC, and MR-MoE
is compared with each of the others by a paired t-test over the folds
(:func:`mrmoe_sklearn.compare.compare_models`). The figures show every model's
out-of-fold ROC and precision-recall curves
(:func:`mrmoe_sklearn.inspection.plot_roc_pr`) and MR-MoE's mean gate weight of
each expert per class (:func:`mrmoe_sklearn.inspection.plot_gate_weights`).

Run it with ``python examples/compare_models.py``.
"""

from mrmoe_sklearn.compare import compare_models, format_table
from mrmoe_sklearn.datasets import make_multirate_classification
from mrmoe_sklearn.inspection import plot_gate_weights, plot_roc_pr

# %%
# The comparison is one function; its parameters shrink it (the test suite runs
# 2 folds of 60 series for 2 epochs).


def main(n_samples=240, n_timesteps=48, cv=3, max_epochs=8, models=None, random_state=0, verbose=1):
    """Run the comparison on a reduced built-in dataset and print the table.

    Parameters
    ----------
    n_samples : int, default=240
        Series to generate.
    n_timesteps : int, default=48
        Steps per series.
    cv : int, default=3
        Stratified folds.
    max_epochs : int, default=8
        Training epochs of every model.
    models : sequence of str or None, default=None
        Subset of the models to compare (None: all of them).
    random_state : int, default=0
        Seed of the data, the folds and the models.
    verbose : int, default=1
        Progress lines (to stderr) when positive.

    Returns
    -------
    summary : pandas.DataFrame
        One row per model: AUROC and AUPRC (mean, std), fit seconds and the
        paired comparison with MR-MoE.
    """
    X, y = make_multirate_classification(n_samples=n_samples, n_timesteps=n_timesteps, random_state=random_state)
    result = compare_models(
        X,
        y,
        models=models,
        cv=cv,
        time_channel=0,
        random_state=random_state,
        max_epochs=max_epochs,
        verbose=verbose,
    )
    print(format_table(result.summary))
    plot_roc_pr(result.y, result.oof_proba, classes=result.classes)
    if result.explanation is not None:  # MR-MoE was among the models
        plot_gate_weights(result.explanation, result.y, classes=result.classes)
    return result.summary


# %%
# Run it: the table (mean and standard deviation over the folds, and the paired
# comparison with MR-MoE), then the figures.

if __name__ == "__main__":
    main()
