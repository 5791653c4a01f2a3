"""The models a comparison fits: the package's own, and peers.

:func:`default_models` holds MR-MoE, its baselines and its ablations;
:func:`select_models` resolves what a user names (display names, case and
punctuation ignored, a few aliases, peers too); :func:`peer_models`
instantiates the optional peers: aeon's MiniRocket behind
:class:`MiniRocketPeer`, and :func:`summary_gbt`, per-channel summary
statistics into scikit-learn's gradient-boosted trees.
"""

import re
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import validate_params

from .._params import POSITIVE_INT, TIME_CHANNEL
from ..classifier import LNNClassifier, LSTMClassifier, MoEClassifier, MRMoEClassifier

#: Name of the model the others are compared against.
REFERENCE = "MR-MoE"

#: Peers that ``peers=`` accepts (``models=`` too): aeon's MiniRocket, and
#: summary statistics into a gradient-boosted tree.
PEERS = ("minirocket", "gbt")

#: Display names of the peers, by peer name.
PEER_NAMES = {"minirocket": "MiniRocket (aeon)", "gbt": "GBT (summary stats)"}


def default_models():
    """The models of the default comparison, unfitted.

    Returns
    -------
    models : dict
        Maps each model's display name to an estimator instance, in the
        order of the comparison table: MR-MoE, the baselines LNN, MoE and
        LSTM, then the MR-MoE ablations.
    """
    return {
        "MR-MoE": MRMoEClassifier(),
        "LNN": LNNClassifier(),
        "MoE": MoEClassifier(),
        "LSTM": LSTMClassifier(),
        "MR-MoE (no feature attn)": MRMoEClassifier(feature_attention=False),
        "MR-MoE (no temporal attn)": MRMoEClassifier(temporal_attention=False),
        "MR-MoE (single rate)": MRMoEClassifier(rates=(1,), n_experts=4),
    }


_ALIASES = {
    "nofeatureattn": "MR-MoE (no feature attn)",
    "nofeatureattention": "MR-MoE (no feature attn)",
    "notemporalattn": "MR-MoE (no temporal attn)",
    "notemporalattention": "MR-MoE (no temporal attn)",
    "singlerate": "MR-MoE (single rate)",
}


def _key(name):
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _split_names(names):
    """A comma-separated string or a sequence -> list of stripped, non-empty names."""
    if isinstance(names, str):
        names = names.split(",")
    return [str(n).strip() for n in names or () if str(n).strip()]


def _peer_key(name):
    """The peer a name means (``"minirocket"``, ``"gbt"``), or None."""
    key = _key(name)
    for peer, display in PEER_NAMES.items():
        if key in (peer, _key(display)):
            return peer
    return None


#: The constraint on a ``models`` argument; the names themselves are checked by hand.
MODELS = [dict, str, "array-like", None]


@validate_params({"models": MODELS, "say": [callable, None]}, prefer_skip_nested_validation=True)
def select_models(models, say=None):
    """Resolve the ``models`` argument of the comparisons into estimators.

    Parameters
    ----------
    models : dict, sequence of str, str or None
        None: :func:`default_models`. A sequence of names (or one
        comma-separated string) selects some of them, or peers (``"gbt"``,
        ``"minirocket"``, see :func:`peer_models`); case and punctuation are
        ignored and the aliases ``no-feature-attn``, ``no-temporal-attn`` and
        ``single-rate`` work. A dict maps display names to estimator
        instances of your own.
    say : callable or None, default=None
        ``say(message, always=True)`` reports a peer skipped because its
        library is missing; None prints nothing.

    Returns
    -------
    models : dict
        Display name -> estimator, in the order given.

    Raises
    ------
    ValueError
        An unknown name, or nothing selected.
    TypeError
        A dict value without a ``fit`` method.
    """
    available = default_models()
    if models is None:
        return available
    if isinstance(models, dict):
        if not models:
            raise ValueError("models is empty: name at least one model to compare.")
        for name, est in models.items():
            if not hasattr(est, "fit"):
                raise TypeError(f"models[{name!r}] is not an estimator (it has no fit method).")
        return dict(models)
    lookup = {_key(n): n for n in available}
    lookup.update(_ALIASES)
    chosen = {}
    for raw in _split_names(models):
        name = lookup.get(_key(raw))
        if name is not None:
            chosen[name] = available[name]
        elif _peer_key(raw) is not None:
            chosen.update(peer_models([raw], say))
        else:
            raise ValueError(
                f"Unknown model {raw!r}. Available models: {', '.join(available)} "
                f"(case and punctuation are ignored; aliases: no-feature-attn, "
                f"no-temporal-attn, single-rate); peers: {', '.join(PEERS)}."
            )
    if not chosen:
        raise ValueError("models is empty: name at least one model to compare (skipped peers are not counted).")
    return chosen


# ----------------------------------------------------------------- MiniRocket peer
@validate_params({"X": ["array-like"], "time_channel": TIME_CHANNEL}, prefer_skip_nested_validation=True)
def impute_for_minirocket(X, time_channel=None):
    """Make a NaN-free, equal-length panel for convolution-based peers.

    Drops the time channel, then per sample and channel carries the last
    observed value forward and fills what is still missing (steps before the
    first observation, or a channel never observed) with 0.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_channels, n_timesteps)
        Channels first, NaN for missing values and padding.
    time_channel : int or None, default=None
        Channel to drop.

    Returns
    -------
    Xi : ndarray of shape (n_samples, n_channels - (time_channel is not None), n_timesteps)
        Float64 without NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim != 3:
        raise ValueError(f"Expected a 3D array (n_samples, n_channels, n_timesteps), got shape {X.shape}.")
    if time_channel is not None:
        X = np.delete(X, time_channel % X.shape[1], axis=1)
    observed = ~np.isnan(X)
    steps = np.arange(X.shape[2])
    last = np.where(observed, steps, 0)
    np.maximum.accumulate(last, axis=2, out=last)
    filled = np.take_along_axis(X, last, axis=2)
    return np.ascontiguousarray(np.nan_to_num(filled, nan=0.0))


def _softmax(scores):
    scores = scores - scores.max(axis=1, keepdims=True)
    out = np.exp(scores)
    return out / out.sum(axis=1, keepdims=True)


class MiniRocketPeer(ClassifierMixin, BaseEstimator):
    """aeon's ``MiniRocketClassifier`` behind this package's input contract.

    The input is imputed with :func:`impute_for_minirocket` (time channel
    dropped, forward fill, then 0). aeon's classifier ends in a
    ``RidgeClassifierCV``, whose ``predict_proba`` is a one-hot vote, useless
    for ROC or PR curves; the scores therefore come from the ridge decision
    values (``decision_function`` of the classifier, or of its fitted
    ``pipeline_``), and ``predict_proba`` only as a last resort.

    Parameters
    ----------
    n_kernels : int, default=10000
        Number of MiniRocket kernels.
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps; dropped before the transform.
    n_jobs : int or None, default=1
        Threads of the MiniRocket transform (as aeon takes it: -1 for all cores).
    random_state : int, RandomState instance or None, default=None
        Seed of the transform.

    Attributes
    ----------
    estimator_ : aeon.classification.convolution_based.MiniRocketClassifier
        The fitted aeon classifier.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    """

    _parameter_constraints: dict = {
        "n_kernels": [POSITIVE_INT],
        "time_channel": TIME_CHANNEL,
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(self, n_kernels=10000, time_channel=None, n_jobs=1, random_state=None):
        self.n_kernels = n_kernels
        self.time_channel = time_channel
        self.n_jobs = n_jobs
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Impute ``X`` and fit aeon's MiniRocket classifier.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, n_timesteps)
            Channels first; NaN for missing values.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : MiniRocketPeer
        """
        from aeon.classification.convolution_based import MiniRocketClassifier

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.estimator_ = MiniRocketClassifier(
            n_kernels=self.n_kernels, n_jobs=self.n_jobs, random_state=self.random_state
        )
        self.estimator_.fit(impute_for_minirocket(X, self.time_channel), y)
        return self

    def _decision(self, Xi):
        for owner in (self.estimator_, getattr(self.estimator_, "pipeline_", None)):
            method = getattr(owner, "decision_function", None)
            if callable(method):
                return np.asarray(method(Xi), dtype=float), owner
        return None, None

    def predict_proba(self, X):
        """Scores in [0, 1] per class, monotone in the ridge decision values.

        A logistic (binary) or softmax (multiclass) map of the decision values,
        for ranking metrics; not calibrated probabilities.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, n_timesteps)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        Xi = impute_for_minirocket(X, self.time_channel)
        scores, owner = self._decision(Xi)
        if scores is None:
            return np.asarray(self.estimator_.predict_proba(Xi), dtype=float)
        owner_classes = getattr(owner, "classes_", None)
        if owner_classes is None and hasattr(owner, "steps"):
            owner_classes = getattr(owner.steps[-1][1], "classes_", None)
        if scores.ndim == 1:
            scores = np.column_stack([-scores, scores]) / 2.0
        if owner_classes is not None and not np.array_equal(np.asarray(owner_classes), self.classes_):
            order = [list(np.asarray(owner_classes)).index(c) for c in self.classes_]
            scores = scores[:, order]
        return _softmax(scores)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, n_timesteps)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class _ObservedColumns(TransformerMixin, BaseEstimator):
    """Keep the columns with at least one value in the training data.

    scikit-learn 1.9.1's HistGradientBoosting fails on a column that is NaN
    throughout ("window shape cannot be larger than input array shape" while
    binning), as summary statistics are for a channel never observed in a
    training part.
    """

    _parameter_constraints: dict = {}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        self.keep_ = ~np.all(np.isnan(np.asarray(X, dtype=float)), axis=0)
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.keep_]


@validate_params({"time_channel": TIME_CHANNEL, "random_state": ["random_state"]}, prefer_skip_nested_validation=True)
def summary_gbt(time_channel=None, random_state=None):
    """The summary-statistics GBT peer: a Pipeline, unfitted.

    ``SummaryFeatures`` (:mod:`mrmoe_sklearn.summary`: per-channel mean, std,
    min, max, first, last, count, slope and time since the last observation,
    NaN where undefined), less the columns without a value in the training
    data (scikit-learn 1.9.1's gradient boosting fails on them), into scikit-learn's
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (300
    iterations, learning rate 0.05), the
    strong tabular baseline on sparse clinical charts.

    The gradient boosting runs its 300 iterations: the settings with which it
    scored 87.4 +- 0.6 AUROC / 56.0 +- 2.2 AUPRC (%, mean +- std over the five
    published splits of PhysioNet 2012) in the documented run of 2026-12-02,
    ``python benchmarks/physionet.py``, whose tables are
    ``benchmarks/physionet2012/results.md`` (and README.md,
    docs/physionet.md). Early stopping on the validation part, tried on split 1
    in issue 12 (not part of those results), stopped after 86 trees and lost 4
    points of AUPRC on the test part. Passing ``X_val`` has no effect then
    (scikit-learn ignores it without early stopping).

    Parameters
    ----------
    time_channel : int or None, default=None
        Channel of ``X`` holding time stamps.
    random_state : int, RandomState instance or None, default=None
        Seed of the gradient boosting (its hold-out and its tie breaks).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"summary"``, ``"observed"`` and ``"gbt"``.

    Raises
    ------
    ImportError
        If :mod:`mrmoe_sklearn.summary` is not available.
    """
    from ..summary import SummaryFeatures

    gbt = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, early_stopping=False, random_state=random_state
    )
    return Pipeline(
        [("summary", SummaryFeatures(time_channel=time_channel)), ("observed", _ObservedColumns()), ("gbt", gbt)]
    )


def _minirocket(say):
    try:
        import aeon  # noqa: F401
        from aeon.classification.convolution_based import MiniRocketClassifier  # noqa: F401
    except ImportError:
        say(
            "Skipping peer 'minirocket': it needs aeon, which is not installed "
            '(pip install "mrmoe-sklearn[aeon]" or pip install aeon).',
            always=True,
        )
        return None
    return MiniRocketPeer()


def _gbt(say):
    try:
        return summary_gbt()
    except ImportError as exc:
        say(f"Skipping peer 'gbt': it needs mrmoe_sklearn.summary ({exc}).", always=True)
        return None


@validate_params({"peers": [str, "array-like"], "say": [callable, None]}, prefer_skip_nested_validation=True)
def peer_models(peers, say=None):
    """Instantiate the requested peers; skip (with a message) those not available.

    Parameters
    ----------
    peers : sequence of str or str
        Names from :data:`PEERS` or their display names (or one
        comma-separated string); case and punctuation are ignored.
        ``"minirocket"``: :class:`MiniRocketPeer` (needs aeon);
        ``"gbt"``: :func:`summary_gbt`.
    say : callable or None, default=None
        ``say(message, always=True)`` reports a skipped peer; None prints nothing.

    Returns
    -------
    peers : dict
        Display name (:data:`PEER_NAMES`) -> unfitted estimator.

    Raises
    ------
    ValueError
        An unknown peer name.
    """
    say = say or (lambda message, always=False: None)
    makers = {"minirocket": _minirocket, "gbt": _gbt}
    out = {}
    for peer in _split_names(peers):
        key = _peer_key(peer)
        if key is None:
            raise ValueError(f"Unknown peer {peer!r}; available peers: {', '.join(PEERS)}.")
        estimator = makers[key](say)
        if estimator is not None:
            out[PEER_NAMES[key]] = estimator
    return out
