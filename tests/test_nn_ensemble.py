"""The ensemble of networks trained side by side (:mod:`mrmoe_sklearn.nn.ensemble`)."""

import numpy as np
import pytest
import torch

from mrmoe_sklearn import MRMoEClassifier
from mrmoe_sklearn.nn import MRMoENet
from mrmoe_sklearn.nn.ensemble import Ensemble
from tests._helpers import FAST


def _batch(B=5, T=9, F=3):
    g = torch.Generator().manual_seed(0)
    m = (torch.rand(B, T, F, generator=g) > 0.3).float()
    return dict(
        x=torch.randn(B, T, F, generator=g) * m, m=m, dt=torch.rand(B, T, generator=g) + 0.1, v=torch.ones(B, T)
    )


def test_prediction_is_the_mean_of_the_members_probabilities():
    torch.manual_seed(0)
    members = [MRMoENet(3, 2, rates=(1, 2)) for _ in range(3)]
    ens = Ensemble(members).eval()
    batch = _batch()
    out = ens(**batch)
    mean = torch.stack([torch.softmax(m(**batch), -1) for m in members]).mean(0)
    torch.testing.assert_close(torch.softmax(out, -1), mean)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(5))  # log-probabilities
    assert ens.member_logits is None  # kept only in training
    logits, details = ens(**batch, return_details=True)
    torch.testing.assert_close(logits, out)
    want = torch.stack([m(**batch, return_details=True)[1]["gate_weights"] for m in members]).mean(0)
    torch.testing.assert_close(details["gate_weights"], want)
    assert ens.rates == (1, 2) and ens.feature_attention is members[0].feature_attention


def test_training_keeps_each_members_logits_and_mean_aux_loss():
    torch.manual_seed(0)
    ens = Ensemble([MRMoENet(3, 2, rates=(1, 2)) for _ in range(2)]).train()
    ens(**_batch())
    assert ens.member_logits.shape == (2, 5, 2)
    auxes = torch.stack([m.aux_loss for m in ens.members])
    torch.testing.assert_close(ens.aux_loss, auxes.mean())
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])


def test_members_are_trained_on_their_own_losses(binary_task):
    X, y = binary_task
    clf = MRMoEClassifier(**dict(FAST, max_epochs=3), time_channel=0, ensemble_size=3).fit(X, y)
    module = clf.net_.module_
    assert isinstance(module, Ensemble) and len(module.members) == 3
    # different initial weights, so different members
    w = [m.out.weight.detach() for m in module.members]
    assert not torch.allclose(w[0], w[1]) and not torch.allclose(w[1], w[2])
    # the loss recorded for a batch is the mean of the members' cross-entropies, not that of the mean
    # probability (which would train the members as one model): recompute it on a batch
    net = clf.net_
    full = clf._batch(clf._read_X(X, fitted=True))
    batch = {k: t[:16] for k, t in full.items()}
    yb = torch.as_tensor(np.searchsorted(clf.classes_, y[:16]))
    module.train()
    torch.manual_seed(1)
    module(**batch)
    per_member = torch.stack([torch.nn.functional.cross_entropy(z, yb) for z in module.member_logits])
    loss = net.get_loss(None, yb, training=True)
    aux = net.aux_loss_weight * torch.stack([m.aux_loss for m in module.members]).mean()
    torch.testing.assert_close(loss, per_member.mean() + aux)
    module.eval()
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    assert clf.explain(X[:4])["gate_weights"].shape == (4, 4)
