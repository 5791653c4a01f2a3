"""
Quickstart
==========

Fit MR-MoE on the built-in multi-rate dataset and score it.

The built-in dataset (:func:`mrmoe_sklearn.datasets.make_multirate_classification`)
holds irregularly sampled multivariate series, channels first, with the time
stamps in channel 0 (hence ``time_channel=0``) and missing values as NaN.
The held-out scores are drawn with :func:`mrmoe_sklearn.inspection.plot_roc_pr`
(matplotlib, the ``plot`` extra).

Run it with ``python examples/quickstart.py``.
"""

from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mrmoe_sklearn import MRMoEClassifier
from mrmoe_sklearn.datasets import make_multirate_classification
from mrmoe_sklearn.inspection import plot_roc_pr

# %%
# The whole example is one function; its parameters shrink it (the test suite
# runs it on 60 series of 16 steps).


def main(n_samples=600, n_timesteps=96, max_epochs=15, random_state=0):
    """Fit MRMoEClassifier on a train split and score the test split.

    Parameters
    ----------
    n_samples : int, default=600
        Series to generate.
    n_timesteps : int, default=96
        Steps per series.
    max_epochs : int, default=15
        Training epochs.
    random_state : int, default=0
        Seed of the data, the split and the model.

    Returns
    -------
    scores : dict
        ``{"auroc": float, "auprc": float}`` on the held-out quarter.
    """
    X, y = make_multirate_classification(n_samples=n_samples, n_timesteps=n_timesteps, random_state=random_state)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)
    # One torch thread: robust when other processes share the cores.
    clf = MRMoEClassifier(time_channel=0, max_epochs=max_epochs, n_threads=1, random_state=random_state)
    clf.fit(X_train, y_train)
    proba = clf.predict_proba(X_test)[:, 1]
    scores = {
        "auroc": float(roc_auc_score(y_test, proba)),
        "auprc": float(average_precision_score(y_test, proba)),
    }
    print(f"MR-MoE on {len(y_test)} held-out series: AUROC {scores['auroc']:.3f}, AUPRC {scores['auprc']:.3f}")
    print("Feature importances (mean feature attention):", clf.feature_importances_.round(3))
    plot_roc_pr(y_test, {"MR-MoE": proba})
    return scores


# %%
# Run it: the scores, the feature importances and the held-out ROC and
# precision-recall curves.

if __name__ == "__main__":
    main()
