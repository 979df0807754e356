"""The results chapter's runner: papermill makes a chapter's run where find_run finds it, and
run_missing leaves a finished run alone."""
import json
import os
from pathlib import Path

import pytest

from ddbook.results import find_run, load_set, run_chapter, run_missing

NBS = Path(__file__).resolve().parents[1] / "nbs"


def test_run_chapter_then_find_run(tmp_path, monkeypatch):
    monkeypatch.delenv("IN_TEST", raising=False)  # the chapter must write where it is told
    monkeypatch.chdir(NBS)
    root = tmp_path / "results"
    # enough for the chapter's own sanity checks (its loss falls, it beats random)
    tiny = dict(iterations=30, eval_epochs=30, eval_runs=1, eval_every=30, width=8)
    nowhere = tmp_path / "no-chapter-runs"
    assert find_run("dm", "mnist5k", 1, root, nowhere) is None
    run = run_chapter("dm", "mnist5k", 1, root, **tiny)
    assert run == root / "mnist5k" / "dm_ipc1" and (run / "dm.ipynb").exists()
    assert find_run("dm", "mnist5k", 1, root, nowhere) == run
    assert find_run("dm", "mnist5k", 10, root, nowhere) is None  # another IPC
    assert find_run("dm", "FashionMNIST", 1, root, nowhere) is None  # another dataset
    s, kind = load_set("dm", run, 1)
    assert kind == "final" and s.ipc == 1 and s.meta["method"] == "dm"
    made = (run / "metrics.json").stat().st_mtime_ns
    assert run_missing([("dm", "mnist5k", 1)], root, jobs=1, chapters_root=nowhere) == []
    assert (run / "metrics.json").stat().st_mtime_ns == made  # not run again
    (run / "stamp.txt").write_text("made by another version of the chapter")
    assert find_run("dm", "mnist5k", 1, root, nowhere) is None  # stale: not reused


def test_run_chapter_refuses_a_smoke_run(tmp_path, monkeypatch):
    monkeypatch.setenv("IN_TEST", "1")  # the chapter would write to a temporary folder
    monkeypatch.chdir(NBS)
    with pytest.raises(RuntimeError, match="IN_TEST"):
        run_chapter("dm", "mnist5k", 1, tmp_path, iterations=2, eval_epochs=2, width=8)


def test_load_set_rejects_an_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="'final' or 'best'"):
        load_set("dm", tmp_path, 1, which="last")


def test_load_set_takes_mdc_prefixes_in_stored_images(tmp_path):
    "An MDC set on IDC's base stores factor**2 decoded images per image: IPC 1 is the first 4 of each class."
    import torch
    from ddbook.synset import SynSet

    x = torch.arange(120.0).view(120, 1, 1, 1).expand(120, 1, 2, 2).contiguous()
    meta = {"method": "mdc", "factor": 2, "stored_ipc": 3, "num_classes": 10, "ipc": 12}
    SynSet(x, torch.arange(10).repeat_interleave(12), meta=meta).save(tmp_path / "mdc")
    s, kind = load_set("mdc", tmp_path, 1)
    assert kind == "final" and s.ipc == 4 and s.meta["stored_ipc"] == 1
    assert s.images[:5, 0, 0, 0].tolist() == [0, 1, 2, 3, 12]


def test_a_lean_dsa_run_skips_its_dc_comparison(tmp_path, monkeypatch):
    "The DSA chapter with `compare_dc` off (as this page runs it) distils and tables DSA alone."
    import papermill

    from ddbook.results import LEAN

    monkeypatch.setenv("IN_TEST", "1")  # smoke scale, in a temporary folder
    monkeypatch.chdir(NBS)
    out = tmp_path / "dsa.ipynb"
    papermill.execute_notebook("dsa.ipynb", str(out), parameters=LEAN["dsa"], progress_bar=False, cwd=".")
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    text = json.dumps([o.get("data", o.get("text")) for o in outputs])
    assert "DSA matching (siamese augmentation)" in text and "DC matching (no augmentation)" not in text
    assert "DC matching was not run" in text
