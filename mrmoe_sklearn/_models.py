"""The model families shared by the classifiers and the regressors.

Each family is a mixin placed before the estimator base
(:class:`~mrmoe_sklearn._base.BaseTimeSeriesClassifier` or
:class:`~mrmoe_sklearn._base.BaseTimeSeriesRegressor`): it says which network
to build, which parameters it adds (``_model_constraints``, merged into the
estimator's ``_parameter_constraints``) and how to explain it; the base says
what the outputs mean.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import INFER_ROWS, _inference_batch_size, _torch_threads
from ._data import SUMMARY_ENCODINGS
from ._params import POSITIVE_INT, invalid_parameter
from .nn.ensemble import Ensemble
from .nn.gating import BALANCE_KINDS
from .nn.models import LSTMNet, MRMoENet

#: ``feature_importances_`` is the mean over at most this many training series
#: (evenly spaced through the data): on PhysioNet 2012's 9,590 training stays
#: the mean over all of them took 7.5 s, as long as an epoch of training.
IMPORTANCE_SAMPLES = 2048
#: Members of MR-MoE's ``ensemble_size="auto"`` when early stopping is on.
AUTO_ENSEMBLE = 3


class _LiquidMixture:
    """Estimators built on :class:`~mrmoe_sklearn.nn.models.MRMoENet` (a mixin before the estimator base).

    Subclasses implement ``_mixture_config()`` returning the network's
    keyword arguments (rates, hidden size, which parts are on) from parameters
    already checked: it validates nothing itself.
    """

    #: The family's parameters, added to the base's ``_parameter_constraints``.
    _model_constraints: dict = {
        "hidden_size": [POSITIVE_INT],
        "backbone_units": [POSITIVE_INT],
    }

    #: The constructor parameters the network is built from (see ``_network_params``).
    _network_param_names = ("hidden_size", "backbone_units")

    def _mixture_config(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _ensemble_size(self, validating):
        """The number of networks trained side by side: ``ensemble_size`` with ``"auto"`` resolved (1 without it)."""
        size = getattr(self, "ensemble_size", 1)
        if size == "auto":
            size = AUTO_ENSEMBLE if validating else 1
        return size

    def _update_warm_params(self, net):
        """Also carry a changed ``load_balance`` over: the networks read it at every training pass."""
        super()._update_warm_params(net)
        load_balance = self._mixture_config().get("load_balance")
        if load_balance is not None:
            for module in net.module_.modules():
                if isinstance(module, MRMoENet):
                    module.load_balance = load_balance

    def _build_module(self, n_features, n_outputs, validating=False):
        n_summary = self.scaling_.summary_width
        config = self._mixture_config()
        # the estimator's switches; the network gets n_summary
        config.pop("summary_head", None)
        config.pop("summary_encoding", None)
        config.pop("ensemble_size", None)
        size = self._ensemble_size(validating)
        # a hidden layer on the summaries: measured better than the linear layer alone on
        # PhysioNet 2012's val parts (splits 1 and 2: 85.9 / 55.1 against 85.7 / 54.5 AUROC / AUPRC)
        config["summary_hidden"] = 2 * config["head_size"] if n_summary else 0
        members = [
            MRMoENet(n_features, n_outputs, dropout=self.dropout, n_summary=n_summary, row_block=INFER_ROWS, **config)
            for _ in range(size)
        ]
        return members[0] if size == 1 else Ensemble(members, combine=self._ensemble_combine)

    def _summary_encoding(self):
        cfg = self._mixture_config()
        return cfg.get("summary_encoding") if cfg.get("summary_head", False) else None

    def _module_aux_weight(self):
        cfg = self._mixture_config()
        return self.aux_loss_weight if cfg["gate"] and len(cfg["rates"]) > 1 else 0.0

    def _check_param_combinations(self):
        super()._check_param_combinations()
        top_k = getattr(self, "top_k", None)
        if top_k is not None:
            config = self._mixture_config()
            if not config["gate"]:  # without the gate the experts are averaged: nothing to keep top_k of
                allowed = "None when gate=False (it keeps the largest gate weights: set gate=True to use it)"
                raise invalid_parameter("top_k", type(self).__name__, allowed, top_k)
            n_experts = len(config["rates"])
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
            with torch.no_grad(), _torch_threads(self.n_threads, self._uses_kernel):
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
            steps, in units where uniform attention is 1 (the softmax times
            the number of features: each row averages 1; 1 everywhere without
            feature attention).
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


MRMOE_PARAMS_DOC = (
    """    rates : tuple of int, default=(1, 2, 4, 8)
        Rates of the experts. Sorted ascending internally; ``rates_`` gives the
        order used by the gate weights.
    n_experts : int or None, default=None
        Number of experts; None uses ``len(rates)``. Otherwise expert ``k``
        gets ``rates[k % len(rates)]`` (e.g. ``n_experts=2`` with the default
        rates gives rates 1 and 2).
"""
    + _MIXTURE_PARAMS_DOC
    + """    feature_attention : bool, default=True
        Per-step softmax attention over features, scaled by the number of
        features (uniform weights are 1: the identity); ``explain`` reports
        its mean over valid steps, which also averages 1 over the features.
    temporal_attention : bool, default=True
        Attention pooling of each expert's states; False uses the last valid
        state.
    gate : bool, default=True
        Softmax gating network over the experts; False averages them.
    top_k : int or None, default=None
        Keep only the ``top_k`` largest gate weights per sample (at most the
        number of experts). Needs the gate: with ``gate=False`` it must be None.
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
        :func:`~mrmoe_sklearn.summary.summary_statistics`), encoded as
        ``summary_encoding`` says from the training series, through a small
        MLP (one hidden layer of ``2 * head_size`` units) into the head beside
        the experts' mixture. The encoded statistics (and missing flags) that
        are the same for every training series of positive weight (the counts
        of channels observed at every step, the flags of complete data) are
        left out (``scaling_.summary_columns``).
    summary_encoding : {"quantile", "robust"}, default="quantile"
        How the summary statistics enter that MLP. ``"quantile"``: each is
        cut at its 8 quantile bins over the training series and given as the
        piecewise-linear filling of each bin and a missing flag
        (Gorishniy et al., NeurIPS 2022), which lets the MLP
        split a statistic at thresholds as a gradient-boosted tree does;
        measured better on PhysioNet 2012's val parts (splits 1 and 2: 86.8 /
        58.2 against 86.4 / 56.7 AUROC / AUPRC). ``"robust"``: minus the
        training median over a robust scale, clipped to +-5.
    ensemble_size : int or "auto", default="auto"
        Number of networks trained side by side on the same batches, each on
        its own loss, from their own initial weights; the estimator predicts
        their mean probability (a regressor: their mean prediction; early
        stopping watches the combined model's validation loss). Training and
        prediction cost grow in proportion. ``"auto"``: 3 when early stopping
        is on (large data sets, where the members' variance is what the
        ensemble removes; measured on PhysioNet 2012's val parts), 1 otherwise.
"""
)


class _MRMoEModel(_LiquidMixture):
    """The multi-rate mixture: every part on by default."""

    _network_param_names = (
        *_LiquidMixture._network_param_names,
        "rates",
        "n_experts",
        "feature_attention",
        "temporal_attention",
        "gate",
        "top_k",
        "head_size",
        "carry_forward",
        "summary_head",
        "summary_encoding",
        "ensemble_size",
    )
    _model_constraints: dict = {
        **_LiquidMixture._model_constraints,
        "rates": [POSITIVE_INT, "array-like"],
        "n_experts": [POSITIVE_INT, None],
        "feature_attention": ["boolean"],
        "temporal_attention": ["boolean"],
        "gate": ["boolean"],
        "top_k": [POSITIVE_INT, None],
        "aux_loss_weight": [Interval(Real, 0, None, closed="left")],
        "load_balance": [StrOptions(set(BALANCE_KINDS))],
        "head_size": [POSITIVE_INT],
        "carry_forward": ["boolean"],
        "summary_head": ["boolean"],
        "summary_encoding": [StrOptions(set(SUMMARY_ENCODINGS))],
        "ensemble_size": [POSITIVE_INT, StrOptions({"auto"})],
    }

    def _rates(self):
        """``rates`` as a tuple (an int is one rate)."""
        return (self.rates,) if isinstance(self.rates, Integral) else tuple(self.rates)

    def _check_param_combinations(self):
        rates = self._rates()
        if not rates or not all(isinstance(r, Integral) and not isinstance(r, bool) and r >= 1 for r in rates):
            raise invalid_parameter("rates", type(self).__name__, "a non-empty sequence of ints >= 1", self.rates)
        super()._check_param_combinations()

    def _network_params(self, validating):
        # as the network is built: the rates a tuple of ints, "auto" resolved
        params = super()._network_params(validating)
        return {
            **params,
            "rates": tuple(int(r) for r in self._rates()),
            "ensemble_size": self._ensemble_size(validating),
        }

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


class _LNNModel(_LiquidMixture):
    """One CfC at rate 1, last valid state, no attention, no gate."""

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


class _MoEModel(_LiquidMixture):
    """K CfC experts at rate 1, softmax gate, last valid state."""

    _network_param_names = (*_LiquidMixture._network_param_names, "n_experts", "top_k")
    _model_constraints: dict = {
        **_LiquidMixture._model_constraints,
        "n_experts": [POSITIVE_INT],
        "top_k": [POSITIVE_INT, None],
        "aux_loss_weight": [Interval(Real, 0, None, closed="left")],
    }

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


class _LSTMModel:
    """``torch.nn.LSTM`` on ``[x, m, dt]``, last valid hidden state."""

    #: No compiled kernel: a fit does not load it (it uses it where loaded already).
    _uses_kernel = False

    _network_param_names = ("hidden_size", "num_layers")
    _model_constraints: dict = {
        "hidden_size": [POSITIVE_INT],
        "num_layers": [POSITIVE_INT],
    }

    def _build_module(self, n_features, n_outputs, validating=False):
        return LSTMNet(n_features, n_outputs, self.hidden_size, self.num_layers, self.dropout)
