"""DD on tiny data: the unrolled gradient against finite differences, positive lrs, fixed init, the NaN guard, resume."""
import pytest
import torch
import torch.nn.functional as F

import ddbook.dd

from ddbook.core import make_generator, seeded
from ddbook.dd import dd_loss, distill_dd, inv_softplus, replay_dd, sgd_step, step_batches, unroll
from ddbook.models import get_model, params_of
from ddbook.synset import SynSet

K, HW = 3, 8
SMALL = dict(model_kwargs={"width": 4, "depth": 1}, steps=2, epochs=2, batch_real=16, progress=False)


@pytest.fixture(scope="module")
def data(quadrants):
    return quadrants


def test_gradient_matches_central_finite_differences():
    "float64, ConvNet width 2, 3 classes, 4×4 images, T = 3: autograd vs central differences for images and raw lrs."
    g = make_generator(1)
    with seeded(0): net = get_model("ConvNet", 1, 3, 4, width=2, depth=1).double()
    p0 = params_of(net)
    xs = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    raw = inv_softplus(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    xr, yr = torch.randn(12, 1, 4, 4, generator=g, dtype=torch.float64), torch.arange(3).repeat(4)
    batches = step_batches(1, 3, steps=3, epochs=1)
    n = xs.numel()
    def loss(z): return dd_loss(net, p0, z[:n].view_as(xs), torch.arange(3), F.softplus(z[n:]), batches, xr, yr)
    z = torch.cat([xs.flatten(), raw]).requires_grad_()
    auto = torch.autograd.grad(loss(z), z)[0]
    h = 1e-6
    with torch.no_grad():
        fd = torch.stack([(loss(z + h * e) - loss(z - h * e)) / (2 * h) for e in torch.eye(len(z), dtype=z.dtype)])
    for part in (slice(0, n), slice(n, None)):
        assert fd[part].norm() > 1e-3                                          # a gradient worth checking
        assert float((auto[part] - fd[part]).norm() / fd[part].norm()) < 1e-6


def test_sgd_step_and_unroll_are_plain_sgd():
    g = make_generator(0)
    with seeded(0): net = get_model("ConvNet", 1, K, HW, width=4, depth=1)
    x, y = torch.randn(6, 1, HW, HW, generator=g), torch.arange(K).repeat(2)
    p0 = params_of(net)
    batches, lrs = [torch.arange(6), torch.tensor([1, 2]), torch.tensor([0, 3, 5])], [0.1, 0.3, 0.05]
    pT = unroll(net, p0, x, y, torch.tensor(lrs), batches, create_graph=False)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    for idx, lr in zip(batches, lrs):
        opt.param_groups[0]["lr"] = lr; opt.zero_grad(); F.cross_entropy(net(x[idx]), y[idx]).backward(); opt.step()
    assert all(torch.allclose(pT[n], p, atol=1e-6) for n, p in net.named_parameters())
    assert not any(t.requires_grad for t in p0.values())                      # the caller's tensors untouched
    soft = F.one_hot(y, K).float() * 5                                         # soft-label logits work too
    assert set(sgd_step(net, p0, x, soft, 0.1)) == set(p0)
    with pytest.raises(ValueError, match="one per step"): unroll(net, p0, x, y, torch.ones(2), batches)


def test_unroll_is_differentiable_from_a_given_start_with_a_shared_lr():
    "What MTT needs: start from a checkpoint, N minibatch steps with one learned lr, gradients to images and lr."
    g = make_generator(0)
    with seeded(0): net = get_model("ConvNet", 1, K, HW, width=4, depth=1)
    start = {k: v + 0.01 for k, v in params_of(net).items()}               # an "expert checkpoint"
    x = torch.randn(6, 1, HW, HW, generator=g, requires_grad=True)
    lr = torch.tensor(0.05, requires_grad=True)
    batches = [torch.randperm(6, generator=g)[:3] for _ in range(4)]
    end = unroll(net, start, x, torch.arange(K).repeat(2), lr, batches)
    sum((p ** 2).sum() for p in end.values()).backward()
    assert x.grad.abs().sum() > 0 and lr.grad != 0


def test_learned_lrs_stay_positive(data):
    assert torch.allclose(F.softplus(inv_softplus(torch.tensor(0.02))), torch.tensor(0.02))
    s, _ = distill_dd(data, 1, iterations=6, lr_img=2.0, lr_init=1e-3, init="real", **SMALL)   # big raw-lr moves
    assert len(s.meta["lrs"]) == 4 and all(l > 0 for l in s.meta["lrs"])
    assert bool((F.softplus(torch.tensor([-30.0, -8.0])) > 0).all())


def test_returns_a_synset_in_the_common_format(data, tmp_path):
    s, h = distill_dd(data, 2, iterations=3, out_dir=tmp_path, **SMALL)
    assert isinstance(s, SynSet) and s.images.shape == (2 * K, 1, HW, HW) and s.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.meta["method"] == "dd" and s.meta["model"] == "ConvNet" and s.meta["model_kwargs"] == SMALL["model_kwargs"]
    assert s.lr is None and s.meta["init_seed"] is None and len(s.meta["lrs"]) == 4
    assert s.meta["config"]["steps"] == 2 and s.meta["config"]["epochs"] == 2 and s.meta["seed"] == 0
    assert (tmp_path / "checkpoint.pt").exists() and len(h.losses) == 3 and torch.isfinite(s.images).all()
    s.save(tmp_path); back = SynSet.load(tmp_path)
    assert torch.equal(back.images, s.images) and back.meta["lrs"] == s.meta["lrs"]
    assert len(replay_dd(back, data, runs=2).accs) == 2


def test_fixed_init_reuses_the_same_init(data, monkeypatch):
    seen = []
    def spy(net, params, *a):
        seen.append(params["classifier.weight"].clone()); return dd_loss(net, params, *a)
    monkeypatch.setattr(ddbook.dd, "dd_loss", spy)
    s, _ = distill_dd(data, 1, iterations=3, fixed_init=True, seed=7, **SMALL)
    assert len(seen) == 3 and all(torch.equal(w, seen[0]) for w in seen)
    with seeded(7): net = ddbook.dd.init_net(get_model("ConvNet", 1, K, HW, **SMALL["model_kwargs"]))
    assert torch.equal(seen[0], net.classifier.weight.detach())               # reproducible from the meta's init_seed
    assert s.meta["init_seed"] == 7 and s.meta["config"]["fixed_init"] is True
    assert replay_dd(s, data, runs=3).accs == replay_dd(s, data, runs=1).accs    # one network, the same every time
    seen.clear()
    distill_dd(data, 1, iterations=3, **SMALL)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])   # fresh inits otherwise


def test_nan_stops_with_the_iteration_and_cause_and_keeps_the_last_good_set(data, tmp_path):
    kw = dict(SMALL, lr_img=1e30, init="real")
    with pytest.raises(FloatingPointError, match=r"at iteration 1 .*likely cause: lr_img") as e:
        distill_dd(data, 1, iterations=5, out_dir=tmp_path, **kw)
    assert str(tmp_path) in str(e.value) and "after iteration 1" in str(e.value)
    saved = SynSet.load(tmp_path)
    assert torch.isfinite(saved.images).all() and all(l == l for l in saved.meta["lrs"])
    good, _ = distill_dd(data, 1, iterations=1, **kw)                          # the set after the last good iteration
    assert torch.equal(saved.images, good.images)


def test_same_seed_same_set_and_exact_resume(data, tmp_path, monkeypatch):
    kw = dict(SMALL, iterations=4, init="real", lr_img=0.05, decay_every=2)
    full, _ = distill_dd(data, 2, **kw)
    again, _ = distill_dd(data, 2, **kw)
    assert torch.equal(full.images, again.images) and full.meta["lrs"] == again.meta["lrs"]
    calls = {"n": 0}
    def dies_at_third_iteration(*a):
        calls["n"] += 1
        if calls["n"] == 3: raise KeyboardInterrupt("killed")
        return dd_loss(*a)
    monkeypatch.setattr(ddbook.dd, "dd_loss", dies_at_third_iteration)
    with pytest.raises(KeyboardInterrupt):
        distill_dd(data, 2, out_dir=tmp_path, checkpoint_every=0, **kw)
    monkeypatch.setattr(ddbook.dd, "dd_loss", dd_loss)
    resumed, h = distill_dd(data, 2, out_dir=tmp_path, **kw)
    assert torch.equal(resumed.images, full.images) and resumed.meta["lrs"] == full.meta["lrs"] and len(h.losses) == 4


def test_unrolled_networks_start_from_the_official_xavier_init(data, monkeypatch):
    "SsnL/dataset-distillation: --init xavier (gain 1), zero biases (networks/utils.py init_weights)."
    seen = []
    real = ddbook.dd.params_of
    def spy(net, *a, **k):
        seen.append({n: p.detach().clone() for n, p in net.named_parameters()}); return real(net, *a, **k)
    monkeypatch.setattr(ddbook.dd, "params_of", spy)
    s, _ = distill_dd(data, 1, iterations=2, **SMALL)
    assert seen and all((p == 0).all() for ps in seen for n, p in ps.items() if n.endswith("bias"))
    assert s.meta["config"]["net_init"] == "xavier"
    seen.clear()
    distill_dd(data, 1, iterations=2, net_init="default", **SMALL)
    assert any((p != 0).any() for ps in seen for n, p in ps.items() if n == "classifier.bias")
