"""Determinism: a fixed random_state gives the same model everywhere (issue 5).

Same probabilities across runs, across sequential and process-parallel
cross-validation, whatever the global RNG states are, and whether the data
come as a 3D array or as a list of 2D arrays; fitting leaves the global torch
and numpy RNG states untouched.
"""

import random
import subprocess
import sys

import numpy as np
import pytest
import skorch
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score

from mrmoe_sklearn import LSTMClassifier, MRMoEClassifier
from mrmoe_sklearn.nn import kernel
from tests._helpers import FLUSHING_UNTESTABLE, denormals_kept, flushing_testable, split_denormals

TINY = dict(max_epochs=2, hidden_size=4, backbone_units=4, batch_size=8, dropout=0.3)


def _data(n=24, seed=0, T=7):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.randn(n, 2, T)
    X[:, 1, :] += (2 * y - 1)[:, None] * 0.5
    X[rng.rand(*X.shape) < 0.15] = np.nan
    X[:, :, 0] = rng.randn(n, 2)
    return X, y


def _proba(X, y, X_test=None, **params):
    clf = MRMoEClassifier(**{**TINY, "random_state": 0, **params}).fit(X, y)
    return clf.predict_proba(X if X_test is None else X_test)


def test_same_random_state_same_probabilities():
    X, y = _data()
    first = _proba(X, y)
    np.testing.assert_array_equal(_proba(X, y), first)
    # The seed matters: another one gives another model.
    assert not np.allclose(_proba(X, y, random_state=1), first)


def test_random_state_instances_behave_like_their_seed():
    X, y = _data()
    a = _proba(X, y, random_state=np.random.RandomState(7))
    b = _proba(X, y, random_state=np.random.RandomState(7))
    np.testing.assert_array_equal(a, b)


def test_result_does_not_depend_on_global_rng_state():
    X, y = _data()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    first = _proba(X, y)
    torch.manual_seed(456)
    np.random.seed(456)
    random.seed(456)
    torch.rand(10)  # move the global streams along
    np.random.rand(10)
    np.testing.assert_array_equal(_proba(X, y), first)


def _params(estimator, random_state):
    params = dict(TINY, random_state=random_state)
    if estimator is LSTMClassifier:
        params.pop("backbone_units")
    return params


def _rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _assert_same_states(before, after, numpy=True):
    assert torch.equal(after[0], before[0]), "the global torch RNG state changed"
    assert after[2] == before[2], "Python's random state changed"
    if numpy:
        assert after[1][0] == before[1][0]
        np.testing.assert_array_equal(after[1][1], before[1][1], err_msg="numpy's global RNG state changed")
        assert after[1][2:] == before[1][2:]


@pytest.mark.parametrize("estimator", [MRMoEClassifier, LSTMClassifier])
@pytest.mark.parametrize("random_state", [0, None])
def test_fit_leaves_global_rng_state_alone(estimator, random_state):
    X, y = _data()
    torch.manual_seed(0)
    np.random.seed(0)
    before = _rng_states()
    estimator(**_params(estimator, random_state)).fit(X, y)
    # With random_state=None scikit-learn's convention is to draw the seed from
    # numpy's global generator, so only a fixed seed must leave numpy alone.
    _assert_same_states(before, _rng_states(), numpy=random_state is not None)


def test_fit_leaves_global_rng_state_alone_with_early_stopping():
    X, y = _data()
    before = _rng_states()
    MRMoEClassifier(**TINY, random_state=0, early_stopping=True, validation_fraction=0.25).fit(X, y)
    _assert_same_states(before, _rng_states())


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function"])
def test_predict_leaves_global_rng_state_alone(method):
    X, y = _data()
    clf = MRMoEClassifier(**TINY, random_state=0).fit(X, y)
    before = _rng_states()
    getattr(clf, method)(X)
    _assert_same_states(before, _rng_states())


def test_explain_leaves_global_rng_state_alone():
    X, y = _data()
    clf = MRMoEClassifier(**TINY, random_state=0).fit(X, y)
    before = _rng_states()
    clf.explain(X)
    _assert_same_states(before, _rng_states())


def test_array_and_list_inputs_give_identical_models():
    X, y = _data()
    from_array = _proba(X, y)
    as_list = [x for x in X]  # list of (n_channels, n_timesteps) arrays
    np.testing.assert_array_equal(_proba(as_list, y, X_test=X), from_array)
    np.testing.assert_array_equal(_proba(X, y, X_test=as_list), from_array)


def test_ragged_list_equals_nan_padded_array():
    X, y = _data()
    rng = np.random.RandomState(3)
    lengths = rng.randint(2, X.shape[2] + 1, size=len(X))
    lengths[0] = X.shape[2]
    ragged = [x[:, :L] for x, L in zip(X, lengths)]
    padded = X.copy()
    for i, L in enumerate(lengths):
        padded[i, :, L:] = np.nan
    np.testing.assert_array_equal(_proba(ragged, y, X_test=ragged), _proba(padded, y))


@pytest.mark.parametrize("n_threads", [1, None])
def test_cross_val_score_sequential_equals_parallel(n_threads):
    """loky workers equal the sequential run; bit for bit when torch threads are pinned.

    With ``n_threads=None`` the workers run torch with the thread count loky
    gives them (1 here) while this process uses torch's default, so sums are
    reduced in another order: the scores agree to float32 rounding only.
    """
    X, y = _data(n=30)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    est = MRMoEClassifier(**TINY, random_state=0, n_threads=n_threads)
    seq = cross_val_score(est, X, y, cv=cv, scoring="neg_log_loss", n_jobs=1)
    par = cross_val_score(est, X, y, cv=cv, scoring="neg_log_loss", n_jobs=2)
    assert np.ptp(seq) > 0  # folds differ, so equality is informative
    if n_threads == 1:
        np.testing.assert_array_equal(par, seq)
    else:
        np.testing.assert_allclose(par, seq, rtol=1e-6, atol=0)


@pytest.mark.parametrize("cls", [MRMoEClassifier, LSTMClassifier])
def test_a_sample_is_predicted_alike_in_any_batch(cls, monkeypatch):
    """A sample's probabilities are the same, bit for bit, predicted alone or with others, at any
    position; MR-MoE's compiled mixture computes only the batch's own rows (copies, for the
    matrix products' rounding, go to its head), other networks get the copies whole."""
    from mrmoe_sklearn.nn import fused

    X, y = _data(n=40)
    clf = cls(max_epochs=2, hidden_size=4, batch_size=8, random_state=0).fit(X, y)
    whole = clf.predict_proba(X)
    seen = []
    mixture = fused.mixture
    monkeypatch.setattr(fused, "mixture", lambda x, *args: seen.append(x.shape[0]) or mixture(x, *args))
    for rows in ([3], [0, 1, 2, 3, 4], [39, 7], list(range(33))):
        np.testing.assert_array_equal(clf.predict_proba(X[rows]), whole[rows])
    if cls is MRMoEClassifier and fused.compiled(torch.zeros(1)):
        assert seen == [1, 5, 2, 33]


@pytest.mark.parametrize("cls", [MRMoEClassifier, LSTMClassifier])
def test_prediction_prepares_one_inference_batch_at_a_time(cls, monkeypatch):
    """The network's inputs (MR-MoE's encoded summaries among them) are prepared per inference batch,
    never for the whole of X, with the probabilities of the whole-X preparation."""
    import mrmoe_sklearn._base as base

    X, y = _data(n=40)
    clf = cls(max_epochs=2, hidden_size=4, batch_size=8, random_state=0).fit(X, y)
    whole = clf.predict_proba(X)
    sizes = []
    prepare = base.prepare_batch
    monkeypatch.setattr(
        base, "prepare_batch", lambda data, stats: sizes.append(len(data.lengths)) or prepare(data, stats)
    )
    monkeypatch.setattr(base, "_inference_batch_size", lambda batch_size, dataset: 16)
    np.testing.assert_array_equal(clf.predict_proba(X), whole)
    assert sizes == [16, 16, 8]


needs_flush = pytest.mark.skipif(not flushing_testable(), reason=FLUSHING_UNTESTABLE)


@needs_flush
def test_fit_flushes_denormals_in_every_thread_and_restores_them():
    X, y = _data()
    kept = []

    class Probe(skorch.callbacks.Callback):
        def on_epoch_end(self, net, **kwargs):
            kept.append(denormals_kept(x))

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = split_denormals()  # torch's threads exist before the fit, none of them flushing
        MRMoEClassifier(**{**TINY, "max_epochs": 2}, n_threads=2, random_state=0, callbacks=[Probe()]).fit(X, y)
        assert kept == [0, 0]  # every thread flushed while fitting, not only the calling one
        assert denormals_kept(x) == x.numel()
        # the calling thread's setting from before is restored, in every thread
        kernel.flush_denormals(True, 2)
        MRMoEClassifier(**{**TINY, "max_epochs": 1}, n_threads=2, random_state=0).fit(X, y)
        assert kernel.flush_denormals(None, 2) == 2
    finally:
        kernel.flush_denormals(False, 2)
        torch.set_num_threads(old)


@needs_flush
def test_threads_started_while_fitting_do_not_keep_flushing():
    # torch's threads inherit the setting of the thread that starts them: started inside the
    # fit's settings, they flushed denormals ever after
    code = (
        "import numpy as np, torch\n"
        "from mrmoe_sklearn._base import _torch_threads\n"
        "torch.set_num_threads(2)\n"
        "x = torch.from_numpy(np.full(1 << 20, 1e-39, dtype=np.float32))\n"
        "kept = lambda: int(((x * 1.0) != 0).sum())\n"
        "with _torch_threads(2):\n"
        "    inside = kept()\n"
        "after = kept()\n"
        "from mrmoe_sklearn.nn import kernel\n"
        "kernel.flush_denormals(False, 2)\n"
        "torch.set_flush_denormal(True)  # the calling thread alone\n"
        "print(inside, after, kept())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    inside, after, caller_only = map(int, out.stdout.split())
    if not 0 < caller_only < 1 << 20:
        pytest.skip("torch did not split the multiplication over two threads")
    assert (inside, after) == (0, 1 << 20)
