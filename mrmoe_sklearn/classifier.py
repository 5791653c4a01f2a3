"""The classifiers: MR-MoE and its baselines, all on one estimator base."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import COMMON_PARAMS_DOC, BaseTimeSeriesClassifier, _inference_batch_size, _torch_threads
from ._data import SUMMARY_ENCODINGS
from ._params import POSITIVE_INT, invalid_parameter
from .nn.ensemble import Ensemble
from .nn.models import LSTMNet, MRMoENet

__all__ = ["MRMoEClassifier", "LNNClassifier", "MoEClassifier", "LSTMClassifier"]

#: ``feature_importances_`` is the mean over at most this many training series
#: (evenly spaced through the data): on PhysioNet 2012's 9,590 training stays
#: the mean over all of them took 7.5 s, as long as an epoch of training.
IMPORTANCE_SAMPLES = 2048
#: Members of MR-MoE's ``ensemble_size="auto"`` when early stopping is on.
AUTO_ENSEMBLE = 3


class _LiquidMixtureClassifier(BaseTimeSeriesClassifier):
    """Classifiers built on :class:`~mrmoe_sklearn.nn.models.MRMoENet`.

    Subclasses implement ``_mixture_config()`` returning the network's
    keyword arguments (rates, hidden size, which parts are on) from parameters
    already checked: it validates nothing itself.
    """

    _parameter_constraints: dict = {
        **BaseTimeSeriesClassifier._parameter_constraints,
        "hidden_size": [POSITIVE_INT],
        "backbone_units": [POSITIVE_INT],
    }

    def _mixture_config(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _build_module(self, n_features, n_classes, validating=False):
        n_summary = self.scaling_.summary_width
        config = self._mixture_config()
        # the estimator's switches; the network gets n_summary
        config.pop("summary_head", None)
        config.pop("summary_encoding", None)
        size = config.pop("ensemble_size", 1)
        if size == "auto":
            size = AUTO_ENSEMBLE if validating else 1
        # a hidden layer on the summaries: measured better than the linear layer alone on
        # PhysioNet 2012's val parts (splits 1 and 2: 85.9 / 55.1 against 85.7 / 54.5 AUROC / AUPRC)
        config["summary_hidden"] = 2 * config["head_size"] if n_summary else 0
        members = [
            MRMoENet(n_features, n_classes, dropout=self.dropout, n_summary=n_summary, **config) for _ in range(size)
        ]
        return members[0] if size == 1 else Ensemble(members)

    def _summary_encoding(self):
        cfg = self._mixture_config()
        return cfg.get("summary_encoding") if cfg.get("summary_head", False) else None

    def _module_aux_weight(self):
        cfg = self._mixture_config()
        return self.aux_loss_weight if cfg["gate"] and len(cfg["rates"]) > 1 else 0.0

    def _check_param_combinations(self):
        top_k = getattr(self, "top_k", None)
        if top_k is not None:
            n_experts = len(self._mixture_config()["rates"])
            if top_k > n_experts:
                allowed = f"None or an int in the range [1, {n_experts}] (the number of experts)"
                raise invalid_parameter("top_k", type(self).__name__, allowed, top_k)

    @property
    def rates_(self):
        """Rates of the fitted experts, in the order of the gate's columns."""
        check_is_fitted(self, "net_")
        return self.net_.module_.rates

    def _after_fit(self, batch):
        if self.net_.module_.feature_attention is None:
            self.__dict__.pop("feature_importances_", None)
            return
        n = batch["x"].shape[0]
        if n > IMPORTANCE_SAMPLES:  # evenly spaced series: the mean over the data, at a bounded cost
            rows = torch.from_numpy(np.linspace(0, n - 1, IMPORTANCE_SAMPLES).round().astype(np.int64))
            batch = {k: t[rows] for k, t in batch.items()}
        weights = self._details(batch)["feature_weights"].mean(axis=0)
        self.feature_importances_ = weights / weights.sum()

    def _details(self, batch):
        module = self.net_.module_
        device = self.net_.device
        n = batch["x"].shape[0]
        parts = []
        was_training = module.training
        module.eval()
        try:
            size = _inference_batch_size(self.batch_size, batch)
            with torch.no_grad(), _torch_threads(self.n_threads):
                for start in range(0, n, size):
                    chunk = {k: t[start : start + size].to(device) for k, t in batch.items()}
                    _, details = module(**chunk, return_details=True)
                    parts.append({k: d.double().cpu().numpy() for k, d in details.items()})
        finally:
            module.train(was_training)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def explain(self, X):
        """Attention and gate weights behind each prediction.

        Parameters
        ----------
        X : array-like, see :meth:`fit`

        Returns
        -------
        explanation : dict
            ``"feature_weights"``: ndarray (n_samples, n_features), mean
            feature-attention weight of each measured channel over the valid
            steps (1 everywhere without feature attention).
            ``"temporal_weights"``: ndarray (n_samples, n_experts, n_timesteps),
            each expert's temporal attention mapped back to the input steps
            (sums to 1 over a sample's valid steps; zeros without temporal
            attention). ``"gate_weights"``: ndarray (n_samples, n_experts).
            ``"rates"``: the experts' rates.
        """
        check_is_fitted(self, "net_")
        batch = self._batch(self._read_X(X, fitted=True))
        details = self._details(batch)
        details["rates"] = self.rates_
        return details


_MIXTURE_PARAMS_DOC = """\
    hidden_size : int, default=16
        Hidden units of each CfC expert.
    backbone_units : int, default=32
        Width of each expert's backbone layer.
"""


class MRMoEClassifier(_LiquidMixtureClassifier):
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
    rates : tuple of int, default=(1, 2, 4, 8)
        Rates of the experts. Sorted ascending internally; ``rates_`` gives the
        order used by the gate weights.
    n_experts : int or None, default=None
        Number of experts; None uses ``len(rates)``. Otherwise expert ``k``
        gets ``rates[k % len(rates)]`` (e.g. ``n_experts=2`` with the default
        rates gives rates 1 and 2).
"""
        + _MIXTURE_PARAMS_DOC
        + """    feature_attention : bool, default=True
        Per-step softmax attention over features.
    temporal_attention : bool, default=True
        Attention pooling of each expert's states; False uses the last valid
        state.
    gate : bool, default=True
        Softmax gating network over the experts; False averages them.
    top_k : int or None, default=None
        Keep only the ``top_k`` largest gate weights per sample.
    aux_loss_weight : float, default=0.01
        Weight of the load-balancing loss.
    load_balance : {"cv", "switch"}, default="cv"
        Form of the load-balancing loss (coefficient of variation of summed
        gates, or the Switch-Transformer form).
    head_size : int, default=32
        Width the experts' contexts are projected to before the output layer.
    carry_forward : bool, default=False
        Also give the experts, at every step, each channel's last observed
        value and the time since that observation (GRU-D-style inputs for
        sparse charts; static descriptors charted once at time 0 then reach
        every step).
    summary_head : bool, default=True
        Also feed per-channel summary statistics of each series (mean, std,
        min, max, first, last, count, slope, time since last observation;
        :func:`~mrmoe_sklearn.summary.summary_statistics`), robustly scaled at
        fit, through a small MLP (one hidden layer of ``2 * head_size`` units)
        into the head beside the experts' mixture.
    summary_encoding : {"quantile", "robust"}, default="quantile"
        How the summary statistics enter that MLP. ``"quantile"``: each is
        cut at its 8 quantile bins over the training series and given as the
        piecewise-linear filling of each bin and a missing flag
        (:func:`~mrmoe_sklearn._data.quantile_encode`), which lets the MLP
        split a statistic at thresholds as a gradient-boosted tree does;
        measured better on PhysioNet 2012's val parts (splits 1 and 2: 87.0 /
        57.8 against 86.4 / 56.7 AUROC / AUPRC). ``"robust"``: minus the
        training median over a robust scale, clipped to +-5.
    ensemble_size : int or "auto", default="auto"
        Number of networks trained side by side on the same batches, each on
        its own loss, from their own initial weights; the estimator predicts
        their mean probability (early stopping watches that mean's validation
        loss). Training and prediction cost grow in proportion. ``"auto"``:
        3 when early stopping is on (large data sets, where the members'
        variance is what the ensemble removes; measured on PhysioNet 2012's
        val parts), 1 otherwise.
"""
        + COMMON_PARAMS_DOC
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

    _parameter_constraints: dict = {
        **_LiquidMixtureClassifier._parameter_constraints,
        "rates": [POSITIVE_INT, "array-like"],
        "n_experts": [POSITIVE_INT, None],
        "feature_attention": ["boolean"],
        "temporal_attention": ["boolean"],
        "gate": ["boolean"],
        "top_k": [POSITIVE_INT, None],
        "aux_loss_weight": [Interval(Real, 0, None, closed="left")],
        "load_balance": [StrOptions({"cv", "switch"})],
        "head_size": [POSITIVE_INT],
        "carry_forward": ["boolean"],
        "summary_head": ["boolean"],
        "summary_encoding": [StrOptions(set(SUMMARY_ENCODINGS))],
        "ensemble_size": [POSITIVE_INT, StrOptions({"auto"})],
    }

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
        max_epochs=30,
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
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _rates(self):
        """``rates`` as a tuple (an int is one rate)."""
        return (self.rates,) if isinstance(self.rates, Integral) else tuple(self.rates)

    def _check_param_combinations(self):
        rates = self._rates()
        if not rates or not all(isinstance(r, Integral) and not isinstance(r, bool) and r >= 1 for r in rates):
            raise invalid_parameter("rates", type(self).__name__, "a non-empty sequence of ints >= 1", self.rates)
        super()._check_param_combinations()

    def _mixture_config(self):
        rates = self._rates()
        if self.n_experts is not None:
            rates = tuple(rates[k % len(rates)] for k in range(self.n_experts))
        return dict(
            ensemble_size=self.ensemble_size,
            carry_forward=bool(self.carry_forward),
            summary_head=bool(self.summary_head),
            summary_encoding=self.summary_encoding,
            rates=rates,
            hidden_size=self.hidden_size,
            backbone_units=self.backbone_units,
            feature_attention=bool(self.feature_attention),
            temporal_attention=bool(self.temporal_attention),
            gate=bool(self.gate),
            top_k=self.top_k,
            head_size=self.head_size,
            load_balance=self.load_balance,
        )


class LNNClassifier(_LiquidMixtureClassifier):
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

    def __init__(
        self,
        hidden_size=64,
        backbone_units=64,
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs=30,
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
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _mixture_config(self):
        return dict(
            rates=(1,),
            hidden_size=self.hidden_size,
            backbone_units=self.backbone_units,
            feature_attention=False,
            temporal_attention=False,
            gate=False,
            head_size=self.hidden_size,
        )


class MoEClassifier(_LiquidMixtureClassifier):
    __doc__ = (
        """Standard mixture of CfC experts: all at rate 1, softmax gate, last valid state.

    Parameters
    ----------
    n_experts : int, default=4
        Number of experts.
"""
        + _MIXTURE_PARAMS_DOC
        + """    top_k : int or None, default=None
        Keep only the ``top_k`` largest gate weights per sample.
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

    _parameter_constraints: dict = {
        **_LiquidMixtureClassifier._parameter_constraints,
        "n_experts": [POSITIVE_INT],
        "top_k": [POSITIVE_INT, None],
        "aux_loss_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_experts=4,
        hidden_size=16,
        backbone_units=32,
        top_k=None,
        aux_loss_weight=0.01,
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs=30,
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
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _mixture_config(self):
        return dict(
            rates=(1,) * self.n_experts,
            hidden_size=self.hidden_size,
            backbone_units=self.backbone_units,
            feature_attention=False,
            temporal_attention=False,
            gate=True,
            top_k=self.top_k,
            head_size=32,
        )


class LSTMClassifier(BaseTimeSeriesClassifier):
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

    _parameter_constraints: dict = {
        **BaseTimeSeriesClassifier._parameter_constraints,
        "hidden_size": [POSITIVE_INT],
        "num_layers": [POSITIVE_INT],
    }

    def __init__(
        self,
        hidden_size=64,
        num_layers=1,
        lr=1e-3,
        lr_schedule="plateau",
        max_epochs=30,
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
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.time_channel = time_channel
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _build_module(self, n_features, n_classes, validating=False):
        return LSTMNet(n_features, n_classes, self.hidden_size, self.num_layers, self.dropout)
