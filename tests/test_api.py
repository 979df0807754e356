"""The package's shape: signatures a reader can hold, one meaning per name, and later methods as hooks in their own
modules (the earlier modules never import them)."""
import ast
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import ddbook
from ddbook.augment import default_strategy
from ddbook.distill import Hook
from ddbook.synset import SynSet

MAX_PARAMS = 12
# the chapters in reading order up to the last base method; none of them may import a later method's module
EARLIER = ["core", "data", "models", "augment", "synset", "train", "distill", "baselines", "dd", "dc", "dsa", "dm",
           "experts", "mtt"]
LATER = ["datm", "mdc", "selmatch"]


def public_callables():
    "(qualified name, callable) of every public function and method the package exports."
    for m in pkgutil.iter_modules(ddbook.__path__):
        if m.name.startswith("_"): continue
        mod = importlib.import_module(f"ddbook.{m.name}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if getattr(obj, "__module__", None) != mod.__name__: continue
            if inspect.isclass(obj):
                for k, v in vars(obj).items():
                    if not callable(v) or (k.startswith("_") and k not in ("__init__", "__call__")): continue
                    # a dataclass's generated __init__ is its table of settings, not a signature to read
                    if k == "__init__" and dataclasses.is_dataclass(obj): continue
                    yield f"{m.name}.{name}.{k}", v
            elif callable(obj):
                yield f"{m.name}.{name}", obj


def test_public_functions_take_at_most_twelve_parameters():
    over = {}
    for name, f in public_callables():
        try: params = [p for p in inspect.signature(f).parameters.values() if p.name not in ("self", "cls")]
        except (TypeError, ValueError): continue
        if len(params) > MAX_PARAMS: over[name] = len(params)
    assert not over, f"over {MAX_PARAMS} parameters: {over}"


def test_the_settings_dataclasses_are_exempt_but_hold_the_papers_names():
    from ddbook.dc import DCSettings
    from ddbook.dm import DMSettings
    from ddbook.mtt import MTTSettings
    for cls in (DCSettings, DMSettings, MTTSettings):
        names = {f.name for f in dataclasses.fields(cls)}
        assert {"ipc", "iterations", "lr_img", "dsa_strategy"} <= names, cls
    assert {"syn_steps", "expert_epochs", "max_start_epoch", "lr_lr", "lr_teacher"} <= {
        f.name for f in dataclasses.fields(MTTSettings)}


def imported_modules(name):
    tree = ast.parse(Path(ddbook.__file__).with_name(f"{name}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            out.add(mod.split(".")[-1] if node.level or mod.startswith("ddbook") else mod)
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[-1] for a in node.names if a.name.startswith("ddbook")}
    return out


@pytest.mark.parametrize("name", EARLIER)
def test_an_earlier_module_never_imports_a_later_method(name):
    assert not imported_modules(name) & set(LATER), f"ddbook.{name} imports {imported_modules(name) & set(LATER)}"


def test_the_later_methods_are_hooks_in_their_own_modules():
    from ddbook.datm import DATM
    from ddbook.mdc import Multisize
    from ddbook.selmatch import SelMatchInit
    for hook, module in [(DATM, "ddbook.datm"), (Multisize, "ddbook.mdc"), (SelMatchInit, "ddbook.selmatch")]:
        assert issubclass(hook, Hook) and hook.__module__ == module


def test_every_base_method_takes_the_run_options_by_the_same_names(quadrants, tmp_path):
    from ddbook.dc import distill_dc
    from ddbook.dd import distill_dd
    from ddbook.dm import distill_dm
    from ddbook.dsa import distill_dsa
    net = {"model_kwargs": {"width": 4, "depth": 1}, "batch_real": 8}
    for f in (distill_dd, distill_dc, distill_dsa, distill_dm):
        seen = []
        def evaluate(s):
            seen.append(s); return type("R", (), {"mean": 50.0, "std": 0.0})()
        s, h = f(quadrants, 1, iterations=2, eval_every=1, evaluate=evaluate, progress=False, seed=3,
                 out_dir=tmp_path / f.__name__, checkpoint_every=0, **net)
        assert len(seen) == 2 and all(isinstance(x, SynSet) for x in seen), f.__name__
        assert s.meta["seed"] == 3 and s.meta["config"]["seed"] == 3 and (tmp_path / f.__name__ / "checkpoint.pt").exists()


def test_dsa_strategy_has_one_meaning_everywhere(quadrants):
    from ddbook.dc import distill_dc
    from ddbook.dm import distill_dm
    from ddbook.dsa import distill_dsa
    net = dict(model_kwargs={"width": 4, "depth": 1}, batch_real=8, iterations=1, progress=False)
    for f in (distill_dc, distill_dsa, distill_dm):
        assert f(quadrants, 1, dsa_strategy=None, **net)[0].meta["config"]["dsa_strategy"] is None, f.__name__
        on = f(quadrants, 1, dsa_strategy="default", **net)[0].meta["config"]["dsa_strategy"]
        assert on == default_strategy("quadrants"), f.__name__
