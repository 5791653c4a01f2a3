"""Fitted estimators survive pickle, joblib and deepcopy (issue 5).

A model fitted on a GPU must load and predict on a machine without CUDA: the
``gpu`` test fits on CUDA, pickles, and predicts in a subprocess that sees no
GPU (``CUDA_VISIBLE_DEVICES=""``).
"""

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch

from mrmoe_sklearn import LNNClassifier, LSTMClassifier, MoEClassifier, MRMoEClassifier

ESTIMATORS = {
    "MRMoEClassifier": lambda **kw: MRMoEClassifier(hidden_size=4, backbone_units=4, **kw),
    "LNNClassifier": lambda **kw: LNNClassifier(hidden_size=4, backbone_units=4, **kw),
    "MoEClassifier": lambda **kw: MoEClassifier(hidden_size=4, backbone_units=4, **kw),
    "LSTMClassifier": lambda **kw: LSTMClassifier(hidden_size=4, **kw),
}
COMMON = dict(max_epochs=2, batch_size=16, random_state=0)


def _data(n=24, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 2, 7)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    X[:, :, 0] = rng.randn(n, 2)  # every sample observed
    y = np.where(np.arange(n) % 2, "yes", "no")
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    return {name: make(**COMMON).fit(X, y) for name, make in ESTIMATORS.items()}


def _roundtrip(clf, how, tmp_path):
    if how == "pickle":
        return pickle.loads(pickle.dumps(clf))
    if how == "joblib":
        path = tmp_path / "model.joblib"
        joblib.dump(clf, path)
        return joblib.load(path)
    if how == "deepcopy":
        return copy.deepcopy(clf)
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["pickle", "joblib", "deepcopy"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_roundtrip_predicts_identically(fitted, name, how, tmp_path):
    clf = fitted[name]
    X, _ = _data(n=9, seed=1)
    expected = clf.predict_proba(X)
    loaded = _roundtrip(clf, how, tmp_path)
    assert loaded is not clf and loaded.net_ is not clf.net_
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.get_params() == clf.get_params()
    assert loaded.n_features_in_ == clf.n_features_in_
    assert len(loaded.history_) == len(clf.history_)
    if hasattr(clf, "feature_importances_"):
        np.testing.assert_array_equal(loaded.feature_importances_, clf.feature_importances_)
    # The copy owns its weights.
    for p, q in zip(loaded.net_.module_.parameters(), clf.net_.module_.parameters()):
        assert p.data_ptr() != q.data_ptr()


def test_copy_is_independent_of_further_training(fitted):
    X, y = _data()
    clf = copy.deepcopy(fitted["MRMoEClassifier"])
    frozen = pickle.loads(pickle.dumps(clf))
    expected = frozen.predict_proba(X)
    clf.set_params(warm_start=True, max_epochs=2, lr=0.05)
    clf.fit(X, y)
    assert len(clf.history_) == len(frozen.history_) + 2
    assert not np.allclose(clf.predict_proba(X), expected)
    np.testing.assert_array_equal(frozen.predict_proba(X), expected)
    np.testing.assert_array_equal(fitted["MRMoEClassifier"].predict_proba(X), expected)


def test_unpickled_estimator_can_continue_training(fitted, tmp_path):
    X, y = _data()
    clf = _roundtrip(fitted["MRMoEClassifier"], "joblib", tmp_path)
    clf.set_params(warm_start=True, max_epochs=1)
    clf.fit(X, y)
    assert len(clf.history_) == COMMON["max_epochs"] + 1
    assert np.isfinite(clf.predict_proba(X)).all()


_LOAD_SCRIPT = textwrap.dedent(
    """
    import pickle, sys, warnings
    import numpy as np
    import torch
    assert not torch.cuda.is_available(), "the subprocess must not see a GPU"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning: loading CUDA weights on CPU
        with open(sys.argv[1], "rb") as f:
            clf = pickle.load(f)
    X = np.load(sys.argv[2])
    np.save(sys.argv[3], clf.predict_proba(X))
    """
)


def _predict_in_cpu_only_process(clf, X, tmp_path):
    model, data, out = tmp_path / "model.pkl", tmp_path / "X.npy", tmp_path / "proba.npy"
    with open(model, "wb") as f:
        pickle.dump(clf, f)
    np.save(data, X)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(model), str(data), str(out)],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return np.load(out)


def test_pickle_loads_in_a_fresh_cpu_process(fitted, tmp_path):
    X, _ = _data(n=9, seed=2)
    clf = fitted["MRMoEClassifier"]
    # another process may run torch with another thread count: float32
    # reductions then round differently (~1e-9 here), nothing more
    np.testing.assert_allclose(_predict_in_cpu_only_process(clf, X, tmp_path), clf.predict_proba(X), atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("name", ["MRMoEClassifier", "LSTMClassifier"])
def test_cuda_model_predicts_on_a_cpu_only_machine(name, tmp_path):
    X, y = _data()
    clf = ESTIMATORS[name](**COMMON, device="cuda").fit(X, y)
    assert next(clf.net_.module_.parameters()).is_cuda
    expected = clf.predict_proba(X)
    proba = _predict_in_cpu_only_process(clf, X, tmp_path)
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-5)
    # The estimator itself still predicts on the GPU after pickling.
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
