"""Seconds per DM iteration: all classes in one batched call against the official per-class loop, measured side by side.

    python benchmarks/dm_batched.py [--width 16] [--batch-real 256] [--ipcs 10,50] [--repeats 5] [--chunk 0] [--device auto]

One iteration is what `distill_dm` does: build a fresh random ConvNet-3, sample `batch_real` real images per class,
compute the DM loss with DSA (one shared seed), backpropagate to the images and take the SGD step. The two variants
differ only in the loss: `dm_backward` (one `embed` call for all real and one for all synthetic images; with
`--chunk N`, at most N images per call) or `dm_loss_per_class` (two calls per class) followed by `backward()`. Repeats alternate between the variants so that machine noise hits both
alike; the first round warms up and is not counted. The ratio of the medians is the figure to quote.
"""
import argparse
import statistics
import time

import torch

from ddbook.augment import default_strategy, draw_seed
from ddbook.core import get_device, make_generator, seeded
from ddbook.data import get_dataset
from ddbook.distill import init_synset
from ddbook.dm import dm_backward, dm_loss_per_class
from ddbook.models import get_model

def per_class_backward(*args, chunk=0):
    "The official loop's loss, then `backward()`; returns the detached loss like `dm_backward`."
    loss = dm_loss_per_class(*args)
    loss.backward()
    return loss.detach()


LOSSES = {"batched": dm_backward, "per-class": per_class_backward}


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def iteration(backward, data, pools, x_syn, y_syn, opt, batch_real, width, strategy, g, chunk=0):
    "One DM iteration computing the loss and image gradient with `backward`; all draws from the CPU generator `g`."
    i, K, dev = data.info, data.info.num_classes, data.x_train.device
    with seeded(int(torch.randint(2**31, (1,), generator=g))):
        net = get_model("ConvNet", i.channels, K, i.im_size, width=width).to(dev)
    net.requires_grad_(False)
    x_real = torch.cat([pools.sample(c, batch_real, g) for c in range(K)])
    y_real = torch.arange(K, device=dev).repeat_interleave(batch_real)
    opt.zero_grad(set_to_none=True)
    loss = backward(net, x_real, y_real, x_syn, y_syn, K, strategy, draw_seed(g), chunk=chunk)
    opt.step()
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16, help="ConvNet width (paper: 128)")
    ap.add_argument("--batch-real", type=int, default=256, help="real images per class and iteration (paper: 256)")
    ap.add_argument("--ipcs", default="10,50", help="comma-separated IPCs")
    ap.add_argument("--repeats", type=int, default=5, help="timed iterations per variant and IPC")
    ap.add_argument("--chunk", type=int, default=0, help="images per embed call in the batched variant (0: all)")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    dev = get_device(a.device)
    data = get_dataset("mnist5k").to(dev)
    pools, strategy = data.pools(), default_strategy("mnist5k")
    print(f"device {dev}, {torch.get_num_threads()} threads, ConvNet-3 width {a.width}, mnist5k, "
          f"batch_real {a.batch_real} x 10 classes, DSA on, chunk {a.chunk}, {a.repeats} repeats (medians)")
    for ipc in (int(k) for k in a.ipcs.split(",")):
        times = {k: [] for k in LOSSES}
        state = {}
        for k in LOSSES:  # each variant keeps its own images and generator
            x, y = init_synset(data, ipc, "real", seed=0)
            state[k] = (x, y, torch.optim.SGD([x], lr=1.0, momentum=0.5), make_generator(0))
        for r in range(a.repeats + 1):
            order = list(LOSSES) if r % 2 == 0 else list(LOSSES)[::-1]  # alternate which variant goes first
            for k in order:
                x, y, opt, g = state[k]
                sync(dev); t0 = time.perf_counter()
                iteration(LOSSES[k], data, pools, x, y, opt, a.batch_real, a.width, strategy, g, a.chunk)
                sync(dev); dt = time.perf_counter() - t0
                if r: times[k].append(dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"IPC {ipc:>3}: batched {med['batched']:.3f} s/it, per-class {med['per-class']:.3f} s/it, "
              f"speed-up per-class / batched {med['per-class'] / med['batched']:.2f}x")
        # the two variants saw the same draws, so their images must still agree
        assert torch.allclose(state["batched"][0], state["per-class"][0], atol=1e-3), "the variants diverged"


if __name__ == "__main__":
    main()
