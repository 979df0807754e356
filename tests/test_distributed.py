"""torchrun with gloo on this CPU: two ranks train the same expert store as one process; a two-rank trajectory
distillation (the ranks share the trajectories of each iteration) equals one rank doing the same work, and so do DM,
DC and DSA (the ranks share the classes); a run killed in one process resumes on two ranks to the same set; a method
that does not share refuses to run on several ranks."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from ddbook.synset import SynSet

TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
EXPERTS = ["dataset=digits", "num_experts=3", "max_start_epoch=2", "expert_epochs=1", "width=8", "progress=false"]
MTT = EXPERTS + ["ipc=2", "iterations=4", "syn_steps=3", "lr_img=10.0", "eval_epochs=1", "eval_runs=1"]


def ddbook(ranks, *args):
    "Run `ddbook ARGS` alone (ranks 0) or under torchrun with `ranks` gloo processes; its output."
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    pre = [sys.executable, "-m", "ddbook"] if ranks == 0 else [
        TORCHRUN, "--nproc_per_node", str(ranks), "--master_port", str(29500 + 7 * ranks), "-m", "ddbook"]
    r = subprocess.run(pre + list(args), capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r.stdout


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    "The same experts trained by one process and by two ranks."
    root = tmp_path_factory.mktemp("experts")
    for name, ranks in (("one", 0), ("two", 2)):
        ddbook(ranks, "experts", "--set", *EXPERTS, f"expert_dir={root / name}")
    return root


def test_two_ranks_train_the_same_store(stores):
    (one,), (two,) = (list((stores / n).iterdir()) for n in ("one", "two"))
    assert one.name == two.name
    meta = [json.loads((d / "experts.json").read_text()) for d in (one, two)]
    assert meta[0] == meta[1] and sorted(meta[1]["experts"]) == ["0", "1", "2"]
    for k in range(3):
        a, b = (torch.load(d / f"expert_{k:03d}.pt", weights_only=True) for d in (one, two))
        assert torch.equal(a["trajectory"], b["trajectory"]), k


def test_two_rank_distillation_equals_one_rank(stores, tmp_path):
    runs = {}
    for name, ranks, batch in (("one", 0, 2), ("two", 2, 2), ("single", 0, 1)):
        out = tmp_path / name
        ddbook(ranks, "distill", "mtt", "--set", *MTT, f"batch_traj={batch}",
               f"expert_dir={stores / ('two' if ranks else 'one')}", f"out_dir={out}")
        runs[name] = (SynSet.load(out), json.loads((out / "metrics.json").read_text())["losses"])
    (s1, l1), (s2, l2), (s0, l0) = runs["one"], runs["two"], runs["single"]
    assert torch.allclose(s1.images, s2.images, atol=1e-6) and torch.allclose(s1.lr, s2.lr, rtol=1e-6)
    assert l1 == pytest.approx(l2, rel=1e-6)
    assert not torch.allclose(s0.images, s1.images, atol=1e-4)  # two trajectories an iteration: other work
    # a finished two-rank run is loaded, not recomputed, by one process
    out = ddbook(0, "distill", "mtt", "--set", *MTT, "batch_traj=2", f"expert_dir={stores / 'one'}",
                 f"out_dir={tmp_path / 'two'}")
    assert "loaded, not recomputed" in out


@pytest.mark.parametrize("method", ["dm", "dc", "dsa"])
def test_classes_shared_by_two_ranks(method, tmp_path):
    keys = ["dataset=digits", "ipc=2", "iterations=3", "width=8", "progress=false", "eval_epochs=1", "eval_runs=1"]
    for name, ranks in (("one", 0), ("two", 2)):
        ddbook(ranks, "distill", method, "--set", *keys, f"out_dir={tmp_path / name}")
    a, b = (SynSet.load(tmp_path / n) for n in ("one", "two"))
    assert torch.allclose(a.images, b.images, atol=1e-6)
    la, lb = (json.loads((tmp_path / n / "metrics.json").read_text())["losses"] for n in ("one", "two"))
    assert la == pytest.approx(lb, rel=1e-5)


def refused(tmp_path, *args):
    "The output of `ddbook ARGS` on two ranks, which must fail."
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([TORCHRUN, "--nproc_per_node", "2", "--master_port", "29533", "-m", "ddbook", *args],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode != 0
    return r.stdout + r.stderr


def test_work_that_cannot_be_shared_is_refused(stores, tmp_path):
    out = refused(tmp_path, "distill", "mtt", "--set", *MTT, "batch_traj=3", f"expert_dir={stores / 'two'}",
                  f"out_dir={tmp_path / 'x'}")
    assert "batch_traj=3 trajectories per iteration cannot be shared by 2 ranks" in out
    out = refused(tmp_path, "distill", "dd", "--set", "dataset=digits", "ipc=1", "iterations=2", "width=8",
                  f"out_dir={tmp_path / 'y'}")
    assert "dd does not share its work across ranks (2 were started): run it in one process" in out


def test_a_killed_run_resumes_on_another_world_size(stores, tmp_path):
    "One process killed mid-run, resumed by two ranks: the set of one uninterrupted process."
    keys = [*MTT, "iterations=40", "batch_traj=2", "checkpoint_every=0", f"expert_dir={stores / 'one'}"]
    ddbook(0, "distill", "mtt", "--set", *keys, f"out_dir={tmp_path / 'whole'}")
    out, ckpt = tmp_path / "cut", tmp_path / "cut" / "checkpoint.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "ddbook", "distill", "mtt", "--set", *keys, f"out_dir={out}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    t0 = time.monotonic()
    while not ckpt.exists() and p.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    time.sleep(0.3)
    p.kill(); p.wait()
    at = torch.load(ckpt, weights_only=False)["iteration"]
    assert 0 < at < 40, f"the run was not cut mid-way (checkpoint at iteration {at})"
    log = ddbook(2, "distill", "mtt", "--set", *keys, f"out_dir={out}")
    assert f"resuming at iteration {at} of 40" in log
    a, b = SynSet.load(tmp_path / "whole"), SynSet.load(out)
    assert torch.allclose(a.images, b.images, atol=1e-5) and torch.allclose(a.lr, b.lr, rtol=1e-5)
