"""Scaling out: grid search and cross-validation on a Dask cluster (issue 5).

A ``distributed.LocalCluster`` with two single-threaded worker processes stands
in for a real cluster (see ``docs/scaling.md``). Results must match the
sequential run, and inside a worker torch must use the worker's thread count.
"""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate  # noqa: E402

from mrmoe_sklearn import MRMoEClassifier  # noqa: E402
from mrmoe_sklearn._base import _worker_threads  # noqa: E402

TINY = dict(max_epochs=2, hidden_size=4, backbone_units=4, batch_size=16, random_state=0)
GRID = {"n_experts": [1, 2], "hidden_size": [4, 8]}


def _data(n=32, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.randn(n, 2, 8)
    X[:, 0, :] += 0.8 * (2 * y - 1)[:, None]
    X[rng.rand(*X.shape) < 0.1] = np.nan
    X[:, :, 0] = rng.randn(n, 2)
    return X, y


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        yield client


def _search():
    return GridSearchCV(MRMoEClassifier(**TINY), GRID, cv=2, scoring="roc_auc", n_jobs=-1)


def test_grid_search_on_dask_matches_sequential(client):
    X, y = _data()
    seq = GridSearchCV(MRMoEClassifier(**TINY), GRID, cv=2, scoring="roc_auc", n_jobs=1).fit(X, y)
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        par = _search().fit(X, y)
    assert par.best_params_ == seq.best_params_
    for key in ["split0_test_score", "split1_test_score", "mean_test_score"]:
        np.testing.assert_allclose(par.cv_results_[key], seq.cv_results_[key], rtol=0, atol=1e-12)
    assert par.cv_results_["params"] == seq.cv_results_["params"]
    # The scores are not all alike, so the comparison above is informative.
    assert np.ptp(seq.cv_results_["mean_test_score"]) > 0
    np.testing.assert_allclose(par.predict_proba(X), seq.predict_proba(X), rtol=0, atol=1e-6)
    # The work ran on the cluster's workers, not in this process.
    assert len(stream.data) > 0, stream.data
    assert {task["worker"] for task in stream.data} <= set(client.scheduler_info()["workers"])


def test_cross_validate_on_dask_matches_sequential(client):
    X, y = _data(seed=1)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scoring = ["roc_auc", "neg_log_loss"]
    seq = cross_validate(MRMoEClassifier(**TINY), X, y, cv=cv, scoring=scoring, n_jobs=1)
    with joblib.parallel_config(backend="dask"):
        par = cross_validate(MRMoEClassifier(**TINY), X, y, cv=cv, scoring=scoring, n_jobs=-1)
    for key in ["test_roc_auc", "test_neg_log_loss"]:
        np.testing.assert_allclose(par[key], seq[key], rtol=1e-6, atol=1e-9)


def test_torch_uses_one_thread_inside_a_single_threaded_worker(client):
    def probe():
        import numpy as np
        import torch

        from mrmoe_sklearn import MRMoEClassifier
        from mrmoe_sklearn._base import _torch_threads, _worker_threads

        old = torch.get_num_threads()
        torch.set_num_threads(3)  # as if torch had picked up all the machine's cores
        try:
            with _torch_threads(None):
                inside = torch.get_num_threads()
            restored = torch.get_num_threads()

            seen = []

            class Probe(MRMoEClassifier):
                def _build_module(self, n_features, n_classes, validating=False):  # inside fit's thread block
                    seen.append(torch.get_num_threads())
                    return super()._build_module(n_features, n_classes, validating)

            rng = np.random.RandomState(0)
            Probe(max_epochs=1, hidden_size=4, backbone_units=4, random_state=0).fit(
                rng.randn(6, 1, 4), np.arange(6) % 2
            )
            return _worker_threads(), inside, restored, seen, torch.get_num_threads()
        finally:
            torch.set_num_threads(old)

    workers = list(client.scheduler_info()["workers"])
    results = client.gather([client.submit(probe, workers=[w], pure=False) for w in workers])
    for worker_threads, inside, restored, seen, after in results:
        assert worker_threads == 1
        assert inside == 1  # _torch_threads(None) follows the worker
        assert restored == 3 and after == 3  # and restores torch's setting afterwards
        assert seen == [1]  # fit(n_threads=None) trained with one thread
    # Outside a worker there is no worker thread count.
    assert _worker_threads() is None
