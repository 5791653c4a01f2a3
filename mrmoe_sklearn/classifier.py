"""The classifiers: MR-MoE and its baselines, all on one estimator base."""

from ._base import COMMON_PARAMS_DOC, BaseTimeSeriesClassifier, common_params_doc
from ._models import _MIXTURE_PARAMS_DOC, MRMOE_PARAMS_DOC, _LNNModel, _LSTMModel, _MoEModel, _MRMoEModel

__all__ = ["MRMoEClassifier", "LNNClassifier", "MoEClassifier", "LSTMClassifier"]


class MRMoEClassifier(_MRMoEModel, BaseTimeSeriesClassifier):
    __doc__ = (
        """Multi-rate mixture of liquid (CfC) experts for time-series classification.

    Several closed-form continuous-time experts each run at their own rate
    (expert ``k`` reads windows of ``rates[k]`` steps and takes
    ``ceil(T / rates[k])`` steps), a gating network weighs them per sample, a
    feature attention suppresses noisy variables and a temporal attention pools
    the informative states. Handles irregular sampling (``time_channel``),
    missing values (NaN) and variable length (trailing all-NaN padding or a
    list of arrays).

    Parameters
    ----------
"""
        + MRMOE_PARAMS_DOC
        + common_params_doc(lr='"auto"')
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of channels of ``X`` at fit, the time channel included.
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` is the PyTorch module.
    history_ : skorch.History
        Per-epoch losses and durations.
    scaling_ : ScalingStats
        Per-feature means and scales and the time scale learned at fit.
    feature_importances_ : ndarray of shape (n_features,)
        Mean feature-attention weight of each measured channel (time channel
        excluded) over the training data (at most 2,048 series, evenly spaced
        through it), normalised to sum to 1. Only with ``feature_attention=True``.
    rates_ : tuple of int
        The experts' rates in gate order.

    Notes
    -----
    Input layout: 3D ``(n_samples, n_channels, n_timesteps)`` channels first
    (aeon's ``numpy3D``), 2D ``(n_samples, n_timesteps)`` univariate, or a list
    of ``(n_channels, n_timesteps_i)`` arrays. Values are standardised per
    channel at fit (NaN-aware) and clipped to +-1e4 standard deviations.

    Examples
    --------
    >>> from mrmoe_sklearn import MRMoEClassifier
    >>> from mrmoe_sklearn.datasets import make_multirate_classification
    >>> X, y = make_multirate_classification(n_samples=80, n_timesteps=32, random_state=0)
    >>> clf = MRMoEClassifier(time_channel=0, max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (80, 2)
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesClassifier._parameter_constraints, **_MRMoEModel._model_constraints}

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
        lr="auto",
        lr_schedule="plateau",
        max_epochs="auto",
        batch_size=64,
        weight_decay=1e-4,
        dropout=0.1,
        class_weight=None,
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
        self.class_weight = class_weight
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


class LNNClassifier(_LNNModel, BaseTimeSeriesClassifier):
    __doc__ = (
        """Monolithic liquid network: one CfC at rate 1, classified from its last valid state.

    The baseline without the mixture's parts: no feature or temporal attention,
    no gate, a single expert that reads every step.

    Parameters
    ----------
    hidden_size : int, default=64
        Hidden units of the CfC (the same total as MR-MoE's default 4 x 16).
    backbone_units : int, default=64
        Width of the CfC's backbone layer.
"""
        + COMMON_PARAMS_DOC
        + """
    Attributes
    ----------
    classes_, n_features_in_, net_, history_, scaling_, rates_
        As in :class:`MRMoEClassifier`.
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesClassifier._parameter_constraints, **_LNNModel._model_constraints}

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
        class_weight=None,
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
        self.class_weight = class_weight
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


class MoEClassifier(_MoEModel, BaseTimeSeriesClassifier):
    __doc__ = (
        """Standard mixture of CfC experts: all at rate 1, softmax gate, last valid state.

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
        + COMMON_PARAMS_DOC
        + """
    Attributes
    ----------
    classes_, n_features_in_, net_, history_, scaling_, rates_
        As in :class:`MRMoEClassifier`.
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesClassifier._parameter_constraints, **_MoEModel._model_constraints}

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
        class_weight=None,
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
        self.class_weight = class_weight
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


class LSTMClassifier(_LSTMModel, BaseTimeSeriesClassifier):
    __doc__ = (
        """LSTM baseline: ``torch.nn.LSTM`` on ``[x, mask, dt]``, last valid hidden state.

    Parameters
    ----------
    hidden_size : int, default=64
        Hidden units of the LSTM.
    num_layers : int, default=1
        Stacked LSTM layers.
"""
        + COMMON_PARAMS_DOC
        + """
    Attributes
    ----------
    classes_, n_features_in_, net_, history_, scaling_
        As in :class:`MRMoEClassifier`.
    """
    )

    _parameter_constraints: dict = {**BaseTimeSeriesClassifier._parameter_constraints, **_LSTMModel._model_constraints}

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
        class_weight=None,
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
        self.class_weight = class_weight
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
