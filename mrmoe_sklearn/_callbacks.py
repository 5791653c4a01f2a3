"""The package's own skorch callbacks: validation scores, checkpoints and progress.

* :class:`ValidationScore` scores the validation part of a fit with any
  scikit-learn scorer (``early_stopping_scoring``) from the outputs that the
  validation loss already computed (no second forward pass);
* :class:`Checkpoint` writes the last and the best training state to a folder
  after every epoch, atomically, and restores it for ``fit(..., resume=True)``;
* :class:`Progress` draws the progress bars of ``verbose=2``.

All are picklable (a fitted estimator keeps its network's callbacks).
"""

import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import get_scorer
from skorch.callbacks import Callback, EarlyStopping, LRScheduler

__all__ = [
    "ValidationScore",
    "EpochEndEarlyStopping",
    "Checkpoint",
    "Progress",
    "LAST",
    "BEST",
    "read_checkpoint",
    "progress_bar",
]

#: File names of the checkpoints in ``checkpoint_dir``.
LAST = "last.pt"
BEST = "best.pt"


# --------------------------------------------------------------- scoring
class _ClassifierView(ClassifierMixin, BaseEstimator):
    """What a scorer sees of a classifier in training: its outputs on the validation set."""

    def __init__(self, classes):
        self.classes = classes

    def _set(self, logits):
        self.classes_ = self.classes
        self.logits_ = logits
        return self

    def decision_function(self, X):
        z = self.logits_
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X):
        z = self.logits_ - self.logits_.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[np.argmax(self.logits_, axis=1)]

    def decode(self, y):
        return self.classes[np.asarray(y)]


class _RegressorView(RegressorMixin, BaseEstimator):
    """What a scorer sees of a regressor in training: its outputs in the target's units."""

    def __init__(self, mean, scale, one_d):
        self.mean = mean
        self.scale = scale
        self.one_d = one_d

    def _set(self, outputs):
        self.outputs_ = outputs
        return self

    def _to_target(self, z):
        z = z * self.scale + self.mean
        return z[:, 0] if self.one_d else z

    def predict(self, X):
        return self._to_target(self.outputs_)

    def decode(self, y):
        return self._to_target(np.asarray(y, dtype=np.float64))


class ValidationScore(Callback):
    """Score the validation part (or the training batches) of every epoch with a scikit-learn scorer.

    The outputs and targets of the validation batches are collected as the
    network computes its validation loss (with ``on_train``, those of the
    training batches as the network trains on them, in training mode, as
    skorch's ``EpochScoring(on_train=True)`` scores), then the scorer is applied to a
    view of the estimator holding them (``predict_proba``,
    ``decision_function`` and ``predict`` of a classifier; ``predict`` of a
    regressor). The sample weights of the validation part, if any, go to the
    scorer. Records ``name`` and ``name + "_best"`` in the history.

    Parameters
    ----------
    scoring : str or callable
        A scorer name of :func:`sklearn.metrics.get_scorer` or a callable
        ``scorer(estimator, X, y)``, also given ``sample_weight=`` where the
        validation part is weighted; greater is better.
    name : str
        History key.
    view : estimator view
        Maps the outputs and encoded targets to what the scorer needs.
    on_train : bool, default=False
        Score the training batches instead of the validation part.
    """

    def __init__(self, scoring, name, view, on_train=False):
        self.scoring = scoring
        self.name = name
        self.view = view
        self.on_train = on_train

    def initialize(self):
        self.scorer_ = get_scorer(self.scoring)
        self.best_ = -math.inf
        self._reset()
        return self

    def _reset(self):
        self.outputs_, self.targets_, self.weights_ = [], [], []

    def on_train_begin(self, net, **kwargs):
        self.best_ = max((h[self.name] for h in net.history if self.name in h), default=-math.inf)

    def on_epoch_begin(self, net, **kwargs):
        self._reset()

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if bool(training) != bool(getattr(self, "on_train", False)) or y_pred is None:  # (pickled before it)
            return
        Xb, yb = batch
        self.outputs_.append(y_pred.detach().double().cpu())
        self.targets_.append(yb.detach().cpu())
        w = Xb.get("w") if isinstance(Xb, dict) else None
        self.weights_.append(None if w is None else w.detach().double().cpu())

    def on_epoch_end(self, net, **kwargs):
        if not self.outputs_:
            return
        outputs = torch.cat(self.outputs_).numpy()
        y = self.view.decode(torch.cat(self.targets_).numpy())
        weights = None if self.weights_[0] is None else torch.cat(self.weights_).numpy()
        self._reset()
        # as scikit-learn calls a scorer: sample_weight only when there are weights (a callable
        # scorer(estimator, X, y) need not take it)
        kwargs = {} if weights is None else {"sample_weight": weights}
        score = float(self.scorer_(self.view._set(outputs), outputs, y, **kwargs))
        is_best = score > self.best_
        self.best_ = max(self.best_, score)
        net.history.record(self.name, score)
        net.history.record(self.name + "_best", bool(is_best))

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("outputs_", "targets_", "weights_"):
            state[key] = []
        return state


# -------------------------------------------------------- early stopping
class EpochEndEarlyStopping(EarlyStopping):
    """skorch's :class:`~skorch.callbacks.EarlyStopping`, stopping once the epoch is over.

    skorch's stops training by raising ``KeyboardInterrupt`` from its own
    ``on_epoch_end``, so that the callbacks after it (the checkpoint, the
    progress bars, the user's callbacks and scores, the epoch table) never
    see the end of the last epoch. This one records the stop and its
    message; the network calls :meth:`stop_if_requested` once every callback
    has run. The decision, the counts and the best weights are skorch's.
    """

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.stop_messages_ = None

    def on_epoch_end(self, net, **kwargs):
        self.stop_messages_ = []
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            return  # raised again by stop_if_requested, after the other callbacks
        self.stop_messages_ = None  # (skorch writes a message only when it stops)

    def stopping(self):
        """Whether this epoch ends training (between this callback's epoch end and the network's stop)."""
        return self.__dict__.get("stop_messages_") is not None

    def _sink(self, text, verbose):
        messages = self.__dict__.get("stop_messages_")
        if messages is None:
            return super()._sink(text, verbose)
        messages.append((text, verbose))

    def stop_if_requested(self):
        """Write the stop's message and raise skorch's ``KeyboardInterrupt`` when this epoch ends training."""
        messages, self.stop_messages_ = self.__dict__.get("stop_messages_"), None
        if messages is None:
            return
        for text, verbose in messages:
            super()._sink(text, verbose)
        raise KeyboardInterrupt


# ----------------------------------------------------------- checkpoints
def _atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    A crash (even SIGKILL) mid-write leaves the previous file intact: the data
    are flushed to disk before the rename, which is atomic on POSIX and
    Windows file systems; the temporary file is removed on any error.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_save(obj, path):
    """``torch.save`` of ``obj`` to ``path``, atomically (:func:`_atomic_write`)."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def _atomic_copy(src, dst):
    """Copy ``src`` to ``dst``, atomically (:func:`_atomic_write`)."""

    def copy(out):
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)

    _atomic_write(dst, copy)


def read_checkpoint(directory):
    """The state in ``directory/last.pt``, or None when there is none.

    Temporary files left by a write that was killed are removed.
    """
    directory = Path(directory)
    for stale in directory.glob("*.pt.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    path = directory / LAST
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pragma: no cover - only a foreign or damaged file
        raise ValueError(f"The checkpoint {path} cannot be read ({exc}); remove it to start afresh.") from exc


def _callback_state(cb):
    """The resumable state of the package's stateful callbacks."""
    if isinstance(cb, EarlyStopping):
        return {
            "misses_": cb.misses_,
            "dynamic_threshold_": cb.dynamic_threshold_,
            "best_epoch_": cb.best_epoch_,
            "best_model_weights_": cb.best_model_weights_,
        }
    if isinstance(cb, LRScheduler) and getattr(cb, "lr_scheduler_", None) is not None:
        return {"lr_scheduler_": cb.lr_scheduler_.state_dict(), "batch_idx_": cb.batch_idx_}
    return None


def _load_callback_state(cb, state):
    if isinstance(cb, EarlyStopping):
        cb.__dict__.update(state)
    elif isinstance(cb, LRScheduler):
        cb.lr_scheduler_.load_state_dict(state["lr_scheduler_"])
        cb.batch_idx_ = state["batch_idx_"]


class Checkpoint(Callback):
    """Write the training state to ``directory`` after every epoch.

    ``last.pt`` holds the state after the latest epoch: weights, optimiser,
    history, the resumable state of the early stopping and learning-rate
    schedule, the shuffling and dropout random states, and the estimator's
    ``meta`` (scaling statistics, targets, seed). ``best.pt`` is a copy of it
    from the best epoch so far (validation score or loss, else training
    loss). Each file is replaced atomically. At the end of training
    ``last.pt`` is written once more, marked finished, with the final weights.

    Parameters
    ----------
    directory : str or path-like
    meta : dict
        Estimator state stored with every checkpoint.
    monitor : str
        History key whose ``_best`` flag marks the best epoch.
    """

    def __init__(self, directory, meta, monitor):
        self.directory = directory
        self.meta = meta
        self.monitor = monitor

    def initialize(self):
        self.resume_state_ = None
        return self

    def _state(self, net, finished):
        return {
            "format": 1,
            "finished": finished,
            "meta": self.meta,
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "history": [dict(h) for h in net.history],
            "callbacks": {name: _callback_state(cb) for name, cb in net.callbacks_},
            "shuffle_rng": net.shuffle_generator_.get_state() if net.__dict__.get("shuffle_generator_") else None,
            "torch_rng": torch.get_rng_state(),
        }

    def _write(self, net, finished):
        directory = Path(self.directory)
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_save(self._state(net, finished), directory / LAST)
        return directory

    def on_train_begin(self, net, **kwargs):
        # skorch's callbacks reset their state here; the ones before this one
        # (the package's) get the state of the fit being resumed back
        state, self.resume_state_ = self.resume_state_, None
        if state is None:
            return
        net.optimizer_.load_state_dict(state["optimizer"])
        for name, cb in net.callbacks_:
            saved = state["callbacks"].get(name)
            if saved is not None:
                _load_callback_state(cb, saved)

    def on_epoch_end(self, net, **kwargs):
        if any(isinstance(cb, EpochEndEarlyStopping) and cb.stopping() for _, cb in net.callbacks_):
            return  # the fit ends with this epoch: on_train_end writes it, finished
        directory = self._write(net, finished=False)
        if net.history[-1].get(self.monitor + "_best"):
            _atomic_copy(directory / LAST, directory / BEST)

    def on_train_end(self, net, **kwargs):
        if len(net.history):
            self._write(net, finished=not net.__dict__.get("interrupted_", False))


# -------------------------------------------------------------- progress
def _in_notebook():
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        return shell.get_ipython() is not None and "IPKernelApp" in shell.get_ipython().config
    except Exception:  # pragma: no cover - a foreign IPython
        return False


class _LineBar:
    """Fallback "bar" for logs and workers: a line now and then, no carriage returns."""

    def __init__(self, total, desc, leave=True):
        self.total, self.desc, self.leave = total, desc, leave
        # a kept bar (the epochs) writes a line per update; a transient one (the
        # batches of an epoch, a prediction) one every LINE_EVERY seconds
        self.every = 0.0 if leave else LINE_EVERY
        self.n = 0
        self.postfix = ""
        self._last = time.monotonic()

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every and (self.leave or self.n < self.total):
            self._last = now
            self.write(f"{self.desc}: {self.n}/{self.total}{self.postfix}")

    def set_postfix_str(self, text, refresh=True):
        self.postfix = f" [{text}]" if text else ""

    @staticmethod
    def write(text, file=None, end="\n"):
        print(text, file=file or sys.stderr, end=end, flush=True)

    def close(self):
        pass


#: Off a terminal, a transient bar writes its line at most this often (seconds).
LINE_EVERY = 30.0


def progress_bar(total, desc, leave=True, position=0):
    """A tqdm bar on stderr in a terminal or notebook, else plain lines (logs, workers)."""
    interactive = _in_notebook() or getattr(sys.stderr, "isatty", lambda: False)()
    if interactive:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - skorch requires tqdm
            tqdm = None
        if tqdm is not None:
            return tqdm(total=total, desc=desc, leave=leave, position=position, file=sys.stderr, dynamic_ncols=True)
    return _LineBar(total, desc, leave=leave)


def _write_line(text):
    """PrintLog's sink under ``verbose=2``: a line above the bars."""
    try:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)
    except ImportError:  # pragma: no cover
        print(text)


class Progress(Callback):
    """Progress bars of a fit: epochs (with losses and the validation score) and each epoch's batches.

    Parameters
    ----------
    score_key : str or None
        History key of the validation score shown beside the losses.
    """

    def __init__(self, score_key=None):
        self.score_key = score_key

    def initialize(self):
        self.epochs_ = self.batches_ = None
        return self

    def on_train_begin(self, net, X=None, **kwargs):
        done = len(net.history)
        total = net.__dict__.get("epochs_total_") or done + net.max_epochs
        self.epochs_ = progress_bar(total, "epochs")
        if done:
            self.epochs_.update(done)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        n = len(net.get_iterator(dataset_train, training=True))
        if dataset_valid is not None:
            n += len(net.get_iterator(dataset_valid))
        self.batches_ = progress_bar(n, f"epoch {len(net.history)}", leave=False, position=1)

    def on_batch_end(self, net, training=None, loss=None, **kwargs):
        if self.batches_ is None:
            return
        if training and loss is not None:
            self.batches_.set_postfix_str(f"loss={loss.detach().item():.4f}", refresh=False)
        self.batches_.update(1)

    def on_epoch_end(self, net, **kwargs):
        if self.batches_ is not None:
            self.batches_.close()
            self.batches_ = None
        row = net.history[-1]
        keys = dict.fromkeys(("train_loss", "valid_loss", self.score_key))  # the score may be the valid_loss
        parts = [f"{k}={row[k]:.4f}" for k in keys if k and k in row]
        self.epochs_.set_postfix_str(", ".join(parts), refresh=False)
        self.epochs_.update(1)

    def on_train_end(self, net, **kwargs):
        for bar in (self.batches_, self.epochs_):
            if bar is not None:
                bar.close()
        self.epochs_ = self.batches_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["epochs_"] = state["batches_"] = None
        return state


class ProgressIterator:
    """Batches of a prediction, counted on a progress bar."""

    def __init__(self, batches, desc="predict"):
        self.batches = batches
        self.desc = desc

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        bar = progress_bar(len(self.batches), self.desc, leave=False)
        try:
            for item in self.batches:
                yield item
                bar.update(1)
        finally:
            bar.close()
