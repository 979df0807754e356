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


# The official DATM settings (NUS-HPC-AI-Lab/DATM, configs/<dataset>/ConvIN/IPC<k>.yaml), in ddbook's names:
# (syn_steps, lr_img, lr_lr, lr_y, threshold, batch_syn, min_start_epoch, max_start_epoch).
DATM_OFFICIAL = {
    ("CIFAR10", 1): (80, 100, 1e-7, 5, 1.1, 10, 0, 4),
    ("CIFAR100", 50): (80, 1000, 1e-5, 10, 1.0, 1000, 20, 70),
    ("CIFAR100", 100): (80, 50, 1e-5, 10, 1.0, 1000, 30, 70),
}
DATM_KEYS = ("syn_steps", "lr_img", "lr_lr", "lr_y", "threshold", "batch_syn", "min_start_epoch", "max_start_epoch")

@pytest.mark.parametrize("setting", DATM_OFFICIAL, ids=lambda s: f"{s[0]}_ipc{s[1]}")
def test_datm_configs_match_the_official_ones(setting):
    path = ROOT / "configs" / f"datm_{setting[0]}_ipc{setting[1]}.yaml"
    assert path.exists(), f"{path.name} is missing (the official code has this setting)"
    cfg = yaml.safe_load(path.read_text())
    got = tuple(cfg[k] for k in DATM_KEYS)
    assert got == pytest.approx(DATM_OFFICIAL[setting]), dict(zip(DATM_KEYS, zip(got, DATM_OFFICIAL[setting])))


DATM_CONFIGS = sorted((ROOT / "configs").glob("datm_*.yaml"))
# the official pix_init per setting: random real images only for CIFAR-100 IPC 50
DATM_REAL_INIT = {"datm_CIFAR100_ipc50.yaml"}


@pytest.mark.parametrize("path", DATM_CONFIGS, ids=lambda p: p.name)
def test_datm_configs_use_gsam_experts_batch_128_and_the_official_init(path):
    "DATM's buffers are GSAM-trained (buffer/buffer_FTD.py: rho 2, alpha 0.4); it evaluates with batch_train 128."
    cfg = yaml.safe_load(path.read_text())
    assert cfg["expert_gsam"] == [2.0, 0.4] and cfg["eval_batch"] == 128
    assert cfg["pix_init"] == ("real" if path.name in DATM_REAL_INIT else "samples_predicted_correctly")


# SelMatch's official scripts (Yongalls/SelMatch, scripts/eval/*.sh and scripts/sliding_window/*.sh) train the
# evaluation and window-search networks for --epoch_eval_train epochs, fewer for larger sets.
SELMATCH_EPOCHS = {("CIFAR10", 250): 1000, ("CIFAR10", 500): 500, ("CIFAR10", 1000): 250, ("CIFAR10", 1500): 167,
                   ("CIFAR100", 25): 1000, ("CIFAR100", 50): 500, ("CIFAR100", 100): 250, ("CIFAR100", 150): 167,
                   ("TinyImageNet", 50): 500, ("TinyImageNet", 100): 250}

@pytest.mark.parametrize("setting", SELMATCH_EPOCHS, ids=lambda s: f"{s[0]}_ipc{s[1]}")
def test_selmatch_epochs_match_the_official_scripts(setting):
    cfg = yaml.safe_load((ROOT / "configs" / f"selmatch_{setting[0]}_ipc{setting[1]}.yaml").read_text())
    assert cfg["eval_epochs"] == cfg["proxy_epochs"] == SELMATCH_EPOCHS[setting], cfg


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("selmatch_*.yaml")), ids=lambda p: p.name)
def test_selmatch_configs_evaluate_as_the_official_scripts(path):
    "eval.py: --batch_train 128; Tiny ImageNet: ResNet18BN_Tiny (stride-2 stem) and the shipped forgetting scores."
    cfg = yaml.safe_load(path.read_text())
    assert cfg["eval_batch"] == 128
    if "TinyImageNet" in path.name:
        assert cfg["eval_model"] == "ResNet18BN_Tiny" and cfg["scores"].endswith("forgetting_Tiny.npy")
    else:
        assert cfg["eval_model"] == "ResNet18BN"


def _has_parameters(path: Path) -> bool:
    cells = json.loads(path.read_text())["cells"]
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)


CHAPTERS = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if _has_parameters(p))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_papermill_reads_every_parameter(chapter):
    """papermill parses each line of the parameters cell; a line it cannot parse (a comment with an '=' in it) makes
    it warn "Passed unknown parameter" for a name the chapter does define."""
    import nbformat
    from papermill.translators import PythonTranslator

    nb = nbformat.reads((ROOT / "nbs" / f"{chapter}.ipynb").read_text(), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    seen = {p.name for p in PythonTranslator.inspect(cell)}
    missed = sorted(set(parameters_of(chapter)) - seen)
    assert not missed, f"papermill cannot parse the line of {missed} in nbs/{chapter}.ipynb (an '=' in its comment?)"


def test_the_results_page_passes_only_parameters_its_chapters_define():
    "A LEAN or BUDGET key the chapter lacks would be injected by papermill and ignored (a warning, not an error)."
    from ddbook.results import BUDGET, LEAN

    given = {c: set(p) for c, p in LEAN.items()}
    for per_chapter in BUDGET.values():
        for c, per_ipc in per_chapter.items():
            given.setdefault(c, set()).update(*(set(p) for p in per_ipc.values()))
    unknown = {c: sorted(keys - set(parameters_of(c))) for c, keys in given.items()}
    assert not any(unknown.values()), f"not parameters of their chapters: {unknown}"
