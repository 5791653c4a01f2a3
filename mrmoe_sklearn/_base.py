"""The shared estimator base: scikit-learn API on top of a skorch network.

All classifiers of the package derive from :class:`BaseTimeSeriesClassifier`,
which validates the input (through :mod:`mrmoe_sklearn._data`), learns the
scaling, builds the skorch network in ``fit`` from flat constructor parameters
and maps predictions back to the original labels. A subclass only says which
PyTorch module to build (``_build_module``).
"""

import contextlib
import copy
import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import get_scorer_names
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochScoring, LRScheduler
from skorch.dataset import Dataset, ValidSplit
from skorch.helper import predefined_split
from skorch.history import History
from skorch.utils import to_tensor

from ._batches import TensorBatches, _unwrap
from ._callbacks import (
    Checkpoint,
    EpochEndEarlyStopping,
    Progress,
    ProgressIterator,
    ValidationScore,
    _ClassifierView,
    _RegressorView,
    _write_line,
    read_checkpoint,
)
from ._data import SeriesData, check_series, fit_scaling, prepare_batch
from ._flat import ELEMENTWISE_OPTIMIZERS, FlatParameters
from ._params import POSITIVE_INT, TIME_CHANNEL, DeviceOptions, invalid_parameter
from .nn import kernel
from .nn.models import row_copies

__all__ = [
    "BaseTimeSeriesEstimator",
    "BaseTimeSeriesClassifier",
    "BaseTimeSeriesRegressor",
    "TrainingDivergedError",
    "COMMON_PARAMS_DOC",
    "REGRESSOR_PARAMS_DOC",
]


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss or its gradients stop being finite."""


def _lr_doc(default):
    """The docstring entry of ``lr`` with the estimator's ``default``."""
    return f"""\
    lr : float or "auto", default={default}
        Learning rate of the AdamW optimiser. ``"auto"`` is 5e-4 when early
        stopping is on (the validation part then picks the epoch, and the
        smaller steps gave better epochs to pick: see docs/physionet.md) and
        1e-3 when it is off (a fixed number of epochs on a small set needs
        the larger steps).
"""


_TRAINING_DOC = """\
    lr_schedule : {"plateau", "cosine", None}, default="plateau"
        Learning-rate schedule: ``"plateau"`` halves it when the validation
        loss (or ``early_stopping_scoring``) has not improved for
        ``max(1, patience // 2)`` epochs (only with early stopping; otherwise
        the rate stays constant), ``"cosine"`` anneals it to 0 over
        ``max_epochs`` (every ``warm_start`` fit anew); None keeps it constant.
    max_epochs : int or "auto", default="auto"
        Number of passes over the training data (fewer with early stopping).
        ``"auto"``: ``AUTO_EPOCHS`` (30), or on small data as many as make
        ``AUTO_MIN_STEPS`` (250) optimiser steps (mini-batches of the training
        part): ``max(30, ceil(250 / batches per epoch))``, e.g. 250 epochs of
        one batch for 50 series; from about 530 training series (9 batches
        of 64) it is 30. Thirty epochs of a few batches left small
        sets undertrained.
    batch_size : int, default=64
        Samples per mini-batch in training. Prediction (and validation) runs
        without a backward pass in larger batches: up to
        ``max(batch_size, min(512, 65536 // n_timesteps))`` samples.
    weight_decay : float, default=1e-4
        Decoupled weight decay of AdamW.
    dropout : float, default=0.1
        Dropout before the output layer.
"""

_CLASS_WEIGHT_DOC = """\
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the cross-entropy loss, as in scikit-learn
        (a class missing from a dict weighs 1; labels of a dict that are not
        in ``y`` are ignored where every class of ``y`` has a weight);
        multiplied with ``sample_weight`` when both are given.
"""

_LOSS_DOC = """\
    loss : {"squared_error", "huber"}, default="squared_error"
        Training loss on the standardised targets: the mean squared error, or
        the Huber loss (quadratic within 1 standard deviation of the target,
        linear beyond: robust to outlying targets).
"""

_STOPPING_DOC = """\
    early_stopping : bool or "auto", default="auto"
        Stop when the validation loss (or ``early_stopping_scoring``) has not
        improved for ``patience`` epochs and keep the best epoch's weights
        (in memory). The validation data is ``X_val``/``y_val`` when given to
        :meth:`fit`, else a held-out ``validation_fraction`` of the training
        data (seeded; stratified for classifiers). ``"auto"`` switches it on
        from 1,000 training series or when ``X_val`` is given (small sets keep
        all their data for training); False trains for ``max_epochs`` on all
        the data.
    early_stopping_scoring : str, callable or None, default=None
        What early stopping (and the ``"plateau"`` schedule) follows: None is
        the validation loss; otherwise a scikit-learn scorer name (such as
        ``"roc_auc"``, ``"average_precision"``, ``"r2"``) or a callable
        ``scorer(estimator, X, y)``, greater is better, computed on the
        validation part each epoch (weighted by its sample weights) and
        recorded in ``history_`` as ``"valid_<name>"`` (``"valid_score"``
        for a callable). Unused without early stopping.
    validation_fraction : float, default=0.1
        Held-out fraction when early stopping is on and no ``X_val`` is given.
    patience : int, default=5
        Epochs without improvement before stopping.
    clip_grad_norm : float or None, default=1.0
        Gradient norm clipping threshold; None disables clipping. A non-finite
        loss or gradient stops training with :class:`TrainingDivergedError`.
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps (non-decreasing per sample). It is
        removed from the features and elapsed times are derived from it. None
        means unit-spaced steps.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Torch device for training and prediction; "auto" picks CUDA when
        available. A model fitted on a GPU unpickles on a CPU-only machine.
    n_threads : int or None, default=None
        Torch CPU threads used while fitting and predicting. None keeps torch's
        setting (joblib's loky workers already limit it), except inside a Dask
        worker, where each task uses one thread so that parallel tasks and
        workers do not oversubscribe the cores.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling, dropout and the
        validation split. Used inside ``fit`` only; global RNG state is left
        untouched.
    verbose : int, default=0
        0 is silent; 1 prints a line per epoch (loss, validation loss and
        score, time); 2 also draws progress bars (on stderr): the epochs with
        the latest losses and validation score, each epoch's batches with the
        running loss, and the batches of predictions on large inputs (from
        ``PROGRESS_MIN_BATCHES`` inference batches). Bars are drawn in
        terminals and notebooks; elsewhere (log files, joblib or Dask workers)
        a plain line now and then replaces them.
    warm_start : bool, default=False
        When True and the estimator is already fitted on data of the same
        channels and targets, ``fit`` continues training the existing network
        for ``max_epochs`` more epochs (scaling statistics are kept). The
        parameters that build the network (its sizes, rates and parts, and a
        regressor's ``loss``) must be those it was built with: a change
        raises a ``ValueError``. So does a change of what sets up the
        training: ``early_stopping`` switched on or off (``"auto"`` keeps
        what the first fit resolved; with early stopping on, a warm fit
        validates on its ``X_val``, else on a draw from its own data),
        ``lr_schedule``, ``callbacks``, ``checkpoint_dir`` and, with early
        stopping, ``patience``, ``early_stopping_scoring`` and
        ``validation_fraction``. ``lr``
        (the optimiser starts the fit at it, also after ``"plateau"``
        lowered it), ``max_epochs``, ``batch_size``, ``weight_decay``,
        ``dropout``, ``clip_grad_norm``, ``class_weight`` and, where the
        model has them, ``aux_loss_weight`` and ``load_balance`` take their
        current values.
    callbacks : list of skorch callbacks or None, default=None
        Extra :mod:`skorch.callbacks` (instances, or ``(name, callback)``
        pairs), run after the package's own (validation score, schedule,
        early stopping, checkpoints, progress) at every event of the fit,
        e.g. :class:`skorch.callbacks.LRScheduler`,
        :class:`skorch.callbacks.EpochScoring` or a pruning callback of
        Optuna (see the user guide). An ``EpochScoring`` of a scorer name
        (e.g. ``EpochScoring("roc_auc")``, on the validation part, or with
        ``on_train=True`` on the epoch's training batches) scores the
        estimator's probabilities, not the inner network's logits, under its
        usual history key. ``fit`` uses (and re-initialises) these
        instances; ``clone`` copies them; a fitted estimator pickles them.
    checkpoint_dir : str, path-like or None, default=None
        Folder (created if needed) where every epoch writes the training
        state: ``last.pt`` (weights, optimiser, history, early-stopping and
        schedule state, scaling statistics, random states) and ``best.pt``
        (the same at the best epoch so far), each replaced atomically, so a
        killed fit leaves a readable checkpoint. ``fit(..., resume=True)``
        continues from it. None writes nothing. Parallel fits (grid search)
        need a folder each.
"""


def common_params_doc(lr="1e-3"):
    """The classifiers' shared parameters section (``COMMON_PARAMS_DOC``) with ``lr``'s default."""
    return _lr_doc(lr) + _TRAINING_DOC + _CLASS_WEIGHT_DOC + _STOPPING_DOC


COMMON_PARAMS_DOC = common_params_doc()
REGRESSOR_PARAMS_DOC = _lr_doc("1e-3") + _TRAINING_DOC + _LOSS_DOC + _STOPPING_DOC


#: Inference batches hold ``PREDICT_STEPS // n_timesteps`` samples, at least
#: ``PREDICT_MIN_BATCH`` and at most ``PREDICT_MAX_BATCH`` or
#: ``PREDICT_MAX_STEPS // n_timesteps`` (the memory bound of long series), and
#: never fewer than the training batch size: without a backward pass the
#: per-step overhead of the recurrence is shared by more samples (MR-MoE
#: predicted 1.9x faster at 64 steps with 512-sample batches than with 64),
#: while a batch's arrays stay within the processor's caches. Measured on 2026-12-04 (2,000 series of 16
#: channels, one thread, medians of 15 calls, MR-MoE / LSTM in ms; the former
#: rule, 65,536 steps and at most 512 samples, against this one): 8 steps
#: 13.6 / 10.6 with 512 samples, 11.6 / 10.0 with 2,048; 16 steps 19.7 / 18.0
#: with 512, 18.3 / 17.3 with 1,024; 32 steps 35 / 36 with 512, 39 / 47 with
#: 1,024; 64 steps 70 / 85 with 512, 65 / 69 with 256; 128 steps 146 / 176 with
#: 512, 129 / 144 with 128; 256 steps 275 / 354 with 256, 246 / 267 with 128;
#: 1024 steps 1,199 / 1,291 with 64, 1,176 / 1,354 with 128 (64 kept).
PREDICT_STEPS = 16384
PREDICT_MAX_BATCH = 2048
PREDICT_MIN_BATCH = 128
PREDICT_MAX_STEPS = 65536
#: With ``early_stopping="auto"``, early stopping is on from this many training
#: samples (or whenever validation data is passed to ``fit``).
AUTO_EARLY_STOPPING = 1000
#: ``max_epochs="auto"``: this many epochs, or as many as make ``AUTO_MIN_STEPS``
#: optimiser steps where the training part has few batches. Measured on eight
#: small sets that aeon ships (20 to 270 training series; 2026-12-03, MR-MoE
#: with its defaults, seeds 0 and 1): 30 epochs left the training loss at 0.25
#: to 1.7 and gave a mean test AUROC of 0.871; at least 250 steps 0.918, 500
#: 0.921, 1,000 0.922. On the built-in generator's data (150 to 600 training
#: series, three seeds), where 30 epochs are enough, more cost a little: 0.853,
#: 0.846, 0.842. 250 ties 500 over both at half the time and leaves every fit
#: from about 530 series as it was (docs/model.md, "Epochs on small data").
AUTO_EPOCHS = 30
AUTO_MIN_STEPS = 250
#: ``lr="auto"``: the learning rate with early stopping on, and with it off.
AUTO_LR_EARLY_STOPPING = 5e-4
AUTO_LR = 1e-3
#: Inference batches are padded (with copies of their rows) to a multiple of this
#: many rows: CPU matrix kernels round differently for small or odd row counts,
#: so without it a sample's prediction changed in the 7th digit with the number
#: of samples predicted with it; measured bit-identical from 1 to 512 samples.
#: MR-MoE's networks take it as ``row_block`` and copy only what needs the
#: copies (their head, where the compiled mixture computes each sample alone).
INFER_ROWS = 32
#: With ``verbose=2`` a prediction shows a progress bar from this many inference batches.
PROGRESS_MIN_BATCHES = 8


def _inference_batch_size(batch_size, dataset):
    """The batch size for inference on ``dataset`` (a dict holding ``x (B, T, F)``)."""
    X = getattr(dataset, "X", dataset)
    x = X.get("x") if isinstance(X, dict) else None
    if x is None or x.ndim != 3 or x.shape[1] == 0:
        return batch_size
    T = x.shape[1]
    return max(batch_size, min(PREDICT_MAX_BATCH, PREDICT_MAX_STEPS // T, max(PREDICT_MIN_BATCH, PREDICT_STEPS // T)))


class _Net(NeuralNet):
    """skorch network adding weighted losses, the auxiliary loss, gradient clipping and divergence checks.

    Sample weights travel with the inputs as the batch key ``"w"`` (removed
    before the module sees the batch); ``class_weights`` (a tensor indexed by
    the encoded class) multiply them. The loss of a batch is the weighted
    mean of the per-sample losses; on the validation part it is normalised by
    the part's mean weight instead, so that skorch's size-weighted mean over
    the batches is the part's exact weighted mean.
    """

    def __init__(self, *args, aux_loss_weight=0.0, clip_grad_norm=None, shuffle_seed=0, class_weights=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.aux_loss_weight = aux_loss_weight
        self.clip_grad_norm = clip_grad_norm
        self.shuffle_seed = shuffle_seed
        self.class_weights = class_weights

    def get_iterator(self, dataset, training=False):
        if training:
            if getattr(self, "shuffle_generator_", None) is None:
                self.shuffle_generator_ = torch.Generator().manual_seed(self.shuffle_seed)
            return TensorBatches(dataset, self.batch_size, shuffle=True, generator=self.shuffle_generator_)
        return TensorBatches(dataset, _inference_batch_size(self.batch_size, _unwrap(dataset)[0]))

    def infer(self, x, **fit_params):
        if not isinstance(x, dict):
            return super().infer(x, **fit_params)
        x = {k: to_tensor(v, device=self.device) for k, v in x.items() if k != "w"}
        # (a module with row_block = INFER_ROWS gives its copies to the parts that need them)
        if self.module_.training or getattr(self.module_, "row_block", 0) == INFER_ROWS:
            return super().infer(x, **fit_params)
        n = len(next(iter(x.values())))
        copies = row_copies(n, INFER_ROWS, self.device)
        if copies is None:
            return super().infer(x, **fit_params)
        # inference on a whole number of row blocks (copies of the batch's rows)
        return super().infer({k: v[copies] for k, v in x.items()}, **fit_params)[:n]

    def _weights(self, X, y_true):
        """Per-sample weights of a batch (sample times class weights), or None."""
        w = X.get("w") if isinstance(X, dict) else None
        if w is not None:
            w = w.to(self.device)
        if self.class_weights is not None:
            cw = self.class_weights.to(self.device)[y_true.long()]
            w = cw if w is None else w * cw
        return w

    def get_split_datasets(self, X, y=None, **fit_params):
        train, valid = super().get_split_datasets(X, y, **fit_params)
        self.valid_weight_mean_ = None
        if valid is not None:
            base, idx = _unwrap(valid)
            X_valid = base.X
            w = X_valid.get("w") if isinstance(X_valid, dict) else None
            y_valid = base.y
            if idx is not None:
                w = None if w is None else w[idx]
                y_valid = y_valid[idx]
            if self.class_weights is not None:
                cw = self.class_weights[y_valid.long()]
                w = cw if w is None else w * cw
            if w is not None:
                if not float(w.sum()) > 0:
                    raise ValueError(
                        "Every sample of the validation part has weight 0 (sample_weight times class_weight); "
                        "give some of them a positive weight, or pass X_val with sample_weight_val."
                    )
                self.valid_weight_mean_ = float(w.double().mean())
        return train, valid

    def _criterion_loss(self, y_pred, y_true, X, training):
        y_true = to_tensor(y_true, device=self.device)
        losses = self.criterion_(y_pred, y_true)
        if losses.ndim > 1:  # multi-output regression: the mean over outputs
            losses = losses.mean(dim=tuple(range(1, losses.ndim)))
        w = self._weights(X, y_true)
        if w is None:
            return losses.mean()
        weighted = (w * losses).sum()
        if not training and self.__dict__.get("valid_weight_mean_"):
            return weighted / (len(w) * self.valid_weight_mean_)
        return weighted / w.sum().clamp_min(torch.finfo(weighted.dtype).tiny)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        members = getattr(self.module_, "member_logits", None)
        if training and members is not None:
            # an Ensemble: each member is trained on its own loss
            self.module_.member_logits = None
            loss = torch.stack([self._criterion_loss(z, y_true, X, training) for z in members]).mean()
        else:
            loss = self._criterion_loss(y_pred, y_true, X, training)
        aux = getattr(self.module_, "aux_loss", None)
        self.module_.aux_loss = None
        if training and aux is not None and self.aux_loss_weight:
            loss = loss.add(aux, alpha=self.aux_loss_weight)  # one operation each way
        return loss

    def notify(self, method_name, **cb_kwargs):
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_epoch_end":
            # early stopping ends the fit once every callback has seen the epoch's end
            for _, cb in self.callbacks_:
                if isinstance(cb, EpochEndEarlyStopping):
                    cb.stop_if_requested()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch swallows KeyboardInterrupt after this loop; remember it so that
        # the estimator can re-raise once its fitted attributes are set.
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch's EarlyStopping stops training by raising it too
            stopped_early = any(
                isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience for _, cb in self.callbacks_
            )
            self.interrupted_ = not stopped_early
            raise

    def train_step(self, batch, **fit_params):
        Xi, yi = batch
        w = self._weights(Xi, to_tensor(yi, device=self.device)) if isinstance(Xi, dict) else None
        if w is not None and not float(w.sum()) > 0:
            # a batch of zero-weight samples: as if absent, no optimiser step
            self._set_training(True)
            with torch.no_grad():
                y_pred = self.infer(Xi)
            self.module_.aux_loss = None
            self.module_.member_logits = None
            return {"loss": torch.zeros((), device=self.device), "y_pred": y_pred}
        return super().train_step(batch, **fit_params)

    def _set_training(self, training=True):
        # skorch calls this before every batch; switching modes walks every submodule through
        # nn.Module.__setattr__ (50 us a batch for MR-MoE's 12 modules), reading them takes 14 us
        modules = (getattr(self, name + "_", None) for name in self._modules + self._criteria)
        if all(
            m.training is training
            for module in modules
            if isinstance(module, torch.nn.Module)
            for m in module.modules()
        ):
            return
        super()._set_training(training)

    def initialize_optimizer(self, triggered_directly=None):
        # an element-wise optimiser steps the parameters as one buffer (see _flat)
        self.flat_params_, self.flat_params_unlinked_ = None, False
        flat = None
        if isinstance(self.optimizer, type) and issubclass(self.optimizer, ELEMENTWISE_OPTIMIZERS):
            flat = FlatParameters.build(p for _, p in self.get_all_learnable_params())
        if flat is None:
            return super().initialize_optimizer()
        args, kwargs = self.get_params_for_optimizer("optimizer", [("flat", flat.flat)])
        self.optimizer_ = self.optimizer(*args, **kwargs)
        self.flat_params_ = flat
        return self

    def _flat(self):
        """The :class:`FlatParameters` the optimiser steps, or None (linked again after unpickling)."""
        flat = self.__dict__.get("flat_params_")
        if flat is None and self.__dict__.get("flat_params_unlinked_"):
            buffer = self.optimizer_.param_groups[0]["params"][0]
            flat = FlatParameters.build((p for _, p in self.get_all_learnable_params()), buffer)
            self.flat_params_, self.flat_params_unlinked_ = flat, False
        return flat

    def _zero_grad_optimizer(self, set_to_none=None):
        flat = self._flat()
        if flat is None:
            return super()._zero_grad_optimizer(set_to_none)
        flat.zero_grad()

    def _step_optimizer(self, step_fn):
        if step_fn is None:
            return super()._step_optimizer(step_fn)

        def step_and_gather():
            # the buffer steps what the callbacks left in .grad, also where one replaced it
            loss = step_fn()
            flat = self.__dict__.get("flat_params_")
            if flat is not None:
                flat.gather()
            return loss

        # parameters frozen since the buffer was built (skorch's Freezer) are put back after the step
        flat = self._flat()
        frozen = None if flat is None else flat.save_frozen(self.optimizer_)
        result = super()._step_optimizer(step_and_gather)
        if frozen is not None:
            flat.restore_frozen(frozen)
        return result

    def __getstate__(self):
        flat = self.__dict__.get("flat_params_")
        if flat is None:
            return super().__getstate__()
        # pickled as separate tensors (a view is pickled with its whole buffer), linked again
        # at the next training step
        flat.unlink()
        self.flat_params_, self.flat_params_unlinked_ = None, True
        return super().__getstate__()

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        max_norm = self.clip_grad_norm if self.clip_grad_norm is not None else math.inf
        flat = self.__dict__.get("flat_params_")
        if flat is not None:
            grads = [flat.flat.grad]
        else:
            grads = [p.grad for p in self.module_.parameters() if p.grad is not None]
        norm = clip_gradients(grads, max_norm)
        if not (math.isfinite(step["loss"].item()) and math.isfinite(norm)):
            epoch = len(self.history)
            raise TrainingDivergedError(
                f"Training diverged in epoch {epoch}: the loss is {step['loss'].item()} and the "
                f"gradient norm {norm}. Lower `lr` (now {self.lr}) and keep "
                f"`clip_grad_norm` set (now {self.clip_grad_norm}); the weights were not updated "
                "with this step."
            )
        return step


def clip_gradients(grads, max_norm):
    """Scale ``grads`` in place so that their total 2-norm is at most ``max_norm``; return that norm before.

    The operations of :func:`torch.nn.utils.clip_grad_norm_` (each tensor's
    norm, the norm of those, the gradients multiplied by ``max_norm / (norm +
    1e-6)`` where that factor is below 1; torch multiplies by it clamped at 1,
    which changes nothing; one tensor's norm on the CPU is the total), so the
    result is the same bit for bit, without its grouping of the tensors by
    device and dtype (the estimators' parameters share one; 177 -> 84 us a
    step for MR-MoE's 21 parameters, one CPU thread).

    Parameters
    ----------
    grads : list of Tensor
        Best on one device, of one dtype (else a tensor at a time).
    max_norm : float
        ``math.inf``: only the norm is computed.

    Returns
    -------
    norm : float
        The total norm (NaN or inf where a gradient is not finite; the
        gradients are then scaled by NaN as torch does).
    """
    if not grads:
        return 0.0
    first = grads[0]
    uniform = all(g.device == first.device and g.dtype == first.dtype for g in grads)
    if len(grads) == 1 and first.is_cpu:
        # one buffer (the estimators' flat gradient): its norm is the total (the norm of one
        # norm is that norm, bit for bit), without the stack and the second norm; on the CPU
        # torch's foreach norm is this norm (elsewhere it may sum in another order)
        total = torch.linalg.vector_norm(first)
    elif uniform:
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    else:
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g).to(first.device) for g in grads]))
    coef = max_norm / (total + 1e-6)
    if not float(coef) >= 1.0:  # below 1, or NaN where the norm is not finite
        if uniform:
            torch._foreach_mul_(grads, coef)
        else:
            for g in grads:
                g.mul_(coef.to(g.device))
    return float(total)


def _snapshot(net):
    """Copy of what training changes: weights, optimiser state, history length."""
    return (
        copy.deepcopy(net.module_.state_dict()),
        copy.deepcopy(net.optimizer_.state_dict()),
        len(net.history),
    )


def _restore(net, snapshot):
    module_state, optimizer_state, n_epochs = snapshot
    net.module_.load_state_dict(module_state)
    net.optimizer_.load_state_dict(optimizer_state)
    del net.history[n_epochs:]


def _train(fit_method, X, y, **kwargs):
    """Run skorch's fit or partial_fit and make sure the result is usable.

    The per-step check in ``_Net`` cannot see damage done by the very last
    optimiser step, and an absurd learning rate can make torch itself fail to
    convert it; both end as :class:`TrainingDivergedError`.
    """
    net = fit_method.__self__
    try:
        fit_method(X, y, **kwargs)
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        raise TrainingDivergedError(f"Training failed numerically ({exc}). Lower `lr` (now {net.lr}).") from exc
    probe = {k: v[: net.batch_size] for k, v in X.items() if k != "w"}
    finite = all(torch.isfinite(p).all() for p in net.module_.parameters())
    if not (finite and torch.isfinite(net.forward(probe, training=False)).all()):
        raise TrainingDivergedError(
            f"Training diverged: the weights or scores are no longer finite. Lower `lr` (now {net.lr}) and "
            f"keep `clip_grad_norm` set (now {net.clip_grad_norm})."
        )


#: AdamW's fused implementation (one kernel per parameter instead of about ten
#: tensor operations) runs on CPU and CUDA from torch 2.4; measured 0.41 -> 0.09 ms
#: per step for the default MR-MoE on one CPU thread.
_FUSED_ADAMW = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 4)


def _resolve_device(device):
    """The torch device to fit on; ``device`` satisfies :class:`~mrmoe_sklearn._params.DeviceOptions`."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'cpu' or 'auto'.")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) exist.")
    return device


def _worker_threads():
    """Thread count of the enclosing Dask worker, or None outside one."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    state = getattr(worker, "state", worker)
    return getattr(state, "nthreads", None)


@contextlib.contextmanager
def _torch_threads(n_threads, kernel_in_use=True):
    """Torch settings for fitting and predicting, restored afterwards.

    Sets the intra-op thread count (``n_threads``, or one thread per task
    inside a Dask worker) and flushes denormal floats to zero: gradients that
    decay through long recurrences otherwise turn denormal and slow every
    recurrent model (the LSTM baseline too) by an order of magnitude on CPUs.
    Flushing is a setting of each thread; where the compiled kernel is loaded
    (``kernel_in_use`` loads it) it is set in torch's threads too (see
    :func:`~mrmoe_sklearn.nn.kernel.flush_denormals`), so that a sample's
    arithmetic does not depend on the thread that computes it, and on exit
    every thread gets the calling thread's setting from before. Without the
    kernel only the calling thread's is set, and switched off on exit.
    """
    # Inside a Dask worker every task gets one thread: a worker with T threads
    # runs T tasks at once, and torch's setting is shared by the whole process.
    n = n_threads if n_threads is not None else (1 if _worker_threads() else None)
    old = threads = torch.get_num_threads()
    flushed_before = None
    try:
        if n is not None:
            torch.set_num_threads(int(n))
        threads = torch.get_num_threads()
        flushed_before = kernel.flush_denormals(None, 1, load_library=kernel_in_use)
        kernel.flush_denormals(True, threads, load_library=False)
        yield
    finally:
        try:
            kernel.flush_denormals(bool(flushed_before), threads, load_library=False)
        finally:
            torch.set_num_threads(old)


def _check_weights(weights, n_samples, name="sample_weight"):
    """``weights`` as a float64 array of ``n_samples`` non-negative finite values (None stays None)."""
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(weights).__name__} ({exc}).") from exc
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), one weight per sample; got shape {w.shape}.")
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite; sample {i} has weight {w[i]} ({int(bad.sum())} non-finite).")
    negative = w < 0
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise ValueError(f"{name} must be non-negative; sample {i} has weight {w[i]} ({int(negative.sum())} negative).")
    if not w.sum() > 0:
        raise ValueError(f"{name} are all zero; at least one sample needs a positive weight.")
    return w


@dataclass
class _FitJob:
    """What one ``fit`` works on, once its inputs are checked."""

    data: SeriesData
    weights: np.ndarray | None
    y_enc: np.ndarray
    targets: dict
    n_channels: int
    val: tuple | None
    stopping: bool
    epochs: int
    device: str
    seed: int
    checkpoint: dict | None


def _named_callback(item):
    """An element of ``callbacks`` as ``(name, callback)``: a ``(str, callback)`` pair, else ``(None, item)``."""
    return item if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) else (None, item)


def _callback_ids(callbacks):
    """What identifies ``callbacks`` (instances or ``(name, instance)`` pairs): names and object ids."""
    return tuple((name, id(cb)) for name, cb in map(_named_callback, callbacks or ()))


def _seed_torch(seed, device):
    """Seed the torch random states that a fit on ``device`` draws from: the CPU's, and that CUDA device's.

    Not ``torch.manual_seed``: it also seeds every other accelerator (all CUDA
    devices, MPS), whose states the fit's ``fork_rng`` does not restore (on a
    CUDA machine not yet using CUDA, the seed is queued for its
    initialisation), so that a CPU fit would change the user's GPU random
    numbers.

    Parameters
    ----------
    seed : int
    device : str
        A resolved device (``"cpu"``, ``"cuda"`` or ``"cuda:N"``).
    """
    torch.default_generator.manual_seed(seed)
    if device.startswith("cuda"):
        with torch.cuda.device(_cuda_index(device)):
            torch.cuda.manual_seed(seed)


def _cuda_index(device):
    """The index of the CUDA device ``device`` (``"cuda"``: the current one, where torch puts the model)."""
    index = torch.device(device).index
    return torch.cuda.current_device() if index is None else index


def _draw_seed(random_state):
    """The seed of a fit's local random states, drawn from ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _subset(data, rows):
    """The samples ``rows`` (a boolean mask, indices or a slice) of a :class:`SeriesData`."""
    return SeriesData(
        values=data.values[rows],
        times=None if data.times is None else data.times[rows],
        lengths=data.lengths[rows],
        layout=data.layout,
    )


def _width_2d(data):
    """The number of time steps of a :class:`SeriesData` read from a 2D ``X`` (its columns), else None."""
    return data.values.shape[1] if data.layout == "2d" else None


def _fingerprint(*arrays):
    """A short hash of the training data, to tell a resumed fit it got other data."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.view(np.uint8).reshape(-1) if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()


def _check_callbacks(est):
    """The elements of ``callbacks`` (its type is a declared constraint)."""
    for entry in est.callbacks or ():
        _, item = _named_callback(entry)
        if not (isinstance(item, Callback) or (isinstance(item, type) and issubclass(item, Callback))):
            allowed = "a list of skorch callbacks (skorch.callbacks.Callback) or (name, callback) pairs, or None"
            raise invalid_parameter("callbacks", type(est).__name__, allowed, est.callbacks)


class BaseTimeSeriesEstimator(BaseEstimator):
    """Shared base of the package's classifiers and regressors; not for direct use.

    It validates the input (through :mod:`mrmoe_sklearn._data`), learns the
    scaling, builds the skorch network in ``fit`` from flat constructor
    parameters, weighs samples, runs the package's callbacks (validation
    score, schedule, early stopping, checkpoints, progress) and the user's.
    :class:`BaseTimeSeriesClassifier` and :class:`BaseTimeSeriesRegressor` say
    what the targets are (``_encode_y``, the criterion, the outputs);
    subclasses of those set their constructor parameters and implement
    ``_build_module(n_features, n_outputs, validating)`` returning a
    ``torch.nn.Module`` that maps the keyword batch ``x, m, dt, v`` to one
    output per class or target.
    """

    #: How an ensemble of networks combines its members ("proba" or "mean").
    _ensemble_combine = "proba"

    #: Whether the network runs in the compiled kernel: a fit or prediction then loads it first
    #: (compiling it on first use), which also flushes denormals in torch's threads from the start.
    _uses_kernel = True

    #: The common parameters (``COMMON_PARAMS_DOC``); subclasses add theirs.
    _parameter_constraints: dict = {
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "lr_schedule": [StrOptions({"plateau", "cosine"}), None],
        "max_epochs": [POSITIVE_INT, StrOptions({"auto"})],
        "batch_size": [POSITIVE_INT],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "early_stopping_scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "validation_fraction": [Interval(Real, 0, 0.5, closed="right")],
        "patience": [POSITIVE_INT],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "time_channel": TIME_CHANNEL,
        "device": [DeviceOptions()],
        "n_threads": [POSITIVE_INT, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [list, tuple, None],
        "checkpoint_dir": [str, os.PathLike, None],
    }

    def _build_module(self, n_features, n_outputs, validating=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def _module_aux_weight(self):
        return 0.0

    #: The constructor parameters the network is built from: the model families name theirs.
    _network_param_names = ()

    def _network_params(self, validating):
        """The constructor parameters the network is built from, as ``{name: value}``.

        Recorded at the cold fit (``_network_params_``); a ``warm_start`` fit
        refuses to continue a network built with other values. These are the
        model family's ``_network_param_names`` (sizes, rates, parts switched
        on or off) and a regressor's ``loss``.

        Parameters
        ----------
        validating : bool
            Whether the network is trained with early stopping (it resolves
            ``"auto"`` values).

        Returns
        -------
        params : dict
            Values comparable with ``==`` (sequences as tuples).
        """
        return {name: getattr(self, name) for name in self._network_param_names}

    def _check_network_params(self):
        """Refuse a ``warm_start`` fit whose network parameters differ from those the network was built with.

        Estimators fitted before the record existed (unpickled) have nothing to
        compare and continue as before.
        """
        fitted = self.__dict__.get("_network_params_")
        if fitted is None:
            return
        current = self._network_params(validating=self.net_.train_split is not None)
        changed = [name for name, value in current.items() if name in fitted and fitted[name] != value]
        if changed:
            now = ", ".join(f"{name}={current[name]!r}" for name in changed)
            before = ", ".join(f"{name}={fitted[name]!r}" for name in changed)
            raise ValueError(
                f"warm_start=True but {now} while the fitted network was built with {before}; these parameters "
                "define the network: set them back, or set warm_start=False to refit."
            )

    def _training_setup(self, validating):
        """The parameters that set up a fit's training around the network, as ``{name: value}``.

        Recorded at the cold fit (``_training_setup_``): the package builds the
        validation split and the callbacks then, so a ``warm_start`` fit
        refuses other values instead of ignoring them. The early-stopping
        parameters count only where early stopping is on; ``callbacks`` by the
        identity of its elements.
        """
        setup = {
            "early_stopping": bool(validating),
            # "plateau" watches the validation loss: without early stopping it is no schedule at all
            "lr_schedule": self.lr_schedule if validating or self.lr_schedule != "plateau" else None,
            "checkpoint_dir": None if self.checkpoint_dir is None else os.path.abspath(self.checkpoint_dir),
            "callbacks": _callback_ids(self.callbacks),
        }
        if validating:
            setup.update(
                patience=self.patience,
                early_stopping_scoring=self.early_stopping_scoring,
                validation_fraction=self.validation_fraction,
            )
        return setup

    def _check_training_setup(self, validating):
        """Refuse a ``warm_start`` fit whose training setup differs from the one the network was fitted with."""
        fitted = self.__dict__.get("_training_setup_")
        if fitted is None:  # fitted (and pickled) before the record existed
            return
        fitted = {**fitted, "callbacks": _callback_ids(fitted["callbacks"])}
        current = self._training_setup(validating)
        changed = [name for name in current if name in fitted and fitted[name] != current[name]]
        if "early_stopping" in changed:  # the rest follows from it (the split, "plateau", patience, ...)
            changed = ["early_stopping"] + [name for name in changed if name in ("callbacks", "checkpoint_dir")]
        if changed:
            names = ", ".join(changed)
            raise ValueError(
                f"warm_start=True but {names} changed since the fit that built the network (with early stopping "
                f"{'on' if fitted['early_stopping'] else 'off'} then, {'on' if validating else 'off'} now); the "
                "validation split and callbacks are set up by that fit: set them back, or set warm_start=False "
                "to refit."
            )

    def _check_param_combinations(self):
        """Check what the declared constraints cannot: parameters bounded by others, elements of lists.

        Called at the start of :meth:`fit`, after scikit-learn has checked each
        parameter against ``_parameter_constraints``. Raises
        :class:`~sklearn.utils._param_validation.InvalidParameterError` (see
        :func:`~mrmoe_sklearn._params.invalid_parameter`).
        """
        _check_callbacks(self)

    # ------------------------------------------------------------ targets
    def _encode_y(self, y, n_samples, weights, fitted):  # pragma: no cover - abstract
        """(encoded y as an ndarray, dict of the fitted target attributes)."""
        raise NotImplementedError

    def _encode_y_val(self, y_val, targets):  # pragma: no cover - abstract
        raise NotImplementedError

    def _target_attrs(self):
        """Names of the fitted attributes describing the targets."""
        return ()

    def _n_outputs(self, targets):  # pragma: no cover - abstract
        raise NotImplementedError

    def _criterion(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _class_weights(self, targets, y_enc):
        return None

    def _scoring_view(self, targets):  # pragma: no cover - abstract
        raise NotImplementedError

    _stratify = False

    # ------------------------------------------------------------------ data
    def _read_X(self, X, fitted):
        data = check_series(
            X,
            time_channel=self.time_channel,
            n_channels=self.n_features_in_ if fitted else None,
            n_timesteps=self.n_timesteps_in_ if fitted else None,
            estimator_name=type(self).__name__,
        )
        n_fitted = len(self.scaling_.mean) if fitted else data.n_features
        if data.n_features != n_fitted:
            raise ValueError(
                f"With time_channel={self.time_channel!r}, X has {data.n_features} feature channels, but "
                f"{type(self).__name__} was fitted on {n_fitted}: time_channel was changed since fit. Set it back, "
                "or refit with warm_start=False."
            )
        return data

    def _batch(self, data):
        arrays = prepare_batch(data, self.scaling_)
        return {k: torch.from_numpy(a) for k, a in arrays.items()}

    def _y_tensor(self, y_enc):
        return torch.from_numpy(y_enc)

    # ------------------------------------------------------------------- fit
    # Long by its docstring (about 65 lines); the code (about 30) checks the inputs and hands them to
    # _fit_warm or _fit_cold.
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None, sample_weight_val=None, resume=False):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timesteps), (n_samples, n_timesteps), or list
            Channels first. 2D input is univariate; a list holds 2D arrays
            ``(n_channels, n_timesteps_i)`` of variable length. NaN marks
            missing values; trailing all-NaN steps are padding.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Class labels (ints or strings, at least two classes) for a
            classifier; real targets (one or several columns) for a regressor.
        X_val, y_val : array-like or None, default=None
            Validation data for early stopping (as scikit-learn's
            ``HistGradientBoostingClassifier``): when given, the stopping epoch
            is chosen on them and all of ``X`` is used for training, instead
            of holding out ``validation_fraction`` of ``X``. Same layout and
            channels as ``X`` (a 2D ``X_val`` has the columns of a 2D ``X``);
            labels among those of ``y``. Requires early stopping
            (``early_stopping=True``, or ``"auto"``, which they switch on).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative, finite weights of the samples: the training loss is
            the weighted mean of the per-sample losses (times ``class_weight``
            for classifiers), and the held-out validation part (early
            stopping) is weighted the same way. A sample of weight 0 counts as
            absent (the scaling statistics and target standardisation are
            learned from the samples of positive weight; a batch of
            zero-weight samples makes no optimiser step).
        sample_weight_val : array-like of shape (n_val_samples,) or None, default=None
            Weights of ``X_val`` for its validation loss and score.
        resume : bool, default=False
            Continue the fit recorded in ``checkpoint_dir`` (interrupted, or
            killed) from its last completed epoch, up to ``max_epochs`` in
            all, with the same data, parameters and random states: the result
            is the fit that was interrupted, finished. Without a checkpoint
            in the folder the fit starts afresh; with a finished one it is
            loaded as it is (with a warning where ``max_epochs`` asks for
            more epochs than it ran). Overrides ``warm_start``.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            A constructor parameter that is not allowed: scikit-learn's
            ``InvalidParameterError``, naming the parameter, the allowed values
            and the value given, as scikit-learn's own estimators raise it.
            Also invalid data in ``X``, ``y``, ``X_val`` or ``y_val`` (named in
            the message), and a ``warm_start`` fit whose data (channels,
            targets) or network parameters differ from the fitted network's.
        TrainingDivergedError
            If the loss, the gradients or the weights become non-finite. A
            cold fit then leaves the estimator unfitted; a ``warm_start`` fit
            restores the weights, optimiser state and history it started from.
        KeyboardInterrupt
            Re-raised after an interruption (Ctrl-C) once the estimator is
            usable: it keeps the weights of the last completed optimiser step
            (the best epoch's with early stopping), ``history_`` holds the
            epochs so far, and every fitted attribute is set.
        """
        self._check_param_combinations()
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together.")
        if sample_weight_val is not None and X_val is None:
            raise ValueError("sample_weight_val was given without X_val and y_val.")
        if resume and self.checkpoint_dir is None:
            raise ValueError("fit(..., resume=True) needs checkpoint_dir: the folder of the fit to resume.")
        ckpt = read_checkpoint(self.checkpoint_dir) if resume else None
        warm = self.warm_start and hasattr(self, "net_") and not resume
        if warm:
            self._check_network_params()
        data = self._read_X(X, fitted=warm)
        n = data.values.shape[0]
        weights = _check_weights(sample_weight, n)
        y_enc, targets = self._encode_y(y, n, weights, fitted=warm)
        if ckpt is not None:
            targets = self._check_checkpoint(ckpt, data, y_enc, weights, targets)
        n_channels = data.n_features + (self.time_channel is not None)
        val = None
        if X_val is not None:
            # a 2D X_val has the width of the network's 2D X, as X at predict time
            n_timesteps = self.n_timesteps_in_ if warm else _width_2d(data)
            val = self._read_validation(X_val, y_val, sample_weight_val, targets, n_channels, n_timesteps)
        if warm and self.early_stopping == "auto":
            # as resolved by the fit that built the network: a warm fit on fewer or more samples, or with
            # X_val, does not switch early stopping on or off (its split and callbacks are that fit's)
            stopping = self.net_.train_split is not None
        else:
            stopping = self._early_stopping_on(n, X_val is not None)
        job = _FitJob(
            data=data,
            weights=weights,
            y_enc=y_enc,
            targets=targets,
            n_channels=n_channels,
            val=val,
            stopping=stopping,
            epochs=self._epochs(n - (self._n_held_out(n) if stopping and val is None else 0)),
            device=_resolve_device(self.device),
            seed=ckpt["meta"]["seed"] if ckpt is not None else _draw_seed(self.random_state),
            checkpoint=ckpt,
        )
        if warm:
            self._check_training_setup(job.stopping)
        if job.stopping and val is None:
            self._check_validation_split(y_enc)
        fork_devices = [_cuda_index(job.device)] if job.device.startswith("cuda") else []
        with _torch_threads(self.n_threads, self._uses_kernel), torch.random.fork_rng(devices=fork_devices):
            _seed_torch(job.seed, job.device)
            batch = self._fit_warm(job) if warm else self._fit_cold(job)
        self.net_.__dict__.pop("epochs_total_", None)
        self.history_ = self.net_.history
        self._after_fit(batch)
        if self.net_.__dict__.pop("interrupted_", False):
            raise KeyboardInterrupt
        return self

    def _train_split(self, job):
        """The validation part of a fit: None without early stopping, ``X_val`` where given, else a
        stratified (classifiers) draw of ``validation_fraction`` of the training data."""
        if not job.stopping:
            return None
        if job.val is not None:
            return predefined_split(self._validation_set(job.val))
        return ValidSplit(self.validation_fraction, stratified=self._stratify, random_state=job.seed)

    def _fit_warm(self, job):
        """Train the fitted network further (``warm_start``); returns the training batch."""
        net = self.net_
        if job.val is not None and not job.stopping:
            raise ValueError("X_val was given, but the fitted network was built without early stopping.")
        snapshot = _snapshot(net)
        self._update_warm_params(net)
        net.set_params(max_epochs=job.epochs)
        self._restart_cosine_schedule(net)
        # the loss weights of this fit's y (class_weight="balanced" counts its classes)
        net.class_weights = self._class_weights(job.targets, job.y_enc)
        batch = self._batch(job.data)
        if job.stopping:  # this fit's validation part (X_val, or a draw from this fit's data)
            net.set_params(train_split=self._train_split(job))
        net.epochs_total_ = len(net.history) + job.epochs
        try:
            _train(net.partial_fit, _with_weights(batch, job.weights), self._y_tensor(job.y_enc))
        except BaseException:
            _restore(net, snapshot)
            raise
        for name, value in job.targets.items():
            setattr(self, name, value)
        return batch

    def _fit_cold(self, job):
        """Learn the scaling, build a network and train it (or resume it); returns the training batch."""
        self._reset_fitted()
        data, weights = job.data, job.weights
        if job.checkpoint is not None:
            self.scaling_ = job.checkpoint["meta"]["scaling"]
        else:  # zero-weight samples count as absent, here too
            fit_data = data if weights is None or (weights > 0).all() else _subset(data, weights > 0)
            self.scaling_ = fit_scaling(fit_data, summaries=self._summary_encoding())
        batch = self._batch(data)
        train_split = self._train_split(job)
        meta = {
            "estimator": type(self).__name__,
            "seed": job.seed,
            "epochs": job.epochs,
            "scaling": self.scaling_,
            "targets": job.targets,
            "data": _fingerprint(data.values, data.times, job.y_enc, weights) if self.checkpoint_dir else None,
        }
        net = self._make_net(
            data.n_features, job.targets, job.y_enc, job.device, job.seed, job.epochs, train_split, meta
        )
        X_t, y_t = _with_weights(batch, weights), self._y_tensor(job.y_enc)
        try:
            if job.checkpoint is not None:
                self._resume(net, job.checkpoint, X_t, y_t)
            else:
                net.epochs_total_ = job.epochs
                _train(net.fit, X_t, y_t)
        except BaseException:
            self._reset_fitted()
            raise
        for name, value in job.targets.items():
            setattr(self, name, value)
        self.n_features_in_ = job.n_channels
        self.n_timesteps_in_ = _width_2d(data)
        self._network_params_ = self._network_params(validating=job.stopping)
        # the callbacks themselves, not their ids: their identity survives pickling
        self._training_setup_ = {**self._training_setup(job.stopping), "callbacks": tuple(self.callbacks or ())}
        self.net_ = net
        return batch

    # ------------------------------------------------------------- resume
    def _check_checkpoint(self, ckpt, data, y_enc, weights, targets):
        """The fitted targets of the checkpoint, once it is known to be this fit's."""
        meta = ckpt["meta"]
        folder = self.checkpoint_dir
        if meta["estimator"] != type(self).__name__:
            raise ValueError(
                f"The checkpoint in {folder} was written by {meta['estimator']}, not {type(self).__name__}."
            )
        if meta["data"] != _fingerprint(data.values, data.times, y_enc, weights):
            raise ValueError(
                f"The checkpoint in {folder} was written by a fit on other data (X, y or sample_weight differ); "
                "resume with the same data, or point checkpoint_dir at an empty folder to start afresh."
            )
        return meta["targets"]

    def _resume(self, net, ckpt, X, y):
        """Load the checkpointed state into a new network and train its remaining epochs."""
        net.initialize()
        try:
            net.module_.load_state_dict(ckpt["module"])
        except RuntimeError as exc:
            raise ValueError(
                f"The checkpoint in {self.checkpoint_dir} holds a network of another shape; the parameters "
                f"changed since it was written ({exc})."
            ) from exc
        net.optimizer_.load_state_dict(ckpt["optimizer"])
        net.history_ = History(ckpt["history"])
        if ckpt["shuffle_rng"] is not None:
            net.shuffle_generator_ = torch.Generator()
            net.shuffle_generator_.set_state(ckpt["shuffle_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        remaining = net.max_epochs - len(net.history)
        # a fit that ran all its epochs (not one early stopping ended), asked for more: it stays as it is
        ran_all = len(net.history) >= ckpt["meta"].get("epochs", math.inf)  # (older checkpoints: unknown)
        if ckpt["finished"] and remaining > 0 and ran_all:
            warnings.warn(
                f"The fit checkpointed in {self.checkpoint_dir} had finished (after {len(net.history)} epochs); "
                f"resume loads it as it is and trains no further toward max_epochs={net.max_epochs}. To train it "
                "further, fit again with warm_start=True.",
                UserWarning,
                stacklevel=5,  # the caller of fit, through scikit-learn's _fit_context
            )
        if ckpt["finished"] or remaining <= 0:
            return
        checkpoint = dict(net.callbacks_)["checkpoint"]
        checkpoint.resume_state_ = ckpt
        net.epochs_total_ = net.max_epochs
        _train(net.partial_fit, X, y, epochs=remaining)

    # ---------------------------------------------------------- validation
    def _summary_encoding(self):
        """How the network takes the per-channel summary input ``s``
        (``"quantile"``, ``"robust"``), or None when it takes none."""
        return None

    def _lr(self, validating):
        """The learning rate as a number (``"auto"`` resolved by whether early stopping is on)."""
        if self.lr == "auto":
            return AUTO_LR_EARLY_STOPPING if validating else AUTO_LR
        return self.lr

    def _epochs(self, n_train):
        """``max_epochs`` as a number for a training part of ``n_train`` samples (``"auto"`` resolved)."""
        if self.max_epochs != "auto":
            return self.max_epochs
        batches = max(1, math.ceil(n_train / self.batch_size))
        return max(AUTO_EPOCHS, math.ceil(AUTO_MIN_STEPS / batches))

    def _early_stopping_on(self, n_samples, has_validation):
        """Resolve ``early_stopping`` (``"auto"``: on from ``AUTO_EARLY_STOPPING`` samples or with X_val)."""
        if self.early_stopping == "auto":
            return has_validation or n_samples >= AUTO_EARLY_STOPPING
        if has_validation and not self.early_stopping:
            raise ValueError("X_val and y_val were given, but early_stopping=False; set early_stopping=True or 'auto'.")
        return bool(self.early_stopping)

    def _n_held_out(self, n):
        """Samples of ``n`` that early stopping holds out (``validation_fraction``, counted as scikit-learn's
        shuffle splits count)."""
        return math.ceil(self.validation_fraction * n)

    def _check_validation_split(self, y_enc):
        """Refuse early stopping whose held-out part (``validation_fraction`` of ``y_enc``'s samples) cannot
        be drawn: scikit-learn's own errors name neither the parameter nor a way out."""
        n = len(y_enc)
        n_valid = self._n_held_out(n)
        fix = "give X_val and y_val, raise validation_fraction, or set early_stopping=False."
        about = f"early_stopping holds out validation_fraction={self.validation_fraction} of the {n} samples"
        if not self._stratify:
            if n - n_valid < 1:
                raise ValueError(f"{about}: {n_valid}, which leaves none to train on; {fix}")
            return
        counts = np.bincount(np.asarray(y_enc, dtype=np.int64))
        counts = counts[counts > 0]
        if counts.min() < 2:
            raise ValueError(
                f"{about}, split by class (stratified), but a class of y has a single sample, which cannot be in "
                f"both parts; {fix}"
            )
        if min(n_valid, n - n_valid) < len(counts):
            raise ValueError(
                f"{about}, split by class: {n_valid} for validation and {n - n_valid} to train on, but each part "
                f"needs a sample of each of the {len(counts)} classes; {fix}"
            )

    def _read_validation(self, X_val, y_val, sample_weight_val, targets, n_channels, n_timesteps=None):
        """Validate ``X_val``/``y_val`` against the training data's channels (and, for a 2D ``X``,
        its width ``n_timesteps``) and targets."""
        data = check_series(
            X_val,
            time_channel=self.time_channel,
            n_channels=n_channels,
            n_timesteps=n_timesteps,
            estimator_name=type(self).__name__,
            input_name="X_val",
        )
        n = data.values.shape[0]
        y_enc = self._encode_y_val(y_val, targets)
        if len(y_enc) != n:
            raise ValueError(f"X_val has {n} samples but y_val has {len(y_enc)}; they must match.")
        weights = _check_weights(sample_weight_val, n, "sample_weight_val")
        return data, y_enc, weights

    def _validation_set(self, val):
        data, y_enc, weights = val
        return Dataset(_with_weights(self._batch(data), weights), self._y_tensor(y_enc))

    def _update_warm_params(self, net):
        """Carry changed training settings over to a network trained further."""
        changes = {
            "verbose": self.verbose,
            "batch_size": self.batch_size,
            "clip_grad_norm": self.clip_grad_norm,
            "aux_loss_weight": self._module_aux_weight(),
        }
        # always set: the optimiser's groups start the fit at lr, also where "plateau" lowered them
        changes["lr"] = self._lr(validating=net.train_split is not None)
        if net.get_params().get("optimizer__weight_decay") != self.weight_decay:
            changes["optimizer__weight_decay"] = self.weight_decay
        net.set_params(**changes)
        # every dropout layer of the networks is built with `dropout`, which it reads at every pass
        for layer in net.module_.modules():
            if isinstance(layer, torch.nn.Dropout):
                layer.p = self.dropout

    def _restart_cosine_schedule(self, net):
        """Make a warm fit's cosine schedule anneal from the learning rate to 0 over its own ``max_epochs``.

        skorch re-creates the scheduler at the position of the epochs so far,
        so that the first fit's cosine (of that fit's ``max_epochs``) would go
        on past its end: an epoch at a rate of 0, then rising again.
        """
        schedule = dict(net.callbacks_).get("lr_schedule")
        if not (isinstance(schedule, LRScheduler) and schedule.policy == "CosineAnnealingLR"):
            return
        for group in net.optimizer_.param_groups:
            group["lr"] = group["initial_lr"] = net.lr
        # (the scheduler's arguments are the callback's attributes; skorch's set_params knows only T_max)
        vars(schedule).update(T_max=net.max_epochs, last_epoch=-1)

    def _reset_fitted(self):
        for name in (
            "net_",
            *self._target_attrs(),
            "n_features_in_",
            "n_timesteps_in_",
            "_network_params_",
            "_training_setup_",
            "scaling_",
            "history_",
            "feature_importances_",
        ):
            self.__dict__.pop(name, None)

    def _after_fit(self, batch):
        """Hook for subclasses to compute fitted summaries (e.g. importances)."""

    # ----------------------------------------------------------- network
    def _make_net(self, n_features, targets, y_enc, device, seed, epochs, train_split=None, meta=None):
        validating = train_split is not None
        # the package's callbacks first, in this order: the validation score is
        # recorded before the schedule and early stopping read it; early stopping
        # ends the fit from its epoch-end hook; the checkpoint sees the epoch's
        # final state; the user's come last
        callbacks = []
        monitor, lower_is_better = ("valid_loss", True) if validating else ("train_loss", True)
        if validating and self.early_stopping_scoring is not None:
            scoring = self.early_stopping_scoring
            monitor = f"valid_{scoring}" if isinstance(scoring, str) else "valid_score"
            lower_is_better = False
            callbacks.append(("valid_score", ValidationScore(scoring, monitor, self._scoring_view(targets))))
        callbacks += self._schedule_callbacks(validating, epochs, monitor, lower_is_better)
        if validating:
            callbacks.append(
                (
                    "early_stopping",
                    EpochEndEarlyStopping(
                        monitor=monitor, lower_is_better=lower_is_better, patience=self.patience, load_best=True
                    ),
                )
            )
        if self.checkpoint_dir is not None:
            callbacks.append(("checkpoint", Checkpoint(os.fspath(self.checkpoint_dir), meta, monitor)))
        if self.verbose >= 2:
            callbacks.append(("progress", Progress(monitor if monitor.startswith("valid_") else None)))
        callbacks += self._user_callbacks(targets, validating)
        # under the bars, the epoch lines are written above them
        printing = {"callbacks__print_log__sink": _write_line} if self.verbose >= 2 else {}
        criterion, criterion_kwargs = self._criterion()
        module = self._build_module(n_features, self._n_outputs(targets), validating=validating)
        net = _Net(
            module,
            criterion=criterion,
            optimizer=torch.optim.AdamW,
            lr=self._lr(validating),
            optimizer__weight_decay=self.weight_decay,
            optimizer__fused=_FUSED_ADAMW,
            max_epochs=epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
            aux_loss_weight=self._module_aux_weight(),
            clip_grad_norm=self.clip_grad_norm,
            shuffle_seed=seed,
            class_weights=self._class_weights(targets, y_enc),
            **{f"criterion__{k}": v for k, v in criterion_kwargs.items()},
            **printing,
        )
        return net

    def _user_callbacks(self, targets, validating):
        """``callbacks``, with each ``EpochScoring`` of a scorer name scored on the estimator.

        skorch's ``EpochScoring("roc_auc")`` would hand the scorer the inner
        network, whose outputs are logits (or standardised targets): it becomes
        a :class:`ValidationScore` of the same name, which scores the
        estimator's view of the validation outputs (probabilities, decision
        values, predictions in the target's units) and records the history
        key of that ``EpochScoring``.
        """
        out = []
        for item in self.callbacks or []:
            name, cb = _named_callback(item)
            if isinstance(cb, EpochScoring) and isinstance(cb.scoring, str) and (validating or cb.on_train):
                key = cb.name if cb.name is not None else cb.scoring
                cb = ValidationScore(cb.scoring, key, self._scoring_view(targets), on_train=cb.on_train)
            out.append(cb if name is None else (name, cb))
        return out

    def _schedule_callbacks(self, validating, epochs, monitor="valid_loss", lower_is_better=True):
        """The learning-rate schedule's skorch callbacks (see ``lr_schedule``)."""
        schedule = self.lr_schedule
        if schedule is None:
            return []
        if schedule == "cosine":
            return [("lr_schedule", LRScheduler(policy="CosineAnnealingLR", T_max=epochs))]
        if not validating:  # "plateau" watches the validation loss; none without validation
            return []
        patience = max(1, self.patience // 2)
        return [
            (
                "lr_schedule",
                LRScheduler(
                    policy="ReduceLROnPlateau",
                    monitor=monitor,
                    mode="min" if lower_is_better else "max",
                    factor=0.5,
                    patience=patience - 1,
                ),
            )
        ]

    # --------------------------------------------------------------- predict
    def _outputs(self, X):
        """The network's raw outputs on ``X`` (logits or standardised targets), float64."""
        check_is_fitted(self, "net_")
        data = self._read_X(X, fitted=True)
        net = self.net_
        # prepared and run an inference batch at a time: the network's float32 inputs (and MR-MoE's
        # encoded summaries) never exist for the whole of X at once, and the same few buffers serve
        # every batch (whole-X arrays were mapped and zeroed afresh by the OS on every call)
        size = _inference_batch_size(net.batch_size, {"x": data.values})
        starts = range(0, len(data.lengths), size)
        if self.verbose >= 2 and len(starts) >= PROGRESS_MIN_BATCHES:
            starts = ProgressIterator(starts)
        with _torch_threads(self.n_threads, self._uses_kernel):
            out = np.concatenate(
                [
                    net.forward(self._batch(_subset(data, slice(start, start + size))), training=False).double().numpy()
                    for start in starts
                ]
            )
        if not np.isfinite(out).all():
            raise ValueError(
                "The network produced non-finite scores; the model's weights are not usable (refit with a lower lr)."
            )
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags


def _with_weights(batch, weights):
    """The network's input dict with the sample weights under ``"w"`` (when given)."""
    if weights is None:
        return batch
    return {**batch, "w": torch.from_numpy(weights.astype(np.float32))}


def _check_no_missing_labels(y, name):
    """Raise a ValueError naming the first missing label (NaN, None, pandas' NA) of the 1D ``y``."""
    if y.dtype.kind not in "fcO":
        return
    missing = np.asarray(pd.isna(y), dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{name} contains a missing label ({y[i]!r}) at sample {i} ({int(missing.sum())} missing); every "
            "sample needs a label."
        )


class BaseTimeSeriesClassifier(ClassifierMixin, BaseTimeSeriesEstimator):
    """Base of the package's classifiers; not for direct use.

    Subclasses set their constructor parameters (which must include the
    common ones documented in ``COMMON_PARAMS_DOC``) and implement
    ``_build_module(n_features, n_classes, validating)`` returning a ``torch.nn.Module``
    that maps the keyword batch ``x, m, dt, v`` to logits.
    """

    _ensemble_combine = "proba"
    _stratify = True
    _parameter_constraints: dict = {
        **BaseTimeSeriesEstimator._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def _target_attrs(self):
        return ("classes_",)

    def _check_param_combinations(self):
        """Also check the values of a ``class_weight`` dict (finite, non-negative numbers), as ``sample_weight``'s."""
        super()._check_param_combinations()
        if isinstance(self.class_weight, dict):
            for value in self.class_weight.values():
                if not (
                    isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
                ):
                    allowed = "a dict of finite, non-negative weights, 'balanced' or None"
                    raise invalid_parameter("class_weight", type(self).__name__, allowed, self.class_weight)

    def _encode_y(self, y, n_samples, weights, fitted):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        _check_no_missing_labels(y, "y")
        check_classification_targets(y)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)}; they must match.")
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 class ({classes[0]!r})."
            )
        if fitted and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start=True but y has classes {classes.tolist()} while the fitted model has "
                f"{self.classes_.tolist()}; set warm_start=False to refit."
            )
        targets = {"classes_": classes}
        class_weights = self._class_weights(targets, y_enc)
        if class_weights is not None:
            total = class_weights.double().numpy()[y_enc]
            if not (total if weights is None else total * weights).sum() > 0:
                raise ValueError(
                    "With class_weight (times sample_weight) every sample has weight 0; at least one sample "
                    "needs a positive weight."
                )
        return y_enc.astype(np.int64), targets

    def _encode_y_val(self, y_val, targets):
        classes = targets["classes_"]
        y_val = column_or_1d(y_val, warn=True)
        _check_no_missing_labels(y_val, "y_val")
        unknown = sorted(set(np.unique(y_val).tolist()) - set(classes.tolist()))
        if unknown:
            raise ValueError(f"y_val has labels {unknown} that are not in y (classes {classes.tolist()}).")
        return np.searchsorted(classes, y_val).astype(np.int64)

    def _n_outputs(self, targets):
        return len(targets["classes_"])

    def _criterion(self):
        return torch.nn.CrossEntropyLoss, {"reduction": "none"}

    def _class_weights(self, targets, y_enc):
        if self.class_weight is None:
            return None
        classes = targets["classes_"]
        weight_spec = self.class_weight
        if isinstance(weight_spec, dict):
            labels = classes.tolist()
            unknown = [k for k in weight_spec if k not in set(labels)]
            unweighted = [c for c in labels if c not in weight_spec]
            # as scikit-learn: labels not in y (a fold without a rare class) are ignored where every class
            # of y has its weight; with classes left without one, they are likely mistyped labels
            if unknown and unweighted:
                raise ValueError(
                    f"class_weight has labels {unknown} that are not in y, and none for the classes {unweighted} "
                    "of y; give every class of y its weight (labels not in y are then ignored)."
                )
            weight_spec = {i: weight_spec.get(c, 1.0) for i, c in enumerate(labels)}
        weights = compute_class_weight(weight_spec, classes=np.arange(len(classes)), y=y_enc)
        return torch.as_tensor(weights, dtype=torch.float32)

    def _scoring_view(self, targets):
        return _ClassifierView(targets["classes_"])

    def _logits(self, X):
        return self._outputs(X)

    def decision_function(self, X):
        """Confidence scores: the logit margin for binary, logits for multiclass.

        Parameters
        ----------
        X : array-like, see :meth:`fit`

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, ``logit[1] - logit[0]`` (positive favours
            ``classes_[1]``).
        """
        logits = self._logits(X)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like, see :meth:`fit`

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels, as given in ``y`` at fit.

        Parameters
        ----------
        X : array-like, see :meth:`fit`

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]


class BaseTimeSeriesRegressor(RegressorMixin, BaseTimeSeriesEstimator):
    """Base of the package's regressors; not for direct use.

    The network has one output per target; targets are standardised at fit
    (``target_mean_``, ``target_scale_``) and predictions mapped back.
    """

    _ensemble_combine = "mean"
    _stratify = False
    _parameter_constraints: dict = {
        **BaseTimeSeriesEstimator._parameter_constraints,
        "loss": [StrOptions({"squared_error", "huber"})],
    }

    def _target_attrs(self):
        return ("target_mean_", "target_scale_", "n_outputs_", "_y_1d")

    def _read_y(self, y, name="y"):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name=name)
        if y.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1D (one target) or 2D (n_samples, n_targets); got {y.ndim}D.")
        return y

    def _encode_y(self, y, n_samples, weights, fitted):
        y = self._read_y(y)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)}; they must match.")
        y2 = y.reshape(n_samples, -1)
        if fitted:
            if y2.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"warm_start=True but y has {y2.shape[1]} targets while the fitted model has {self.n_outputs_}; "
                    "set warm_start=False to refit."
                )
            # the network's targets, in the shape of this fit's y (1D or one column)
            targets = {**{k: getattr(self, k) for k in self._target_attrs()}, "_y_1d": y.ndim == 1}
        else:
            rows = y2 if weights is None else y2[weights > 0]
            with np.errstate(over="ignore", invalid="ignore"):  # |y| from about 1e154: refused by _standardise
                mean = rows.mean(axis=0)
                scale = rows.std(axis=0)
            scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
            targets = {"target_mean_": mean, "target_scale_": scale, "n_outputs_": y2.shape[1], "_y_1d": y.ndim == 1}
        return self._standardise(y2, targets), targets

    def _standardise(self, y2, targets, name="y"):
        """``(y - target_mean_) / target_scale_`` as float32, refused by name where it is not finite."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = ((y2 - targets["target_mean_"]) / targets["target_scale_"]).astype(np.float32)
        if not np.isfinite(z).all():
            raise ValueError(
                f"{name} cannot be standardised for training (largest |{name}| {np.abs(y2).max():.3g}, "
                f"target_mean_ {np.array2string(np.asarray(targets['target_mean_']), precision=3)}, target_scale_ "
                f"{np.array2string(np.asarray(targets['target_scale_']), precision=3)}): its spread overflows "
                "float64 (|y| beyond about 1e154) or it lies beyond float32's range in units of the scale learned "
                "at fit. Rescale it (divide it by a power of 10), or refit with warm_start=False."
            )
        return z

    def _encode_y_val(self, y_val, targets):
        y_val = self._read_y(y_val, "y_val")
        y2 = y_val.reshape(len(y_val), -1)
        if y2.shape[1] != targets["n_outputs_"]:
            raise ValueError(f"y_val has {y2.shape[1]} targets but y has {targets['n_outputs_']}.")
        return self._standardise(y2, targets, "y_val")

    def _n_outputs(self, targets):
        return targets["n_outputs_"]

    def _network_params(self, validating):
        return {**super()._network_params(validating), "loss": self.loss}

    def _criterion(self):
        if self.loss == "huber":
            return torch.nn.HuberLoss, {"reduction": "none", "delta": 1.0}
        return torch.nn.MSELoss, {"reduction": "none"}

    def _scoring_view(self, targets):
        return _RegressorView(targets["target_mean_"], targets["target_scale_"], targets["_y_1d"])

    def predict(self, X):
        """Predicted targets, in the units of ``y`` at fit.

        Parameters
        ----------
        X : array-like, see :meth:`fit`

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            1D when ``y`` was 1D at fit.
        """
        out = self._outputs(X) * self.target_scale_ + self.target_mean_
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
