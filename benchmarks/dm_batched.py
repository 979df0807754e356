"""Seconds and peak memory per DM iteration: ddbook's default and one batched call against the official
per-class loop, measured side by side.

    python benchmarks/dm_batched.py [--width 16] [--batch-real 256] [--ipcs 1,10,50] [--repeats 5] [--device auto]

One iteration is what `distill_dm` does: build a fresh random ConvNet-3, sample `batch_real` real images per class,
compute the DM loss with DSA (one shared seed), backpropagate to the images and take the SGD step. The variants
differ only in how the loss meets the network:

- `per-class`: the official loop's structure (DatasetCondensation, main_DM.py): two `embed` calls per class
  (`dm_loss_per_class`), then one `backward()`;
- `one call`: `dm_backward` with every real image in one call and every synthetic image in another;
- `default`: what `distill_dm` does on this device (`real_chunk=None`): on a CPU the real images one class per call
  (no graph is kept for them), the synthetic set in one call; on a GPU, `one call`.

Time: repeats alternate the order of the variants so that machine noise hits all alike; the first round warms up
and is not counted; the figures are medians. Memory: each variant runs a few iterations in a fresh process of its
own (peak resident set of that process: torch, the data and the loop; CUDA's peak allocation on a GPU), so that
one variant's freed memory does not inflate another's. The ratios, official / ours, are the figures to quote.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from ddbook.augment import default_strategy, draw_seed
from ddbook.core import get_device, make_generator, peak_memory, reset_peak_memory, seeded
from ddbook.data import get_dataset
from ddbook.distill import init_synset
from ddbook.dm import dm_backward, dm_loss_per_class
from ddbook.models import get_model


def per_class(*args, real_chunk=None):
    "The official loop's loss, then `backward()`; returns the detached loss like `dm_backward`."
    loss = dm_loss_per_class(*args)
    loss.backward()
    return loss.detach()


def one_call(*args, real_chunk=None):
    return dm_backward(*args, real_chunk=0)


def default(*args, real_chunk=None):
    return dm_backward(*args, real_chunk=real_chunk)


VARIANTS = {"per-class": per_class, "one call": one_call, "default": default}


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def iteration(backward, data, pools, x_syn, y_syn, opt, batch_real, width, strategy, g):
    "One DM iteration computing the loss and image gradient with `backward`; all draws from the CPU generator `g`."
    i, K, dev = data.info, data.info.num_classes, data.x_train.device
    with seeded(int(torch.randint(2**31, (1,), generator=g))):
        net = get_model("ConvNet", i.channels, K, i.im_size, width=width).to(dev)
    net.requires_grad_(False)
    x_real = torch.cat([pools.sample(c, batch_real, g) for c in range(K)])
    y_real = torch.arange(K, device=dev).repeat_interleave(batch_real)
    opt.zero_grad(set_to_none=True)
    # distill_dm's default: one class's batch per call on a CPU, one call on a GPU
    real_chunk = 0 if dev.type == "cuda" else batch_real
    loss = backward(net, x_real, y_real, x_syn, y_syn, K, strategy, draw_seed(g), real_chunk=real_chunk)
    opt.step()
    return loss


def state(data, ipc):
    x, y = init_synset(data, ipc, "real", seed=0)
    return x, y, torch.optim.SGD([x], lr=1.0, momentum=0.5), make_generator(0)


def memory(a, variant, ipc):
    "Peak memory (MB) of a few iterations of one variant, in this (fresh) process."
    dev = get_device(a.device)
    data = get_dataset("mnist5k").to(dev)
    pools, strategy = data.pools(), default_strategy("mnist5k")
    x, y, opt, g = state(data, ipc)
    iteration(VARIANTS[variant], data, pools, x, y, opt, a.batch_real, a.width, strategy, g)
    reset_peak_memory()
    for _ in range(3):
        iteration(VARIANTS[variant], data, pools, x, y, opt, a.batch_real, a.width, strategy, g)
    print(json.dumps(peak_memory()))


def measure_memory(a, variant, ipc):
    args = [sys.executable, __file__, "--memory", variant, "--ipcs", str(ipc), "--width", str(a.width),
            "--batch-real", str(a.batch_real), "--device", a.device]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=dict(os.environ))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16, help="ConvNet width (paper: 128)")
    ap.add_argument("--batch-real", type=int, default=256, help="real images per class and iteration (paper: 256)")
    ap.add_argument("--ipcs", default="1,10,50", help="comma-separated IPCs")
    ap.add_argument("--repeats", type=int, default=5, help="timed iterations per variant and IPC")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--memory", choices=list(VARIANTS), help=argparse.SUPPRESS)  # the child process
    a = ap.parse_args()
    ipcs = [int(k) for k in a.ipcs.split(",")]
    if a.memory: return memory(a, a.memory, ipcs[0])
    dev = get_device(a.device)
    data = get_dataset("mnist5k").to(dev)
    pools, strategy = data.pools(), default_strategy("mnist5k")
    key = "cuda" if dev.type == "cuda" else "host"
    print(f"device {dev}, {torch.get_num_threads()} threads, ConvNet-3 width {a.width}, mnist5k, "
          f"batch_real {a.batch_real} x 10 classes, DSA on, {a.repeats} repeats (medians); "
          f"memory: peak {key} MB of a process running the variant alone")
    print("| IPC | per-class (official) s/it | one call s/it | default s/it | speed official/default | "
          f"speed official/one call | {key} MB official / one call / default |")
    print("|---|---|---|---|---|---|---|")
    for ipc in ipcs:
        times = {k: [] for k in VARIANTS}
        st = {k: state(data, ipc) for k in VARIANTS}  # each variant keeps its own images and generator
        for r in range(a.repeats + 1):
            order = list(VARIANTS)[r % 3:] + list(VARIANTS)[:r % 3]  # rotate which variant goes first
            for k in order:
                x, y, opt, g = st[k]
                sync(dev); t0 = time.perf_counter()
                iteration(VARIANTS[k], data, pools, x, y, opt, a.batch_real, a.width, strategy, g)
                sync(dev); dt = time.perf_counter() - t0
                if r: times[k].append(dt)
            if r == 0:  # after one identical iteration the images agree to rounding
                first = {k: st[k][0].detach().clone() for k in VARIANTS}
        med = {k: statistics.median(v) for k, v in times.items()}
        mem = {k: measure_memory(a, k, ipc)[key] for k in VARIANTS}
        print(f"| {ipc} | {med['per-class']:.3f} | {med['one call']:.3f} | {med['default']:.3f} | "
              f"{med['per-class'] / med['default']:.2f}x | {med['per-class'] / med['one call']:.2f}x | "
              f"{mem['per-class']:.0f} / {mem['one call']:.0f} / {mem['default']:.0f} |", flush=True)
        # the variants saw the same draws: one step leaves the same images, to rounding (later
        # steps amplify the rounding, a fresh random network each)
        for k in ("one call", "default"):
            diff = float((first[k] - first["per-class"]).norm() / first["per-class"].norm())
            assert diff < 1e-5, f"{k} differs from per-class after one step (relative {diff:.1e})"


if __name__ == "__main__":
    main()
