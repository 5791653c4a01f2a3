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
