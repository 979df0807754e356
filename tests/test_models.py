"Contract tests for ddbook.models: registry errors, spec round trip, one training step per model, functional calls."
import json

import pytest
import torch
import torch.nn.functional as F

from ddbook.core import UnknownNameError, seeded
from ddbook.models import (MODELS, build_model, buffers_of, flatten_params, fmodel, get_model, model_spec,
                           num_params, params_of, unflatten_params)

FIXED_WIDTH = {"AlexNet", "LeNet"}  # models without a width option


def small(name):
    "Keyword options that make `name` cheap to run in a test."
    return {} if name in FIXED_WIDTH else {"width": 8}


def batch(c, s, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, s, s, generator=g), torch.arange(n) % 10


@pytest.mark.parametrize("kind,call,choice", [
    ("model", lambda: get_model("ConvNet3", 3, 10, 32), "ConvNetBN"),
    ("norm", lambda: get_model("ConvNet", 3, 10, 32, norm="bn"), "instance"),
    ("activation", lambda: get_model("ConvNet", 3, 10, 32, act="gelu"), "leakyrelu"),
    ("pooling", lambda: get_model("ConvNet", 3, 10, 32, pooling="mean"), "avg"),
    ("norm", lambda: get_model("ResNet18", 3, 10, 32, norm="group"), "batch"),
])
def test_unknown_names_list_choices(kind, call, choice):
    with pytest.raises(UnknownNameError) as e: call()
    msg = str(e.value)
    assert msg.startswith(f"unknown {kind} ") and "choose one of:" in msg and choice in msg


def test_registered_names():
    assert {"ConvNet", "ConvNetD4", "ConvNetBN", "ResNet18", "ResNet18BN", "VGG11", "VGG11BN",
            "AlexNet", "MLP", "LeNet"} <= set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spec_round_trip(name):
    with seeded(3): a = get_model(name, 1, 10, 28, **small(name))
    spec = json.loads(json.dumps(model_spec(a)))
    assert spec == {"name": name, "channels": 1, "num_classes": 10, "im_size": [28, 28], "kwargs": small(name)}
    with seeded(3): b = build_model(spec)
    assert str(a) == str(b) and model_spec(b) == spec
    pa, pb = params_of(a), params_of(b)
    assert list(pa) == list(pb) and all(torch.equal(pa[k], pb[k]) for k in pa)
    with seeded(4): c = build_model(spec)
    assert not torch.equal(flatten_params(pa), flatten_params(params_of(c)))


def test_spec_errors():
    from ddbook.models import ConvNet
    with pytest.raises(ValueError, match="not built by get_model"): model_spec(ConvNet(3, 10, 32, width=8))
    with pytest.raises(ValueError, match="lacks"): build_model({"name": "ConvNet", "channels": 3})
    with pytest.raises(TypeError, match="JSON"): get_model("ConvNet", 3, 10, 32, width=torch.tensor(8))


CASES = [(name, c, s) for name in sorted(MODELS) for c, s in [(1, 28), (3, 32)]] + [("ConvNetD4", 3, 64)]


@pytest.mark.parametrize("name,c,s", CASES)
def test_one_sgd_step(name, c, s):
    with seeded(0): net = get_model(name, c, 10, s, **small(name))
    x, y = batch(c, s)
    before = flatten_params(params_of(net))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    out = net(x)
    assert out.shape == (4, 10) and net.embed(x).shape == (4, net.embed_dim)
    loss = F.cross_entropy(out, y)
    opt.zero_grad(); loss.backward(); opt.step()
    assert torch.isfinite(loss)
    after = flatten_params(params_of(net))
    assert torch.isfinite(after).all() and not torch.equal(before, after)


def test_convnet_reference_sizes():
    assert num_params(get_model("ConvNet", 3, 10, 32)) == 320_010
    assert get_model("ConvNet", 1, 10, 28, width=8).embed_dim == 8 * 4 * 4
    assert get_model("ConvNetD4", 3, 200, 64, width=8).embed_dim == 8 * 4 * 4
    with pytest.raises(ValueError, match="built for 28×28"):
        get_model("ConvNet", 1, 10, 28, width=8)(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="too small"): get_model("VGG11", 3, 10, 8, width=8)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fmodel_matches_module(name):
    net = get_model(name, 3, 10, 32, **small(name))
    x, _ = batch(3, 32)
    assert torch.allclose(fmodel(net, params_of(net), x, buffers_of(net) or None), net(x), atol=1e-5)
    net.eval()
    xg = x.clone().requires_grad_()
    fmodel(net, params_of(net), xg).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["ConvNetBN", "ResNet18BN", "VGG11BN"])
def test_bn_buffers_through_fmodel(name):
    net = get_model(name, 3, 10, 32, width=8)
    buffers = buffers_of(net)
    assert any(k.endswith("running_mean") for k in buffers)
    x, _ = batch(3, 32)
    own = {k: v.clone() for k, v in buffers_of(net).items()}
    fmodel(net, params_of(net), x, buffers)                      # training mode: updates the given buffers only
    assert any(not torch.equal(buffers[k], own[k]) for k in buffers)
    assert all(torch.equal(v, own[k]) for k, v in buffers_of(net).items())
    net.eval()
    assert torch.allclose(fmodel(net, params_of(net), x, buffers_of(net)), net(x), atol=1e-5)
    assert not torch.allclose(fmodel(net, params_of(net), x, buffers), net(x), atol=1e-5)


def test_fmodel_refuses_partial_params():
    net = get_model("ConvNet", 1, 10, 28, width=8)
    params = params_of(net); params.pop("classifier.bias")
    with pytest.raises(ValueError, match="missing"): fmodel(net, params, batch(1, 28)[0])


def test_flatten_unflatten():
    net = get_model("ResNet18BN", 3, 10, 32, width=8)
    params = params_of(net)
    vec = flatten_params(params)
    assert vec.shape == (num_params(net),)
    back = unflatten_params(vec, params)
    assert list(back) == list(params) and all(torch.equal(back[k], params[k]) for k in params)
    with pytest.raises(ValueError, match="1-D vector"): unflatten_params(vec[1:], params)
    with pytest.raises(ValueError, match="1-D vector"): unflatten_params(vec.view(1, -1), params)


def test_reproducible_construction():
    for name in MODELS:
        with seeded(0): a = flatten_params(params_of(get_model(name, 3, 10, 32, **small(name))))
        with seeded(0): b = flatten_params(params_of(get_model(name, 3, 10, 32, **small(name))))
        assert torch.equal(a, b), name
