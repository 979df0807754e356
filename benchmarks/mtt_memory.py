"""Seconds per MTT iteration and peak memory of the two gradient modes, for several numbers of student steps N.

    python benchmarks/mtt_memory.py [--steps 10,20,40] [--ipc 10] [--width 16] [--repeats 3] [--device auto]

One iteration is what `distill_mtt` does: N student steps on the whole synthetic set (ConvNet-3, mnist5k-shaped
images, per-step DSA), the normalised matching loss, and the backward pass to the images, the labels and the learned
lr; either through the full autograd graph ("unroll"), by the reverse walk that recomputes one step at a time
("reverse"), or by the default ("auto"): the graph of as many final steps as a budget holds, the walk for the rest. Each (mode, N) runs in a fresh process, so that its peak memory is its own: on a GPU
`torch.cuda.max_memory_allocated`, on the CPU the process's peak resident set size (ru_maxrss; the part above the
resident size before the first iteration is printed beside it). The printed ratios compare the modes at each N, and each mode's peak at the largest N with its
peak at the smallest. With --cifar10 the shapes are CIFAR-10's IPC 10 paper setting (3×32×32, width 128, 100 images).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def child(a):
    import torch
    import torch.nn.functional as F
    from ddbook.augment import draw_seed, dsa
    from ddbook.core import get_device, make_generator, seeded
    from ddbook.dd import inv_softplus
    from ddbook.models import flatten_params, get_model, params_of
    from ddbook.mtt import random_batches, student_unroll, trajectory_loss

    dev = get_device(a.device)
    C, H = (3, 32) if a.cifar10 else (1, 28)
    with seeded(0): net = get_model("ConvNet", C, 10, H, width=a.width).to(dev)
    g = make_generator(0)
    w0 = flatten_params(params_of(net)).to(dev)
    target = w0 + 0.01 * torch.randn(w0.shape, generator=g).to(dev)
    x = torch.randn(10 * a.ipc, C, H, H, generator=g).to(dev).requires_grad_()
    y = torch.arange(10, device=dev).repeat_interleave(a.ipc)
    raw = inv_softplus(torch.tensor(0.01, device=dev)).requires_grad_()

    def iteration():
        batches = random_batches(len(x), len(x), a.n, g, dev)
        seeds = [draw_seed(g) for _ in batches]
        aug = lambda xb, n: dsa(xb, "color_crop_cutout_scale_rotate", seeds[n], siamese=False)
        w = student_unroll(net, w0, x, y, F.softplus(raw), batches, aug, a.mode, a.budget_mb)
        loss = trajectory_loss(w, w0, target)
        x.grad = raw.grad = None
        loss.backward()
        return float(loss)  # synchronises a GPU

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats()
    iteration()                                   # warm-up (and the peak)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter(); iteration(); times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else rss / 1024
    extra = peak if dev.type == "cuda" else (rss - base) / 1024
    print(json.dumps(dict(seconds=statistics.median(times), peak_mb=peak, extra_mb=extra, device=str(dev))))


MODES = ("unroll", "reverse", "auto")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="10,20,40"); p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--width", type=int, default=16); p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto"); p.add_argument("--cifar10", action="store_true")
    p.add_argument("--budget-mb", type=float, help='"auto"\'s graph budget (default: a quarter of the free memory)')
    p.add_argument("--mode"); p.add_argument("--n", type=int)
    a = p.parse_args()
    if a.cifar10 and a.width == 16: a.width = 128
    if a.mode: return child(a)
    steps, res = [int(s) for s in a.steps.split(",")], {}
    for n in steps:
        for mode in MODES:
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--n", str(n), "--ipc", str(a.ipc), "--width", str(a.width),
                                  "--repeats", str(a.repeats), "--device", a.device] + (["--cifar10"] * a.cifar10)
                                 + (["--budget-mb", str(a.budget_mb)] if a.budget_mb else []),
                                 capture_output=True, text=True, check=True)
            res[mode, n] = json.loads(out.stdout.strip().splitlines()[-1])
    dev = res["reverse", steps[0]]["device"]
    unit = "CUDA max allocated" if dev.startswith("cuda") else "peak RSS (in brackets: above the RSS before the first iteration)"
    print(f"MTT iteration, {10 * a.ipc} images {'3x32x32' if a.cifar10 else '1x28x28'}, ConvNet-3 width {a.width}, on {dev}; memory: {unit}")
    budget = f"{a.budget_mb:.0f} MB" if a.budget_mb else "a quarter of the free memory"
    print(f"auto: the graph of as many final steps as {budget} holds, the reverse walk for the rest")
    print("| N | unroll s/it | reverse s/it | auto s/it | reverse/unroll time | auto/unroll time | unroll MB | reverse MB | auto MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    mb = lambda d: f"{d['peak_mb']:.0f} ({d['extra_mb']:.0f})" if d["peak_mb"] != d["extra_mb"] else f"{d['peak_mb']:.0f}"
    for n in steps:
        u, r, o = res["unroll", n], res["reverse", n], res["auto", n]
        print(f"| {n} | {u['seconds']:.3f} | {r['seconds']:.3f} | {o['seconds']:.3f} | {r['seconds'] / u['seconds']:.2f}x | "
              f"{o['seconds'] / u['seconds']:.2f}x | {mb(u)} | {mb(r)} | {mb(o)} |")
    for mode in MODES:
        lo, hi = res[mode, steps[0]]["peak_mb"], res[mode, steps[-1]]["peak_mb"]
        print(f"{mode}: peak at N={steps[-1]} is {hi / max(lo, 1e-9):.2f}x the peak at N={steps[0]}")


if __name__ == "__main__":
    main()
