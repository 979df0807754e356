"""The chapters as readers run them: in JupyterLab, through its UI, in headless Chromium.

JupyterLab is started on a free local port over a temporary copy of two notebooks (the quick start, and a method
chapter), every cell is run with the Run menu's "Run All Cells", and the test waits until the kernel is done and finds
no error and no warning in any output. The kernel runs with IN_TEST=1 (each chapter's smoke scale).

Runs only when DDBOOK_LAB_TEST=1 (set by `make test`); DDBOOK_CHROMIUM picks the browser (default Debian's chromium).
"""
import os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DDBOOK_CHROMIUM", "/usr/bin/chromium")
NOTEBOOKS = ["quickstart.ipynb", "dm.ipynb"]
TOKEN = "ddbook-lab-test"

pytestmark = pytest.mark.skipif(os.environ.get("DDBOOK_LAB_TEST") != "1",
                                reason="JupyterLab check: runs in `make test` (DDBOOK_LAB_TEST=1)")

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "A JupyterLab server over a copy of the notebooks; yields its base URL."
    work = tmp_path_factory.mktemp("lab")
    for nb in NOTEBOOKS: shutil.copy(ROOT / "nbs" / nb, work / nb)
    port = free_port()
    env = dict(os.environ, IN_TEST="1", OMP_NUM_THREADS="1", JUPYTER_CONFIG_DIR=str(work / ".jupyter"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.root_dir={work}", f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
           "--LabApp.news_url=", "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0: cmd.append("--allow-root")
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2); break
            except OSError:
                if proc.poll() is not None: break
                time.sleep(0.5)
        else: pytest.fail("JupyterLab did not start in 60 s: " + (work / "lab.log").read_text()[-2000:])
        assert proc.poll() is None, "JupyterLab exited: " + (work / "lab.log").read_text()[-2000:]
        yield url
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()

# The notebook's model as JupyterLab holds it (the page renders only the cells in view): every code cell's execution
# count and outputs, and the kernel's status.
STATE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.content.model || !w.sessionContext) return null;
  const m = w.content.model, cells = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    if (c.type !== 'code') continue;
    const outputs = [];
    for (let j = 0; j < c.outputs.length; j++) outputs.push(c.outputs.get(j).toJSON());
    cells.push({count: c.executionCount, outputs});
  }
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {cells, idle: !!k && k.status === 'idle'};
}"""

def bad_outputs(state: dict) -> list:
    "Error outputs, and stderr text with a traceback or a warning."
    bad = []
    for i, c in enumerate(state["cells"]):
        for o in c["outputs"]:
            text = "".join(o.get("text", "")) if o.get("output_type") == "stream" else ""
            if o.get("output_type") == "error":
                bad.append(f"code cell {i}: {o.get('ename')}: {o.get('evalue')}"[:300])
            elif o.get("name") == "stderr" and any(w in text for w in ("Traceback", "Error", "Warning")):
                bad.append(f"code cell {i}: {text[:300]}")
    return bad

def run_all(page, timeout_s: float) -> dict:
    "Run > Run All Cells, then wait until every code cell has run (or one failed); returns the last state."
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()  # the notebook is the active widget
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    t0, state, idle_since = time.time(), None, None
    while time.time() - t0 < timeout_s:
        time.sleep(1)
        state = page.evaluate(STATE)
        if not state or not state["idle"]:
            idle_since = None; continue
        if all(c["count"] for c in state["cells"]) or bad_outputs(state): return state
        idle_since = idle_since or time.time()
        if time.time() - idle_since > 15: return state  # idle with cells left: execution stopped
    pytest.fail(f"the cells did not all run within {timeout_s:.0f} s")

@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_runs_in_jupyterlab(lab, browser, notebook):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # a workspace of its own, reset: only this notebook is open
        ws = Path(notebook).stem
        page.goto(f"{lab}/lab/workspaces/{ws}/tree/{notebook}?reset&token={TOKEN}", wait_until="load", timeout=120_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
        # the kernel is ready when the notebook's execution indicator says idle
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
        state = run_all(page, 400)
    finally: page.close()
    assert not bad_outputs(state), f"{notebook}: errors or warnings in JupyterLab: {bad_outputs(state)[:3]}"
    left = [i for i, c in enumerate(state["cells"]) if not c["count"]]
    assert not left, f"{notebook}: code cells {left} did not run"
    assert not errors, f"{notebook}: JavaScript errors in JupyterLab: {errors[:3]}"
    print(f"{notebook}: {len(state['cells'])} code cells ran in JupyterLab")
