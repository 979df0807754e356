"""Properties of ddbook.augment: DSA operations, the dsa function, crop_flip and the augmentation registry."""
import dataclasses
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddbook.augment import (AUGMENTS, DSA_OPS, DSA_STRATEGY, DSAParams, crop_flip, default_strategy, draw_seed, dsa,
                            get_augment, parse_strategy)
from ddbook.core import UnknownNameError, make_generator

OPS = ["color", "crop", "cutout", "flip", "scale", "rotate"]
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 8, 8), (3, 16, 24)]


def batch(n=8, shape=(3, 32, 32), seed=0):
    return torch.randn(n, *shape, generator=make_generator(seed))


def test_registry_holds_the_six_operations():
    assert sorted(DSA_OPS) == sorted(OPS)
    assert parse_strategy(DSA_STRATEGY) == OPS
    assert {"crop_flip", "dsa", "none"} <= set(AUGMENTS)
    import ddbook.selmatch                               # a later chapter registers its own augmentation
    assert AUGMENTS["combined"] is ddbook.selmatch.combined_augment


def test_default_params_are_the_reference_values():
    p = DSAParams()
    assert dataclasses.astuple(p) == (0.5, 1.2, 15.0, 0.125, 0.5, 1.0, 2.0, 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.ratio_rotate = 0.0


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", SHAPES)
def test_shape_dtype_and_gradient(op, shape):
    x = batch(5, shape).requires_grad_()
    w = batch(5, shape, seed=1)
    for siamese in (True, False):
        y = dsa(x, op, seed=3, siamese=siamese)
        assert y.shape == x.shape and y.dtype == x.dtype
        g, = torch.autograd.grad((y * w).sum(), x, retain_graph=True)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
        g, = torch.autograd.grad(y.sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert dsa(x.detach().double(), op, seed=3).dtype == torch.float64


@pytest.mark.parametrize("op", OPS)
def test_same_seed_same_transform(op):
    x = batch()
    for seed in range(5):
        assert torch.equal(dsa(x, op, seed=seed), dsa(x, op, seed=seed))
        assert torch.equal(dsa(x, op, seed=seed, siamese=False), dsa(x, op, seed=seed, siamese=False))


@pytest.mark.parametrize("op", OPS)
def test_different_seeds_differ(op):
    x = batch()
    outs = [dsa(x, op, seed=s) for s in range(10)]
    distinct = {tuple(o.flatten()[::97].tolist()) for o in outs}
    assert len(distinct) >= (2 if op == "flip" else 8)   # flip has only two outcomes


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_siamese_is_batch_independent(op, shape):
    x_real, x_syn = batch(256, shape, seed=1), batch(10, shape, seed=2)
    for seed in range(4):
        both = dsa(torch.cat([x_real, x_syn]), op, seed=seed)
        assert torch.allclose(both[:256], dsa(x_real, op, seed=seed), atol=1e-6)
        assert torch.allclose(both[256:], dsa(x_syn, op, seed=seed), atol=1e-6)
        assert torch.allclose(both[256:257], dsa(x_syn[:1], op, seed=seed), atol=1e-6)


def test_siamese_full_strategy_both_modes():
    x_real, x_syn = batch(256, seed=1), batch(10, seed=2)
    for mode in "SM":
        for seed in range(10):
            both = dsa(torch.cat([x_real, x_syn]), seed=seed, mode=mode)
            assert torch.allclose(both[256:], dsa(x_syn, seed=seed, mode=mode), atol=1e-6)


@pytest.mark.parametrize("op", OPS)
def test_per_sample_draws_when_not_siamese(op):
    same = batch(1, seed=4).repeat(16, 1, 1, 1)
    y = dsa(same, op, seed=0, siamese=True)
    assert all(torch.equal(y[0], y[i]) for i in range(16))
    y = dsa(same, op, seed=0, siamese=False)
    assert len({tuple(y[i].flatten()[::37].tolist()) for i in range(16)}) >= 2
    if op != "flip":
        assert sum(not torch.equal(y[0], y[i]) for i in range(16)) >= 12


def test_mode_s_applies_the_host_chosen_operation():
    x = batch()
    for seed in range(30):
        op = OPS[random.Random(seed).randrange(6)]
        assert torch.equal(dsa(x, seed=seed), DSA_OPS[op](x, make_generator(seed)))
    chosen = {OPS[random.Random(s).randrange(6)] for s in range(60)}
    assert chosen == set(OPS)


def test_mode_m_composes_all_operations_in_order():
    x = batch()
    g = make_generator(9)
    want = x
    for op in OPS:
        want = DSA_OPS[op](want, g)
    assert torch.equal(dsa(x, seed=9, mode="M"), want)
    assert not torch.allclose(dsa(x, seed=9, mode="M"), dsa(x, seed=9, mode="S"))


def test_seeds_from_a_cpu_generator():
    g1, g2 = make_generator(3), make_generator(3)
    seeds = [draw_seed(g1) for _ in range(20)]
    assert seeds == [draw_seed(g2) for _ in range(20)] and len(set(seeds)) == 20
    assert all(type(s) is int and 0 <= s < 2**31 for s in seeds)
    with pytest.raises(ValueError, match="take a CPU generator"):
        draw_seed(SimpleNamespace(device=torch.device("cuda")))
    x = batch()

    assert torch.equal(dsa(x, seed=np.int64(4)), dsa(x, seed=4))   # numpy integers are accepted


def test_dsa_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    dsa(batch(), seed=1, mode="M")
    assert torch.equal(state, torch.random.get_rng_state())


def test_errors_list_the_choices():
    x = batch()
    with pytest.raises(UnknownNameError, match="unknown DSA operation 'blur'; choose one of: color, crop, cutout, flip"):
        dsa(x, "color_blur")
    with pytest.raises(ValueError, match="unknown DSA mode 'X'"):
        dsa(x, mode="X")
    with pytest.raises(UnknownNameError, match="unknown augmentation 'mixup'; choose one of: .*crop_flip, dsa, none"):
        get_augment("mixup")
    with pytest.raises(UnknownNameError, match="unknown DSA operation 'colour'"):
        get_augment("dsa", strategy="colour_crop")
    with pytest.raises(TypeError):
        get_augment("crop_flip", strategy="color")


def test_digit_strategies_drop_flip():
    "The DC/DSA README: no flip for the digit datasets MNIST and SVHN; flip for FashionMNIST and CIFAR."
    for name in ["mnist5k", "MNIST", "SVHN", "digits"]:
        assert default_strategy(name) == "color_crop_cutout_scale_rotate"
    for name in ["CIFAR10", "CIFAR100", "FashionMNIST", "TinyImageNet"]:
        assert default_strategy(name) == DSA_STRATEGY
    x = batch(4, (1, 28, 28))
    for seed in range(20):
        for mode in "SM":
            y = dsa(x, default_strategy("mnist5k"), seed=seed, mode=mode)
            assert y.shape == x.shape and torch.isfinite(y).all()


# ---- each operation against its definition -------------------------------------------------------------------------

def test_zero_strength_parameters_give_the_identity():
    x = batch()
    p = DSAParams(prob_flip=0.0, ratio_scale=1.0, ratio_rotate=0.0, ratio_crop_pad=0.0, ratio_cutout=0.0)
    for op in ["crop", "cutout", "flip", "scale", "rotate"]:
        for seed in range(3):
            assert torch.allclose(dsa(x, op, seed, p), x, atol=1e-5), op
    assert all(torch.equal(dsa(x, "flip", s, DSAParams(prob_flip=1.0)), x.flip(3)) for s in range(5))


def test_color_is_affine_with_the_reference_ranges():
    # saturation and contrast keep each image's mean, so the mean moves by the brightness draw, U(-0.5, 0.5)
    x = batch(2000, (3, 4, 4))
    y = dsa(x, "color", seed=0, siamese=False)
    shift = y.mean((1, 2, 3)) - x.mean((1, 2, 3))
    assert -0.5 <= shift.min() < -0.45 and 0.45 < shift.max() <= 0.5
    # one channel: saturation is the identity, and contrast scales deviations from the mean by c ~ U(0.5, 1.5)
    x1 = batch(4, (1, 8, 8))
    y1 = dsa(x1, "color", seed=3)
    c = ((y1 - y1.mean((1, 2, 3), keepdim=True)) / (x1 - x1.mean((1, 2, 3), keepdim=True))).flatten()
    assert torch.allclose(c, c[0].expand_as(c), atol=1e-4) and 0.5 <= c[0] <= 1.5
    # three channels: saturation U(0, 2) scales each pixel's deviation from its grey level, contrast then rescales,
    # so the per-pixel colour deviations are proportional to the input's with one factor in [0, 3)
    x3 = batch(1, (3, 8, 8))
    y3 = dsa(x3, "color", seed=4)
    dev_in, dev_out = x3 - x3.mean(1, keepdim=True), y3 - y3.mean(1, keepdim=True)
    k = (dev_out / dev_in).flatten()
    assert torch.allclose(k, k[0].expand_as(k), atol=1e-3) and 0 <= k[0] < 3


def test_crop_translates_by_at_most_an_eighth():
    x = torch.rand(400, 1, 32, 32, generator=make_generator(0)) + 0.1   # strictly positive
    y = dsa(x, "crop", seed=0, siamese=False)
    rows_zero = (y == 0).all(dim=3).squeeze(1)            # [N, H]: rows uncovered by the shift
    cols_zero = (y == 0).all(dim=2).squeeze(1)
    assert rows_zero.sum(1).max() == 4 and cols_zero.sum(1).max() == 4
    assert (y.sum((1, 2, 3)) <= x.sum((1, 2, 3)) + 1e-3).all()
    for i in range(20):                                    # each output is a zero-filled shift of its input
        dy = int(rows_zero[i, :16].sum()) - int(rows_zero[i, 16:].sum())
        dx = int(cols_zero[i, :16].sum()) - int(cols_zero[i, 16:].sum())
        want = torch.roll(x[i], (dy, dx), dims=(1, 2))
        keep = y[i] != 0
        assert torch.equal(y[i][keep], want[keep])


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(500, 1, 32, 32)
    y = dsa(x, "cutout", seed=0, siamese=False)
    holes = (y == 0).squeeze(1)
    assert holes.sum((1, 2)).max() == 16 * 16 and holes.sum((1, 2)).min() >= 8 * 8
    for i in range(50):                                    # the hole is a rectangle
        r = holes[i].any(1).nonzero().flatten()
        c = holes[i].any(0).nonzero().flatten()
        assert holes[i].sum() == len(r) * len(c) and holes[i][r[0]:r[-1] + 1, c[0]:c[-1] + 1].all()


def test_scale_and_rotate_change_the_image_more_with_larger_ranges():
    x = batch(4, (3, 16, 16))
    for op in ["scale", "rotate"]:
        assert not torch.allclose(dsa(x, op, seed=5), x)
    small = (dsa(x, "rotate", 5, DSAParams(ratio_rotate=5.0)) - x).abs().mean()
    large = (dsa(x, "rotate", 5, DSAParams(ratio_rotate=60.0)) - x).abs().mean()
    assert large > small
    small = (dsa(x, "scale", 5, DSAParams(ratio_scale=1.05)) - x).abs().mean()
    large = (dsa(x, "scale", 5, DSAParams(ratio_scale=2.0)) - x).abs().mean()
    assert large > small


def test_rotate_and_scale_preserve_a_constant_image_inside():
    x = torch.ones(1, 1, 32, 32)
    for seed in range(5):
        y = dsa(x, "rotate", seed=seed)
        assert torch.allclose(y[..., 12:20, 12:20], torch.ones(1, 1, 8, 8), atol=1e-5)
        y = dsa(x, "scale", seed=seed)
        assert torch.allclose(y[..., 12:20, 12:20], torch.ones(1, 1, 8, 8), atol=1e-5)


# ---- crop_flip ------------------------------------------------------------------------------------------------------

def test_crop_flip_reproducible_and_shaped():
    x = batch(32, (3, 32, 32))
    y = crop_flip(x, make_generator(1))
    assert y.shape == x.shape
    assert torch.equal(y, crop_flip(x, make_generator(1)))
    assert not torch.equal(y, crop_flip(x, make_generator(2)))
    assert crop_flip(batch(4, (1, 28, 28)), make_generator(0)).shape == (4, 1, 28, 28)


def test_crop_flip_equals_pad_then_crop_per_sample():
    x = batch(32, (3, 32, 32))
    g = make_generator(7)
    dy = torch.randint(-4, 5, (32,), generator=g)
    dx = torch.randint(-4, 5, (32,), generator=g)
    y = crop_flip(x, make_generator(7), flip=False)
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(32):
        top, left = 4 - int(dy[i]), 4 - int(dx[i])
        assert torch.equal(y[i], padded[i, :, top:top + 32, left:left + 32])


def test_crop_flip_only_moves_content():
    x = torch.rand(64, 3, 32, 32, generator=make_generator(0))
    for flip in (True, False):
        y = crop_flip(x, make_generator(3), pad=4, flip=flip)
        assert (y.sum((1, 2, 3)) <= x.sum((1, 2, 3)) + 1e-3).all()
    assert torch.equal(crop_flip(x, make_generator(3), pad=0, flip=False), x)
    y = crop_flip(x, make_generator(3), pad=0, flip=True)
    flipped = (y == x.flip(3)).all(dim=(1, 2, 3))
    assert ((y == x).all(dim=(1, 2, 3)) | flipped).all() and 0 < flipped.sum() < 64


def test_crop_flip_gradient_and_device_check():
    x = batch(8).requires_grad_()
    g, = torch.autograd.grad(crop_flip(x, make_generator(0)).sum(), x)
    assert torch.isfinite(g).all() and set(g.unique().tolist()) <= {0.0, 1.0} and g.sum() > 0
    with pytest.raises(ValueError, match="generator is on cuda"):
        crop_flip(x, SimpleNamespace(device=torch.device("cuda")))


# ---- get_augment ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kw", [("dsa", {}), ("dsa", {"mode": "M"}), ("crop_flip", {}),
                                     ("dsa", {"strategy": "rotate", "params": DSAParams(ratio_rotate=30.0)}),
                                     ("crop_flip", {"pad": 2, "flip": False})])
def test_get_augment_reproducible_from_the_generator(name, kw):
    x = batch(16, (1, 28, 28))
    aug = get_augment(name, **kw)
    g1, g2 = make_generator(11), make_generator(11)
    a = [aug(x, g1) for _ in range(4)]
    b = [aug(x, g2) for _ in range(4)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], a[1])
    assert all(t.shape == x.shape for t in a)


def test_get_augment_dsa_draws_per_sample():
    same = batch(1, (1, 28, 28)).repeat(16, 1, 1, 1)
    y = get_augment("dsa", strategy="rotate")(same, make_generator(0))
    assert sum(not torch.equal(y[0], y[i]) for i in range(16)) >= 12


def test_get_augment_none_and_generator_rule():
    x = batch()
    assert get_augment("none")(x, make_generator(0)) is x
    for name in ["dsa", "crop_flip"]:
        with pytest.raises(ValueError, match="take a CPU generator"):
            get_augment(name)(x, SimpleNamespace(device=torch.device("cuda")))


def test_get_augment_gradient_flows():
    x = batch(8).requires_grad_()
    for name in ["dsa", "crop_flip"]:
        y = get_augment(name, mode="M")(x, make_generator(0)) if name == "dsa" else get_augment(name)(x, make_generator(0))
        g, = torch.autograd.grad(y.sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0


# ---- GPU: no host synchronisation ----------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_sync_on_cuda():
    x = batch(64).cuda().requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for seed in range(12):
            for mode in "SM":
                dsa(x, seed=seed, mode=mode)
                dsa(x, seed=seed, mode=mode, siamese=False)
        crop_flip(x, make_generator(0, x.device))
        for name in ["dsa", "crop_flip"]:
            get_augment(name)(x, make_generator(0))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    x_real, x_syn = batch(256, seed=1).cuda(), batch(10, seed=2).cuda()
    both = dsa(torch.cat([x_real, x_syn]), seed=3, mode="M")
    assert torch.allclose(both[256:], dsa(x_syn, seed=3, mode="M"), atol=1e-5)
