"""Seconds per DC outer iteration (one fresh network: outer_loop matching steps and the network training between them).

    python benchmarks/dc_iteration.py [--ipcs 1 10] [--width 16] [--batch-real 256] [--inner-loop N] [--repeats 3] [--device auto]

Runs `ddbook.dc.distill_dc` for one iteration on mnist5k (ConvNet-3, the paper's (outer_loop, inner_loop) for the IPC
unless --inner-loop is given), `--repeats` times with different seeds, and prints the median and the spread of the
wall time per iteration. Each call includes the NaN guard's read-back of the loss, which also synchronises a GPU.
Set OMP_NUM_THREADS to control the CPU threads, and quote `uptime`'s load beside CPU figures.
"""
import argparse
import os
import statistics
import time

import torch

from ddbook.core import get_device
from ddbook.data import get_dataset
from ddbook.dc import distill_dc, get_loops


def seconds_per_iteration(data, ipc, width, batch_real, inner_loop, seed):
    t0 = time.perf_counter()
    distill_dc(data, ipc, model_kwargs={"width": width}, iterations=1, batch_real=batch_real,
               inner_loop=inner_loop, seed=seed, progress=False)
    if data.device.type == "cuda": torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ipcs", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--width", type=int, default=16, help="ConvNet width (paper: 128)")
    ap.add_argument("--batch-real", type=int, default=256, help="real images per class and matching step (paper: 256)")
    ap.add_argument("--inner-loop", type=int, default=None, help="network epochs between matching steps (default: the paper's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    dev = get_device(a.device)
    data = get_dataset("mnist5k").to(dev)
    print(f"device {dev}, torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, ConvNet width {a.width}, "
          f"batch_real {a.batch_real}")
    seconds_per_iteration(data, 1, a.width, a.batch_real, 0, seed=99)  # warm-up (allocator, kernels)
    for ipc in a.ipcs:
        ol, il = get_loops(ipc)
        il = il if a.inner_loop is None else a.inner_loop
        ts = [seconds_per_iteration(data, ipc, a.width, a.batch_real, il, seed=r) for r in range(a.repeats)]
        print(f"IPC {ipc:>3} (outer_loop {ol}, inner_loop {il}): {statistics.median(ts):.3f} s per outer iteration "
              f"(median of {len(ts)}; min {min(ts):.3f}, max {max(ts):.3f})")


if __name__ == "__main__":
    main()
