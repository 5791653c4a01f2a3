"""Pure PyTorch modules of the package (no scikit-learn inside)."""

from .attention import FeatureAttention, TemporalAttention
from .cells import CfCCell, cfc_scan
from .ensemble import Ensemble
from .experts import MultiRateCfC, resample
from .gating import Gate, load_balance_loss, sequence_summaries
from .models import LSTMNet, MRMoENet, carry_forward

__all__ = [
    "CfCCell",
    "cfc_scan",
    "FeatureAttention",
    "TemporalAttention",
    "MultiRateCfC",
    "resample",
    "Gate",
    "load_balance_loss",
    "sequence_summaries",
    "MRMoENet",
    "LSTMNet",
    "Ensemble",
    "carry_forward",
]
