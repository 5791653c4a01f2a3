"""
Clinical long-format data
=========================

From one row per chart time to a fitted MR-MoE.

ICU data usually comes as a long table: one row per chart time of a stay, with
each variable measured at its own frequency, so most cells are empty. This
example builds such a table synthetically (heart rate about hourly, mean
arterial pressure (MAP) less often, lactate every few hours, at irregular
datetimes), where the outcome depends on each stay's *trends* (rising heart
rate and lactate, falling MAP), not on the levels. :func:`mrmoe_sklearn.to_sequences`
turns it into a channels-first 3D array whose channel 0 holds the hours since
each stay's first chart time, and MR-MoE reads that with ``time_channel=0``.
The figures show one stay's chart as MR-MoE receives it and the fitted model's
feature importances (:func:`mrmoe_sklearn.inspection.plot_feature_importances`).

Run it with ``python examples/clinical_long_format.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mrmoe_sklearn import MRMoEClassifier, to_sequences
from mrmoe_sklearn.inspection import plot_feature_importances

# %%
# A synthetic ICU table
# ---------------------
# One row per chart time; each variable has its own measurement frequency, so
# most cells are empty. The outcome depends on each stay's trends.


def make_icu_table(n_stays=400, random_state=0):
    """Synthetic ICU chart events in long format, and the outcome per stay.

    Parameters
    ----------
    n_stays : int, default=400
        Number of ICU stays.
    random_state : int, default=0
        Seed.

    Returns
    -------
    charts : pandas.DataFrame
        Columns ``stay_id``, ``charttime`` (datetime64), ``heart_rate``,
        ``map``, ``lactate``; one row per chart time, NaN where a variable was
        not measured.
    outcome : pandas.Series
        0/1 outcome indexed by ``stay_id``.
    """
    rng = np.random.default_rng(random_state)
    severity = rng.normal(size=n_stays)  # hidden deterioration, drives the trends
    outcome = (rng.random(n_stays) < 1.0 / (1.0 + np.exp(-(2.0 * severity - 0.3)))).astype(int)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for stay in range(n_stays):
        admit = start + pd.Timedelta(hours=float(rng.uniform(0, 24 * 365)))
        n_charts = int(rng.integers(24, 49))
        gaps = rng.gamma(2.0, 0.5, size=n_charts)  # hours, irregular (mean 1 h)
        hours = np.cumsum(gaps) - gaps[0]
        base_hr, base_map, base_lac = rng.normal(85, 10), rng.normal(78, 8), rng.lognormal(0.2, 0.3)
        s = severity[stay]
        hr = base_hr + (0.6 * s + 0.2 * rng.normal()) * hours + rng.normal(0, 5, n_charts)
        mean_ap = base_map - (0.4 * s + 0.15 * rng.normal()) * hours + rng.normal(0, 4, n_charts)
        lactate = base_lac * np.exp((0.03 * s + 0.01 * rng.normal()) * hours) + rng.normal(0, 0.2, n_charts)
        seen_hr = rng.random(n_charts) < 0.9
        seen_map = rng.random(n_charts) < 0.6
        seen_lac = rng.random(n_charts) < 0.15
        seen_lac[0] = True  # a lactate on admission
        keep = seen_hr | seen_map | seen_lac
        for k in np.flatnonzero(keep):
            rows.append(
                {
                    "stay_id": 1000 + stay,
                    "charttime": (admit + pd.Timedelta(hours=float(hours[k]))).round("min"),
                    "heart_rate": round(float(hr[k]), 0) if seen_hr[k] else np.nan,
                    "map": round(float(mean_ap[k]), 0) if seen_map[k] else np.nan,
                    "lactate": round(float(max(lactate[k], 0.3)), 1) if seen_lac[k] else np.nan,
                }
            )
    charts = pd.DataFrame(rows)
    charts = charts.drop_duplicates(["stay_id", "charttime"]).reset_index(drop=True)
    return charts, pd.Series(outcome, index=1000 + np.arange(n_stays), name="outcome")


# %%
# From the long table to a fitted model
# -------------------------------------
# ``to_sequences`` returns the 3D array (stays, [hours] + variables, steps), the
# stay ids in the array's order (to align the outcome) and the variable names.


def plot_stay(X, names, i=0):
    """Draw stay ``i`` of ``X`` (channel 0: hours) as MR-MoE receives it: NaN where not measured."""
    fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(7.0, 1.6 * len(names) + 0.6))
    hours = X[i, 0]
    for ax, values, name in zip(np.atleast_1d(axes), X[i, 1:], names):
        seen = ~np.isnan(values)
        ax.plot(hours[seen], values[seen], marker="o", markersize=3, linewidth=1)
        ax.set_ylabel(name)
    axes[-1].set_xlabel("hours since the first chart time")
    axes[0].set_title(f"stay {i}: each variable at its own times")
    fig.tight_layout()
    return fig


def main(n_stays=400, max_epochs=15, random_state=0):
    """Build the long table, convert it with ``to_sequences``, fit and score MR-MoE.

    Parameters
    ----------
    n_stays : int, default=400
        Number of ICU stays.
    max_epochs : int, default=15
        Training epochs.
    random_state : int, default=0
        Seed of the data, the split and the model.

    Returns
    -------
    scores : dict
        ``{"auroc": float, "auprc": float}`` on the held-out quarter of the stays.
    """
    charts, outcome = make_icu_table(n_stays, random_state)
    missing = charts[["heart_rate", "map", "lactate"]].isna().mean()
    print(f"{len(charts)} chart rows for {charts.stay_id.nunique()} stays; missing fraction per variable:")
    print(missing.round(2).to_string())

    X, ids, names = to_sequences(charts, "stay_id", "charttime", ["heart_rate", "map", "lactate"], time_unit="h")
    y = outcome.loc[ids].to_numpy()
    print(f"X: {X.shape} (stays, [hours] + {names}, steps); outcome rate {y.mean():.2f}")
    plot_stay(X, names)

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)
    clf = MRMoEClassifier(time_channel=0, max_epochs=max_epochs, n_threads=1, random_state=random_state)
    clf.fit(X_train, y_train)
    proba = clf.predict_proba(X_test)[:, 1]
    scores = {
        "auroc": float(roc_auc_score(y_test, proba)),
        "auprc": float(average_precision_score(y_test, proba)),
    }
    print(f"MR-MoE on {len(y_test)} held-out stays: AUROC {scores['auroc']:.3f}, AUPRC {scores['auprc']:.3f}")
    print("Feature importances:", {n: round(float(w), 3) for n, w in zip(names, clf.feature_importances_)})
    plot_feature_importances(clf.feature_importances_, names=names)
    return scores


# %%
# Run it: the table's missing fractions, the array's shape, one stay's chart,
# the held-out scores and the feature importances.

if __name__ == "__main__":
    main()
