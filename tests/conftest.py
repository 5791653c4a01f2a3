"""Shared fixtures: small time-series tasks (shared constants and functions: ``tests/_helpers.py``)."""

import numpy as np
import pytest

from mrmoe_sklearn.datasets import make_multirate_classification


@pytest.fixture(scope="session")
def binary_task():
    """Irregular, 20% missing, binary, with a time channel at index 0."""
    return make_multirate_classification(n_samples=120, n_channels=4, n_timesteps=24, missing_rate=0.2, random_state=0)


@pytest.fixture(scope="session")
def multiclass_task():
    return make_multirate_classification(n_samples=150, n_channels=4, n_timesteps=24, n_classes=3, random_state=1)


@pytest.fixture
def rng():
    return np.random.RandomState(0)
