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
