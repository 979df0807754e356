"""The book's table of contents and the notebooks agree: every chapter listed exists, every notebook is listed."""
from pathlib import Path
import json

import yaml

ROOT = Path(__file__).resolve().parents[1]

def toc_files() -> list:
    "Every `file:` of _toc.yml (root, parts, chapters, sections)."
    def walk(entries):
        for e in entries or []:
            if "file" in e: yield e["file"]
            yield from walk(e.get("sections")); yield from walk(e.get("chapters"))
    t = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [t["root"]] + list(walk(t.get("parts"))) + list(walk(t.get("chapters")))

def test_toc_chapters_exist():
    missing = [f for f in toc_files() if not (ROOT / f"{f}.ipynb").exists() and not (ROOT / f"{f}.md").exists()]
    assert not missing, f"_toc.yml lists chapters with no notebook: {missing}"

def test_every_notebook_in_toc():
    listed = set(toc_files())
    notebooks = {f"nbs/{p.stem}" for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", "."))}
    assert not notebooks - listed, f"notebooks missing from _toc.yml (add them, or prefix the name with _): {sorted(notebooks - listed)}"
    assert len(listed) == len(toc_files()), "a chapter is listed twice in _toc.yml"

def test_config_executes_and_serves_local_mathjax():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["only_build_toc_files"] is True
    assert cfg["execute"]["execute_notebooks"] == "force" and cfg["execute"]["allow_errors"] is False
    assert cfg["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-chtml.js"
    assert "_assets" in cfg["sphinx"]["config"]["html_static_path"]
    # With a root _static/ folder, Jupyter Book would add every MathJax .js file to every page (see _config.yml).
    assert not (ROOT / "_static").exists(), "remove the root _static/ folder: use _assets/ (see _config.yml)"

def test_every_notebook_names_its_kernel():
    "papermill refuses a notebook without a kernelspec (`No kernel name found in notebook`)."
    missing = [p.name for p in sorted((ROOT / "nbs").glob("*.ipynb"))
               if not json.loads(p.read_text()).get("metadata", {}).get("kernelspec", {}).get("name")]
    assert not missing, f"notebooks without metadata.kernelspec.name (papermill needs it): {missing}"

def _cells(doc):
    return json.loads((ROOT / f"{doc}.ipynb").read_text())["cells"]

def _method_docs():
    t = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = {"Baselines", "Matching methods", "Trajectory methods", "Scaling up"}
    return [c["file"] for p in t["parts"] if p["caption"] in parts for c in p["chapters"]]

def test_quick_start_comes_first_and_apparatus_last():
    "A reader meets a distilled set right after the landing page; file formats and atomic files wait in the appendix."
    files = toc_files()
    assert files[:2] == ["nbs/index", "nbs/quickstart"], files[:3]
    t = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert t["parts"][-1]["caption"] == "Appendix"
    assert {"nbs/core", "nbs/data", "nbs/references"} <= {c["file"] for c in t["parts"][-1]["chapters"]}

def test_method_chapters_end_with_summary_and_runnable_exercises():
    "Every method chapter has a Summary and Exercises; each exercise's `-p NAME` is a parameter of that chapter."
    import re
    assert len(_method_docs()) >= 10
    for doc in _method_docs() + ["nbs/quickstart"]:
        cells = _cells(doc)
        md = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        heads = [l for m in md for l in m.splitlines() if l.startswith("## ")]
        assert "## Summary" in heads or doc == "nbs/quickstart", f"{doc}: no '## Summary'"
        assert "## Exercises" in heads, f"{doc}: no '## Exercises'"
        ex = next(m for m in md if "## Exercises" in m)
        runs = re.findall(r"papermill nbs/(\w+)\.ipynb", ex)
        assert runs, f"{doc}: the exercises give no papermill command"
        for target in set(runs):
            params = "".join(next("".join(c["source"]) for c in _cells(f"nbs/{target}")
                                  if "parameters" in c.get("metadata", {}).get("tags", [])))
            names = set(re.findall(r"^(\w+)\s*=", params, re.M))
            used = set(re.findall(rf"papermill nbs/{target}\.ipynb[^`]*?((?:-p \w+ [^`]*?)+)`", ex))
            for chunk in used:
                for name in re.findall(r"-p (\w+)", chunk):
                    assert name in names, f"{doc}: exercise sets -p {name}, not a parameter of {target}"

def test_method_chapters_link_paper_and_code():
    import re
    for doc in _method_docs():
        text = "".join("".join(c["source"]) for c in _cells(doc) if c["cell_type"] == "markdown")
        assert re.search(r"\]\(https://(arxiv\.org/abs|dl\.acm\.org/doi)/", text), f"{doc}: no paper link"

def test_code_lines_fit_the_page():
    "The book shows code cells as they are: no line over 88 characters (tests/test_book.py checks the pages too)."
    long = [(p.name, l[:50]) for p in sorted((ROOT / "nbs").glob("*.ipynb"))
            for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"
            for l in "".join(c["source"]).splitlines() if len(l) > 88]
    assert not long, f"{len(long)} code lines over 88 characters: {long[:5]}"
