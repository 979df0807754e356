"""Every paper setting in configs/ is runnable with `papermill nbs/<method>.ipynb out.ipynb -f configs/<file>.yaml`:
it names an existing chapter, sets only names that chapter's `parameters` cell defines, with values of the same kind,
and names a dataset and model ddbook knows."""
import ast
import json
from pathlib import Path

import pytest
import yaml

from ddbook.data import DATASETS
from ddbook.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def parameters_of(chapter: str) -> dict:
    "name -> literal value of the chapter's cell tagged `parameters`."
    nb = json.loads((ROOT / "nbs" / f"{chapter}.ipynb").read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{chapter}.ipynb must have exactly one cell tagged 'parameters'"
    out = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        assert isinstance(node, ast.Assign), f"{chapter}.ipynb: the parameters cell holds only assignments"
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_there_are_configs():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_fits_its_chapter(path):
    chapter = path.name.split("_")[0]
    assert (ROOT / "nbs" / f"{chapter}.ipynb").exists(), f"{path.name}: no chapter nbs/{chapter}.ipynb"
    params, cfg = parameters_of(chapter), yaml.safe_load(path.read_text())
    unknown = sorted(set(cfg) - set(params))
    assert not unknown, f"{path.name} sets {unknown}, which nbs/{chapter}.ipynb's parameters cell does not define"
    for k, v in cfg.items():
        default = params[k]
        if default is None or v is None: continue
        ok = isinstance(v, (int, float)) if isinstance(default, (int, float)) and not isinstance(default, bool) else isinstance(v, type(default))
        assert ok, f"{path.name}: {k}={v!r} is a {type(v).__name__}, the chapter's default {default!r} a {type(default).__name__}"
    assert cfg["dataset"] in DATASETS, f"{path.name}: unknown dataset {cfg['dataset']!r}"
    assert cfg.get("model", params.get("model")) in MODELS, f"{path.name}: unknown model {cfg.get('model')!r}"
    assert cfg["out_dir"] == f"runs/{chapter}/{cfg['dataset']}_ipc{cfg['ipc']}"
