"""Every paper setting in configs/ runs end to end: its chapter executed by papermill with the config's parameters,
on generated data written in the dataset's exact on-disk format (tests/formats.py: the real image shapes and class
counts, 1 000 training images or 12 per class), at the chapters' smoke scale (IN_TEST=1: two iterations, one expert of one
epoch, one evaluation network of a few epochs). Also overridden, as the smoke scale needs: at most 3 images per
class, network width 8, the CPU; and no ZCA on Tiny ImageNet, whose 12 288-pixel whitening takes minutes to fit on
one core (ZCA is exercised by the CIFAR configs). Runs in `make test`'s own step (DDBOOK_DRY_RUNS=1), two
notebooks at a time, one thread each."""
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from formats import SHAPES, write_fake, write_scores
import test_configs as tc  # (a module: its tests are not collected again here)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.environ.get("DDBOOK_DRY_RUNS") != "1",
                                reason="the paper-scale dry runs run in make test's own step (DDBOOK_DRY_RUNS=1)")
TIMEOUT = 600  # seconds per config
# DDBOOK_DRY_RUNS_ONLY=<text>: only the configs whose file name contains it (to rerun a few)
CONFIGS = [p for p in tc.CONFIGS if os.environ.get("DDBOOK_DRY_RUNS_ONLY", "") in p.name]


def overrides(path: Path, cfg: dict, scores_dir: Path) -> dict:
    "The papermill parameters that bring the config to the smoke scale; everything else is the config's."
    params = tc.parameters_of(path.name.split("_")[0])
    out = {"ipc": min(cfg["ipc"], 3), "width": 8, "device": "cpu"}
    if cfg["dataset"] == "TinyImageNet": out["zca"] = False
    s = cfg.get("scores")
    if isinstance(s, str) and s != "forgetting":                     # a score file: one in the same format
        out["scores"] = str(scores_dir / Path(s).name)
    return {k: v for k, v in out.items() if k in params}


def run(path: Path, data_root: Path, scores_dir: Path, out_dir: Path) -> dict:
    cfg = yaml.safe_load(path.read_text())
    chapter = path.name.split("_")[0]
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "nbs" / f"{chapter}.ipynb"), str(out_dir / path.name) + ".ipynb",
           "-f", str(path), "--cwd", str(ROOT / "nbs"), "--no-progress-bar"]
    cmd += ["-y", yaml.safe_dump(overrides(path, cfg, scores_dir))]      # after -f: these win
    env = dict(os.environ, IN_TEST="1", DDBOOK_DATA=str(data_root), OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        rc, log = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        rc, log = -1, f"timed out after {TIMEOUT} s"
    return {"rc": rc, "log": log[-3000:], "seconds": time.monotonic() - t0}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    "Every config run once, two at a time."
    data_root, scores_dir = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("scores")
    labels = {name: write_fake(data_root, name) for name in SHAPES}
    for path in CONFIGS:
        s = yaml.safe_load(path.read_text()).get("scores")
        if isinstance(s, str) and s != "forgetting":
            write_scores(scores_dir / Path(s).name, labels[yaml.safe_load(path.read_text())["dataset"]],
                         cscore=s.endswith(".npz"))
    out_dir = tmp_path_factory.mktemp("runs")
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(CONFIGS, pool.map(lambda p: run(p, data_root, scores_dir, out_dir), CONFIGS)))
    times = sorted(((r["seconds"], p.name) for p, r in done.items()), reverse=True)
    print("\nslowest dry runs:", ", ".join(f"{n} {s:.0f} s" for s, n in times[:5]),
          f"; all {len(times)}: {sum(s for s, _ in times):.0f} s of work")
    return done


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_runs_end_to_end(path, results):
    r = results[path]
    assert r["rc"] == 0, f"{path.name} failed ({r['seconds']:.0f} s):\n{r['log']}"
