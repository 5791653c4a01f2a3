"""Tests of the comparison on fixed train/validation/test splits and of ``--dataset physionet2012``.

The protocol (:func:`compare_on_splits`) runs on small synthetic data with a
hand-made split table and estimators that record what they were given. The
command line runs on a tiny data set written in PhysioNet's own file format
(skipped where :func:`fetch_physionet2012` or :mod:`mrmoe_sklearn.summary` is
not there yet), and on a stand-in loader otherwise. The GBT peer (summary
statistics) is tested here too.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import Bunch

from mrmoe_sklearn import MRMoEClassifier, make_multirate_classification
from mrmoe_sklearn.compare import (
    PUBLISHED_P12,
    SplitComparisonResult,
    _cli,
    _protocol,
    compare_models,
    compare_on_splits,
    format_published_table,
    format_table,
    main,
    published_table,
    write_split_results,
)
from tests._helpers import write_tiny_physionet

N = 40


def _rows(X):
    """Row ids: channel 1 (3D) or column 1 (2D) holds each sample's index."""
    X = np.asarray(X)
    return (X[:, 1, 0] if X.ndim == 3 else X[:, 1]).astype(int).tolist()


class ValRecorder(ClassifierMixin, BaseEstimator):
    """Records the rows it was fitted on, handed as validation part and scored on."""

    def __init__(self, time_channel=None, random_state=None):
        self.time_channel = time_channel
        self.random_state = random_state

    def fit(self, X, y, *, X_val=None, y_val=None):
        self.classes_ = np.unique(y)
        self.fit_rows_ = _rows(X)
        self.val_rows_ = None if X_val is None else _rows(X_val)
        self.y_val_ = None if y_val is None else np.asarray(y_val).tolist()
        self.scored_ = []
        return self

    def predict_proba(self, X):
        self.scored_.append(_rows(X))
        X = np.asarray(X)
        score = X[:, 2, 0] if X.ndim == 3 else X[:, 2]
        p = 1 / (1 + np.exp(-score))
        return np.column_stack([1 - p, p])


class PlainRecorder(ValRecorder):
    """The same without a validation part in its fit."""

    def fit(self, X, y):
        return super().fit(X, y)


class KwargsRecorder(ValRecorder):
    """``fit(X, y, **kwargs)``: does not name ``X_val``, so it must not be given one."""

    def fit(self, X, y, **kwargs):
        assert not kwargs, kwargs
        return super().fit(X, y)


def _flatten(X):
    return np.asarray(X)[:, :, 0]


@pytest.fixture(scope="module")
def data():
    """(N, 3, 4): channel 0 time, 1 the row's index, 2 a noisy copy of the label."""
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    X = np.full((N, 3, 4), np.nan)
    X[:, 0] = np.arange(4.0)
    X[:, 1, :] = np.arange(N)[:, None]
    X[:, 2, :] = (2 * y - 1)[:, None] + rng.normal(0, 1.5, (N, 4))
    ids = 1000 + 7 * np.arange(N)
    # two splits; split b leaves rows 36..39 out (NaN) and rows 0..1 too
    table = pd.DataFrame(index=pd.Index(ids[::-1], name="RecordID"))  # not in X's order: aligned by ids
    a = np.array(["train"] * 24 + ["val"] * 8 + ["test"] * 8, dtype=object)
    b = np.array([np.nan] * 2 + ["test"] * 10 + ["train"] * 20 + ["val"] * 4 + [np.nan] * 4, dtype=object)
    table["a"] = a[::-1]
    table["b"] = b[::-1]
    expected = {
        name: {part: np.flatnonzero(col == part).tolist() for part in ("train", "val", "test")}
        for name, col in (("a", a), ("b", b))
    }
    return X, y, ids, table, expected


@pytest.fixture(scope="module")
def result(data):
    X, y, ids, table, _ = data
    pipe = Pipeline([("flat", FunctionTransformer(_flatten)), ("clf", ValRecorder())])
    models = {"rec": ValRecorder(), "plain": PlainRecorder(), "kwargs": KwargsRecorder(), "pipe": pipe}
    return compare_on_splits(X, y, table, models=models, ids=ids, time_channel=0, random_state=3, verbose=0)


def test_train_val_test_reach_the_models(result, data):
    X, y, _, _, expected = data
    assert isinstance(result, SplitComparisonResult) and result.splits == ["a", "b"]
    for k, split in enumerate(("a", "b")):
        want = expected[split]
        rec = result.estimators["rec"][k]
        assert rec.fit_rows_ == want["train"]  # fitted on the train part only
        assert rec.val_rows_ == want["val"] and rec.y_val_ == y[want["val"]].tolist()
        assert rec.scored_ == [want["test"]]  # the test part scored once
        assert rec.time_channel == 0 and rec.random_state == 3
        for name in ("plain", "kwargs"):  # no X_val in fit: the val part is not seen at all
            other = result.estimators[name][k]
            assert other.fit_rows_ == want["train"] and other.val_rows_ is None
            assert other.scored_ == [want["test"]]
        last = result.estimators["pipe"][k].named_steps["clf"]  # the val part went through the first step
        assert last.fit_rows_ == want["train"] and last.val_rows_ == want["val"]
        assert last.random_state == 3 and last.scored_ == [want["test"]]
    scores = result.split_scores.set_index(["model", "split"])
    assert scores.loc[("rec", "a"), "val_used"] == "fit"
    assert scores.loc[("plain", "b"), "val_used"] == "no" and scores.loc[("kwargs", "b"), "val_used"] == "no"
    assert scores.loc[("pipe", "a"), "val_used"] == "last step"
    assert scores.loc[("rec", "b"), ["n_train", "n_val", "n_test"]].tolist() == [20, 4, 10]


def test_scores_and_summary(result, data):
    _, y, _, _, expected = data
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores = result.split_scores
    for split in ("a", "b"):
        test = expected[split]["test"]
        proba = result.test_proba["rec"][split]
        assert proba.shape == (len(test), 2)
        row = scores[(scores.model == "rec") & (scores.split == split)].iloc[0]
        assert row.auroc == pytest.approx(roc_auc_score(y[test], proba[:, 1]))
        assert row.auprc == pytest.approx(average_precision_score(y[test], proba[:, 1]))
        assert row.fit_seconds > 0
    summary = result.summary
    assert list(summary.index) == ["rec", "plain", "kwargs", "pipe"]
    assert summary.attrs["reference"] == "rec" and summary.attrs["unit"] == "split"
    assert (summary["n_splits"] == 2).all()
    rec = scores[scores.model == "rec"].auroc
    assert summary.loc["rec", "auroc_mean"] == pytest.approx(rec.mean())
    assert summary.loc["rec", "auroc_std"] == pytest.approx(rec.std(ddof=1))
    # same scores, same splits: no difference, no wins, no test
    assert summary.loc["plain", "auroc_diff"] == 0 and summary.loc["plain", "auroc_wins"] == 0
    text = format_table(summary)
    assert "fit s/split" in text and "0/2" in text


def test_published_table_and_files(result, tmp_path):
    table = published_table(result.summary)
    assert list(table.index[:4]) == ["rec", "plain", "kwargs", "pipe"]
    assert table.loc["ViTST"].tolist()[:4] == [85.1, 0.8, 51.1, 4.1]
    assert table.loc["SeFT", "source"] == PUBLISHED_P12["short"] and table.loc["rec", "source"] == "measured"
    assert table.loc["rec", "auroc_mean"] == pytest.approx(100 * result.summary.loc["rec", "auroc_mean"])
    assert len(table) == 4 + 8
    md = format_published_table(table, markdown=True)
    assert "| ViTST | 85.1 ± 0.8 | 51.1 ± 4.1 |" in md and "| GRU-D | 81.9 ± 2.1 | 46.1 ± 4.7 |" in md
    assert "measured here (2 splits)" in md
    paths = write_split_results(result, tmp_path, title="T", published=PUBLISHED_P12, notes="Run: x.")
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["published.csv", "results.csv", "results.md", "split_scores.csv"]
        and len(paths) == 4
    )
    text = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert text.startswith("# T\n") and "Run: x." in text and "NeurIPS 2023, Table 2, P12" in text
    assert len(pd.read_csv(tmp_path / "split_scores.csv")) == 8


def test_splits_as_dict_and_bad_splits(data):
    X, y, _, _, expected = data
    parts = {"one": (expected["a"]["train"], expected["a"]["val"], expected["a"]["test"])}
    res = compare_on_splits(X, y, parts, models={"rec": ValRecorder()}, verbose=0)
    assert res.estimators["rec"][0].val_rows_ == expected["a"]["val"]
    overlap = {"x": ([0, 1, 2, 3], [3], [4, 5, 6, 7])}
    with pytest.raises(ValueError, match="overlap"):
        compare_on_splits(X, y, overlap, models={"rec": ValRecorder()}, verbose=0)
    table = pd.DataFrame({"s": ["train"] * (N - 2) + ["valid", "test"]})
    with pytest.raises(ValueError, match=r"\['valid'\]"):
        compare_on_splits(X, y, table, models={"rec": ValRecorder()}, verbose=0)
    with pytest.raises(ValueError, match="pass ids="):
        compare_on_splits(X, y, table.iloc[:10], models={"rec": ValRecorder()}, verbose=0)


def test_gradient_boosting_chooses_iterations_on_val(data):
    X, y, ids, table, _ = data
    gbt = Pipeline(
        [
            ("flat", FunctionTransformer(_flatten)),
            ("gbt", HistGradientBoostingClassifier(max_iter=40, early_stopping=True, min_samples_leaf=2)),
        ]
    )
    res = compare_on_splits(X, y, table, models={"gbt": gbt}, ids=ids, random_state=5, verbose=0)
    scores = res.split_scores
    assert (scores.val_used == "last step").all()  # HistGradientBoosting's fit takes X_val (sklearn >= 1.7)
    fitted = res.estimators["gbt"][0].named_steps["gbt"]
    assert fitted.random_state == 5 and scores.n_iter.iloc[0] == fitted.n_iter_ <= 40
    assert len(fitted.validation_score_) == fitted.n_iter_ + 1  # scored on the val part each iteration


# ----------------------------------------------------------------------- command line
def _fake_bunch(data):
    X, y, ids, table, _ = data
    order = np.argsort(ids)
    return Bunch(
        data=X[order],
        target=y[order],
        record_ids=ids[order],
        feature_names=["Time", "row", "signal"],
        time_channel=0,
        splits=table.reindex(ids[order]).rename(columns={"a": "split1", "b": "split2"}),
    )


def test_cli_physionet_defaults_are_the_estimators(monkeypatch, data, tmp_path):
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(_cli, "_load_physionet", lambda args: (_fake_bunch(data), _fake_bunch(data).splits))
    monkeypatch.setattr(_cli, "compare_on_splits", spy)
    with pytest.raises(SystemExit):
        main(["--dataset", "physionet2012", "--verbose", "0", "--output-dir", str(tmp_path)])
    assert seen["max_epochs"] is None and seen["n_threads"] is None  # not the built-in run's 15 epochs, 1 thread
    assert seen["time_channel"] == 0 and seen["models"].split(",")[-1] == "gbt"
    assert seen["models"].split(",")[:7] == list(_cli.default_models())


def test_cli_physionet_with_a_stand_in_loader(monkeypatch, data, tmp_path, capsys):
    monkeypatch.setattr(_cli, "_load_physionet", lambda args: (_fake_bunch(data), _fake_bunch(data).splits))
    out = tmp_path / "out"
    args = [
        "--dataset",
        "physionet2012",
        "--models",
        "mrmoe,lstm",
        "--max-epochs",
        "1",
        "--verbose",
        "0",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    assert "ViTST" in stdout and "fit s/split" in stdout and "max_epochs: 1" in stdout
    assert list(pd.read_csv(out / "results.csv", index_col="model").index) == ["MR-MoE", "LSTM"]
    splits = pd.read_csv(out / "split_scores.csv")
    assert splits.split.tolist() == ["split1", "split1", "split2", "split2"]
    assert (splits.n_test == [8, 8, 10, 10]).all()
    with_val = _protocol._accepts_val(MRMoEClassifier())
    assert (splits.val_used == ("fit" if with_val else "no")).all()
    assert "Li et al." in (out / "results.md").read_text(encoding="utf-8")
    assert (out / "feature_importances.png").exists() and (out / "roc_pr_curves.png").exists()
    from mrmoe_sklearn.compare._report import _OUTPUT_FILES

    assert {p.name for p in out.iterdir()} <= set(_OUTPUT_FILES)  # what a rerun removes first


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "physionet2012", "--cv", "3"], "--cv do(es) not apply"),
        (["--dataset", "physionet2012", "--npz", "x.npz"], "--npz do(es) not apply"),
        (["--splits", "1,2"], "--splits goes with --dataset physionet2012"),
        (["--data-home", "somewhere"], "--data-home goes with"),
        (["--dataset", "physionet2012", "--splits", "0"], "split numbers from 1"),
        (["--dataset", "physionet2012", "--models", "mrmoe,GRU"], "Unknown model 'GRU'"),
    ],
)
def test_cli_physionet_argument_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args + ["--verbose", "0"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- the GBT peer
def test_gbt_peer(tmp_path):
    from mrmoe_sklearn.compare import select_models, summary_gbt

    pipe = summary_gbt(time_channel=0, random_state=4)
    gbt = pipe.named_steps["gbt"]
    assert (gbt.max_iter, gbt.learning_rate, gbt.early_stopping, gbt.random_state) == (300, 0.05, False, 4)
    assert list(select_models("mrmoe,gbt")) == ["MR-MoE", "GBT (summary stats)"]
    X, y = make_multirate_classification(n_samples=60, n_timesteps=16, random_state=0)
    tiny = dict(cv=2, max_epochs=2, random_state=0, verbose=0)
    result = compare_models(X, y, models=["lstm"], peers=["gbt"], time_channel=0, **tiny)
    assert list(result.summary.index) == ["LSTM", "GBT (summary stats)"]
    assert result.summary["auroc_mean"].between(0, 1).all()
    fitted = result.estimators["GBT (summary stats)"][0]
    assert fitted.named_steps["summary"].time_channel == 0 and fitted.named_steps["gbt"].random_state == 0
    out = tmp_path / "out"
    args = [
        "--n-samples",
        "60",
        "--n-timesteps",
        "16",
        "--cv",
        "2",
        "--max-epochs",
        "1",
        "--verbose",
        "0",
        "--models",
        "lstm",
        "--peers",
        "gbt",
        "--no-plots",
        "--output-dir",
        str(out),
    ]
    assert main(args) == 0
    assert "GBT (summary stats)" in pd.read_csv(out / "results.csv", index_col="model").index


# ------------------------------------------------- PhysioNet's own format, real loader
def test_cli_physionet_on_its_file_format(tmp_path, capsys):
    write_tiny_physionet(tmp_path / "data")
    out = tmp_path / "out"
    args = [
        "--dataset",
        "physionet2012",
        "--data-home",
        str(tmp_path / "data"),
        "--splits",
        "1,2",
        "--models",
        "mrmoe,gbt",
        "--max-epochs",
        "1",
        "--verbose",
        "0",
        "--output-dir",
        str(out),
    ]
    assert main(args) == 0
    assert "ViTST" in capsys.readouterr().out
    summary = pd.read_csv(out / "results.csv", index_col="model")
    assert list(summary.index) == ["MR-MoE", "GBT (summary stats)"] and (summary.n_splits == 2).all()
    scores = pd.read_csv(out / "split_scores.csv")
    assert scores.split.tolist() == ["split1", "split1", "split2", "split2"]
    assert (scores.n_test == 8).all() and (scores.n_val == 8).all() and (scores.n_train == 20).all()
    used = scores.set_index("model")["val_used"]
    assert used.loc["MR-MoE"].tolist() == ["fit"] * 2  # early stopping on each split's val part
    assert used.loc["GBT (summary stats)"].tolist() == ["no"] * 2  # its fixed 300 iterations
    assert scores[["auroc", "auprc"]].apply(lambda c: c.between(0, 1)).all().all()
    published = pd.read_csv(out / "published.csv", index_col="model")
    assert published.loc["ViTST", "auroc_mean"] == 85.1 and published.loc["MR-MoE", "source"] == "measured"
    assert (out / "feature_importances.png").exists()


# ------------------------------------------------- checks before the data are loaded
def test_cli_physionet_checks_splits_before_loading(tmp_path, monkeypatch, capsys):
    """A missing splits.csv, or a split number it lacks, fails before the data are loaded (review finding):
    the published splits are splits.csv's columns split1..split5, read from its header line alone."""
    import mrmoe_sklearn.datasets as datasets

    def no_load(**kwargs):
        raise AssertionError("the data were loaded before splits.csv was checked")

    monkeypatch.setattr(datasets, "fetch_physionet2012", no_load)
    folder = tmp_path / "data" / "physionet2012"
    folder.mkdir(parents=True)
    args = ["--dataset", "physionet2012", "--data-home", str(tmp_path / "data"), "--models", "gbt"]
    args += ["--verbose", "0", "--output-dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"No splits.csv in {folder}" in err and "not on PhysioNet" in err
    header = "RecordID," + ",".join(f"split{k}" for k in range(1, 6))
    (folder / "splits.csv").write_text(header + "\n132539,train,train,test,train,train\n")
    for splits, named in (("9", "--splits 9:"), ("2,6,9", "--splits 6,9:")):
        with pytest.raises(SystemExit) as exc:
            main(args + ["--splits", splits])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert named in err and "the published splits 1 to 5" in err
    with pytest.raises(AssertionError, match="were loaded"):  # splits it has: on to the loader
        main(args + ["--splits", "1,5"])
    (folder / "splits.csv").write_text("id;split1\n")  # a header it cannot read: the loader says what is wrong
    with pytest.raises(AssertionError, match="were loaded"):
        main(args + ["--splits", "9"])
    assert not (tmp_path / "out").exists()


def test_gbt_docstring_quotes_the_documented_run():
    """summary_gbt's docstring quotes the documented run's figures and names the file (review finding)."""
    import re
    from pathlib import Path

    from mrmoe_sklearn.compare import summary_gbt

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "physionet2012" / "results.md"
    if not results.is_file():
        pytest.skip("benchmarks/physionet2012/results.md is not in this checkout")
    doc = " ".join(summary_gbt.__doc__.split())
    quoted = re.findall(r"(\d+\.\d) \+- (\d+\.\d) AUROC / (\d+\.\d) \+- (\d+\.\d) AUPRC", doc)
    number = r"(\d+\.\d) ± (\d+\.\d)"
    row = re.search(rf"^\| GBT \(summary stats\) \| {number} \| {number} \|", results.read_text("utf-8"), re.M)
    assert row and quoted == [row.groups()]
    assert "benchmarks/physionet2012/results.md" in doc and "python benchmarks/physionet.py" in doc
