"""Distribution matching (ddbook.dm): batched loss = per-class loop, chunked gradient, large IPC, bad input, resume."""
import pytest
import torch

import ddbook.dm as dm
from ddbook.augment import DSA_STRATEGY
from ddbook.core import make_generator, seeded
from ddbook.data import from_tensors
from ddbook.dm import class_means, distill_dm, dm_backward, dm_loss, dm_loss_per_class
from ddbook.models import get_model
from ddbook.synset import SynSet


def toy_data(n_per_class=40, classes=3, size=12, channels=3, seed=0):
    "A small dataset from tensors (not registered), to show the method works on any ImageData."
    g = make_generator(seed)
    x = torch.rand(n_per_class * classes, channels, size, size, generator=g)
    y = torch.arange(classes).repeat(n_per_class)
    return from_tensors(x, y, name="toy", test_frac=0.25)


def net_for(data, width=8, seed=0, **kw):
    i = data.info
    with seeded(seed): net = get_model("ConvNet", i.channels, i.num_classes, i.im_size, width=width, **kw)
    return net.requires_grad_(False)


def batches(data, n_real=10, ipc=4, seed=0):
    pools, K, g = data.pools(), data.info.num_classes, make_generator(seed)
    x_real = torch.cat([pools.sample(c, n_real, g) for c in range(K)])
    x_syn = torch.cat([pools.sample(c, ipc, g) for c in range(K)]).requires_grad_()
    return x_real, torch.arange(K).repeat_interleave(n_real), x_syn, torch.arange(K).repeat_interleave(ipc)


@pytest.mark.parametrize("strategy", [None, DSA_STRATEGY, "rotate", "color"])
def test_batched_loss_equals_per_class_loop(strategy):
    data = toy_data()
    net = net_for(data)
    xr, yr, xs, ys = batches(data)
    l1 = dm_loss(net, xr, yr, xs, ys, 3, strategy, seed=7)
    g1, = torch.autograd.grad(l1, xs)
    l2 = dm_loss_per_class(net, xr, yr, xs, ys, 3, strategy, seed=7)
    g2, = torch.autograd.grad(l2, xs)
    assert l1 > 0 and torch.allclose(l1, l2, rtol=1e-4)
    assert g1.abs().sum() > 0 and torch.allclose(g1, g2, rtol=1e-3, atol=1e-7)


def test_labels_in_any_order():
    "The per-class means come from the labels, not from the order: shuffling the synthetic set changes nothing."
    data = toy_data()
    net = net_for(data)
    xr, yr, xs, ys = batches(data)
    perm = torch.randperm(len(xs), generator=make_generator(1))
    l1 = dm_loss(net, xr, yr, xs, ys, 3, DSA_STRATEGY, seed=3)
    l2 = dm_loss(net, xr, yr, xs.detach()[perm], ys[perm], 3, DSA_STRATEGY, seed=3)
    assert torch.allclose(l1, l2, rtol=1e-5)


def test_class_means_matches_reshape():
    f = torch.randn(20, 6)
    y = torch.arange(4).repeat_interleave(5)
    assert torch.allclose(class_means(f, y, 4), f.view(4, 5, 6).mean(1), atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 5, 7, 100])
def test_chunked_backward_is_exact(chunk):
    data = toy_data()
    net = net_for(data)
    xr, yr, xs, ys = batches(data)
    ref = dm_backward(net, xr, yr, xs, ys, 3, DSA_STRATEGY, seed=2)
    g_ref, xs.grad = xs.grad.clone(), None
    loss = dm_backward(net, xr, yr, xs, ys, 3, DSA_STRATEGY, seed=2, chunk=chunk)
    assert torch.allclose(loss, ref, rtol=1e-4) and torch.allclose(xs.grad, g_ref, rtol=1e-3, atol=1e-7)


def test_large_ipc_runs_in_chunks():
    "IPC 120 on a tensor dataset at width 4: the chunked path runs, keeps the labels, and lowers the loss."
    data = toy_data(n_per_class=170, classes=3, size=8, channels=1)
    s, h = distill_dm(data, ipc=120, iterations=5, lr_img=1.0, batch_real=32, model_kwargs={"width": 4},
                      chunk=64, progress=False)
    assert s.images.shape == (360, 1, 8, 8) and s.ipc == 120 and torch.isfinite(s.images).all()
    assert len(h.losses) == 5 and h.losses[-1] < h.losses[0]


def test_ipc_larger_than_the_data_is_refused():
    data = toy_data()
    with pytest.raises(ValueError, match="ipc=31 is larger than class"):
        distill_dm(data, ipc=31, iterations=1, progress=False)


def test_unknown_dsa_operation_fails_before_running():
    with pytest.raises(KeyError, match="unknown DSA operation 'blur'"):
        distill_dm(toy_data(), ipc=1, iterations=1, dsa_strategy="crop_blur", progress=False)


def test_nan_stops_with_the_iteration_and_keeps_the_last_good_set(tmp_path):
    data = toy_data()
    with pytest.raises(FloatingPointError, match=r"iteration \d+.*last good set") as e:
        distill_dm(data, ipc=2, iterations=20, lr_img=1e38, batch_real=8, model_kwargs={"width": 4},
                   out_dir=tmp_path, progress=False)
    assert "lr_img" in str(e.value)
    saved = SynSet.load(tmp_path)
    assert saved.images.shape == (6, 3, 12, 12) and torch.isfinite(saved.images).all()


def test_same_seed_same_set_and_resume_is_exact(tmp_path, monkeypatch):
    "Every random draw comes from the loop's generator: a run killed at iteration 2 and resumed ends identical."
    data = toy_data()
    kw = dict(ipc=2, iterations=4, lr_img=5.0, batch_real=8, model_kwargs={"width": 4}, progress=False, seed=3)
    full, h_full = distill_dm(data, **kw)
    again, _ = distill_dm(data, **kw)
    assert torch.equal(full.images, again.images)

    calls, real_backward = [0], dm.dm_backward
    def dying(*a, **k):
        calls[0] += 1
        if calls[0] == 3: raise KeyboardInterrupt("killed")
        return real_backward(*a, **k)
    monkeypatch.setattr(dm, "dm_backward", dying)
    with pytest.raises(KeyboardInterrupt):
        distill_dm(data, out_dir=tmp_path, checkpoint_every=0, **kw)
    monkeypatch.setattr(dm, "dm_backward", real_backward)
    resumed, h = distill_dm(data, out_dir=tmp_path, checkpoint_every=0, **kw)
    assert torch.equal(resumed.images, full.images) and h.losses == pytest.approx(h_full.losses)
