"""The regressors: MR-MoE and its baselines with one output per target, on the same base.

The network is the classifier's with a linear output per target; targets are
standardised at fit (``target_mean_``, ``target_scale_``), the loss is the
mean squared error or the Huber loss, ``score`` is R², ``y`` has one or several
columns.
"""

from ._base import REGRESSOR_PARAMS_DOC, BaseTimeSeriesRegressor
from ._models import _MIXTURE_PARAMS_DOC, MRMOE_PARAMS_DOC, _LNNModel, _LSTMModel, _MoEModel, _MRMoEModel

__all__ = ["MRMoERegressor", "LNNRegressor", "MoERegressor", "LSTMRegressor"]

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    n_outputs_ : int
        Number of targets (columns of ``y``; 1 for a 1D ``y``).
    target_mean_, target_scale_ : ndarray of shape (n_targets,)
        Mean and standard deviation of each target at fit (samples of positive
        weight); the network predicts standardised targets.
    n_features_in_ : int
        Number of channels of ``X`` at fit, the time channel included.
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` is the PyTorch module.
    history_ : skorch.History
        Per-epoch losses and durations.
    scaling_ : ScalingStats
        Per-feature means and scales and the time scale learned at fit.
"""


class MRMoERegressor(_MRMoEModel, BaseTimeSeriesRegressor):
    __doc__ = (
        """Multi-rate mixture of liquid (CfC) experts for time-series regression.

    The network of :class:`MRMoEClassifier` with one output per target:
    experts at several rates, a gate, feature and temporal attention, for
    irregular, incomplete series of variable length. Single- and multi-output
    ``y``; ``score`` is R².

    Parameters
    ----------
"""
        + MRMOE_PARAMS_DOC
        + REGRESSOR_PARAMS_DOC
        + _ATTRIBUTES_DOC
        + """    feature_importances_ : ndarray of shape (n_features,)
        Mean feature-attention weight of each measured channel, as in
        :class:`MRMoEClassifier`. Only with ``feature_attention=True``.
    rates_ : tuple of int
        The experts' rates in gate order.

    Examples
    --------
    >>> import numpy as np
    >>> from mrmoe_sklearn import MRMoERegressor
    >>> from mrmoe_sklearn.datasets import make_multirate_classification
    >>> X, _ = make_multirate_classification(n_samples=60, n_timesteps=24, random_state=0)
    >>> y = np.nanmean(X[:, 1], axis=1)  # the mean level of channel 1
    >>> reg = MRMoERegressor(time_channel=0, max_epochs=2, random_state=0).fit(X, y)
    >>> reg.predict(X).shape
    (60,)
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesRegressor._parameter_constraints, **_MRMoEModel._model_constraints}

    def __init__(
        self,
        rates=(1, 2, 4, 8),
        n_experts=None,
        hidden_size=16,
        backbone_units=32,
        feature_attention=True,
        temporal_attention=True,
        gate=True,
        top_k=None,
        aux_loss_weight=0.01,
        load_balance="cv",
        head_size=32,
        carry_forward=False,
        summary_head=True,
        summary_encoding="quantile",
        ensemble_size="auto",
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs="auto",
        batch_size=64,
        weight_decay=1e-4,
        dropout=0.1,
        loss="squared_error",
        early_stopping="auto",
        validation_fraction=0.1,
        patience=5,
        clip_grad_norm=1.0,
        time_channel=None,
        device="cpu",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
        early_stopping_scoring=None,
        checkpoint_dir=None,
    ):
        self.carry_forward = carry_forward
        self.summary_head = summary_head
        self.summary_encoding = summary_encoding
        self.ensemble_size = ensemble_size
        self.rates = rates
        self.n_experts = n_experts
        self.hidden_size = hidden_size
        self.backbone_units = backbone_units
        self.feature_attention = feature_attention
        self.temporal_attention = temporal_attention
        self.gate = gate
        self.top_k = top_k
        self.aux_loss_weight = aux_loss_weight
        self.load_balance = load_balance
        self.head_size = head_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.loss = loss
        self.early_stopping = early_stopping
        self.early_stopping_scoring = early_stopping_scoring
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir


class LNNRegressor(_LNNModel, BaseTimeSeriesRegressor):
    __doc__ = (
        """Monolithic liquid network for regression: one CfC at rate 1, from its last valid state.

    Parameters
    ----------
    hidden_size : int, default=64
        Hidden units of the CfC.
    backbone_units : int, default=64
        Width of the CfC's backbone layer.
"""
        + REGRESSOR_PARAMS_DOC
        + _ATTRIBUTES_DOC
        + """    rates_ : tuple of int
        The rate of the single expert, ``(1,)``.
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesRegressor._parameter_constraints, **_LNNModel._model_constraints}

    def __init__(
        self,
        hidden_size=64,
        backbone_units=64,
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs="auto",
        batch_size=64,
        weight_decay=1e-4,
        dropout=0.1,
        loss="squared_error",
        early_stopping="auto",
        validation_fraction=0.1,
        patience=5,
        clip_grad_norm=1.0,
        time_channel=None,
        device="cpu",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
        early_stopping_scoring=None,
        checkpoint_dir=None,
    ):
        self.hidden_size = hidden_size
        self.backbone_units = backbone_units
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.loss = loss
        self.early_stopping = early_stopping
        self.early_stopping_scoring = early_stopping_scoring
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir


class MoERegressor(_MoEModel, BaseTimeSeriesRegressor):
    __doc__ = (
        """Standard mixture of CfC experts for regression: all at rate 1, softmax gate, last valid state.

    Parameters
    ----------
    n_experts : int, default=4
        Number of experts.
"""
        + _MIXTURE_PARAMS_DOC
        + """    top_k : int or None, default=None
        Keep only the ``top_k`` largest gate weights per sample (at most
        ``n_experts``).
    aux_loss_weight : float, default=0.01
        Weight of the load-balancing loss.
"""
        + REGRESSOR_PARAMS_DOC
        + _ATTRIBUTES_DOC
        + """    rates_ : tuple of int
        The experts' rates (all 1).
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesRegressor._parameter_constraints, **_MoEModel._model_constraints}

    def __init__(
        self,
        n_experts=4,
        hidden_size=16,
        backbone_units=32,
        top_k=None,
        aux_loss_weight=0.01,
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs="auto",
        batch_size=64,
        weight_decay=1e-4,
        dropout=0.1,
        loss="squared_error",
        early_stopping="auto",
        validation_fraction=0.1,
        patience=5,
        clip_grad_norm=1.0,
        time_channel=None,
        device="cpu",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
        early_stopping_scoring=None,
        checkpoint_dir=None,
    ):
        self.n_experts = n_experts
        self.hidden_size = hidden_size
        self.backbone_units = backbone_units
        self.top_k = top_k
        self.aux_loss_weight = aux_loss_weight
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.loss = loss
        self.early_stopping = early_stopping
        self.early_stopping_scoring = early_stopping_scoring
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir


class LSTMRegressor(_LSTMModel, BaseTimeSeriesRegressor):
    __doc__ = (
        """LSTM baseline for regression: ``torch.nn.LSTM`` on ``[x, mask, dt]``, last valid hidden state.

    Parameters
    ----------
    hidden_size : int, default=64
        Hidden units of the LSTM.
    num_layers : int, default=1
        Stacked LSTM layers.
"""
        + REGRESSOR_PARAMS_DOC
        + _ATTRIBUTES_DOC
    )

    _parameter_constraints: dict = {**BaseTimeSeriesRegressor._parameter_constraints, **_LSTMModel._model_constraints}

    def __init__(
        self,
        hidden_size=64,
        num_layers=1,
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs="auto",
        batch_size=64,
        weight_decay=1e-4,
        dropout=0.1,
        loss="squared_error",
        early_stopping="auto",
        validation_fraction=0.1,
        patience=5,
        clip_grad_norm=1.0,
        time_channel=None,
        device="cpu",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
        early_stopping_scoring=None,
        checkpoint_dir=None,
    ):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.loss = loss
        self.early_stopping = early_stopping
        self.early_stopping_scoring = early_stopping_scoring
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
