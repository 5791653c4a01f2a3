"""Cross-validated comparison of MR-MoE with its baselines and ablations.

This is the package's main job: fit every model on the same seeded
:class:`~sklearn.model_selection.StratifiedKFold` folds, score the out-of-fold
predictions by AUROC and AUPRC, compare MR-MoE with each other model over the
folds (mean difference, paired t-test, wins), and draw the figures.

Models compared by default (all with the same ``random_state`` and
``time_channel``):

========================== ======================================================
name                       estimator
========================== ======================================================
MR-MoE                     ``MRMoEClassifier()``
LNN                        ``LNNClassifier()`` (one liquid network)
MoE                        ``MoEClassifier()`` (experts all at rate 1)
LSTM                       ``LSTMClassifier()``
MR-MoE (no feature attn)   ``MRMoEClassifier(feature_attention=False)``
MR-MoE (no temporal attn)  ``MRMoEClassifier(temporal_attention=False)``
MR-MoE (single rate)       ``MRMoEClassifier(rates=(1,), n_experts=4)``
========================== ======================================================

Optional peers from other libraries join the same folds: ``"minirocket"``
(aeon's ``MiniRocketClassifier``, when aeon is installed).

Use it from Python with :func:`compare_models`, or from the command line::

    python -m mrmoe_sklearn.compare              # built-in dataset, figures in compare_results/
    mrmoe-compare --models MR-MoE,LSTM --cv 3 --max-epochs 5
    mrmoe-compare --csv stays.csv --id-col stay_id --time-col charttime --label-col died
    mrmoe-compare --npz data.npz --time-channel 0 --peers minirocket

Run ``mrmoe-compare --help`` for every option.

Layout: ``_peers`` (the models, aliases and peers), ``_protocol`` (folds,
fitting and scoring one model, the comparison itself), ``_report`` (the
result, tables, files and figures), ``_io`` (data input) and ``_cli`` (the
command line).
"""

from ._cli import CLI_MAX_EPOCHS, main
from ._io import load_long_csv, load_npz
from ._peers import (
    PEER_NAMES,
    PEERS,
    REFERENCE,
    MiniRocketPeer,
    default_models,
    impute_for_minirocket,
    peer_models,
    select_models,
    summary_gbt,
)
from ._protocol import compare_models, compare_on_splits
from ._report import (
    PUBLISHED_P12,
    ComparisonResult,
    SplitComparisonResult,
    format_published_table,
    format_table,
    published_table,
    save_figures,
    save_split_figures,
    write_results,
    write_split_results,
)

__all__ = [
    "CLI_MAX_EPOCHS",
    "ComparisonResult",
    "MiniRocketPeer",
    "PEERS",
    "PEER_NAMES",
    "PUBLISHED_P12",
    "REFERENCE",
    "SplitComparisonResult",
    "compare_models",
    "compare_on_splits",
    "default_models",
    "format_published_table",
    "format_table",
    "impute_for_minirocket",
    "load_long_csv",
    "load_npz",
    "main",
    "peer_models",
    "published_table",
    "save_figures",
    "save_split_figures",
    "select_models",
    "summary_gbt",
    "write_results",
    "write_split_results",
]
