"""Checkpoints and resume (issue 13): atomic files, an interrupted fit finished, a SIGKILL survived."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from mrmoe_sklearn import LSTMRegressor, MRMoEClassifier
from tests._helpers import EpochCount

ROOT = Path(__file__).resolve().parents[1]
#: Dropout, a validation split, early stopping and the plateau schedule: every
#: piece of state a resumed fit needs back.
PARAMS = dict(
    time_channel=0,
    hidden_size=4,
    backbone_units=8,
    max_epochs=6,
    batch_size=16,
    early_stopping=True,
    patience=10,
    validation_fraction=0.25,
    lr=1e-2,
    n_threads=1,
    random_state=0,
)


@pytest.fixture(scope="module")
def data(binary_task):
    X, y = binary_task
    return X[:64, :, :16], y[:64]


class _Crash(Callback):
    """Fails the fit at the end of epoch ``at`` (after the checkpoint of that epoch is written)."""

    def __init__(self, at=2):
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            raise RuntimeError("crash")


def _files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_checkpoints_are_written_into_the_folder_only(data, tmp_path, monkeypatch):
    X, y = data
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    folder = tmp_path / "run" / "ckpt"  # created
    clf = MRMoEClassifier(checkpoint_dir=folder, **PARAMS).fit(X, y)
    assert _files(cwd) == []
    assert _files(folder) == ["best.pt", "last.pt"]  # no temporary files left
    last = torch.load(folder / "last.pt", weights_only=False)
    assert last["finished"] and len(last["history"]) == 6
    assert set(last) >= {"module", "optimizer", "history", "callbacks", "shuffle_rng", "torch_rng", "meta"}
    assert np.array_equal(last["meta"]["targets"]["classes_"], clf.classes_)
    assert np.allclose(last["meta"]["scaling"].mean, clf.scaling_.mean)
    best = torch.load(folder / "best.pt", weights_only=False)
    epochs = [h["valid_loss_best"] for h in clf.history_]
    assert len(best["history"]) == len(epochs) - epochs[::-1].index(True)  # the last best epoch


def test_resume_finishes_an_interrupted_fit_as_if_uninterrupted(data, tmp_path):
    X, y = data
    reference = MRMoEClassifier(**PARAMS).fit(X, y)
    folder = tmp_path / "ckpt"
    crashed = MRMoEClassifier(checkpoint_dir=folder, callbacks=[_Crash(at=2)], **PARAMS)
    with pytest.raises(RuntimeError, match="crash"):
        crashed.fit(X, y)
    assert not hasattr(crashed, "net_")
    assert not torch.load(folder / "last.pt", weights_only=False)["finished"]
    count = EpochCount()
    resumed = MRMoEClassifier(checkpoint_dir=folder, callbacks=[count], **PARAMS).fit(X, y, resume=True)
    assert len(resumed.history_) == 6 and count.ends_ == 4  # epochs 3 to 6 trained now
    np.testing.assert_allclose(resumed.history_[:, "train_loss"], reference.history_[:, "train_loss"], rtol=1e-6)
    np.testing.assert_allclose(resumed.predict_proba(X), reference.predict_proba(X), rtol=1e-6, atol=1e-7)
    # a finished checkpoint is loaded as it is; asked for more epochs than it ran, with a warning
    again = MRMoEClassifier(checkpoint_dir=folder, **PARAMS).fit(X, y, resume=True)
    assert len(again.history_) == 6
    np.testing.assert_allclose(again.predict_proba(X), resumed.predict_proba(X))
    more = MRMoEClassifier(checkpoint_dir=folder, **dict(PARAMS, max_epochs=8))
    with pytest.warns(UserWarning, match=r"had finished \(after 6 epochs\).*max_epochs=8.*warm_start=True") as got:
        more.fit(X, y, resume=True)
    assert len(more.history_) == 6 and got[0].filename == __file__  # pointing at the caller's line


def test_resuming_a_fit_that_early_stopping_ended_does_not_warn(data, tmp_path):
    """It did not run its max_epochs and never would: nothing to warn about (review of 2026-12-04)."""
    X, y = data
    params = dict(PARAMS, lr=1e-9, patience=2, max_epochs=30)  # no progress: stops after three epochs
    first = MRMoEClassifier(checkpoint_dir=tmp_path / "ckpt", **params).fit(X, y)
    assert len(first.history_) < 30
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = MRMoEClassifier(checkpoint_dir=tmp_path / "ckpt", **params).fit(X, y, resume=True)
    assert len(again.history_) == len(first.history_)


def test_resume_errors_and_fresh_start(data, tmp_path):
    X, y = data
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        MRMoEClassifier(**PARAMS).fit(X, y, resume=True)
    folder = tmp_path / "ckpt"
    fresh = MRMoEClassifier(checkpoint_dir=folder, **dict(PARAMS, max_epochs=2)).fit(X, y, resume=True)
    assert len(fresh.history_) == 2  # nothing to resume: an ordinary fit
    with pytest.raises(ValueError, match="other data"):
        MRMoEClassifier(checkpoint_dir=folder, **dict(PARAMS, max_epochs=2)).fit(X[:-1], y[:-1], resume=True)
    with pytest.raises(ValueError, match="written by MRMoEClassifier"):
        LSTMRegressor(checkpoint_dir=folder, time_channel=0, max_epochs=2).fit(X, y.astype(float), resume=True)
    with pytest.raises(ValueError, match="another shape"):
        MRMoEClassifier(checkpoint_dir=folder, **dict(PARAMS, max_epochs=3, hidden_size=6)).fit(X, y, resume=True)


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from skorch.callbacks import Callback
    from mrmoe_sklearn import MRMoEClassifier
    from mrmoe_sklearn.datasets import make_multirate_classification

    class Slow(Callback):  # leaves time to kill the process mid-fit
        def on_epoch_end(self, net, **kwargs):
            time.sleep(0.4)

    X, y = make_multirate_classification(n_samples=64, n_channels=3, n_timesteps=16, random_state=0)
    MRMoEClassifier(checkpoint_dir=sys.argv[1], callbacks=[Slow()], **PARAMS).fit(X, y)
    print("finished")
    """
)


def test_a_fit_killed_with_sigkill_resumes_and_completes(tmp_path):
    from mrmoe_sklearn.datasets import make_multirate_classification

    params = dict(PARAMS, max_epochs=12)
    folder = tmp_path / "ckpt"
    script = tmp_path / "fit.py"
    script.write_text(f"PARAMS = {params!r}\n" + _SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen(
        [sys.executable, str(script), str(folder)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    done = 0
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if (folder / "last.pt").exists():
                done = len(torch.load(folder / "last.pt", weights_only=False)["history"])
                if done >= 3:
                    break
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        out, err = child.communicate()
    assert child.returncode == -signal.SIGKILL and b"finished" not in out
    saved = torch.load(folder / "last.pt", weights_only=False)
    assert not saved["finished"] and 3 <= len(saved["history"]) < 12
    assert _files(tmp_path) == ["ckpt", "fit.py"]  # nothing written beside the folder

    X, y = make_multirate_classification(n_samples=64, n_channels=3, n_timesteps=16, random_state=0)
    count = EpochCount()
    resumed = MRMoEClassifier(checkpoint_dir=folder, callbacks=[count], **params).fit(X, y, resume=True)
    history = resumed.history_
    assert count.ends_ == 12 - len(saved["history"])
    assert len(history) == 12 and history[:, "epoch"] == list(range(1, 13))
    k = len(saved["history"])
    assert history[:k, "train_loss"] == [h["train_loss"] for h in saved["history"]]
    assert np.isfinite(resumed.predict_proba(X)).all()
    # the same model as a fit that was never killed (same seed, one thread: deterministic)
    reference = MRMoEClassifier(**params).fit(X, y)
    np.testing.assert_allclose(history[:, "train_loss"], reference.history_[:, "train_loss"], rtol=1e-6)
