"""Tests for :mod:`mrmoe_sklearn.compare` (the cross-validated comparison and its CLI)."""

import sys

import numpy as np
import pandas as pd
import pytest

from mrmoe_sklearn import LSTMClassifier, make_multirate_classification
from mrmoe_sklearn.compare import (
    ComparisonResult,
    compare_models,
    default_models,
    format_table,
    impute_for_minirocket,
    load_long_csv,
    load_npz,
    main,
)

TINY = dict(cv=2, max_epochs=2, random_state=0, verbose=0)
TINY_ARGS = ["--n-samples", "60", "--n-timesteps", "16", "--cv", "2", "--max-epochs", "2", "--verbose", "0"]
PNGS = ["roc_pr_curves.png", "training_curves.png", "gate_weights.png", "feature_importances.png"]


@pytest.fixture(scope="module")
def tiny_data():
    return make_multirate_classification(n_samples=60, n_timesteps=16, random_state=0)


@pytest.fixture(scope="module")
def full_result(tiny_data):
    X, y = tiny_data
    return compare_models(X, y, time_channel=0, **TINY)


def _check_scores(summary):
    for col in ("auroc_mean", "auprc_mean"):
        values = summary[col].to_numpy(dtype=float)
        assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1)), col
    assert np.all(summary["fit_seconds"].to_numpy(dtype=float) > 0)


def test_compare_models_all_rows(full_result, tiny_data):
    _, y = tiny_data
    result = full_result
    assert isinstance(result, ComparisonResult)
    summary = result.summary
    assert list(summary.index) == list(default_models())
    _check_scores(summary)
    assert (summary["n_folds"] == 2).all()
    assert len(result.fold_scores) == 7 * 2
    fold_values = result.fold_scores[["auroc", "auprc"]].to_numpy()
    assert np.isfinite(fold_values).all() and ((fold_values >= 0) & (fold_values <= 1)).all()
    # out-of-fold scores cover every sample
    for proba in result.oof_proba.values():
        assert proba.shape == (len(y), 2) and np.isfinite(proba).all()
    assert str(result).splitlines()[0].startswith("model")


def test_paired_comparison_columns(full_result):
    summary = full_result.summary
    for metric in ("auroc", "auprc"):
        for suffix in ("diff", "pvalue", "wins"):
            assert f"{metric}_{suffix}" in summary.columns
    assert summary.attrs["reference"] == "MR-MoE"
    ref = summary.loc["MR-MoE"]
    assert pd.isna(ref["auroc_diff"]) and pd.isna(ref["auroc_wins"]) and pd.isna(ref["auprc_pvalue"])
    others = summary.drop(index="MR-MoE")
    assert np.isfinite(others["auroc_diff"].to_numpy(dtype=float)).all()
    wins = others["auroc_wins"].to_numpy(dtype=float)
    assert ((wins >= 0) & (wins <= 2)).all()
    p = others["auprc_pvalue"].to_numpy(dtype=float)
    assert np.all(np.isnan(p) | ((p >= 0) & (p <= 1)))
    # the difference is MR-MoE minus the model, averaged over folds
    folds = full_result.fold_scores
    ref_scores = folds[folds.model == "MR-MoE"].sort_values("fold").auroc.to_numpy()
    lstm_scores = folds[folds.model == "LSTM"].sort_values("fold").auroc.to_numpy()
    assert summary.loc["LSTM", "auroc_diff"] == pytest.approx((ref_scores - lstm_scores).mean())


def test_result_holds_figure_inputs(full_result, tiny_data):
    _, y = tiny_data
    result = full_result
    assert result.explanation["gate_weights"].shape == (len(y), 4)
    assert result.explanation["rates"] == (1, 2, 4, 8)
    assert result.feature_importances.shape == (2, 6)
    assert result.feature_names == [f"ch{c}" for c in range(1, 7)]
    assert len(result.estimators["MR-MoE"]) == 2
    losses = result.histories["LSTM"][0]
    assert len(losses) == 2 and np.isfinite(losses).all()
    text = format_table(result.summary, markdown=True)
    assert text.startswith("| model |") and text.count("\n") == 2 + 7


def test_models_subset_aliases_and_multiclass():
    X, y = make_multirate_classification(n_samples=60, n_timesteps=16, n_classes=3, random_state=1)
    result = compare_models(X, y, models="mrmoe, LSTM,single-rate", time_channel=0, **TINY)
    assert list(result.summary.index) == ["MR-MoE", "LSTM", "MR-MoE (single rate)"]
    _check_scores(result.summary)
    assert result.oof_proba["LSTM"].shape == (60, 3)


def test_custom_models_dict_without_mrmoe(tiny_data):
    X, y = tiny_data
    result = compare_models(
        X, y, models={"small LSTM": LSTMClassifier(hidden_size=4), "LSTM": LSTMClassifier()}, time_channel=0, **TINY
    )
    assert result.reference == "small LSTM"
    assert result.explanation is None and result.feature_importances is None
    assert result.estimators["small LSTM"][0].max_epochs == 2


def test_unknown_model_raises(tiny_data, capsys):
    X, y = tiny_data
    with pytest.raises(ValueError, match=r"Unknown model 'GRU'.*Available models: MR-MoE"):
        compare_models(X, y, models=["MR-MoE", "GRU"], **TINY)
    with pytest.raises(SystemExit) as exc:
        main(TINY_ARGS + ["--models", "MR-MoE,GRU", "--output-dir", "unused"])
    assert exc.value.code == 2
    assert "Unknown model 'GRU'" in capsys.readouterr().err


def test_too_few_samples_per_class():
    X, y = make_multirate_classification(n_samples=12, n_timesteps=16, random_state=0)
    with pytest.raises(ValueError, match="cv=7 folds"):
        compare_models(X, y, cv=7, verbose=0)


def test_cli_writes_results_and_figures(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(TINY_ARGS + ["--output-dir", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "MR-MoE (single rate)" in stdout and "dAUROC vs MR-MoE" in stdout
    table = pd.read_csv(out / "results.csv", index_col="model")
    assert list(table.index) == list(default_models())
    assert table["auroc_mean"].between(0, 1).all()
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| MR-MoE (no temporal attn) |" in md
    for name in PNGS:
        path = out / name
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_cli_progress_and_no_plots(tmp_path, capsys):
    out = tmp_path / "out"
    args = TINY_ARGS[:-1] + ["1", "--models", "lstm", "--no-plots", "--output-dir", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "LSTM fold 1/2" in err and "LSTM fold 2/2" in err
    assert (out / "results.csv").exists()
    assert not list(out.glob("*.png"))


def test_cli_without_matplotlib_skips_figures(tmp_path, capsys, monkeypatch):
    for mod in ("matplotlib", "matplotlib.pyplot", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    out = tmp_path / "out"
    assert main(TINY_ARGS + ["--models", "lstm", "--output-dir", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "figures skipped" in stdout and "plot" in stdout
    assert (out / "results.md").exists() and not list(out.glob("*.png"))


def test_cli_npz(tmp_path, tiny_data, capsys):
    X, y = tiny_data
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=np.where(y == 1, "sick", "well"), time_channel=0)
    out = tmp_path / "out"
    assert (
        main(
            [
                "--npz",
                str(path),
                "--cv",
                "2",
                "--max-epochs",
                "1",
                "--models",
                "MR-MoE,LSTM",
                "--verbose",
                "0",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out / "results.csv", index_col="model")
    assert list(table.index) == ["MR-MoE", "LSTM"]
    assert (out / "gate_weights.png").exists()
    _, _, tc, names = load_npz(path)
    assert tc == 0 and names is None
    assert load_npz(path, time_channel="none")[2] is None
    np.savez(tmp_path / "bad.npz", X=X)
    with pytest.raises(ValueError, match=r"no array\(s\) \['y'\]"):
        load_npz(tmp_path / "bad.npz")


def _long_table(n_ids=24, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_ids):
        label = i % 2
        n = int(rng.integers(6, 12))
        t = np.cumsum(rng.uniform(0.5, 2.0, n))
        hr = 80 + (3.0 if label else -3.0) * t + rng.normal(0, 2, n)
        lab = np.where(rng.random(n) < 0.3, rng.normal(2, 0.5, n), np.nan)
        for k in range(n):
            rows.append({"stay": f"s{i:02d}", "t": t[k], "hr": hr[k], "lac": lab[k], "died": label})
    return pd.DataFrame(rows)


def test_cli_csv(tmp_path):
    df = _long_table()
    path = tmp_path / "long.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out"
    args = [
        "--csv",
        str(path),
        "--id-col",
        "stay",
        "--time-col",
        "t",
        "--label-col",
        "died",
        "--value-cols",
        "hr,lac",
        "--cv",
        "2",
        "--max-epochs",
        "1",
        "--models",
        "MR-MoE,LNN",
        "--verbose",
        "0",
        "--output-dir",
        str(out),
    ]
    assert main(args) == 0
    table = pd.read_csv(out / "results.csv", index_col="model")
    assert list(table.index) == ["MR-MoE", "LNN"]
    assert table["auprc_mean"].between(0, 1).all()
    assert (out / "feature_importances.png").exists()


def test_load_long_csv_datetimes_and_labels():
    df = _long_table(n_ids=6)
    df["t"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(df["t"], unit="h")
    df["t"] = df["t"].dt.strftime("%Y-%m-%d %H:%M:%S")  # as read from a CSV: strings
    df.loc[df.index[1], "died"] = np.nan  # a row without label is fine
    X, y, ids, names = load_long_csv(df, "stay", "t", "died")
    assert names == ["t", "hr", "lac"]
    assert X.shape[0] == 6 and X.shape[1] == 3
    assert list(ids) == sorted(df.stay.unique())
    assert y.dtype.kind == "i" and list(y) == [0, 1, 0, 1, 0, 1]
    assert X[0, 0, 0] == 0.0 and np.nanmax(X[:, 0]) < 30  # hours since the first chart time


def test_label_disagreement_within_id(tmp_path, capsys):
    df = _long_table(n_ids=6)
    df.loc[df.stay == "s03", "died"] = [0, 1] + [0] * (int((df.stay == "s03").sum()) - 2)
    with pytest.raises(ValueError, match=r"disagrees within 1 id\(s\) \('s03'\)"):
        load_long_csv(df, "stay", "t", "died")
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(["--csv", str(path), "--id-col", "stay", "--time-col", "t", "--label-col", "died"])
    assert "disagrees" in capsys.readouterr().err


def test_csv_needs_columns(tmp_path, capsys):
    path = tmp_path / "x.csv"
    _long_table(n_ids=4).to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(["--csv", str(path), "--id-col", "stay"])
    assert "--time-col" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Column 'nope' not found"):
        load_long_csv(path, "stay", "t", "nope")


def test_impute_for_minirocket():
    X = np.array([[[0.0, 1.0, 2.0, 3.0], [np.nan, 5.0, np.nan, 7.0], [np.nan, np.nan, np.nan, np.nan]]])
    Xi = impute_for_minirocket(X, time_channel=0)
    np.testing.assert_array_equal(Xi, [[[0.0, 5.0, 5.0, 7.0], [0.0, 0.0, 0.0, 0.0]]])
    assert impute_for_minirocket(X).shape == (1, 3, 4)


def test_minirocket_peer_skipped_without_aeon(tiny_data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon", None)
    X, y = tiny_data
    result = compare_models(X, y, models=["lstm"], peers=["minirocket"], time_channel=0, **TINY)
    assert list(result.summary.index) == ["LSTM"]
    assert "Skipping peer 'minirocket'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown peer"):
        compare_models(X, y, models=["lstm"], peers=["hivecote"], **TINY)


def test_minirocket_peer(tiny_data):
    pytest.importorskip("aeon")
    X, y = tiny_data
    result = compare_models(X, y, models=["MR-MoE"], peers=["minirocket"], time_channel=0, **TINY)
    assert list(result.summary.index) == ["MR-MoE", "MiniRocket (aeon)"]
    _check_scores(result.summary)
    proba = result.oof_proba["MiniRocket (aeon)"]
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1)
    # ridge decision values, not a one-hot vote: the scores take many values
    assert len(np.unique(proba[:, 1].round(8))) > 10


def test_parallel_jobs(tiny_data):
    X, y = tiny_data
    result = compare_models(X, y, models=["lstm"], time_channel=0, n_jobs=2, **TINY)
    serial = compare_models(X, y, models=["lstm"], time_channel=0, **TINY)
    assert result.estimators["LSTM"][0].n_threads == 1
    np.testing.assert_allclose(result.fold_scores.auroc.to_numpy(), serial.fold_scores.auroc.to_numpy(), atol=1e-6)


def test_package_layout_and_entry_points():
    import re
    import subprocess
    from pathlib import Path

    import mrmoe_sklearn.compare as compare

    for name in compare.__all__:
        assert hasattr(compare, name), name
    root = Path(__file__).resolve().parents[1]
    script = re.search(r'^mrmoe-compare = "(.+)"$', (root / "pyproject.toml").read_text(), re.M)
    module, attr = script.group(1).split(":")
    assert module == "mrmoe_sklearn.compare" and getattr(compare, attr) is main
    done = subprocess.run(
        [sys.executable, "-m", "mrmoe_sklearn.compare", "--help"], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0 and "usage: mrmoe-compare" in done.stdout


def test_gbt_peer_skipped_without_summary(tiny_data, capsys, monkeypatch):
    from mrmoe_sklearn.compare import select_models

    monkeypatch.setitem(sys.modules, "mrmoe_sklearn.summary", None)
    X, y = tiny_data
    result = compare_models(X, y, models="lstm", peers="gbt", time_channel=0, **TINY)
    assert list(result.summary.index) == ["LSTM"]
    assert "Skipping peer 'gbt'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="models is empty"):
        select_models(["GBT (summary stats)"])


def test_cli_file_options_need_their_file(capsys, monkeypatch):
    """--time-channel without --npz, a CSV column without --csv, or --n-samples with a file is an error, not ignored."""

    def no_fit(*args, **kwargs):
        raise AssertionError("the comparison ran")

    monkeypatch.setattr("mrmoe_sklearn.compare._cli.compare_models", no_fit)
    for extra, named in ((["--time-channel", "3"], "--time-channel"), (["--id-col", "stay"], "--id-col")):
        with pytest.raises(SystemExit) as exc:
            main(TINY_ARGS + extra + ["--output-dir", "unused"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"{named} go(es) with --" in err and "Traceback" not in err
    # and the built-in generator's sizes do not apply to a file's data
    with pytest.raises(SystemExit) as exc:
        main(TINY_ARGS + ["--npz", "data.npz", "--output-dir", "unused"])
    assert exc.value.code == 2
    assert "--n-samples, --n-timesteps go(es) with the built-in dataset" in capsys.readouterr().err


def test_cli_unwritable_output_dir_fails_before_fitting(tmp_path, capsys, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("the comparison ran before the output folder was checked")

    monkeypatch.setattr("mrmoe_sklearn.compare._cli.compare_models", no_fit)
    afile = tmp_path / "results.txt"
    afile.write_text("not a folder")
    for out in (afile, afile / "sub"):
        with pytest.raises(SystemExit) as exc:
            main(TINY_ARGS + ["--models", "lstm", "--output-dir", str(out)])
        assert exc.value.code == 2
        assert "--output-dir" in capsys.readouterr().err


def test_cli_models_report_a_skipped_peer(tmp_path, capsys, monkeypatch):
    """``--models lstm,minirocket`` without aeon says that MiniRocket was skipped, as ``--peers`` does."""
    monkeypatch.setitem(sys.modules, "aeon", None)
    out = tmp_path / "out"
    assert main(TINY_ARGS + ["--models", "lstm,minirocket", "--no-plots", "--output-dir", str(out)]) == 0
    assert "Skipping peer 'minirocket'" in capsys.readouterr().err
    assert list(pd.read_csv(out / "results.csv", index_col="model").index) == ["LSTM"]
    with pytest.raises(SystemExit):
        main(TINY_ARGS + ["--models", "minirocket", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert "Skipping peer 'minirocket'" in err and "models is empty" in err


def test_cli_unknown_peer_fails_before_the_data_are_read(capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data were read before the peer names were checked")

    monkeypatch.setattr("mrmoe_sklearn.compare._cli._load_physionet", no_data)
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", "physionet2012", "--peers", "gbt,hivecote", "--output-dir", "unused"])
    assert exc.value.code == 2
    assert "Unknown peer 'hivecote'" in capsys.readouterr().err


def test_cli_time_channel_must_be_a_number_or_none(tmp_path, tiny_data, capsys):
    X, y = tiny_data
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y, time_channel=0)
    with pytest.raises(SystemExit) as exc:
        main(TINY_ARGS[4:] + ["--npz", str(path), "--time-channel", "first", "--output-dir", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "argument --time-channel: must be a channel number or 'none', got 'first'" in capsys.readouterr().err


def test_cli_rerun_removes_an_earlier_runs_outputs_only(tmp_path, capsys):
    """A rerun into the same folder leaves none of an earlier run's files beside its own (review finding):
    the files a comparison writes are removed by name before writing, nothing else in the folder is."""
    out = tmp_path / "out"
    out.mkdir()
    earlier = PNGS + ["results.md", "split_scores.csv", "published.csv"]
    for name in earlier:
        (out / name).write_bytes(b"an earlier run")
    mine = {"notes.txt": b"mine", "my_figure.png": b"mine too", "results.md.bak": b"a copy"}
    for name, content in mine.items():
        (out / name).write_bytes(content)
    (out / "figures").mkdir()
    (out / "figures" / "gate_weights.png").write_bytes(b"in a subfolder")
    # --no-plots: not one figure may remain
    assert main(TINY_ARGS + ["--models", "lstm", "--no-plots", "--output-dir", str(out)]) == 0
    kept = ["results.csv", "results.md", "fold_scores.csv", "figures", *mine]
    assert sorted(p.name for p in out.iterdir()) == sorted(kept)
    assert all((out / name).read_bytes() == content for name, content in mine.items())
    assert (out / "figures" / "gate_weights.png").read_bytes() == b"in a subfolder"
    assert "an earlier run" not in (out / "results.md").read_text(encoding="utf-8")
    stdout = capsys.readouterr().out
    assert "gate_weights.png" in stdout and "of an earlier run" in stdout
    # with figures but without MR-MoE: no gate weights of an earlier run beside this run's figures
    for name in ("gate_weights.png", "feature_importances.png"):
        (out / name).write_bytes(b"an earlier run")
    assert main(TINY_ARGS + ["--models", "lstm", "--output-dir", str(out)]) == 0
    written = {p.name for p in out.iterdir()} - set(mine) - {"figures"}
    assert written == {"results.csv", "results.md", "fold_scores.csv", "roc_pr_curves.png", "training_curves.png"}
    for name in written & set(PNGS):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # a link of a known name is not removed, nor what it points to
    from mrmoe_sklearn.compare._report import _remove_outputs

    (out / "gate_weights.png").symlink_to(out / "my_figure.png")
    assert "gate_weights.png" not in _remove_outputs(out)
    assert (out / "gate_weights.png").is_symlink() and (out / "my_figure.png").read_bytes() == b"mine too"
    assert _remove_outputs(tmp_path / "absent") == []


def test_cli_writes_only_the_known_output_files(tmp_path):
    from mrmoe_sklearn.compare._report import _OUTPUT_FILES

    out = tmp_path / "out"
    assert main(TINY_ARGS + ["--models", "MR-MoE", "--output-dir", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"results.csv", "results.md", "fold_scores.csv", *PNGS}
    assert {p.name for p in out.iterdir()} <= set(_OUTPUT_FILES)


def test_too_few_samples_message_has_plain_values(capsys):
    """Class labels in messages are printed as plain values, not numpy reprs (review finding)."""
    with pytest.raises(SystemExit) as exc:
        main(["--n-samples", "3", "--cv", "5", "--verbose", "0", "--output-dir", "unused"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "class 1 has 1." in err and "np." not in err
    X = np.random.default_rng(0).normal(size=(6, 2, 4))
    with pytest.raises(ValueError, match=r"class 'b' has 2\.$"):
        compare_models(X, np.array(["a"] * 4 + ["b"] * 2), cv=3, verbose=0)
    table = pd.DataFrame({"id": [1, 1, 2, 2, 3], "t": [0, 1, 0, 1, 0], "v": 1.0, "y": [0, 1, 1, 1, np.nan]})
    with pytest.raises(ValueError, match=r"within 1 id\(s\) \(1\)"):
        load_long_csv(table, "id", "t", "y")
    table["y"] = [0, 0, 1, 1, np.nan]
    with pytest.raises(ValueError, match=r"have no label in 'y': \[3\]\.$"):
        load_long_csv(table, "id", "t", "y")
