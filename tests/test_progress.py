"""Progress display (issue 13): quiet by default, bars at verbose=2, plain lines off a terminal."""

import io
import sys

import numpy as np
import pytest

import mrmoe_sklearn._base as base
from mrmoe_sklearn import LSTMClassifier
from mrmoe_sklearn._callbacks import _LineBar, progress_bar

PARAMS = dict(time_channel=0, hidden_size=4, max_epochs=2, batch_size=16, n_threads=1, random_state=0)


@pytest.fixture(scope="module")
def data(binary_task):
    X, y = binary_task
    return X[:48], y[:48]


def test_quiet_by_default(data, capsys):
    X, y = data
    LSTMClassifier(**PARAMS).fit(X, y).predict(X)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_verbose_2_shows_epochs_batches_losses_and_score(data, capsys, monkeypatch):
    X, y = data
    monkeypatch.setattr(base, "PROGRESS_MIN_BATCHES", 1)  # a "large" prediction
    clf = LSTMClassifier(verbose=2, early_stopping=True, early_stopping_scoring="roc_auc", **PARAMS).fit(X, y)
    clf.predict_proba(X)
    out, err = capsys.readouterr()
    # not a terminal (pytest captures): plain lines, no carriage returns
    assert "\r" not in err
    assert "epochs: 1/2 [train_loss=" in err and "valid_loss=" in err and "valid_roc_auc=" in err
    assert "epochs: 2/2" in err
    assert "epoch 1:" not in err  # the batches of quick epochs: no line (one every 30 s at most)
    assert "valid_roc_auc" in out  # the epoch table of verbose=1 too
    # the fitted network pickles without its bars
    import pickle

    assert pickle.loads(pickle.dumps(clf)).predict(X).shape == (48,)


def test_bars_in_a_terminal_are_tqdm_and_elsewhere_lines(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    fake = io.StringIO()
    fake.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", fake)
    bar = progress_bar(3, "epochs")
    assert isinstance(bar, tqdm.tqdm)
    bar.update(3)
    bar.close()
    assert "epochs" in fake.getvalue()
    fake.isatty = lambda: False
    assert isinstance(progress_bar(3, "epochs"), _LineBar)


def test_prediction_progress_on_large_inputs_only(data, capsys, monkeypatch):
    X, y = data
    clf = LSTMClassifier(**PARAMS).fit(X, y)
    clf.set_params(verbose=2)
    clf.predict(X)  # one inference batch: no bar
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(base, "PROGRESS_MIN_BATCHES", 1)
    monkeypatch.setattr(base, "PREDICT_MAX_BATCH", 16)
    monkeypatch.setattr(base, "_inference_batch_size", lambda batch_size, dataset: 16)
    proba = clf.predict_proba(X)
    assert np.allclose(proba.sum(1), 1)
