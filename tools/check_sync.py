"""Check that the package is in sync with the notebooks (step 1 of `make test`).

1. `nbdev_export` must not change anything under ddbook/ (the exported modules are committed as they are generated);
2. `nbdev_clean` must not change any notebook in nbs/ (notebooks are committed clean);
3. every module in ddbook/ that says "File to edit: ../nbs/X.ipynb" must still have that notebook.
It compares the working tree before and after each command (so it works in a clean clone and in a working copy
with uncommitted edits alike) and prints a diff of what changed. Exit status 1 on any difference.
"""
import difflib, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def snapshot(folder: str, pattern: str) -> dict:
    "Map of relative path -> bytes for the files matching `pattern` under `folder` (run outputs and caches excluded)."
    skip = {"__pycache__", ".ipynb_checkpoints", "runs"}
    return {str(p.relative_to(ROOT)): p.read_bytes() for p in sorted((ROOT / folder).rglob(pattern))
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)}

def compare(before: dict, after: dict, max_lines: int = 60) -> list:
    "Names of files added, removed or changed between two snapshots; prints a short unified diff of each."
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for k in changed:
        a = before.get(k, b"").decode(errors="replace").splitlines(keepends=True)
        b = after.get(k, b"").decode(errors="replace").splitlines(keepends=True)
        diff = list(difflib.unified_diff(a, b, f"{k} (committed/working tree)", f"{k} (regenerated)"))
        state = "new file" if k not in before else "removed" if k not in after else f"{len(diff)} diff lines"
        print(f"  changed: {k} ({state})")
        sys.stdout.writelines(diff[:max_lines])
        if len(diff) > max_lines: print(f"  ... {len(diff) - max_lines} more diff lines")
    return changed

def run(cmd: list) -> None:
    "Run an nbdev command in the repository root; a failing command is a failed check."
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode: sys.exit(f"check_sync: `{' '.join(cmd)}` failed with exit status {r.returncode}")

def main() -> int:
    failures = []
    before = snapshot("ddbook", "*.py"); run(["nbdev_export"])
    if compare(before, snapshot("ddbook", "*.py")):
        failures.append("ddbook/ is out of sync with nbs/: the files above changed when re-exported. "
                        "Run `nbdev_export` and commit ddbook/ (never edit ddbook/*.py by hand).")
    before = snapshot("nbs", "*.ipynb"); run(["nbdev_clean"])
    if compare(before, snapshot("nbs", "*.ipynb")):
        failures.append("notebooks were not clean: `nbdev_clean` changed the files above (they are cleaned now; "
                        "review and commit them).")
    for py in sorted((ROOT / "ddbook").glob("*.py")):
        m = re.search(r"File to edit: (\S+\.ipynb)", py.read_text(encoding="utf-8"))
        if m and not (py.parent / m.group(1)).resolve().exists():
            failures.append(f"{py.relative_to(ROOT)} was exported from {m.group(1)}, which no longer exists: "
                            "delete the module (and re-run nbdev_export) or restore the notebook.")
    for f in failures: print("FAIL:", f)
    if not failures: print("check_sync: OK (nbdev_export and nbdev_clean change nothing; every module has its notebook)")
    return 1 if failures else 0

if __name__ == "__main__": sys.exit(main())
