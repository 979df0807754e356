"""MDC and SelMatch on tiny data: frozen images stay exactly as they were in every base method and gradient mode,
both MTT gradient modes give the same SelMatch set, MDC's schedule survives a resume, and the combined augmentation
treats distilled and real images apart inside the training loop."""
import pytest
import torch

from ddbook.augment import get_augment
from ddbook.core import make_generator
from ddbook.dc import distill_dc
from ddbook.dm import distill_dm
from ddbook.experts import train_experts
from ddbook.mdc import Multisize, distill_mdc
from ddbook.selmatch import SelMatchInit, distill_selmatch, selmatch_init
from ddbook.synset import random_synset
from ddbook.train import train_model
from ddbook.models import get_model

NET = {"width": 4, "depth": 1}


@pytest.fixture(scope="module")
def store(quadrants, tmp_path_factory):
    return train_experts(quadrants, num_experts=1, epochs=3, root=tmp_path_factory.mktemp("experts"), model_kwargs=NET,
                         lr_teacher=0.1, progress=False)


def difficulty(data):
    return torch.linspace(0, 1, len(data.x_train))


def test_selmatch_modes_agree_and_keep_the_real_part(quadrants, store):
    kw = dict(iterations=3, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0, batch_syn=4, progress=False)
    x0, distilled = selmatch_init(quadrants, difficulty(quadrants), 4, 0.5, 0.5)
    sets = [distill_selmatch(quadrants, 4, difficulty(quadrants), 0.5, 0.5, "mtt", store, grad_mode=m, **kw)[0]
            for m in ("reverse", "unroll")]
    for s in sets:
        assert torch.equal(s.images[~distilled], x0[~distilled])
        assert (s.images[distilled] - x0[distilled]).abs().max() > 1e-4
    assert torch.allclose(sets[0].images, sets[1].images, atol=1e-5) and torch.allclose(sets[0].lr, sets[1].lr, rtol=1e-5)


def test_selmatch_with_alpha_zero_is_the_window(quadrants):
    x0, _ = selmatch_init(quadrants, difficulty(quadrants), 4, 0.0, 0.0)
    s, _ = distill_selmatch(quadrants, 4, difficulty(quadrants), 0.0, 0.0, "dm", iterations=2, lr_img=10.0,
                            batch_real=4, model_kwargs=NET, progress=False)
    assert torch.equal(s.images, x0) and s.meta["distilled"] == []


class FixedMLS(Multisize):
    "MDC's hook with its choice fixed: MLS 2 throughout, the first image of every class frozen."
    def sizes(self, it, x):
        self.state[2, 2] = 1
        return (2,)


def test_mdc_dc_keeps_frozen_images(quadrants):
    ms = FixedMLS()
    s, _ = distill_dc(quadrants, 3, (ms,), model_kwargs=NET, iterations=2, lr_img=1.0, batch_real=4, outer_loop=2,
                      inner_loop=1, init="real", progress=False)
    x0, f = random_synset(quadrants, 3).images, ms.frozen()      # the real initialisation, seed 0
    assert torch.equal(s.images[f], x0[f]) and not torch.equal(s.images[~f], x0[~f])


def test_two_hooks_that_freeze_images_are_refused(quadrants):
    sel = SelMatchInit(difficulty(quadrants), 0.5, 0.0)
    with pytest.raises(ValueError, match="SelMatch and MDC both freeze images"):
        distill_dm(quadrants, 3, (Multisize(2), sel), iterations=1, model_kwargs=NET, progress=False)


def test_mdc_resume_continues_the_schedule(quadrants, tmp_path):
    kw = dict(iterations=6, lr_img=10.0, batch_real=4, model_kwargs=NET, progress=False)
    full, _ = distill_mdc(quadrants, 4, "dm", delta_t=2, **kw)
    stop = {"n": 0}
    def protocol(*a):
        stop["n"] += 1
        if stop["n"] == 1: raise KeyboardInterrupt("killed")
    with pytest.raises(KeyboardInterrupt):
        distill_mdc(quadrants, 4, "dm", delta_t=2, out_dir=tmp_path, checkpoint_every=0, eval_every=4, evaluate=protocol, **kw)
    resumed, _ = distill_mdc(quadrants, 4, "dm", delta_t=2, out_dir=tmp_path, checkpoint_every=0, **kw)
    assert torch.equal(resumed.images, full.images)


def test_combined_augmentation_in_the_training_loop(quadrants):
    x, y = quadrants.x_train[:12], quadrants.y_train[:12]
    seen = []
    base = get_augment("combined", distilled=torch.arange(12) < 6, strategy="scale", flip=False)
    def aug(xb, g, idx):
        seen.append(idx.clone()); return base(xb, g, idx)
    net = get_model("ConvNet", 1, 3, (8, 8), **NET)
    train_model(net, x, y, 2, batch_size=5, aug=aug, generator=make_generator(0))
    assert sorted(torch.cat(seen).tolist()) == sorted(list(range(12)) * 2)   # every batch's rows reach the augmentation
