#!/usr/bin/env python
"""MR-MoE with its defaults on small regular data sets that aeon ships (no download).

Fits ``MRMoEClassifier(random_state=0)`` (with the ``--param`` values, which
may set ``random_state`` too) on the train part of each data set and prints
the test AUROC (one-vs-rest where multiclass), the accuracy and the fit
time: the check that defaults chosen on large irregular data still serve small
regular sets (20 to 270 training series, 24 to 427 steps, univariate and
multivariate, one of variable length). Needs aeon (``pip install -e ".[aeon]"``).

Examples
--------
::

    python benchmarks/small_sets.py
    python benchmarks/small_sets.py --param lr=5e-3 --param max_epochs=60
"""

import argparse
import ast
import sys
import time

#: The classification sets that aeon ships in its wheel (no download).
DATASETS = (
    "ArrowHead",
    "BasicMotions",
    "GunPoint",
    "ItalyPowerDemand",
    "JapaneseVowels",
    "OSULeaf",
    "PickupGestureWiimoteZ",
    "UnitTest",
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an MRMoEClassifier parameter to change (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        from aeon.datasets import load_classification
    except ImportError:
        parser.error("this benchmark needs aeon: python -m pip install -e '.[aeon]'")
    from sklearn.metrics import roc_auc_score

    from mrmoe_sklearn import MRMoEClassifier

    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = ast.literal_eval(value)
    aurocs = []
    for name in DATASETS:
        X_train, y_train = load_classification(name, split="train")
        X_test, y_test = load_classification(name, split="test")
        start = time.perf_counter()
        clf = MRMoEClassifier(**{"random_state": 0, **params}).fit(X_train, y_train)
        seconds = time.perf_counter() - start
        proba = clf.predict_proba(X_test)
        if len(clf.classes_) == 2:
            auroc = roc_auc_score(y_test == clf.classes_[1], proba[:, 1])
        else:
            auroc = roc_auc_score(y_test, proba, multi_class="ovr", labels=clf.classes_)
        aurocs.append(auroc)
        accuracy = (clf.predict(X_test) == y_test).mean()
        print(
            f"{name}: {len(X_train)} train / {len(X_test)} test series, {len(clf.history_)} epochs, "
            f"AUROC {auroc:.4f}, accuracy {accuracy:.3f}, fit {seconds:.1f} s",
            flush=True,
        )
    print(f"mean AUROC over the {len(DATASETS)} sets: {sum(aurocs) / len(aurocs):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
