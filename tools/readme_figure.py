"""The README's figure: random real images beside a distilled set of the same IPC, from two saved runs.

    python tools/readme_figure.py RUN_DIR [OUT_PNG]

RUN_DIR is a chapter's out_dir (e.g. nbs/runs/dm after `make all`) holding synset.pt and metrics.json; the left
panel is the random selection at the same IPC and seed (the baseline of metrics.json), the right one the set.
"""
import json
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ddbook.data import get_dataset
from ddbook.synset import SynSet, random_synset

run = Path(sys.argv[1])
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("_assets/readme.png")
syn, m = SynSet.load(run), json.loads((run / "metrics.json").read_text())
rnd = random_synset(get_dataset(m["dataset"]), m["ipc"], m["seed"])
name = str(m["method"]).upper()
fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4.6))
rnd.show(max_per_class=10, ax=a0, title=f"random real images: {m['random_acc_mean']:.1f} % test accuracy")
syn.show(max_per_class=10, ax=a1, title=f"{name}-distilled: {m['acc_mean']:.1f} % test accuracy")
fig.suptitle(f"{m['dataset']}, {m['ipc']} images per class; a ConvNet trained on each set alone", fontsize=10)
plt.tight_layout()
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out, dpi=110)
print(f"wrote {out}")
