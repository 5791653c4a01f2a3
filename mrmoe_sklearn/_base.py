"""The shared estimator base: scikit-learn API on top of a skorch network.

All classifiers of the package derive from :class:`BaseTimeSeriesClassifier`,
which validates the input (through :mod:`mrmoe_sklearn._data`), learns the
scaling, builds the skorch network in ``fit`` from flat constructor parameters
and maps predictions back to the original labels. A subclass only says which
PyTorch module to build (``_build_module``).
"""

import contextlib
import copy
import math
from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.dataset import Dataset, ValidSplit
from skorch.helper import predefined_split

from ._batches import TensorBatches, _unwrap
from ._data import check_series, fit_scaling, prepare_batch
from ._params import POSITIVE_INT, TIME_CHANNEL, DeviceOptions

__all__ = ["BaseTimeSeriesClassifier", "TrainingDivergedError", "COMMON_PARAMS_DOC"]


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss or its gradients stop being finite."""


COMMON_PARAMS_DOC = """\
    lr : float, default=1e-3
        Learning rate of the AdamW optimiser.
    lr_schedule : {"plateau", "cosine", None}, default="plateau"
        Learning-rate schedule: ``"plateau"`` halves it when the validation
        loss has not improved for ``max(1, patience // 2)`` epochs (only with
        early stopping; otherwise the rate stays constant), ``"cosine"``
        anneals it to 0 over ``max_epochs``; None keeps it constant.
    max_epochs : int, default=30
        Number of passes over the training data (fewer with early stopping).
    batch_size : int, default=64
        Samples per mini-batch in training. Prediction (and validation) runs
        without a backward pass in larger batches: up to
        ``max(batch_size, min(512, 65536 // n_timesteps))`` samples.
    weight_decay : float, default=1e-4
        Decoupled weight decay of AdamW.
    dropout : float, default=0.1
        Dropout before the output layer.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the cross-entropy loss, as in scikit-learn.
    early_stopping : bool or "auto", default="auto"
        Stop when the validation loss has not improved for ``patience``
        epochs and keep the best epoch's weights (in memory). The validation
        data is ``X_val``/``y_val`` when given to :meth:`fit`, else a held-out
        ``validation_fraction`` of the training data (stratified, seeded).
        ``"auto"`` switches it on from 1,000 training series or when
        ``X_val`` is given (small sets keep all their data for training);
        False trains for ``max_epochs`` on all the data.
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
        0 is silent; 1 prints a line per epoch (loss, validation loss, time).
    warm_start : bool, default=False
        When True and the estimator is already fitted on data of the same
        channels and classes, ``fit`` continues training the existing network
        for ``max_epochs`` more epochs (scaling statistics are kept).
"""


#: Inference batches hold at most this many samples and, above the training
#: batch size, at most ``PREDICT_STEPS // n_timesteps`` of them: without a
#: backward pass the per-step overhead of the recurrence is shared by more
#: samples (measured: MR-MoE predicts 1.9x faster at 64 steps with 512-sample
#: batches than with 64), while memory stays bounded for long series.
PREDICT_MAX_BATCH = 512
#: With ``early_stopping="auto"``, early stopping is on from this many training
#: samples (or whenever validation data is passed to ``fit``).
AUTO_EARLY_STOPPING = 1000
PREDICT_STEPS = 65536


def _inference_batch_size(batch_size, dataset):
    """The batch size for inference on ``dataset`` (a dict holding ``x (B, T, F)``)."""
    X = getattr(dataset, "X", dataset)
    x = X.get("x") if isinstance(X, dict) else None
    if x is None or x.ndim != 3 or x.shape[1] == 0:
        return batch_size
    return max(batch_size, min(PREDICT_MAX_BATCH, PREDICT_STEPS // x.shape[1]))


class _Net(NeuralNet):
    """skorch network adding the auxiliary loss, gradient clipping and divergence checks."""

    def __init__(self, *args, aux_loss_weight=0.0, clip_grad_norm=None, shuffle_seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.aux_loss_weight = aux_loss_weight
        self.clip_grad_norm = clip_grad_norm
        self.shuffle_seed = shuffle_seed

    def get_iterator(self, dataset, training=False):
        if training:
            if getattr(self, "shuffle_generator_", None) is None:
                self.shuffle_generator_ = torch.Generator().manual_seed(self.shuffle_seed)
            return TensorBatches(dataset, self.batch_size, shuffle=True, generator=self.shuffle_generator_)
        return TensorBatches(dataset, _inference_batch_size(self.batch_size, _unwrap(dataset)[0]))

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

    def get_loss(self, y_pred, y_true, X=None, training=False):
        members = getattr(self.module_, "member_logits", None)
        if training and members is not None:
            # an Ensemble: each member is trained on its own loss
            self.module_.member_logits = None
            losses = [super(_Net, self).get_loss(z, y_true, X=X, training=training) for z in members]
            loss = torch.stack(losses).mean()
        else:
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
        aux = getattr(self.module_, "aux_loss", None)
        self.module_.aux_loss = None
        if training and aux is not None and self.aux_loss_weight:
            loss = loss + self.aux_loss_weight * aux
        return loss

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        max_norm = self.clip_grad_norm if self.clip_grad_norm is not None else math.inf
        params = [p for p in self.module_.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if not (torch.isfinite(step["loss"]) and torch.isfinite(norm)):
            epoch = len(self.history)
            raise TrainingDivergedError(
                f"Training diverged in epoch {epoch}: the loss is {step['loss'].item()} and the "
                f"gradient norm {norm.item()}. Lower `lr` (now {self.lr}) and keep "
                f"`clip_grad_norm` set (now {self.clip_grad_norm}); the weights were not updated "
                "with this step."
            )
        return step


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


def _train(fit_method, X, y):
    """Run skorch's fit or partial_fit and make sure the result is usable.

    The per-step check in ``_Net`` cannot see damage done by the very last
    optimiser step, and an absurd learning rate can make torch itself fail to
    convert it; both end as :class:`TrainingDivergedError`.
    """
    net = fit_method.__self__
    try:
        fit_method(X, y)
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        raise TrainingDivergedError(f"Training failed numerically ({exc}). Lower `lr` (now {net.lr}).") from exc
    probe = {k: v[: net.batch_size] for k, v in X.items()}
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
def _torch_threads(n_threads):
    """Torch settings for fitting and predicting, restored afterwards.

    Sets the intra-op thread count (``n_threads``, or one thread per task
    inside a Dask worker) and flushes denormal floats to zero: gradients that
    decay through long recurrences otherwise turn denormal and slow every
    recurrent model (the LSTM baseline too) by an order of magnitude on CPUs.
    Flushing is switched off again on exit (torch's default).
    """
    # Inside a Dask worker every task gets one thread: a worker with T threads
    # runs T tasks at once, and torch's setting is shared by the whole process.
    n = n_threads if n_threads is not None else (1 if _worker_threads() else None)
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(old)


class BaseTimeSeriesClassifier(ClassifierMixin, BaseEstimator):
    """Base of the package's classifiers; not for direct use.

    Subclasses set their constructor parameters (which must include the
    common ones documented in ``COMMON_PARAMS_DOC``) and implement
    ``_build_module(n_features, n_classes, validating)`` returning a ``torch.nn.Module``
    that maps the keyword batch ``x, m, dt, v`` to logits.
    """

    #: The common parameters (``COMMON_PARAMS_DOC``); subclasses add theirs.
    _parameter_constraints: dict = {
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"plateau", "cosine"}), None],
        "max_epochs": [POSITIVE_INT],
        "batch_size": [POSITIVE_INT],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 0.5, closed="right")],
        "patience": [POSITIVE_INT],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "time_channel": TIME_CHANNEL,
        "device": [DeviceOptions()],
        "n_threads": [POSITIVE_INT, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def _build_module(self, n_features, n_classes, validating=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def _module_aux_weight(self):
        return 0.0

    def _check_param_combinations(self):
        """Check what the declared constraints cannot: parameters bounded by others.

        Called at the start of :meth:`fit`, after scikit-learn has checked each
        parameter against ``_parameter_constraints``. Raises
        :class:`~sklearn.utils._param_validation.InvalidParameterError` (see
        :func:`~mrmoe_sklearn._params.invalid_parameter`).
        """

    # ------------------------------------------------------------------ data
    def _read_X(self, X, fitted):
        return check_series(
            X,
            time_channel=self.time_channel,
            n_channels=self.n_features_in_ if fitted else None,
            n_timesteps=self.n_timesteps_in_ if fitted else None,
            estimator_name=type(self).__name__,
        )

    def _batch(self, data):
        arrays = prepare_batch(data, self.scaling_)
        return {k: torch.from_numpy(a) for k, a in arrays.items()}

    def _check_y(self, y, n_samples):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)}; they must match.")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError("y contains NaN; every sample needs a label.")
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 class ({classes[0]!r})."
            )
        return classes, y_enc.astype(np.int64)

    # ------------------------------------------------------------------- fit
    # Long by its docstring (40 lines); the 60 lines of code are the warm and the cold fit side by side.
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, *, X_val=None, y_val=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timesteps), (n_samples, n_timesteps), or list
            Channels first. 2D input is univariate; a list holds 2D arrays
            ``(n_channels, n_timesteps_i)`` of variable length. NaN marks
            missing values; trailing all-NaN steps are padding.
        y : array-like of shape (n_samples,)
            Class labels (ints or strings), at least two classes.
        X_val, y_val : array-like or None, default=None
            Validation data for early stopping (as scikit-learn's
            ``HistGradientBoostingClassifier``): when given, the stopping epoch
            is chosen on them and all of ``X`` is used for training, instead
            of holding out ``validation_fraction`` of ``X``. Same layout and
            channels as ``X``; labels among those of ``y``. Requires early
            stopping (``early_stopping=True``, or ``"auto"``, which they switch on).

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
        warm = self.warm_start and hasattr(self, "net_")
        data = self._read_X(X, fitted=warm)
        classes, y_enc = self._check_y(y, data.values.shape[0])
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start=True but y has classes {classes.tolist()} while the fitted model has "
                f"{self.classes_.tolist()}; set warm_start=False to refit."
            )
        stopping = self._early_stopping_on(data.values.shape[0], X_val is not None)
        n_channels = data.n_features + (self.time_channel is not None)
        val = self._read_validation(X_val, y_val, classes, n_channels) if X_val is not None else None
        device = _resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        fork_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        y_t = torch.from_numpy(y_enc)
        with _torch_threads(self.n_threads), torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            if warm:
                net = self.net_
                snapshot = _snapshot(net)
                self._update_warm_params(net)
                batch = self._batch(data)
                if val is not None:
                    if not any(isinstance(cb, EarlyStopping) for _, cb in net.callbacks_):
                        raise ValueError("X_val was given, but the fitted network was built without early stopping.")
                    net.set_params(train_split=predefined_split(self._validation_set(val)))
                try:
                    _train(net.partial_fit, batch, y_t)
                except BaseException:
                    _restore(net, snapshot)
                    raise
            else:
                self._reset_fitted()
                self.scaling_ = fit_scaling(data, summaries=self._summary_encoding())
                batch = self._batch(data)
                train_split = None
                if stopping:
                    train_split = (
                        predefined_split(self._validation_set(val))
                        if val is not None
                        else ValidSplit(self.validation_fraction, stratified=True, random_state=seed)
                    )
                net = self._make_net(data.n_features, classes, y_enc, device, seed, train_split)
                try:
                    _train(net.fit, batch, y_t)
                except BaseException:
                    self._reset_fitted()
                    raise
                self.classes_ = classes
                self.n_features_in_ = n_channels
                self.n_timesteps_in_ = data.values.shape[1] if data.layout == "2d" else None
                self.net_ = net
        self.history_ = self.net_.history
        self._after_fit(batch)
        if self.net_.__dict__.pop("interrupted_", False):
            raise KeyboardInterrupt
        return self

    def _summary_encoding(self):
        """How the network takes the per-channel summary input ``s``
        (``"quantile"``, ``"robust"``), or None when it takes none."""
        return None

    def _early_stopping_on(self, n_samples, has_validation):
        """Resolve ``early_stopping`` (``"auto"``: on from ``AUTO_EARLY_STOPPING`` samples or with X_val)."""
        if self.early_stopping == "auto":
            return has_validation or n_samples >= AUTO_EARLY_STOPPING
        if has_validation and not self.early_stopping:
            raise ValueError("X_val and y_val were given, but early_stopping=False; set early_stopping=True or 'auto'.")
        return bool(self.early_stopping)

    def _read_validation(self, X_val, y_val, classes, n_channels):
        """Validate ``X_val``/``y_val`` against the training data's channels and classes."""
        data = check_series(
            X_val,
            time_channel=self.time_channel,
            n_channels=n_channels,
            estimator_name=f"{type(self).__name__} (X_val)",
        )
        y_val = column_or_1d(y_val, warn=True)
        if len(y_val) != data.values.shape[0]:
            raise ValueError(f"X_val has {data.values.shape[0]} samples but y_val has {len(y_val)}; they must match.")
        unknown = sorted(set(np.unique(y_val).tolist()) - set(classes.tolist()))
        if unknown:
            raise ValueError(f"y_val has labels {unknown} that are not in y (classes {classes.tolist()}).")
        return data, np.searchsorted(classes, y_val).astype(np.int64)

    def _validation_set(self, val):
        data, y_enc = val
        return Dataset(self._batch(data), torch.from_numpy(y_enc))

    def _update_warm_params(self, net):
        """Carry changed training settings over to a network trained further."""
        changes = {
            "max_epochs": self.max_epochs,
            "verbose": self.verbose,
            "batch_size": self.batch_size,
            "clip_grad_norm": self.clip_grad_norm,
        }
        if net.lr != self.lr:
            changes["lr"] = self.lr
        if net.get_params().get("optimizer__weight_decay") != self.weight_decay:
            changes["optimizer__weight_decay"] = self.weight_decay
        net.set_params(**changes)

    def _reset_fitted(self):
        for name in (
            "net_",
            "classes_",
            "n_features_in_",
            "n_timesteps_in_",
            "scaling_",
            "history_",
            "feature_importances_",
        ):
            self.__dict__.pop(name, None)

    def _after_fit(self, batch):
        """Hook for subclasses to compute fitted summaries (e.g. importances)."""

    def _make_net(self, n_features, classes, y_enc, device, seed, train_split=None):
        criterion_kwargs = {}
        if self.class_weight is not None:
            weight_spec = self.class_weight
            if isinstance(weight_spec, dict):
                unknown = [k for k in weight_spec if k not in set(classes.tolist())]
                if unknown:
                    raise ValueError(f"class_weight has labels {unknown} that are not in y.")
                weight_spec = {i: weight_spec.get(c, 1.0) for i, c in enumerate(classes.tolist())}
            weights = compute_class_weight(weight_spec, classes=np.arange(len(classes)), y=y_enc)
            criterion_kwargs["criterion__weight"] = torch.as_tensor(weights, dtype=torch.float32)
        # the schedule first: early stopping ends the fit from its epoch-end hook
        callbacks = self._schedule_callbacks(train_split is not None)
        if train_split is not None:
            callbacks.append(
                ("early_stopping", EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True))
            )
        module = self._build_module(n_features, len(classes), validating=train_split is not None)
        net = _Net(
            module,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            optimizer__fused=_FUSED_ADAMW,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
            aux_loss_weight=self._module_aux_weight(),
            clip_grad_norm=self.clip_grad_norm,
            shuffle_seed=seed,
            **criterion_kwargs,
        )
        return net

    def _schedule_callbacks(self, validating):
        """The learning-rate schedule's skorch callbacks (see ``lr_schedule``)."""
        schedule = self.lr_schedule
        if schedule is None:
            return []
        if schedule == "cosine":
            return [("lr_schedule", LRScheduler(policy="CosineAnnealingLR", T_max=self.max_epochs))]
        if not validating:  # "plateau" watches the validation loss; none without validation
            return []
        patience = max(1, self.patience // 2)
        return [
            (
                "lr_schedule",
                LRScheduler(policy="ReduceLROnPlateau", monitor="valid_loss", factor=0.5, patience=patience - 1),
            )
        ]

    # --------------------------------------------------------------- predict
    def _logits(self, X):
        check_is_fitted(self, "net_")
        data = self._read_X(X, fitted=True)
        batch = self._batch(data)
        with _torch_threads(self.n_threads):
            logits = self.net_.forward(batch, training=False).double().numpy()
        if not np.isfinite(logits).all():
            raise ValueError(
                "The network produced non-finite scores; the model's weights are not usable (refit with a lower lr)."
            )
        return logits

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags
