"""
Grid search in a Pipeline
=========================

Grid search over MR-MoE's size inside a scikit-learn Pipeline.

The explicit :class:`~mrmoe_sklearn.TimeSeriesScaler` step standardises each
channel (NaN-aware, leaving the time channel untouched) before the classifier;
``GridSearchCV`` clones the pipeline for every candidate and fold, which works
because the estimators keep their constructor free of logic. The figure shows
each candidate's cross-validated ROC AUC.

Run it with ``python examples/grid_search.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from mrmoe_sklearn import MRMoEClassifier, TimeSeriesScaler
from mrmoe_sklearn.datasets import make_multirate_classification

# %%
# The search is one function; its parameters shrink it (the test suite runs a
# 2-candidate grid for one epoch).


def main(n_samples=300, n_timesteps=64, max_epochs=8, cv=3, n_experts=(2, 4), hidden_size=(8, 16), random_state=0):
    """Search ``n_experts`` and ``hidden_size`` by cross-validated ROC AUC.

    Parameters
    ----------
    n_samples : int, default=300
        Series to generate.
    n_timesteps : int, default=64
        Steps per series.
    max_epochs : int, default=8
        Training epochs of every fit.
    cv : int, default=3
        Stratified folds of the search.
    n_experts, hidden_size : sequence of int
        The grid.
    random_state : int, default=0
        Seed of the data, the folds and the model.

    Returns
    -------
    best_params : dict
        ``GridSearchCV.best_params_`` (keys ``clf__n_experts``, ``clf__hidden_size``).
    best_score : float
        ``GridSearchCV.best_score_`` (mean ROC AUC over the folds).
    """
    X, y = make_multirate_classification(n_samples=n_samples, n_timesteps=n_timesteps, random_state=random_state)
    pipe = Pipeline(
        [
            ("scale", TimeSeriesScaler(time_channel=0)),
            # One torch thread per fit: robust when other processes share the cores.
            (
                "clf",
                MRMoEClassifier(time_channel=0, max_epochs=max_epochs, n_threads=1, random_state=random_state),
            ),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"clf__n_experts": list(n_experts), "clf__hidden_size": list(hidden_size)},
        scoring="roc_auc",
        cv=StratifiedKFold(cv, shuffle=True, random_state=random_state),
    )
    search.fit(X, y)
    for params, mean, std in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], search.cv_results_["std_test_score"]
    ):
        print(f"{params}: ROC AUC {mean:.3f} +- {std:.3f}")
    print(f"best: {search.best_params_} (ROC AUC {search.best_score_:.3f})")
    plot_search(search.cv_results_)
    return search.best_params_, float(search.best_score_)


def plot_search(cv_results):
    """Mean and standard deviation of the folds' ROC AUC of each candidate."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    labels = [f"{p['clf__n_experts']} experts\n{p['clf__hidden_size']} units" for p in cv_results["params"]]
    positions = np.arange(len(labels))
    ax.bar(positions, cv_results["mean_test_score"], yerr=cv_results["std_test_score"], capsize=3)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("ROC AUC (mean ± std over folds)")
    ax.set_title("GridSearchCV over MR-MoE's size")
    fig.tight_layout()
    return ax


# %%
# Run it: the score of every candidate, the best one, and the same as a figure.

if __name__ == "__main__":
    main()
