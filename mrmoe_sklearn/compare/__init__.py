"""Comparison of MR-MoE with its baselines, its ablations and peers.

This is the package's main job, in two protocols:

- :func:`compare_models` (cross-validation): fit every model on the same
  seeded :class:`~sklearn.model_selection.StratifiedKFold` folds, score the
  out-of-fold predictions by AUROC and AUPRC, compare MR-MoE with each other
  model over the folds (mean difference, paired t-test, wins), and draw the
  figures;
- :func:`compare_on_splits` (a published protocol): fixed train/validation/test
  splits, every model fitted on a split's train part with anything it chooses
  (epochs, trees) chosen on the val part, the test part scored once; on
  PhysioNet 2012's five published splits the scores stand beside the published
  ones (:data:`PUBLISHED_P12`).

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

Peers join the same folds or splits: ``"gbt"`` (per-channel summary statistics
into scikit-learn's gradient-boosted trees, :func:`summary_gbt`; compared by
default on PhysioNet 2012) and ``"minirocket"`` (aeon's
``MiniRocketClassifier``, when aeon is installed).

Use it from Python, or from the command line::

    python -m mrmoe_sklearn.compare              # built-in dataset, figures in compare_results/
    mrmoe-compare --models MR-MoE,LSTM --cv 3 --max-epochs 5
    mrmoe-compare --csv stays.csv --id-col stay_id --time-col charttime --label-col died
    mrmoe-compare --npz data.npz --time-channel 0 --peers minirocket,gbt
    mrmoe-compare --dataset physionet2012 --data-home DIR   # compare_results/physionet2012/

Run ``mrmoe-compare --help`` for every option.

Layout: ``_peers`` (the models, aliases and peers), ``_protocol`` (folds and
splits, fitting and scoring one model, both comparisons), ``_report`` (the
results, tables, published figures, files and plots), ``_io`` (data input)
and ``_cli`` (the command line).
"""

from ._cli import CLI_MAX_EPOCHS, PHYSIONET_MODELS, main
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
    "PHYSIONET_MODELS",
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
