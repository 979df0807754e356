"""Smoke test of the INSTALLED ddbook wheel (run by tools/wheel_check.sh with a fresh venv, from a folder outside
the checkout). Not collected by pytest. Uses only the package's public API and its runtime dependencies."""
import importlib, sys, tempfile
from pathlib import Path

def need(module: str):
    "Import `module`, or exit with a message naming what is missing from the wheel."
    try: return importlib.import_module(module)
    except ImportError as e:
        sys.exit(f"FAIL wheel_smoke: cannot import {module} from the installed wheel ({e}). "
                 f"Does nbs/ have a notebook with `#| default_exp {module.split('.', 1)[-1]}`, exported and committed?")

ddbook = need("ddbook")
assert "site-packages" in (ddbook.__file__ or ""), f"imported ddbook from {ddbook.__file__}, not from the installed wheel"
print(f"ddbook {getattr(ddbook, '__version__', '?')} from {Path(ddbook.__file__).parent}")
data_mod, synset_mod = need("ddbook.data"), need("ddbook.synset")
import torch

g = torch.Generator().manual_seed(0)
x = torch.rand(60, 1, 8, 8, generator=g)          # 60 tiny images in [0, 1]
y = torch.arange(3).repeat_interleave(20)         # 3 classes, 20 each
data = data_mod.from_tensors(x, y, name="wheel-smoke")
assert data.info.num_classes == 3, data.info
syn = synset_mod.random_synset(data, ipc=2, seed=0)
assert tuple(syn.images.shape) == (6, 1, 8, 8), syn.images.shape
with tempfile.TemporaryDirectory() as d:
    out = Path(d) / "synset"                       # a folder: synset.pt + meta.json
    syn.save(out)
    back = synset_mod.SynSet.load(out)
    assert torch.equal(back.images, syn.images) and torch.equal(back.labels, syn.labels)
# distilling a tiny set with a real method (distribution matching), from the installed package
dm = need("ddbook.dm")
dist, hist = dm.distill_dm(data, ipc=2, iterations=3, batch_real=4, model_kwargs={"width": 4}, progress=False)
assert tuple(dist.images.shape) == (6, 1, 8, 8) and dist.meta["method"] == "dm" and len(hist.losses) == 3
assert not torch.equal(dist.images, syn.images) and bool(torch.isfinite(dist.images).all())
print("OK wheel_smoke")
