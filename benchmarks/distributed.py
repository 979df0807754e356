"""Throughput of the expert training and of trajectory matching at 1 and 2 torchrun ranks, side by side in one run.

    python benchmarks/distributed.py [--ranks 1 2] [--width 16] [--experts 4] [--epochs 2] [--iterations 6]
                                     [--batch-traj 2] [--syn-steps 10] [--device cpu]

For each world size W, launches `torchrun --nproc_per_node W` on this file, which trains `--experts` experts of
`--epochs` epochs on mnist5k (ConvNet width `--width`, split by rank) into a fresh store, then distils MTT at IPC 10
for `--iterations` iterations of `--batch-traj` trajectories of `--syn-steps` student steps (shared by the ranks).
Rank 0 prints experts per minute and trajectories per second, measured inside the processes (after start-up and
data loading); the table shows them with the speed-up over the first row. On the CPU each rank gets cores / W threads
(gloo), and one more row runs one rank with the threads of one rank of the largest world size (what each rank costs
alone); on CUDA (`--device cuda`) one GPU per rank (NCCL). Quote `uptime`'s load beside CPU figures.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def worker(a):
    import torch
    import torch.distributed as dist
    from ddbook.core import get_device, rank_world
    from ddbook.data import get_dataset
    from ddbook.experts import train_experts
    from ddbook.mtt import distill_mtt
    gpu = a.device == "cuda"
    if gpu: torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if gpu else "gloo")
    rank, world = rank_world()
    data = get_dataset("mnist5k").to(get_device(a.device))
    sync = (lambda: torch.cuda.synchronize()) if gpu else (lambda: None)
    dist.barrier(); t0 = time.perf_counter()
    store = train_experts(data, a.experts, a.epochs, a.root, model_kwargs={"width": a.width}, progress=False)
    sync(); t_exp = time.perf_counter() - t0
    _, hist = distill_mtt(data, 10, store, iterations=a.iterations, syn_steps=a.syn_steps, expert_epochs=1,
                          max_start_epoch=a.epochs - 1, lr_img=100.0, batch_traj=a.batch_traj, progress=False)
    sync()
    if rank == 0:
        print(json.dumps({"world": world, "experts_per_min": 60 * a.experts / t_exp,
                          "traj_per_s": a.iterations * a.batch_traj / hist.seconds}))
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--batch-traj", type=int, default=2)
    ap.add_argument("--syn-steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    cores = os.cpu_count()
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    print(f"device {a.device}, {cores} cores, load {os.getloadavg()[0]:.2f}; mnist5k, ConvNet width {a.width}; "
          f"{a.experts} experts x {a.epochs} epochs; MTT IPC 10, {a.iterations} iterations x {a.batch_traj} "
          f"trajectories x N = {a.syn_steps}")
    rows = []
    # each world size with cores / W threads per rank, and one rank with the threads of one rank of the largest
    runs = [(w, max(1, cores // w)) for w in a.ranks]
    runs.insert(1, (1, max(1, cores // max(a.ranks))))
    for w, threads in dict.fromkeys(runs):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        with tempfile.TemporaryDirectory() as root:
            args = [a2 for k, v in vars(a).items() if k not in ("ranks", "worker", "root")
                    for a2 in (f"--{k.replace('_', '-')}", str(v))]
            r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", str(w), __file__, "--worker",
                                "--root", root, *args], capture_output=True, text=True, env=env)
        if r.returncode:
            sys.exit(f"{w} ranks failed:\n{r.stderr[-3000:]}")
        rows.append({**json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1]), "threads": threads})
    base = rows[0]
    print(f"| ranks | threads per rank | experts per minute | trajectories per second | speed-up (experts, trajectories) |")
    print("|---|---|---|---|---|")
    for m in rows:
        print(f"| {m['world']} | {m['threads']} | {m['experts_per_min']:.2f} | {m['traj_per_s']:.2f} | "
              f"{m['experts_per_min'] / base['experts_per_min']:.2f}×, {m['traj_per_s'] / base['traj_per_s']:.2f}× |")


if __name__ == "__main__":
    main()
