"""
Explaining predictions
======================

What MR-MoE looked at: its feature attention, each expert's temporal attention
and the gate between the experts.

:meth:`MRMoEClassifier.explain <mrmoe_sklearn.MRMoEClassifier.explain>` returns,
for every sample, the mean feature-attention weight of each measured channel,
each expert's temporal attention mapped back to the input's time steps, and the
gate's weight of each expert (time scale). On the built-in dataset
(:func:`mrmoe_sklearn.datasets.make_multirate_classification`) the channel roles
are known: *slow* channels carry a class-dependent drift, *fast* channels short
bursts, *noise* channels nothing. The figures are drawn with
:mod:`mrmoe_sklearn.inspection` (matplotlib, the ``plot`` extra).

Run it with ``python examples/explanations.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from mrmoe_sklearn import MRMoEClassifier
from mrmoe_sklearn.datasets import make_multirate_classification
from mrmoe_sklearn.inspection import plot_feature_importances, plot_gate_weights

# %%
# The example is one function; its parameters shrink it (the test suite runs it
# on 60 series of 16 steps).


def channel_names(info, n_channels):
    """Name each measured channel (1 .. n_channels of X) by its role in the data."""
    names = []
    for c in range(1, n_channels + 1):
        roles = [r for r in ("slow", "fast", "noise") if c in info[f"{r}_channels"]]
        names.append(f"ch {c} ({'+'.join(roles)})")
    return names


def plot_temporal_weights(X, explanation, i, names, fast_channels):
    """Sample ``i``'s fast channels over time, above each expert's temporal attention."""
    fig, (ax_x, ax_w) = plt.subplots(2, 1, sharex=True, figsize=(7.5, 5.0))
    t = X[i, 0]
    for c in fast_channels:
        seen = ~np.isnan(X[i, c])
        ax_x.plot(t[seen], X[i, c][seen], marker=".", linewidth=1, label=names[c - 1])
    ax_x.set_ylabel("value")
    ax_x.set_title(f"sample {i}: fast channels (bursts) and where each expert attended")
    ax_x.legend(fontsize="small")
    for k, rate in enumerate(explanation["rates"]):
        ax_w.plot(t, explanation["temporal_weights"][i, k], label=f"expert {k} (rate {rate})")
    ax_w.set_xlabel("time")
    ax_w.set_ylabel("temporal attention")
    ax_w.legend(fontsize="small")
    fig.tight_layout()
    return fig


def main(n_samples=400, n_timesteps=64, max_epochs=15, random_state=0):
    """Fit MR-MoE, explain its test-set predictions and draw the explanation.

    Parameters
    ----------
    n_samples : int, default=400
        Series to generate.
    n_timesteps : int, default=64
        Steps per series.
    max_epochs : int, default=15
        Training epochs.
    random_state : int, default=0
        Seed of the data, the split and the model.

    Returns
    -------
    explanation : dict
        ``MRMoEClassifier.explain`` of the held-out quarter: ``"feature_weights"``
        (n_test, n_features), ``"temporal_weights"`` (n_test, n_experts,
        n_timesteps), ``"gate_weights"`` (n_test, n_experts) and ``"rates"``.
    """
    X, y, info = make_multirate_classification(
        n_samples=n_samples, n_timesteps=n_timesteps, random_state=random_state, return_info=True
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)
    clf = MRMoEClassifier(time_channel=0, max_epochs=max_epochs, n_threads=1, random_state=random_state)
    clf.fit(X_train, y_train)
    explanation = clf.explain(X_test)
    names = channel_names(info, X.shape[1] - 1)

    print("explain() returns:", {k: np.shape(v) for k, v in explanation.items()})
    for name, weight in zip(names, clf.feature_importances_):
        print(f"  {name:<16} feature importance {weight:.3f}")
    gates = explanation["gate_weights"]
    for label in np.unique(y_test):
        print(f"  class {label}: mean gate weights {gates[y_test == label].mean(axis=0).round(3)}")

    plot_feature_importances(clf.feature_importances_, names=names)
    plot_gate_weights(explanation, y_test)
    # the positive test sample MR-MoE is most sure of
    proba = clf.predict_proba(X_test)[:, 1]
    i = int(np.argmax(np.where(y_test == 1, proba, -np.inf)))
    plot_temporal_weights(X_test, explanation, i, names, info["fast_channels"])
    return explanation


# %%
# Run it: the shapes of the explanation, the feature importances by channel
# role, the mean gate weights per class, and three figures.

if __name__ == "__main__":
    main()
