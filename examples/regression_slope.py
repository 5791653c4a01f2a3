"""
Regression: the slope of a trend
================================

Predict a continuous target from irregular, incomplete series with
:class:`~mrmoe_sklearn.MRMoERegressor`, against a constant and the LSTM.

The series come from the built-in generator
(:func:`mrmoe_sklearn.datasets.make_multirate_classification`: irregular time
stamps in channel 0, 20% of the values missing); channel 1 is replaced by noise
around a linear trend in time whose slope, drawn per series, is the target.
The regressors standardise the target at fit and map predictions back;
``score`` is R². A validation split drives early stopping on R²
(``early_stopping_scoring="r2"``), and the figure compares predictions with
the true slopes.

Run it with ``python examples/regression_slope.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import train_test_split

from mrmoe_sklearn import LSTMRegressor, MRMoERegressor
from mrmoe_sklearn.datasets import make_multirate_classification

# %%
# A regression target from the built-in generator: the slope of a trend hidden
# in noise, sampled at the generator's irregular times, with its missing values.


def make_slope_task(n_samples=400, n_timesteps=32, noise=0.5, random_state=0):
    """Series whose channel 1 is ``slope * (t - mean t) / 8`` plus noise; ``y`` is the slope.

    Returns
    -------
    X : ndarray of shape (n_samples, 4, n_timesteps)
        Channel 0 holds the time stamps.
    y : ndarray of shape (n_samples,)
        Slopes, uniform in [-1, 1].
    """
    X, _ = make_multirate_classification(
        n_samples=n_samples, n_channels=3, n_timesteps=n_timesteps, random_state=random_state
    )
    rng = np.random.RandomState(random_state)
    slope = rng.uniform(-1, 1, n_samples)
    t = X[:, 0]
    centred = t - np.nanmean(t, axis=1, keepdims=True)
    missing = np.where(np.isnan(X[:, 1]), np.nan, 0.0)
    X[:, 1] = rng.randn(n_samples, n_timesteps) * noise + slope[:, None] * centred / 8 + missing
    return X, slope


# %%
# The whole example is one function; its parameters shrink it.


def main(n_samples=400, n_timesteps=32, max_epochs=15, random_state=0):
    """Fit the regressors on a train split and report R² on the test split.

    Parameters
    ----------
    n_samples : int, default=400
        Series to generate.
    n_timesteps : int, default=32
        Steps per series.
    max_epochs : int, default=15
        Training epochs (fewer with early stopping).
    random_state : int, default=0
        Seed of the data, the split and the models.

    Returns
    -------
    scores : dict
        Test R² of ``"MR-MoE"``, ``"LSTM"`` and ``"constant"``.
    """
    X, y = make_slope_task(n_samples, n_timesteps, random_state=random_state)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=random_state)
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.2, random_state=random_state)
    common = dict(time_channel=0, max_epochs=max_epochs, lr=1e-2, n_threads=1, random_state=random_state)
    models = {
        "MR-MoE": MRMoERegressor(hidden_size=8, backbone_units=16, early_stopping_scoring="r2", **common),
        "LSTM": LSTMRegressor(hidden_size=16, early_stopping_scoring="r2", **common),
    }
    scores, predictions = {}, {}
    for name, model in models.items():
        model.fit(X_fit, y_fit, X_val=X_val, y_val=y_val)
        scores[name] = model.score(X_test, y_test)
        predictions[name] = model.predict(X_test)
        print(f"{name}: test R² {scores[name]:.3f} after {len(model.history_)} epochs")
    scores["constant"] = DummyRegressor().fit(X_fit[:, 0], y_fit).score(X_test[:, 0], y_test)
    print(f"constant (the training mean): test R² {scores['constant']:.3f}")
    plot_predictions(y_test, predictions)
    return scores


def plot_predictions(y_true, predictions):
    """Predicted against true slopes, one panel per model."""
    fig, axes = plt.subplots(1, len(predictions), figsize=(4 * len(predictions), 3.6), sharey=True)
    for ax, (name, pred) in zip(np.atleast_1d(axes), predictions.items()):
        ax.scatter(y_true, pred, s=10, alpha=0.7)
        ax.plot([-1, 1], [-1, 1], color="grey", lw=1)
        ax.set_title(name)
        ax.set_xlabel("true slope")
    np.atleast_1d(axes)[0].set_ylabel("predicted slope")
    fig.tight_layout()
    return axes


# %%
# Run it: each model's test R², the constant's, and the predictions as a figure.

if __name__ == "__main__":
    main()
