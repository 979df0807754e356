#!/usr/bin/env bash
# `make test`: every check of ddbook, in order. Every step runs even when an earlier one failed (so one run shows
# every problem); the summary at the end lists each step with its time, and the exit status is 1 if any failed.
# Expects the set-up done by `make setup` (.venv with requirements-dev.txt, Debian's chromium, MathJax in _static/).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1
unset MPLBACKEND  # with Agg the notebooks' kernels would show no inline figures (and the book none)
unset IN_TEST  # each step sets it where it wants the smoke scale
# The smoke-scale book goes to its own folder so `make test` never overwrites the default-scale book of `make all`.
SMOKE_OUT=_build/smoke
SMOKE_HTML=$SMOKE_OUT/_build/html

names=(); codes=(); secs=()
step() {  # step NAME COMMAND...
  local name=$1; shift
  printf '\n======== [%d] %s\n$ %s\n' $((${#names[@]} + 1)) "$name" "$*"
  local t0=$SECONDS
  "$@"; local rc=$?
  names+=("$name"); codes+=("$rc"); secs+=($((SECONDS - t0)))
  printf -- '-------- [%s] %s in %ds\n' "$([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)")" "$name" $((SECONDS - t0))
}

step "package in sync with notebooks (nbdev_export, nbdev_clean)" python tools/check_sync.py
# Two notebooks at a time on two cores, each torch limited to one thread: with torch's default (one thread per core)
# the two workers' OpenMP threads fight over the cores and a notebook runs many times slower.
step "every notebook at smoke scale (nbdev_test)" env OMP_NUM_THREADS=1 nbdev_test --n_workers 2 --timing
step "unit and contract tests (pytest tests/)" python -m pytest tests/ -ra
step "wheel in a fresh venv (tools/wheel_check.sh)" bash tools/wheel_check.sh
# Every file in configs/ through its chapter (papermill) on generated data in the dataset's on-disk format, at smoke
# scale, two at a time with one thread each (tests/test_config_dry_runs.py).
step "every paper config end to end on generated data (tests/test_config_dry_runs.py)" \
     env DDBOOK_DRY_RUNS=1 OMP_NUM_THREADS=1 python -m pytest tests/test_config_dry_runs.py -ra -s
step "book build at smoke scale (jupyter-book -W)" \
     env IN_TEST=1 jupyter-book build --all -W -n --keep-going --path-output "$SMOKE_OUT" .
step "built book in headless Chromium (tests/test_book.py)" \
     env DDBOOK_BOOK_TEST=1 DDBOOK_BOOK_HTML="$SMOKE_HTML" python -m pytest tests/test_book.py -ra -v
step "chapters run through JupyterLab's UI (tests/test_jupyterlab.py)" \
     env DDBOOK_LAB_TEST=1 python -m pytest tests/test_jupyterlab.py -ra -v

failed=0
printf '\n======== make test summary\n'
for i in "${!names[@]}"; do
  status=PASS; [ "${codes[$i]}" = 0 ] || { status=FAIL; failed=1; }
  printf '  %-4s %5ss  %s\n' "$status" "${secs[$i]}" "${names[$i]}"
done
printf '  total %ss; smoke-scale book: %s/index.html\n' "$SECONDS" "$SMOKE_HTML"
if [ "$failed" = 0 ]; then echo "make test: ALL PASSED"; else echo "make test: FAILED (see the steps marked FAIL above)"; fi
exit "$failed"
