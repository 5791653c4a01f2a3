"""Cross-validated comparison of MR-MoE with its baselines and ablations.

A reduced version of what ``python -m mrmoe_sklearn.compare`` (or the console
script ``mrmoe-compare``) does on the full built-in dataset: every model is
fitted on the same stratified folds and scored by AUROC and AUPRC, and MR-MoE
is compared with each of the others by a paired t-test over the folds.

Run it with ``python examples/compare_models.py``.
"""

from mrmoe_sklearn import make_multirate_classification
from mrmoe_sklearn.compare import compare_models, format_table


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
    return result.summary


if __name__ == "__main__":
    main()
