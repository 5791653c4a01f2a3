"""Tests of mrmoe_sklearn._flat: parameters as views of one buffer, and the networks that train so."""

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from mrmoe_sklearn import LSTMClassifier, MRMoEClassifier
from mrmoe_sklearn._flat import FlatParameters


def _module(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.Linear(7, 3))


def _grads(module, seed):
    """Fill every parameter's .grad (in place where it is set) with seeded values."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        values = torch.randn(p.shape, generator=g)
        if p.grad is None:
            p.grad = values
        else:
            p.grad.copy_(values)


def test_build_links_values_and_gradients_as_views():
    module = _module()
    before = [p.detach().clone() for p in module.parameters()]
    flat = FlatParameters.build(module.parameters())
    params = list(module.parameters())
    assert flat.flat.shape == (sum(p.numel() for p in params),)
    assert flat.linked()
    offset = 0
    for p, b in zip(params, before):
        assert torch.equal(p, b)  # values kept
        n = p.numel()
        assert p.data_ptr() == flat.flat[offset:].data_ptr()
        assert p.grad.data_ptr() == flat.flat.grad[offset:].data_ptr()
        assert not p.grad.any()
        offset += n
    # a write to the buffer is a write to the parameters, and a gradient lands in the buffer
    with torch.no_grad():
        flat.flat.add_(1.0)
    assert torch.equal(params[0], before[0] + 1.0)
    module(torch.randn(4, 5)).sum().backward()
    assert flat.flat.grad.abs().sum() > 0
    assert torch.equal(flat.flat.grad[: params[0].numel()], params[0].grad.reshape(-1))


def test_build_skips_frozen_and_repeated_parameters_and_refuses_mixed_ones():
    module = _module()
    module[0].bias.requires_grad_(False)
    shared = module[2].weight
    flat = FlatParameters.build([*module.parameters(), shared])
    assert len(flat.params) == 3 and all(p.requires_grad for p in flat.params)
    assert flat.flat.numel() == 5 * 7 + 7 * 3 + 3
    assert FlatParameters.build([]) is None
    mixed = _module()
    mixed[2].double()
    assert FlatParameters.build(mixed.parameters()) is None
    assert FlatParameters.build([nn.Parameter(torch.zeros(3, dtype=torch.int64), requires_grad=False)]) is None


@pytest.mark.parametrize("optimizer", [torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD])
def test_optimizer_on_the_buffer_steps_as_on_the_tensors(optimizer):
    kwargs = {"lr": 1e-2, "weight_decay": 1e-2}
    if optimizer is torch.optim.SGD:
        kwargs["momentum"] = 0.9
    separate, joined = _module(), _module()
    opt_a = optimizer(separate.parameters(), **kwargs)
    flat = FlatParameters.build(joined.parameters())
    opt_b = optimizer([flat.flat], **kwargs)
    for step in range(5):
        opt_a.zero_grad()
        flat.zero_grad()
        _grads(separate, step)
        _grads(joined, step)
        opt_a.step()
        opt_b.step()
    for a, b in zip(separate.parameters(), joined.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    assert flat.linked()


@pytest.mark.parametrize("breaker", ["data", "grad", "to"])
def test_zero_grad_links_again_with_the_current_values(breaker):
    module = _module()
    flat = FlatParameters.build(module.parameters())
    weight = module[0].weight
    if breaker == "data":
        weight.data = torch.full_like(weight, 2.0)
    elif breaker == "grad":
        weight.grad = None
    else:
        module.double().float()  # new tensors for every parameter
    current = [p.detach().clone() for p in module.parameters()]
    assert not flat.linked()
    flat.zero_grad()
    assert flat.linked()
    # the optimiser's buffer holds the values now in the module; an update reaches the module
    for p, c in zip(flat.params, current):
        assert torch.equal(p, c)
    with torch.no_grad():
        flat.flat.mul_(0.0)
    assert all(not p.any() for p in flat.params)


def test_unlink_gives_independent_copies_and_an_empty_buffer():
    module = _module()
    flat = FlatParameters.build(module.parameters())
    values = [p.detach().clone() for p in module.parameters()]
    flat.unlink()
    assert flat.flat.numel() == 0 and flat.flat.grad is None
    ptrs = {p.untyped_storage().data_ptr() for p in module.parameters()}
    assert len(ptrs) == 4  # a storage each
    assert all(p.grad is None for p in module.parameters())
    assert all(torch.equal(p, v) for p, v in zip(module.parameters(), values))
    flat.zero_grad()  # links again, into a buffer of the right size
    assert flat.linked() and flat.flat.numel() == sum(v.numel() for v in values)
    assert all(torch.equal(p, v) for p, v in zip(module.parameters(), values))


def test_a_buffer_of_another_size_is_refused():
    module = _module()
    with pytest.raises(ValueError, match="does not match"):
        FlatParameters(list(module.parameters()), nn.Parameter(torch.zeros(3)))


def _data(n=160, channels=3, steps=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, channels, steps)).astype(np.float32)
    y = (X[:, 0].mean(1) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("cls", [MRMoEClassifier, LSTMClassifier])
def test_estimators_train_on_one_buffer_as_on_separate_tensors(cls, monkeypatch):
    X, y = _data()
    params = dict(early_stopping=False, max_epochs=3, batch_size=32, random_state=0, verbose=0)
    flat = cls(**params).fit(X, y)
    net = flat.net_
    assert net.flat_params_ is not None and net.flat_params_.linked()
    assert len(net.optimizer_.param_groups[0]["params"]) == 1
    assert len(net.flat_params_.params) == len(list(net.module_.parameters()))
    monkeypatch.setattr("mrmoe_sklearn._base.ELEMENTWISE_OPTIMIZERS", ())
    separate = cls(**params).fit(X, y)
    assert separate.net_.flat_params_ is None
    assert len(separate.net_.optimizer_.param_groups[0]["params"]) > 1
    # the same training, to float32 rounding: the gradient norm is one sum (not a sum of sums),
    # and the compiled sums can round differently at other buffer addresses. (The temporal
    # attention's bias has a gradient of 0 up to rounding, as a softmax ignores a common shift,
    # and Adam scales that noise up: its value differs, the predictions do not.)
    np.testing.assert_allclose(flat.predict_proba(X), separate.predict_proba(X), rtol=0, atol=1e-4)
    for (name, a), b in zip(net.module_.named_parameters(), separate.net_.module_.parameters()):
        if name != "temporal_attention.bias":
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_a_copied_estimator_trains_on_as_the_original(copier):
    X, y = _data()
    est = MRMoEClassifier(early_stopping=False, max_epochs=2, batch_size=32, random_state=0, verbose=0).fit(X, y)
    proba = est.predict_proba(X)
    size_of_values = 4 * sum(p.numel() for p in est.net_.module_.parameters())
    blob = pickle.dumps(est)
    other = pickle.loads(blob) if copier == "pickle" else copy.deepcopy(est)
    # the values are pickled once (the optimiser's buffer is emptied, not pickled beside them)
    assert len(blob) < 2 * size_of_values + 400_000
    np.testing.assert_array_equal(other.predict_proba(X), proba)
    for e in (est, other):
        e.set_params(warm_start=True, max_epochs=2).fit(X, y)
    after = est.predict_proba(X)
    assert not np.allclose(after, proba)  # the original trained on after being pickled
    np.testing.assert_array_equal(other.predict_proba(X), after)
    for e in (est, other):
        assert e.net_.flat_params_.linked()
        # the optimiser's buffer is the parameters' storage again
        flat = e.net_.optimizer_.param_groups[0]["params"][0]
        assert flat is e.net_.flat_params_.flat
        assert next(e.net_.module_.parameters()).data_ptr() == flat.data_ptr()


def test_gather_copies_replaced_gradients_into_the_buffer():
    module = _module()
    flat = FlatParameters.build(module.parameters())
    weight, bias = module[0].weight, module[0].bias
    weight.grad = torch.full_like(weight, 2.0)  # replaced, not changed in place
    bias.grad = None
    module[2].weight.grad.fill_(3.0)  # in place: already in the buffer
    flat.gather()
    assert flat.linked()
    n_w, n_b = weight.numel(), bias.numel()
    assert torch.equal(flat.flat.grad[:n_w], torch.full((n_w,), 2.0))
    assert not flat.flat.grad[n_w : n_w + n_b].any()
    assert torch.equal(module[2].weight.grad, torch.full_like(module[2].weight, 3.0))


def test_a_callback_that_replaces_the_gradients_is_obeyed():
    from skorch.callbacks import Callback

    class ZeroGradients(Callback):
        """Replace every gradient by zeros after the backward pass (not in place)."""

        def on_grad_computed(self, net, named_parameters, **kwargs):
            for _, p in named_parameters:
                p.grad = torch.zeros_like(p)

    X, y = _data()
    params = dict(early_stopping=False, max_epochs=2, batch_size=32, random_state=0, verbose=0)
    replaced = MRMoEClassifier(**params, callbacks=[("zero", ZeroGradients())]).fit(X, y)
    plain = MRMoEClassifier(**params).fit(X, y)
    for est, stepped in ((replaced, False), (plain, True)):
        net = est.net_
        assert net.flat_params_.linked()
        state = net.optimizer_.state[net.optimizer_.param_groups[0]["params"][0]]
        # Adam's moments stay 0 when every gradient the optimiser saw was 0
        assert bool(state["exp_avg"].any()) is stepped
        assert bool(state["exp_avg_sq"].any()) is stepped


@pytest.mark.parametrize("cls", [MRMoEClassifier, LSTMClassifier])
def test_parameters_frozen_by_a_callback_stay_as_they_are(cls):
    """skorch's ``Freezer`` turns ``requires_grad`` off after the optimiser was built: the buffer then
    steps the others only (no weight decay, no moments for the frozen ones), as separate tensors would."""
    from skorch.callbacks import Callback, Freezer

    class Initial(Callback):
        def on_train_begin(self, net, **kwargs):
            self.values_ = {n: p.detach().clone() for n, p in net.module_.named_parameters()}

    X, y = _data()
    initial = Initial()
    frozen = "lstm.*" if cls is LSTMClassifier else "gate.*"
    params = dict(early_stopping=False, max_epochs=2, batch_size=32, random_state=0, verbose=0)
    est = cls(**params, callbacks=[Freezer(frozen), initial]).fit(X, y)
    net = est.net_
    assert net.flat_params_ is not None
    names = [n for n, _ in net.module_.named_parameters()]
    offsets = np.cumsum([0] + [p.numel() for p in net.module_.parameters()])
    state = net.optimizer_.state[net.flat_params_.flat]
    n_frozen = 0
    for i, (name, p) in enumerate(net.module_.named_parameters()):
        if p.requires_grad:
            assert not torch.equal(p.detach(), initial.values_[name]), name
            continue
        n_frozen += 1
        assert torch.equal(p.detach(), initial.values_[name]), name
        assert not state["exp_avg"][offsets[i] : offsets[i + 1]].any(), name
    assert 0 < n_frozen < len(names)
