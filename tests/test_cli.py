"""The command line takes what the chapters take: every config file of its methods passes its checks unchanged, every
key of those chapters' parameters cells is a key of the command, and the installed entry points run."""
import subprocess
import sys

import pytest
import yaml

import ddbook.__main__ as cli
import test_configs as tc

METHODS = list(cli._methods())
CONFIGS = [p for p in tc.CONFIGS if p.name.split("_")[0] in METHODS]


def test_there_are_configs_for_the_command_line():
    assert {p.name.split("_")[0] for p in CONFIGS} >= {"dc", "dsa", "dm", "idc", "kip", "frepo", "mdc", "mtt", "datm", "selmatch", "dq"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_a_valid_command(path):
    cfg = yaml.safe_load(path.read_text())
    data_kw, kw, eval_kw, exp_kw = cli.distill_call(path.name.split("_")[0], cfg)
    assert data_kw["dataset"] == cfg["dataset"] and kw["out_dir"] == cfg["out_dir"]
    if exp_kw is not None:  # one config serves `ddbook experts` too
        assert exp_kw["root"] == cfg["expert_dir"] and exp_kw["num_experts"] == cfg["num_experts"]


@pytest.mark.parametrize("method", METHODS)
def test_chapter_keys_are_command_keys(method):
    keys = cli.method_keys(method, "idc")
    missing = sorted(set(tc.parameters_of(method)) - set(keys))
    assert not missing, f"nbs/{method}.ipynb has parameters the command line does not take: {missing}"


def run(*args):
    return subprocess.run([sys.executable, "-m", "ddbook", *args], capture_output=True, text=True, timeout=300)


def test_module_entry_point_and_errors():
    r = run("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("distill", "experts", "evaluate"))
    r = run("distill", "mttt")
    assert r.returncode == 2 and "unknown method 'mttt'; choose one of:" in r.stderr
    r = run("experts", "--set", "num_expert=3")
    assert r.returncode == 2 and "did you mean 'num_experts'" in r.stderr
    r = run("distill", "dm", "--set", "lr_img=fast")
    assert r.returncode == 2 and "lr_img='fast' is a str; lr_img takes float" in r.stderr
    r = run("distill", "dm", "-f", "no/such.yaml")
    assert r.returncode == 2 and "no config file" in r.stderr
