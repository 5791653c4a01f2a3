"""Run every example script's ``main`` on reduced sizes."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# The examples draw figures; never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_scores(scores):
    assert set(scores) == {"auroc", "auprc"}
    for value in scores.values():
        assert np.isfinite(value) and 0.0 <= value <= 1.0


def test_quickstart(capsys):
    scores = _load("quickstart").main(n_samples=60, n_timesteps=16, max_epochs=2)
    _check_scores(scores)
    assert "AUROC" in capsys.readouterr().out


def test_grid_search():
    best_params, best_score = _load("grid_search").main(
        n_samples=60, n_timesteps=16, max_epochs=1, cv=2, n_experts=(1, 2), hidden_size=(4,)
    )
    assert set(best_params) == {"clf__n_experts", "clf__hidden_size"}
    assert best_params["clf__n_experts"] in (1, 2) and best_params["clf__hidden_size"] == 4
    assert np.isfinite(best_score) and 0.0 <= best_score <= 1.0


def test_clinical_long_format():
    module = _load("clinical_long_format")
    charts, outcome = module.make_icu_table(n_stays=10, random_state=1)
    assert list(charts.columns) == ["stay_id", "charttime", "heart_rate", "map", "lactate"]
    assert str(charts.charttime.dtype).startswith("datetime64")
    assert charts.lactate.isna().mean() > 0.5  # measured rarely
    assert set(outcome.index) == set(charts.stay_id)
    _check_scores(module.main(n_stays=40, max_epochs=2))


def test_compare_models_example():
    summary = _load("compare_models").main(n_samples=60, n_timesteps=16, cv=2, max_epochs=2, verbose=0)
    assert len(summary) == 7 and summary.index[0] == "MR-MoE"
    assert summary["auroc_mean"].between(0, 1).all()
    assert "auroc_pvalue" in summary.columns


def test_explanations():
    explanation = _load("explanations").main(n_samples=60, n_timesteps=16, max_epochs=2)
    n_test, n_experts = explanation["gate_weights"].shape
    assert n_test == 15 and n_experts == len(explanation["rates"])
    assert explanation["feature_weights"].shape == (n_test, 6)
    assert explanation["temporal_weights"].shape == (n_test, n_experts, 16)
    np.testing.assert_allclose(explanation["gate_weights"].sum(axis=1), 1.0, rtol=1e-5)


EXAMPLE_NAMES = [
    "quickstart",
    "grid_search",
    "clinical_long_format",
    "compare_models",
    "explanations",
    "regression_slope",
]


def test_every_example_is_listed():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(EXAMPLE_NAMES)


@pytest.fixture(autouse=True)
def _close_figures():
    """The examples draw their figures with pyplot (the docs' gallery shows them); close them after each test."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_are_scripts(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert 'if __name__ == "__main__":\n    main()' in source
    assert callable(_load(name).main)


def test_regression_slope_example(capsys):
    scores = _load("regression_slope").main(n_samples=80, n_timesteps=16, max_epochs=2)
    assert set(scores) == {"MR-MoE", "LSTM", "constant"}
    assert all(np.isfinite(v) for v in scores.values())
    assert "test R²" in capsys.readouterr().out
