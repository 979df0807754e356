#!/usr/bin/env bash
# The wheel check (step 4 of `make test`): build the ddbook wheel, install it into a FRESH virtual environment
# outside the repository with only its runtime dependencies, and run tests/wheel_smoke.py there from a folder
# outside the checkout, so it imports the installed wheel and nothing from the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
# torch is pinned to the CPU build: the package declares torch>=2.1, which unconstrained would resolve to a CUDA build.
TORCH_PIN=$(grep -E '^torch==' requirements-dev.txt | head -1)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ddbook-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "--- building the wheel"
rm -rf dist build  # a stale build/lib could carry deleted modules into the wheel
"$PY" -m build --wheel --no-isolation --outdir dist . > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; echo "FAIL: wheel build"; exit 1; }
WHEEL=$(ls dist/ddbook-*.whl)
echo "built $WHEEL"
python3 - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
mods = sorted(n for n in names if n.startswith("ddbook/") and n.endswith(".py"))
print("wheel modules:", " ".join(m.split("/", 1)[1] for m in mods))
bad = [n for n in names if n.startswith(("nbs/", "tests/", "tools/")) or n.endswith(".ipynb")]
if bad: sys.exit(f"FAIL: the wheel contains files that are not part of the package: {bad[:10]}")
PY

echo "--- fresh venv with runtime dependencies only ($TORCH_PIN)"
python3 -m venv "$WORK/venv"
echo "$TORCH_PIN" > "$WORK/constraints.txt"
# (the grep drops pip's notices about this machine's index configuration, nothing else)
"$WORK/venv/bin/python" -m pip install -q "$ROOT/$WHEEL" -c "$WORK/constraints.txt" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$WORK/venv/bin/python" -m pip check
"$WORK/venv/bin/python" -m pip list --format=freeze > "$WORK/pip-list.txt"
if grep -i -E '^(nbdev|jupyter[a-z_-]*|jupyterlab|papermill|notebook|ipykernel|jupyter-book|pytest|playwright)==' "$WORK/pip-list.txt"; then
  echo "FAIL: development packages leaked into the runtime dependencies of the wheel (listed above)"; exit 1
fi
if grep -i -E '^nvidia-' "$WORK/pip-list.txt" > /dev/null; then
  echo "FAIL: CUDA packages were installed; torch was not resolved to the CPU build ($TORCH_PIN)"; exit 1
fi
echo "runtime packages: $(wc -l < "$WORK/pip-list.txt") ($(grep -i -E '^torch==' "$WORK/pip-list.txt"))"

echo "--- tests/wheel_smoke.py with the fresh venv, from $WORK"
cp tests/wheel_smoke.py "$WORK/wheel_smoke.py"
(cd "$WORK" && env -u PYTHONPATH "$WORK/venv/bin/python" wheel_smoke.py)

echo "--- the installed command line (console script ddbook), from $WORK"
(cd "$WORK" && env -u PYTHONPATH OMP_NUM_THREADS=1 "$WORK/venv/bin/ddbook" distill dm --set dataset=digits ipc=1 \
   iterations=2 width=8 eval_epochs=2 eval_runs=1 progress=false out_dir="$WORK/cli_dm")
test -s "$WORK/cli_dm/metrics.json" || { echo "FAIL: ddbook distill wrote no metrics.json"; exit 1; }
rc=0; "$WORK/venv/bin/ddbook" distill nomethod 2> "$WORK/cli_err.txt" || rc=$?
if [ "$rc" != 2 ] || ! grep -q "unknown method 'nomethod'" "$WORK/cli_err.txt"; then
  echo "FAIL: ddbook distill nomethod: exit status $rc, $(cat "$WORK/cli_err.txt")"; exit 1
fi
(cd "$WORK" && env -u PYTHONPATH "$WORK/venv/bin/python" -m ddbook experts --help > /dev/null) \
  || { echo "FAIL: python -m ddbook experts --help"; exit 1; }
echo "command line: OK"
