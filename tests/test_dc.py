"""DC and DSA end to end on tiny data: distances, the IPC rule, batch norm, the NaN guard, resume, and the siamese seeds."""
import pytest
import torch

import ddbook.dc

from ddbook.augment import default_strategy, dsa
from ddbook.core import UnknownNameError, make_generator, seeded
from ddbook.dc import DISTANCES, LOOPS, bn_layers, distill_dc, freeze_bn, get_loops, match_loss
from ddbook.distill import Hook
from ddbook.dsa import distill_dsa
from ddbook.models import get_model
from ddbook.synset import SynSet

K, HW = 3, 8
SMALL = dict(model_kwargs={"width": 4, "depth": 1}, batch_real=8, batch_train=16, progress=False)


@pytest.fixture(scope="module")
def data(quadrants):
    return quadrants


def grads(seed):
    g = make_generator(seed)
    return [torch.randn(6, 2, 3, 3, generator=g), torch.randn(6, generator=g), torch.randn(4, 5, generator=g),
            torch.randn(3, 4, 5, generator=g)]


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_distance_is_zero_for_identical_gradients(name):
    a = grads(0)
    assert float(DISTANCES[name](a, a)) < 1e-5


@pytest.mark.parametrize("name", ["ours", "cos"])
@pytest.mark.parametrize("scale", [0.01, 0.5, 7.0])
def test_cosine_distances_ignore_positive_scaling(name, scale):
    a, b = grads(0), grads(1)
    d = float(DISTANCES[name](a, b))
    assert d > 0.1
    assert abs(float(DISTANCES[name]([scale * t for t in a], b)) - d) < 1e-4
    assert abs(float(DISTANCES[name](a, [scale * t for t in b])) - d) < 1e-4


def test_distance_variants():
    a, b = grads(0), grads(1)
    rows = 6 + 4 + 3                                   # conv, linear and 3-D gradients; the 1-D one is skipped
    assert abs(float(DISTANCES["ours"](a, [-t for t in a])) - 2 * rows) < 1e-4
    assert float(DISTANCES["ours"](a, [a[0], b[1], a[2], a[3]])) < 1e-5        # blind to 1-D gradients
    assert float(DISTANCES["cos"](a, [a[0], b[1], a[2], a[3]])) > 1e-4         # the flat cosine sees them
    assert abs(float(DISTANCES["mse"](a, b)) - sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b))) < 1e-3
    assert abs(float(DISTANCES["mse"](a, [3 * t for t in a])) - 4 * sum(float((t ** 2).sum()) for t in a)) < 1e-2
    with pytest.raises(UnknownNameError, match="choose one of: .*cos, mse, ours"):   # (IDC adds its own)
        DISTANCES.get("euclid")


def test_loops_table_and_rule():
    assert LOOPS == {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
    assert [get_loops(k) for k in (2, 7, 100)] == [(1, 1), (10, 50), (50, 10)]
    assert get_loops(15) == (10, 50) and get_loops(25) == (20, 25) and get_loops(46) == (50, 10)


def test_unlisted_ipc_runs_with_the_rule(data):
    s, h = distill_dc(data, 2, iterations=1, **SMALL)
    assert s.ipc == 2 and len(h.losses) == 1
    assert (s.meta["config"]["outer_loop"], s.meta["config"]["inner_loop"]) == get_loops(2)


def test_returns_a_synset_in_the_common_format(data, tmp_path):
    s, h = distill_dc(data, 1, iterations=3, lr_img=1.0, out_dir=tmp_path, **SMALL)
    assert isinstance(s, SynSet) and s.images.shape == (K, 1, HW, HW) and s.labels.tolist() == list(range(K))
    assert s.meta["method"] == "dc" and s.meta["model"] == "ConvNet" and s.meta["model_kwargs"] == SMALL["model_kwargs"]
    assert s.meta["config"]["lr_img"] == 1.0 and s.meta["seed"] == 0 and torch.isfinite(s.images).all()
    assert (tmp_path / "checkpoint.pt").exists() and len(h.losses) == 3
    s.save(tmp_path); assert torch.equal(SynSet.load(tmp_path).images, s.images)


class DiesAt(Hook):
    "A hook that stops the run at the start of iteration `at`, as a killed process would."
    def __init__(self, at): self.at = at
    def before_step(self, d, it):
        if it == self.at: raise KeyboardInterrupt("killed")


def test_same_seed_same_set_and_exact_resume(data, tmp_path):
    kw = dict(SMALL, iterations=4, init="real", outer_loop=2, inner_loop=1, lr_img=1.0)
    full, _ = distill_dc(data, 1, **kw)
    again, _ = distill_dc(data, 1, **kw)
    assert torch.equal(full.images, again.images)
    with pytest.raises(KeyboardInterrupt):
        distill_dc(data, 1, (DiesAt(2),), out_dir=tmp_path, checkpoint_every=0, **kw)
    resumed, h = distill_dc(data, 1, out_dir=tmp_path, **kw)
    assert torch.equal(resumed.images, full.images) and len(h.losses) == 4 and h.resumed_at == 2


def test_nan_stops_with_the_iteration_and_cause_and_keeps_the_last_good_set(data, tmp_path):
    # lr_img = 1e30: the first step blows the images up to ~1e27 (still finite: instance norm does not mind),
    # the second forward pass overflows and the matching loss of iteration 1 is nan
    kw = dict(SMALL, lr_img=1e30, init="real")
    with pytest.raises(FloatingPointError, match=r"loss at iteration 1 is nan; likely cause: lr_img") as e:
        distill_dc(data, 1, iterations=5, out_dir=tmp_path, **kw)
    assert str(tmp_path) in str(e.value) and "after iteration 1" in str(e.value)
    saved = SynSet.load(tmp_path)
    assert torch.isfinite(saved.images).all()
    good, _ = distill_dc(data, 1, iterations=1, **kw)                       # the set after the last good iteration
    assert torch.equal(saved.images, good.images)


def test_batch_norm_is_frozen_from_real_data(data, monkeypatch):
    with seeded(0): net = get_model("ConvNetBN", 1, K, HW, width=4, depth=1)
    x = data.x_train[:24]
    assert freeze_bn(net, x) and all(not m.training for m in bn_layers(net))
    assert torch.allclose(net(x[:2]), net(x)[:2], atol=1e-5)               # per image once frozen
    calls = []
    def spy(net, x_real):
        calls.append(len(x_real)); return freeze_bn(net, x_real)
    monkeypatch.setattr(ddbook.dc, "freeze_bn", spy)
    s, h = distill_dc(data, 1, model="ConvNetBN", iterations=2, outer_loop=2, inner_loop=1, **SMALL)
    assert calls == [16 * K] * 4                                            # before every matching step
    assert s.meta["model"] == "ConvNetBN" and torch.isfinite(s.images).all() and all(map(lambda l: l == l, h.losses))


def test_match_loss_is_per_class_and_differentiable(data):
    pools = data.pools()
    with seeded(0): net = get_model("ConvNet", 1, K, HW, width=4, depth=1)
    x_all = torch.cat([pools.get(c) for c in range(K)])
    n = pools.counts[0]
    assert all(c == n for c in pools.counts)
    assert match_loss(net, pools, x_all, n, n, make_generator(0)).item() < 1e-2   # the whole class on both sides
    xs = torch.randn(K, 1, HW, HW, generator=make_generator(1), requires_grad=True)
    loss = match_loss(net, pools, xs, 1, 4, make_generator(0), distance="mse")
    loss.backward()
    assert xs.grad is not None and xs.grad.abs().sum() > 0


def test_dsa_uses_one_seed_for_both_batches(data, monkeypatch):
    seen = []
    def spy(x, strategy, seed):
        seen.append((seed, len(x))); return dsa(x, strategy, seed)
    monkeypatch.setattr(ddbook.dc, "dsa", spy)
    distill_dc(data, 2, iterations=2, dsa_strategy="default", **SMALL)
    assert len(seen) == 2 * K * 2
    real, syn = seen[0::2], seen[1::2]
    assert [s for s, _ in real] == [s for s, _ in syn]                     # siamese: the same seed
    assert {n for _, n in real} == {SMALL["batch_real"]} and {n for _, n in syn} == {2}
    assert len({s for s, _ in real}) > 1                                    # a new draw per class and step


def test_one_meaning_per_name_and_a_clear_error_for_a_misspelt_setting(data):
    plain, _ = distill_dc(data, 1, iterations=1, **SMALL)
    off, _ = distill_dc(data, 1, iterations=1, dsa_strategy=None, **SMALL)
    assert plain.meta["config"]["dsa_strategy"] is None and torch.equal(plain.images, off.images)
    with pytest.raises(TypeError, match="unknown setting 'lr_image'; valid: DCSettings: ipc, iterations, lr_img"):
        distill_dc(data, 1, lr_image=0.1, **SMALL)


def test_distill_dsa(data):
    s, h = distill_dsa(data, 1, iterations=2, **SMALL)
    assert s.meta["method"] == "dsa" and s.meta["config"]["init"] == "real"
    assert s.meta["config"]["dsa_strategy"] == default_strategy("quadrants") and torch.isfinite(s.images).all()
    d, _ = distill_dc(data, 1, iterations=2, init="real", **SMALL)
    assert not torch.equal(s.images, d.images)                              # the augmentation changed the updates
