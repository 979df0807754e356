"""Expert trajectories, MTT and DATM on tiny data: the exact constant-memory gradient against the full unroll,
resumable expert training and distillation, the NaN and collapsed-lr guards, and DATM's pieces."""
import pytest
import torch
import torch.nn.functional as F

import ddbook.datm
import ddbook.experts
import ddbook.mtt
from ddbook.augment import draw_seed, dsa
from ddbook.core import make_generator, seeded
from ddbook.datm import distill_datm, sequential_upper_bound, soft_label_init
from ddbook.dd import inv_softplus
from ddbook.experts import ExpertStore, train_experts
from ddbook.models import flatten_params, get_model, params_of
from ddbook.mtt import GRAD_MODES, distill_mtt, random_batches, step_graph_mb, student_unroll, trajectory_loss
from ddbook.synset import SynSet

NET = {"width": 4, "depth": 1}
TINY = dict(iterations=4, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0, progress=False)


@pytest.fixture(scope="module")
def store(quadrants, tmp_path_factory):
    return train_experts(quadrants, num_experts=2, epochs=3, root=tmp_path_factory.mktemp("experts"), model_kwargs=NET,
                         lr_teacher=0.1, progress=False)


def dies_at_third_call(f):
    "`f`, except that its third call raises KeyboardInterrupt, as a killed run would stop."
    calls = {"n": 0}
    def wrapped(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3: raise KeyboardInterrupt("killed")
        return f(*a, **k)
    return wrapped


def gradients(N, dtype, soft, mode, seed=0, keep=None):
    "Loss and gradients (images, labels, raw lr) of one MTT iteration on a small ConvNet with minibatches and DSA."
    g = make_generator(seed + N)
    with seeded(0): net = get_model("ConvNet", 1, 3, 8, width=4, depth=2).to(dtype)
    w0 = flatten_params(params_of(net))
    target = w0 + 0.05 * torch.randn(w0.shape, generator=g, dtype=dtype)
    x = torch.randn(6, 1, 8, 8, generator=g, dtype=dtype).requires_grad_()
    y = torch.randn(6, 3, generator=g, dtype=dtype).requires_grad_() if soft else torch.arange(3).repeat(2)
    batches, seeds = random_batches(6, 4, N, g), [draw_seed(g) for _ in range(N)]
    raw = inv_softplus(torch.tensor(0.1, dtype=dtype)).requires_grad_()
    aug = lambda xb, n: dsa(xb, "color_crop_cutout_scale_rotate", seeds[n], siamese=False)
    # "auto" with a budget of `keep` steps' graphs (and half a step to spare)
    budget = None if keep is None else (keep + 0.5) * step_graph_mb(net, w0, x, y, raw, batches[0], aug)
    loss = trajectory_loss(student_unroll(net, w0, x, y, F.softplus(raw), batches, aug, mode, budget), w0, target)
    loss.backward()
    return [loss.detach(), x.grad, raw.grad] + ([y.grad] if soft else [])


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-3)])
@pytest.mark.parametrize("N", [2, 4, 8])
@pytest.mark.parametrize("soft", [False, True])
def test_reverse_walk_gradient_equals_the_full_unroll(N, dtype, tol, soft):
    rev, unr = gradients(N, dtype, soft, "reverse"), gradients(N, dtype, soft, "unroll")
    for a, b in zip(rev, unr):
        assert float((a - b).norm() / b.norm()) <= tol, (N, dtype, soft)


@pytest.mark.parametrize("keep", [0, 1, 3, 5, 8])
def test_auto_mode_keeps_some_steps_and_still_equals_the_full_unroll(keep):
    auto, unr = gradients(5, torch.float64, True, "auto", keep=keep), gradients(5, torch.float64, True, "unroll")
    for a, b in zip(auto, unr):
        assert float((a - b).norm() / b.norm()) <= 1e-10, keep


@pytest.mark.parametrize("keep", [0, 2, 5])
def test_auto_mode_recomputes_only_the_steps_it_did_not_keep(keep, monkeypatch):
    "The forward pass takes N - keep steps without a graph; the backward recomputes just those."
    import ddbook.mtt as mtt
    calls = {False: 0, True: 0}
    def counting(*a, create_graph=True, **k):
        calls[create_graph] += 1
        return sgd_step(*a, create_graph=create_graph, **k)
    from ddbook.dd import sgd_step
    monkeypatch.setattr(mtt, "sgd_step", counting)
    gradients(5, torch.float64, True, "auto", keep=keep)
    # without a graph: the N - keep steps before the cut; with one: the kept steps, the
    # N - keep recomputed steps, and step_graph_mb's one measuring step (first call only)
    assert calls[False] == 5 - keep and calls[True] in (5, 6), (keep, calls)


def test_step_graph_grows_with_the_batch():
    with seeded(0): net = get_model("ConvNet", 1, 3, 8, width=4, depth=2)
    w0, lr = flatten_params(params_of(net)), torch.tensor(0.1)
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 3
    small, large = (step_graph_mb(net, w0, x, y, lr, torch.arange(k)) for k in (2, 8))
    assert 0 < small < large


def test_reverse_walk_keeps_the_trajectory_term():
    "Dropping the Hessian term (each step's weights treated as constants, as TESLA does) gives another gradient."
    g = make_generator(0)
    with seeded(0): net = get_model("ConvNet", 1, 3, 8, width=4, depth=2).double()
    w0 = flatten_params(params_of(net)); target = w0 + 0.05 * torch.randn(w0.shape, generator=g, dtype=torch.float64)
    x = torch.randn(6, 1, 8, 8, generator=g, dtype=torch.float64).requires_grad_()
    y, lr, batches = torch.arange(3).repeat(2), torch.tensor(0.5, dtype=torch.float64), random_batches(6, 6, 4, g)
    exact, = torch.autograd.grad(trajectory_loss(student_unroll(net, w0, x, y, lr, batches), w0, target), x)
    approx, ws = torch.zeros_like(x), [w0]
    for b in batches:   # the forward trajectory, then each step's own image gradient at fixed weights
        ws.append(student_unroll(net, ws[-1], x.detach(), y, lr, [b]).detach())
    a = 2 * (ws[-1] - target) / ((w0 - target) ** 2).sum()
    for n, b in enumerate(batches):
        out = student_unroll(net, ws[n], x, y, lr, [b], grad_mode="unroll")
        approx += torch.autograd.grad(out, x, grad_outputs=a)[0]
    cos = float(F.cosine_similarity(exact.flatten(), approx.flatten(), dim=0))
    assert cos < 0.9, cos      # not the same gradient (cosine 0.76 here)


def test_unknown_grad_mode_is_refused(quadrants, store):
    with pytest.raises(ValueError, match="unknown grad_mode 'tesla'; choose one of: auto, reverse, unroll"):
        distill_mtt(quadrants, 1, store, grad_mode="tesla", **TINY)


def test_expert_killed_mid_training_resumes_exactly(quadrants, tmp_path, monkeypatch):
    kw = dict(num_experts=1, epochs=3, model_kwargs=NET, lr_teacher=0.1, progress=False)
    full = train_experts(quadrants, root=tmp_path / "full", **kw).load(0)
    real = ddbook.experts.train_model
    monkeypatch.setattr(ddbook.experts, "train_model", dies_at_third_call(real))
    with pytest.raises(KeyboardInterrupt):
        train_experts(quadrants, root=tmp_path / "killed", **kw)   # nothing saved yet (save_every is 60 s)
    monkeypatch.setattr(ddbook.experts, "train_model", real)
    resumed = train_experts(quadrants, root=tmp_path / "killed", **kw).load(0)
    assert torch.equal(resumed, full)


def test_expert_saved_every_epoch_resumes_from_where_it_stopped(quadrants, tmp_path, monkeypatch):
    store = ExpertStore(tmp_path / "s", ddbook.experts.expert_config(quadrants, model_kwargs=NET, lr_teacher=0.1))
    real = ddbook.experts.train_model
    monkeypatch.setattr(ddbook.experts, "train_model", dies_at_third_call(real))
    with pytest.raises(KeyboardInterrupt): ddbook.experts.train_expert(store, quadrants, 0, 3, save_every=0)
    assert ExpertStore(tmp_path / "s").epochs(0) == 2                   # two epochs were kept
    monkeypatch.setattr(ddbook.experts, "train_model", real)
    ddbook.experts.train_expert(store, quadrants, 0, 3, save_every=0)
    other = train_experts(quadrants, num_experts=1, epochs=3, root=tmp_path / "other", model_kwargs=NET, lr_teacher=0.1,
                          progress=False)
    assert torch.equal(store.load(0), other.load(0))


def test_mtt_returns_the_common_format_with_the_learned_lr(quadrants, store, tmp_path):
    s, h = distill_mtt(quadrants, 2, store, **TINY)
    s.save(tmp_path)
    back = SynSet.load(tmp_path)
    assert torch.equal(back.images, s.images) and float(back.lr) == pytest.approx(float(s.lr)) and float(s.lr) > 0
    assert back.meta["config"]["experts"]["lr_teacher"] == 0.1 and len(h.losses) == 4


def test_mtt_same_seed_same_set_and_exact_resume(quadrants, store, tmp_path, monkeypatch):
    full, _ = distill_mtt(quadrants, 2, store, **TINY)
    real = ddbook.mtt.trajectory_loss
    monkeypatch.setattr(ddbook.mtt, "trajectory_loss", dies_at_third_call(real))
    with pytest.raises(KeyboardInterrupt):
        distill_mtt(quadrants, 2, store, out_dir=tmp_path, checkpoint_every=0, **TINY)
    monkeypatch.setattr(ddbook.mtt, "trajectory_loss", real)
    resumed, h = distill_mtt(quadrants, 2, store, out_dir=tmp_path, **TINY)
    assert torch.equal(resumed.images, full.images) and torch.equal(resumed.lr, full.lr) and len(h.losses) == 4


def test_nan_stops_with_the_iteration_and_keeps_the_last_good_set(quadrants, store, tmp_path):
    with pytest.raises(FloatingPointError, match=r"iteration 1 .*likely cause: lr_img") as e:
        distill_mtt(quadrants, 2, store, out_dir=tmp_path, **{**TINY, "lr_img": 1e30})
    assert "after iteration 1" in str(e.value)
    good, _ = distill_mtt(quadrants, 2, store, **{**TINY, "lr_img": 1e30, "iterations": 1})
    assert torch.equal(SynSet.load(tmp_path).images, good.images)


def test_collapsing_learning_rate_stops_the_run(quadrants, store, tmp_path, monkeypatch):
    "A loss that only rewards standing still drives the learned lr to zero; the run stops and says so."
    monkeypatch.setattr(ddbook.mtt, "trajectory_loss", lambda e, s, t: 1e4 * ((e - s) ** 2).sum())
    with pytest.raises(FloatingPointError, match="learned learning rate collapsed .*lr_lr is too high"):
        distill_mtt(quadrants, 2, store, out_dir=tmp_path, **{**TINY, "lr_lr": 1.0, "lr_img": 0.0})
    assert SynSet.load(tmp_path).lr > 0


def test_experts_must_match_the_data_and_be_long_enough(quadrants, store):
    with pytest.raises(ValueError, match="epochs=4"):
        distill_mtt(quadrants, 1, store, **{**TINY, "max_start_epoch": 3})
    with pytest.raises(ValueError, match="min_start_epoch < max_start_epoch"):
        distill_mtt(quadrants, 1, store, **{**TINY, "min_start_epoch": 2})
    with pytest.raises(ValueError, match="other settings"):
        ExpertStore(store.folder, {**store.config, "lr_teacher": 0.5})


def test_datm_pieces(quadrants, store):
    ub = sequential_upper_bound(2, 4, 10)
    assert [ub(i) for i in (0, 4, 5, 10, 99)] == [2, 2, 3, 4, 4]
    with pytest.raises(ValueError, match="current_max_start_epoch <= max_start_epoch"): sequential_upper_bound(5, 4, 10)
    logits = torch.tensor([[[1., 0., 0.]], [[0., 2., 0.]]])
    assert torch.equal(soft_label_init(logits, torch.tensor([1])), torch.tensor([[0., 2., 0.]]))
    s, _ = distill_datm(quadrants, 2, store, current_max_start_epoch=1, expansion_end_epoch=2, **TINY)
    assert s.soft and s.labels.dtype == torch.float32 and s.meta["method"] == "datm"


def test_zca_experts_and_set_carry_the_whitening(quadrants, tmp_path):
    "With ZCA the experts, the distillation and the set live in the whitened space; the set whitens test images itself."
    white = quadrants.whiten()
    st = train_experts(white, num_experts=1, epochs=3, root=tmp_path, model_kwargs=NET, lr_teacher=0.1, progress=False)
    assert st.config["zca"] and st.folder != train_experts(quadrants, num_experts=1, epochs=1, root=tmp_path, model_kwargs=NET,
                                                            lr_teacher=0.1, progress=False).folder
    s, _ = distill_mtt(white, 1, st, **TINY)
    assert s.zca is not None
    s.save(tmp_path / "set")
    back = SynSet.load(tmp_path / "set")
    from ddbook.train import EvalProtocol
    proto = EvalProtocol(model_kwargs=NET, epochs=2, runs=1)
    assert proto(back, quadrants).accs == proto(back, white).accs     # plain test data is whitened with the set's ZCA


def test_correct_init_moves_on_to_the_next_expert(quadrants, store, monkeypatch):
    "As DATM's samples_predicted_correctly: judge with expert 0; where it gets too few right, with the next one."
    y = quadrants.y_train
    odd = torch.arange(len(y)) % 2 == 1
    def fake_logits(store_, data, x, epoch, experts=None, batch=1024):
        # expert 0 calls everything class 0; expert 1 is right on the odd rows only
        pred = torch.zeros_like(y) if experts[0] == 0 else torch.where(odd, y, (y + 1) % 3)
        return F.one_hot(pred, 3).float()[None]
    monkeypatch.setattr(ddbook.datm, "expert_logits", fake_logits)
    x = ddbook.datm.correct_init(quadrants, store, 3, 2)
    chosen = torch.tensor([int(torch.nonzero((quadrants.x_train == xi).flatten(1).all(1))[0]) for xi in x])
    assert y[chosen].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert odd[chosen[3:]].all()                                           # classes 1 and 2: what expert 1 gets right


def test_gsam_experts_live_in_their_own_store(quadrants, tmp_path):
    kw = dict(num_experts=1, epochs=2, root=tmp_path, model_kwargs=NET, lr_teacher=0.1, progress=False)
    sgd, gsam = train_experts(quadrants, **kw), train_experts(quadrants, gsam=(2.0, 0.4), **kw)
    assert sgd.folder != gsam.folder and gsam.config["gsam"] == [2.0, 0.4] and "gsam" not in sgd.config
    assert not torch.equal(sgd.load(0)[-1], gsam.load(0)[-1]) and torch.equal(sgd.load(0)[0], gsam.load(0)[0])
