# ddbook: two commands, each doing all of its set-up itself (idempotent; instant when already set up).
#   make all   set up, run every chapter at its default scale, build the HTML book into _build/html, check it in Chromium
#   make test  set up, then every check (tools/run_tests.sh): export sync, notebooks, pytest, wheel, book build, browser
#
# How `make all` runs the chapters (each chapter's work is done once):
#   The book is built with `execute_notebooks: force` (_config.yml), so building it *is* running the chapters:
#   jupyter-book executes each notebook of _toc.yml once, at its default scale (IN_TEST unset), in the notebook's
#   own folder nbs/, and renders the freshly computed outputs. A chapter's parameters cell says out_dir="runs/<chapter>",
#   so its artifacts (synset.pt, meta.json, metrics.json, experts...) land in nbs/runs/<chapter>/, which git ignores
#   and the book excludes. There is no separate papermill pass (it would run every chapter twice). Sphinx executes the
#   notebooks in alphabetical order, not toc order (and nbdev_test runs them in parallel), so a chapter that needs
#   another chapter's artifact (e.g. expert trajectories) loads it when present and computes it otherwise.
#   To re-run one chapter with other parameters use papermill (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := all

VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.ddbook-setup-done
MATHJAX  := _assets/mathjax/tex-chtml.js
CHROMIUM := /usr/bin/chromium
# Debian's package dataset-fashion-mnist: the full Fashion-MNIST (60 000 + 10 000) as idx files, read by get_dataset
FMNIST   := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)
APT      := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# pip's notice for each index folder of this machine's pip configuration that lacks a package (harmless; filtered)
PIP_NOISE := is ignored: it is neither a file nor a directory

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
unexport MPLBACKEND  # the notebooks' kernels must use the inline backend, or no figure reaches the book
export PIP_PROGRESS_BAR := off

.PHONY: all test setup check-book clean help results

all: setup
	env -u IN_TEST jupyter-book build --all -W -n --keep-going .
	$(MAKE) --no-print-directory check-book

test: setup
	bash tools/run_tests.sh

# The results chapter complete: every missing chapter run (IPC 1 and 10, mnist5k and the full Fashion-MNIST; papermill,
# two at a time, resuming what an earlier call left), then the book. Hours on a laptop CPU (README.md).
results: setup
	cd nbs && env -u IN_TEST papermill results.ipynb runs/results/results.ipynb -p compute True --cwd .
	$(MAKE) --no-print-directory all

# The built book (default: _build/html) in headless Chromium: pages render, images load, math is typeset offline.
check-book: setup
	DDBOOK_BOOK_TEST=1 python -m pytest tests/test_book.py -ra

setup: $(STAMP) $(MATHJAX) $(CHROMIUM) $(FMNIST)

# The virtual environment: brought up to date when the pinned requirements or the package metadata change.
$(STAMP): requirements-dev.txt setup.py settings.ini
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt 2> >(grep -v "$(PIP_NOISE)" >&2)
	$(PY) -m pip install -q -e . --no-deps 2> >(grep -v "$(PIP_NOISE)" >&2)
	$(PY) -m pip check
	touch $@

# MathJax 3, pinned and integrity-checked, from the npm registry into _assets/ (served by the book; math works offline).
$(MATHJAX): tools/fetch_mathjax.py
	python3 tools/fetch_mathjax.py _assets/mathjax
	touch $@

# Debian's Chromium for the browser check (Playwright drives it; no `playwright install`).
$(CHROMIUM):
	$(APT) update -qq
	$(APT) install -y -qq --no-install-recommends chromium > /dev/null
	$(CHROMIUM) --version

# The full Fashion-MNIST, the one real full-size dataset that needs no download (get_dataset("FashionMNIST")).
$(FMNIST):
	$(APT) update -qq
	$(APT) install -y -qq --no-install-recommends dataset-fashion-mnist > /dev/null
	test -f $@

# Removes build outputs only; chapter results in nbs/runs/ (possibly hours of compute) are kept.
clean:
	rm -rf _build dist build

help:
	@sed -n '1,4p' Makefile
