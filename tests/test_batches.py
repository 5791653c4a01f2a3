"""Mini-batches cut from whole tensors (:mod:`mrmoe_sklearn._batches`)."""

import torch
from skorch.dataset import Dataset
from torch.utils.data import Subset

from mrmoe_sklearn._batches import POOL_BATCHES, TensorBatches


def _dataset(n=300, T=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (n,), generator=g)
    v = torch.arange(T)[None, :] < lengths[:, None]
    X = {"x": torch.randn(n, T, 2, generator=g), "v": v, "id": torch.arange(n)}
    return Dataset(X, torch.arange(n) % 2), lengths


def test_inference_batches_keep_order_and_cover_every_sample_once():
    ds, _ = _dataset(n=70)
    it = TensorBatches(ds, batch_size=32)
    batches = list(it)
    assert len(it) == len(batches) == 3
    assert [len(b[0]["id"]) for b in batches] == [32, 32, 6]
    ids = torch.cat([b[0]["id"] for b in batches])
    assert torch.equal(ids, torch.arange(70))
    for Xb, yb in batches:
        assert torch.equal(yb, Xb["id"] % 2)  # targets follow their samples
        assert torch.equal(Xb["x"], ds.X["x"][Xb["id"]])


def test_training_batches_are_a_seeded_permutation_grouped_by_length():
    ds, lengths = _dataset(n=32 * POOL_BATCHES)
    it = TensorBatches(ds, 32, shuffle=True, generator=torch.Generator().manual_seed(1))
    batches = [b[0]["id"] for b in it]
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(len(lengths)))
    # one pool here: every batch holds a contiguous range of the sorted lengths
    spans = [lengths[b].max() - lengths[b].min() for b in batches]
    assert max(spans) <= 3, spans
    # the order of the batches is random, not by length
    firsts = torch.stack([lengths[b].min() for b in batches])
    assert not torch.equal(firsts, firsts.sort().values)
    again = TensorBatches(ds, 32, shuffle=True, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b[0]["id"]) for a, b in zip(batches, again))
    other = TensorBatches(ds, 32, shuffle=True, generator=torch.Generator().manual_seed(2))
    assert not all(torch.equal(a, b[0]["id"]) for a, b in zip(batches, other))


def test_subsets_of_subsets_map_back_to_the_base_samples():
    ds, _ = _dataset(n=50)
    inner = Subset(ds, list(range(10, 50)))
    outer = Subset(inner, [0, 5, 39])
    ((Xb, yb),) = list(TensorBatches(outer, 8))
    assert Xb["id"].tolist() == [10, 15, 49]
    assert yb.tolist() == [0, 1, 1]


def test_prediction_without_targets():
    ds, _ = _dataset(n=5)
    ds = Dataset(ds.X, None)
    ((Xb, yb),) = list(TensorBatches(ds, 8))
    assert yb is None and Xb["id"].tolist() == [0, 1, 2, 3, 4]


def _real_batch():
    """The estimator's whole-data batch of ragged, irregularly sampled series with missing values."""
    import numpy as np

    from mrmoe_sklearn import MRMoEClassifier
    from mrmoe_sklearn._data import check_series, fit_scaling

    rng = np.random.default_rng(0)
    X = []
    for _ in range(83):
        T = int(rng.integers(1, 13))
        series = rng.standard_normal((3, T))
        series[0] = np.cumsum(rng.uniform(0.1, 3.0, T))  # time stamps, irregular
        series[1:][rng.random((2, T)) < 0.3] = np.nan  # missing values
        series[1, 0] = 0.5  # every sample observed somewhere
        X.append(series)
    est = MRMoEClassifier(time_channel=0, summary_head=True)
    data = check_series(X, time_channel=0)
    est.scaling_ = fit_scaling(data, summaries="quantile")
    return est._batch(data), torch.arange(len(X)) % 3


def test_batches_equal_the_per_sample_loader_on_ragged_irregular_missing_input():
    """Every batch equals what skorch's default loader (sample by sample, then collated) makes
    of the same samples: in order for inference, for the drawn samples in training."""
    from torch.utils.data import DataLoader
    from torch.utils.data._utils.collate import default_collate

    X, y = _real_batch()
    assert {"x", "m", "dt", "v", "s"} <= set(X)
    assert not X["v"].all() and not X["m"].all()  # ragged, with missing values
    ds = Dataset(X, y)
    loader = DataLoader(ds, batch_size=16, shuffle=False)
    ours = list(TensorBatches(ds, 16))
    assert len(ours) == len(loader)
    for (Xa, ya), (Xb, yb) in zip(ours, loader):
        assert Xa.keys() == Xb.keys() and torch.equal(ya, yb)
        for k in Xa:
            assert Xa[k].dtype == Xb[k].dtype and torch.equal(Xa[k], Xb[k]), k
    # training: batches drawn from a subset (the training split); a sample id travels along
    ds = Dataset({**X, "id": torch.arange(len(y))}, y)
    sub = Subset(ds, list(range(5, 80, 2)))
    seen = []
    for Xa, ya in TensorBatches(sub, 8, shuffle=True, generator=torch.Generator().manual_seed(0)):
        rows = Xa["id"].tolist()
        Xb, yb = default_collate([ds[j] for j in rows])
        for k in Xa:
            assert torch.equal(Xa[k], Xb[k]), k
        assert torch.equal(ya, yb)
        seen += rows
    assert sorted(seen) == sub.indices


def test_inference_over_a_whole_dataset_slices_without_copying():
    """In order over every sample, batches are views of the dataset's tensors (no copy); over a
    subset they are gathered, in the subset's order."""
    ds, _ = _dataset(n=70)
    batches = list(TensorBatches(ds, batch_size=32))
    assert all(Xb["x"].data_ptr() == ds.X["x"][32 * i].data_ptr() for i, (Xb, _) in enumerate(batches))
    assert batches[1][0]["x"].data_ptr() == ds.X["x"][32].data_ptr()
    sub = list(TensorBatches(Subset(ds, [5, 3, 9]), batch_size=2))
    assert torch.equal(torch.cat([b[0]["id"] for b in sub]), torch.tensor([5, 3, 9]))
    assert sub[0][0]["x"].data_ptr() != ds.X["x"][5].data_ptr()
