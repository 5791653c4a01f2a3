"""The regressors (issue 13): R² on a trend slope, losses, targets, weights and scoring."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score

from mrmoe_sklearn import LNNRegressor, LSTMRegressor, MoERegressor, MRMoERegressor
from mrmoe_sklearn.datasets import make_multirate_classification

FAST = dict(hidden_size=8, backbone_units=16, max_epochs=4, batch_size=32, n_threads=1, random_state=0)


def slope_task(n=240, n_timesteps=32, seed=0):
    """Series of the built-in generator (irregular times, 20% missing) whose channel 1 is
    replaced by noise around a linear trend in time; the target is the trend's slope."""
    X, _ = make_multirate_classification(n_samples=n, n_channels=3, n_timesteps=n_timesteps, random_state=seed)
    rng = np.random.RandomState(seed)
    slope = rng.uniform(-1, 1, n)
    t = X[:, 0]
    centred = t - np.nanmean(t, axis=1, keepdims=True)
    missing = np.where(np.isnan(X[:, 1]), np.nan, 0.0)
    X = X.copy()
    X[:, 1] = rng.randn(n, n_timesteps) * 0.5 + slope[:, None] * centred / 8 + missing
    return X, slope


@pytest.fixture(scope="module")
def slope_data():
    return slope_task()


def test_regressor_learns_a_trend_slope(slope_data):
    X, y = slope_data
    reg = MRMoERegressor(
        time_channel=0, hidden_size=8, backbone_units=16, max_epochs=10, lr=1e-2, n_threads=1, random_state=0
    )
    reg.fit(X[:160], y[:160])
    r2 = reg.score(X[160:], y[160:])
    # measured 0.92 (0.91 with summary_head=False: the experts learn it); a constant -0.01
    assert r2 > 0.6, r2
    assert reg.predict(X[160:]).shape == (80,)
    assert reg.n_outputs_ == 1 and reg.target_scale_.shape == (1,)


@pytest.mark.parametrize("cls", [MRMoERegressor, LNNRegressor, MoERegressor, LSTMRegressor])
def test_every_regressor_fits_multi_output_and_pickles(cls, slope_data):
    X, y = slope_data
    Y = np.c_[y, 100 + 50 * y]  # a second target on another scale
    kw = {k: v for k, v in FAST.items() if cls is not LSTMRegressor or k != "backbone_units"}
    reg = cls(time_channel=0, **kw).fit(X[:64], Y[:64])
    pred = reg.predict(X[:8])
    assert pred.shape == (8, 2) and np.isfinite(pred).all()
    # targets are standardised at fit and mapped back: the second column is on its own scale
    assert np.allclose(reg.target_mean_, Y[:64].mean(0)) and reg.target_scale_[1] > 10 * reg.target_scale_[0]
    assert np.allclose(pickle.loads(pickle.dumps(reg)).predict(X[:8]), pred)
    assert reg.score(X[:8], Y[:8]) == pytest.approx(r2_score(Y[:8], pred))


def test_huber_loss_and_bad_loss(slope_data):
    X, y = slope_data
    y = y.copy()
    y[:4] = 1e3  # outlying targets
    squared = MRMoERegressor(time_channel=0, **FAST).fit(X[:64], y[:64])
    huber = MRMoERegressor(time_channel=0, loss="huber", **FAST).fit(X[:64], y[:64])
    assert type(huber.net_.criterion_).__name__ == "HuberLoss"
    assert type(squared.net_.criterion_).__name__ == "MSELoss"
    assert not np.allclose(huber.predict(X[64:80]), squared.predict(X[64:80]))
    with pytest.raises(ValueError, match="'loss' parameter of MRMoERegressor must be"):
        MRMoERegressor(loss="absolute", **FAST).fit(X[:64], y[:64])


def test_regressor_targets_are_checked(slope_data):
    X, y = slope_data
    with pytest.raises(ValueError, match="NaN|infinity"):
        MRMoERegressor(time_channel=0, **FAST).fit(X[:32], np.r_[np.nan, y[1:32]])
    with pytest.raises(ValueError, match="samples"):
        MRMoERegressor(time_channel=0, **FAST).fit(X[:32], y[:31])


def test_regressor_early_stopping_on_r2_with_ensemble(slope_data):
    X, y = slope_data
    reg = MRMoERegressor(
        time_channel=0, early_stopping=True, early_stopping_scoring="r2", patience=3, **dict(FAST, max_epochs=6)
    )
    reg.fit(X[:120], y[:120], X_val=X[120:160], y_val=y[120:160])
    scores = reg.history_[:, "valid_r2"]
    # ensemble_size="auto" trains 3 members with validation data: their mean predicts
    assert len(reg.net_.module_.members) == 3 and reg.net_.module_.combine == "mean"
    assert reg.score(X[120:160], y[120:160]) == pytest.approx(max(scores), abs=1e-6)
    assert clone(reg).get_params()["early_stopping_scoring"] == "r2"


def test_warm_start_predictions_take_the_shape_of_the_latest_y(slope_data):
    """As after a cold fit, ``predict`` is 1D after a fit on a 1D ``y`` and 2D after one on ``(n, 1)``."""
    X, y = slope_data
    reg = LSTMRegressor(time_channel=0, hidden_size=4, max_epochs=1, n_threads=1, random_state=0, warm_start=True)
    reg.fit(X[:64], y[:64])
    assert reg.predict(X[:8]).shape == (8,)
    reg.fit(X[:64], y[:64, None])
    assert reg.predict(X[:8]).shape == (8, 1)
    reg.fit(X[:64], y[:64])
    assert reg.predict(X[:8]).shape == (8,)


@pytest.mark.parametrize("cls", [MRMoERegressor, LSTMRegressor])
def test_warm_start_refuses_a_changed_loss(cls, slope_data):
    """The criterion is built with the network: a warm fit with another ``loss`` says so rather than
    training on the first fit's loss."""
    X, y = slope_data
    params = dict(FAST, max_epochs=1, time_channel=0)
    if cls is LSTMRegressor:
        params.pop("backbone_units")
    reg = cls(**params).fit(X[:64], y[:64])
    reg.set_params(warm_start=True, loss="huber")
    with pytest.raises(
        ValueError,
        match="^warm_start=True but loss='huber' while the fitted network was built with loss='squared_error'",
    ):
        reg.fit(X[:64], y[:64])
    assert len(reg.set_params(loss="squared_error", lr=1e-2).fit(X[:64], y[:64]).history_) == 2
    reg.set_params(warm_start=False, loss="huber").fit(X[:64], y[:64])
    assert isinstance(reg.net_.criterion_, torch.nn.HuberLoss)


def test_targets_that_cannot_be_standardised_are_refused_by_name(slope_data):
    """|y| near 1e160: its standard deviation overflows float64 and the standardised targets float32. The fit
    diverged with a message blaming lr (review of 2026-12-03); now a ValueError names y (or y_val)."""
    X, y = slope_data
    fast = dict(FAST, max_epochs=1, time_channel=0)
    with pytest.raises(ValueError, match=r"^y cannot be standardised for training \(largest \|y\| .*e\+160"):
        MRMoERegressor(**fast).fit(X, y * 1e160 + 1e160)
    with pytest.raises(ValueError, match=r"^y_val cannot be standardised .*Rescale it"):
        MRMoERegressor(early_stopping=True, **fast).fit(X, y, X_val=X, y_val=y * 1e50)
    big = MRMoERegressor(**fast).fit(X, y * 1e100)  # large but representable: trained as any y
    assert np.isfinite(big.predict(X)).all()
