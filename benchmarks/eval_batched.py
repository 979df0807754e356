"""The evaluation protocol's networks trained one after the other (ddbook's `train_model`) against all at once
(`torch.func.vmap` over stacked parameters), measured side by side.

    python benchmarks/eval_batched.py [--ipcs 1 10] [--widths 16 32] [--runs 3 5] [--epochs 20] [--repeats 2]
                                      [--device auto]

Each network keeps its own initialisation (`seeded(r)`), shuffles and DSA draws (`make_generator(r)`), so the two
ways train the same networks: the script prints the largest parameter difference between them (float rounding of a
grouped convolution against a plain one). The repeats alternate between the two ways so that machine noise hits both
alike; the ratio of the medians is the figure to quote (above 1: all at once is faster).
"""
import argparse
import copy
import statistics
import time

import torch
from torch.func import functional_call, stack_module_state, vmap

from ddbook.augment import get_augment
from ddbook.core import get_device, make_generator, seeded
from ddbook.data import get_dataset
from ddbook.models import get_model
from ddbook.synset import random_synset
from ddbook.train import label_loss, lr_factor, train_model


def train_stacked(nets, x, y, epochs, lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=256, aug=None,
                  generators=None):
    """`train_model` for every net of `nets` at once: one vmapped forward and backward per step over the stacked
    parameters; each net draws its shuffle and augmentation from its own generator, as `train_model` would."""
    params, buffers = stack_module_state(nets)
    shell = copy.deepcopy(nets[0]).to("meta")
    forward = vmap(lambda p, b, xb: functional_call(shell, (p, b), (xb,)))
    opt = torch.optim.SGD(list(params.values()), lr=lr, momentum=momentum, weight_decay=weight_decay)
    for ep in range(epochs):
        for grp in opt.param_groups: grp["lr"] = lr * lr_factor(ep, epochs, "step")
        perms = [torch.randperm(len(x), generator=g).to(x.device) for g in generators]
        for i in range(0, len(x), batch_size):
            idx = [p[i:i + batch_size] for p in perms]
            xb = torch.stack([x[j] if aug is None else aug(x[j], g, j) for j, g in zip(idx, generators)])
            logits = forward(params, buffers, xb)
            # the sum of the nets' own losses: each net gets its own gradient
            loss = sum(label_loss(logits[r], y[j]) for r, j in enumerate(idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return params


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ipcs", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--runs", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    dev = get_device(a.device)
    data = get_dataset("mnist5k")
    i = data.info
    print(f"device {dev}, threads {torch.get_num_threads()}, ConvNet-3, DSA, {a.epochs} epochs, "
          f"{a.repeats} repeats (after one warm-up round)")
    print("| IPC | width | runs | one by one s | all at once s | speed ratio | max parameter difference |")
    print("|---|---|---|---|---|---|---|")
    for ipc in a.ipcs:
        s = random_synset(data, ipc, seed=0)
        x, y = s.images.to(dev), s.labels.to(dev)
        aug = get_augment("dsa", synset=s, strategy="color_crop_cutout_scale_rotate")
        for width in a.widths:
            def make(r):
                with seeded(r): return get_model("ConvNet", i.channels, i.num_classes, i.im_size, width=width).to(dev)
            for runs in a.runs:
                times, diff = {"one": [], "all": []}, 0.0
                for rep in range(a.repeats + 1):
                    sync(dev); t0 = time.perf_counter()
                    seq = [make(r) for r in range(runs)]
                    for r, net in enumerate(seq):
                        train_model(net, x, y, a.epochs, aug=aug, generator=make_generator(r))
                    sync(dev); t1 = time.perf_counter()
                    stacked = train_stacked([make(r) for r in range(runs)], x, y, a.epochs, aug=aug,
                                            generators=[make_generator(r) for r in range(runs)])
                    sync(dev); t2 = time.perf_counter()
                    if rep:
                        times["one"].append(t1 - t0); times["all"].append(t2 - t1)
                    diff = max(float((stacked[n][r] - p).detach().abs().max())
                               for r, net in enumerate(seq) for n, p in net.named_parameters())
                one, both = statistics.median(times["one"]), statistics.median(times["all"])
                print(f"| {ipc} | {width} | {runs} | {one:.2f} | {both:.2f} | {one / both:.2f}x | {diff:.1e} |",
                      flush=True)


if __name__ == "__main__":
    main()
