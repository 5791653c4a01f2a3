"""Tests for the plotting helpers of :mod:`mrmoe_sklearn.inspection`."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402
from skorch.history import History  # noqa: E402

from mrmoe_sklearn.inspection import (  # noqa: E402
    plot_feature_importances,
    plot_gate_weights,
    plot_roc_pr,
    plot_training_curves,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _gates(n, k, seed=0):
    g = np.random.default_rng(seed).random((n, k))
    return g / g.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("y", [np.array([0, 1] * 10), np.array(["a", "b", "c", "d"] * 5)])
def test_plot_gate_weights(y):
    explanation = {"gate_weights": _gates(20, 4), "rates": (1, 2, 4, 8), "feature_weights": np.ones((20, 3))}
    ax = plot_gate_weights(explanation, y)
    assert isinstance(ax, Axes)
    assert len(ax.containers) == len(np.unique(y))  # one bar group per class
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "expert 3\nrate 8"
    # a bare array, into a given Axes
    fig, given = plt.subplots()
    assert plot_gate_weights(_gates(20, 3), y, ax=given) is given
    assert len(given.containers[0]) == 3


def test_plot_gate_weights_bad_shapes():
    with pytest.raises(ValueError, match="must be 2D"):
        plot_gate_weights(np.ones(5), np.zeros(5))
    with pytest.raises(ValueError, match="5 labels"):
        plot_gate_weights(_gates(5, 2), np.zeros(4))


def test_plot_feature_importances():
    ax = plot_feature_importances(np.array([0.5, 0.3, 0.2]), names=["hr", "map", "lactate"])
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hr", "map", "lactate"]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.5, 0.3, 0.2])
    per_fold = np.array([[0.4, 0.6], [0.6, 0.4], [0.5, 0.5]])
    ax = plot_feature_importances(per_fold)
    np.testing.assert_allclose([p.get_height() for p in ax.patches], [0.5, 0.5])
    assert "std" in ax.get_title()
    with pytest.raises(ValueError, match="names has 1 entries"):
        plot_feature_importances([0.5, 0.5], names=["x"])
    with pytest.raises(ValueError, match="1D"):
        plot_feature_importances(np.ones((2, 2, 2)))


def test_plot_training_curves():
    history = History()
    for loss in (0.9, 0.7, 0.6):
        history.new_epoch()
        history.record("train_loss", loss)
    curves = {
        "skorch": history,
        "list": [0.8, 0.5],
        "dicts": [{"train_loss": 1.0}, {"train_loss": 0.4}, {"train_loss": 0.3}, {"train_loss": 0.2}],
    }
    ax = plot_training_curves(curves)
    assert isinstance(ax, Axes)
    lines = ax.get_lines()
    assert [len(line.get_xdata()) for line in lines] == [3, 2, 4]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.9, 0.7, 0.6])
    with pytest.raises(InvalidParameterError, match="'histories' parameter of plot_training_curves must be"):
        plot_training_curves([history])


def test_plot_training_curves_from_estimator():
    from mrmoe_sklearn import LSTMClassifier, make_multirate_classification

    X, y = make_multirate_classification(n_samples=30, n_timesteps=12, random_state=0)
    clf = LSTMClassifier(time_channel=0, max_epochs=2, random_state=0).fit(X, y)
    ax = plot_training_curves({"LSTM": clf.history_, "fitted": clf})
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [2, 2]


def test_plot_roc_pr_binary_and_multiclass():
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 15)
    good = np.clip(y + rng.normal(0, 0.4, 30), 0, 1)
    probas = {"good": np.column_stack([1 - good, good]), "scores 1D": rng.random(30)}
    fig = plot_roc_pr(y, probas)
    assert isinstance(fig, Figure)
    ax_roc, ax_pr = fig.axes[:2]
    labels = [t.get_text() for t in ax_roc.get_legend().get_texts()]
    assert labels[0].startswith("good (AUROC") and labels[1].startswith("scores 1D")
    assert len(ax_pr.get_lines()) >= 2

    y3 = np.array(["x", "y", "z"] * 10)
    p3 = rng.dirichlet(np.ones(3), size=30)
    fig, axes = plt.subplots(1, 2)
    assert plot_roc_pr(y3, {"m": p3}, axes=axes) is fig
    assert "micro" in axes[0].get_title()
    with pytest.raises(ValueError, match=r"shape \(30, 3\)"):
        plot_roc_pr(y3, {"bad": p3[:, :2]})


@pytest.mark.parametrize(
    "call",
    [
        lambda: plot_gate_weights({"gate_weights": _gates(4, 2)}, [0, 1, 0, 1]),
        lambda: plot_feature_importances([0.5, 0.5]),
        lambda: plot_training_curves({"a": [1.0, 0.5]}),
        lambda: plot_roc_pr([0, 1, 0, 1], {"a": np.eye(2)[[0, 1, 0, 1]]}),
    ],
)
def test_missing_matplotlib_names_the_extra(call, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"requires matplotlib.*mrmoe-sklearn\[plot\].*`plot` extra"):
        call()


def test_plots_reject_bad_input_clearly():
    """Bad input is a ValueError that names it, not a KeyError, TypeError or AttributeError from inside."""
    from mrmoe_sklearn import LSTMClassifier

    with pytest.raises(ValueError, match="no 'gate_weights'.*explain"):
        plot_gate_weights({"feature_weights": np.ones((4, 3))}, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"histories\['LSTM'\] is an estimator without a training history"):
        plot_training_curves({"LSTM": LSTMClassifier()})
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="axes must be two matplotlib Axes"):
        plot_roc_pr([0, 1, 0, 1], {"a": np.eye(2)[[0, 1, 0, 1]]}, axes=[ax])
