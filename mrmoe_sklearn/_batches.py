"""Mini-batches cut from whole tensors, for skorch's training and inference loops.

skorch's default ``DataLoader`` fetches every sample of a batch one by one and
collates them; the package's batches are a dict of tensors that are already in
memory, so a batch is one indexing operation per tensor instead (inference
over a whole data set in order: slices of them, no copy; the networks only
read their inputs). In training,
batches hold series of similar length (sorted within shuffled pools of several
batches): the networks trim a batch to its longest series, so a batch of long
stays no longer pads the short ones it would otherwise have been drawn with.
"""

import torch
from torch.utils.data import Subset

__all__ = ["TensorBatches", "POOL_BATCHES"]

#: Training batches are formed from pools of this many batches of shuffled
#: samples, sorted by length within the pool: batches stay random (a pool is a
#: random draw) while their series have similar lengths.
POOL_BATCHES = 16


def _unwrap(dataset):
    """The skorch dataset under ``dataset`` and the sample indices it covers."""
    indices = None
    while isinstance(dataset, Subset):
        sub = torch.as_tensor(dataset.indices, dtype=torch.long)
        indices = sub if indices is None else sub[indices]
        dataset = dataset.dataset
    return dataset, indices


class TensorBatches:
    """Iterate ``(X_batch, y_batch)`` pairs over a dataset of tensors.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.utils.data.Subset of one
        Its ``X`` is a dict of tensors sharing the first dimension (``v``, the
        valid-step mask, gives each sample's length); ``y`` a tensor or None.
    batch_size : int
        Samples per batch.
    shuffle : bool, default=False
        Draw batches in a random order from length-sorted pools (training);
        False keeps the samples' order (inference).
    generator : torch.Generator or None, default=None
        Source of randomness for ``shuffle``.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        base, indices = _unwrap(dataset)
        self.X = base.X
        self.y = base.y
        n = next(iter(self.X.values())).shape[0]
        self.indices = torch.arange(n) if indices is None else indices
        # every sample in order: inference batches are then slices (views), not copies
        self.in_order = indices is None
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return -(-len(self.indices) // self.batch_size)

    def _order(self):
        """Sample indices batch after batch, as a list of index tensors."""
        idx = self.indices
        size = self.batch_size
        if not self.shuffle:
            return list(idx.split(size))
        idx = idx[torch.randperm(len(idx), generator=self.generator)]
        lengths = self.X["v"][idx].sum(1)
        batches = []
        pool = size * POOL_BATCHES
        for start in range(0, len(idx), pool):
            part = idx[start : start + pool]
            order = torch.argsort(lengths[start : start + pool], stable=True)
            batches.extend(part[order].split(size))
        perm = torch.randperm(len(batches), generator=self.generator)
        return [batches[i] for i in perm.tolist()]

    def __iter__(self):
        if self.in_order and not self.shuffle:
            for start in range(0, len(self.indices), self.batch_size):
                end = start + self.batch_size
                yield {k: t[start:end] for k, t in self.X.items()}, (self.y[start:end] if self.y is not None else None)
            return
        for rows in self._order():
            # index_select copies whole rows (3x faster than t[rows] for a batch of summaries)
            Xb = {k: t.index_select(0, rows) for k, t in self.X.items()}
            yb = self.y.index_select(0, rows) if self.y is not None else None
            yield Xb, yb
