"""Multi-Rate Mixture-of-Experts of liquid neural networks for scikit-learn.

Public names only; see :class:`MRMoEClassifier` (and :class:`MRMoERegressor`) for the model and
:mod:`mrmoe_sklearn._data` for the input contract.
"""

from ._base import TrainingDivergedError
from ._data import TimeSeriesScaler, to_sequences
from .classifier import LNNClassifier, LSTMClassifier, MoEClassifier, MRMoEClassifier
from .datasets import make_multirate_classification
from .regressor import LNNRegressor, LSTMRegressor, MoERegressor, MRMoERegressor
from .summary import SummaryFeatures, summary_statistics

__version__ = "0.1.0"

__all__ = [
    "MRMoEClassifier",
    "LNNClassifier",
    "MoEClassifier",
    "LSTMClassifier",
    "MRMoERegressor",
    "LNNRegressor",
    "MoERegressor",
    "LSTMRegressor",
    "TimeSeriesScaler",
    "SummaryFeatures",
    "TrainingDivergedError",
    "make_multirate_classification",
    "to_sequences",
    "summary_statistics",
]
