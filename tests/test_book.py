"""The built book, opened in headless Chromium: every chapter of _toc.yml renders, its images load, its math is typeset
by the local MathJax, and nothing is fetched from outside the site (the book must work offline).

Runs only when DDBOOK_BOOK_TEST=1 (set by `make test` after it builds the book, and by `make all`):
    DDBOOK_BOOK_TEST=1 pytest tests/test_book.py
DDBOOK_BOOK_HTML picks the built site (default _build/html), DDBOOK_TOC the table of contents (default _toc.yml),
DDBOOK_CHROMIUM the browser (default Debian's /usr/bin/chromium; never `playwright install`)."""
import functools, http.server, json, os, re, threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("DDBOOK_BOOK_HTML", ROOT / "_build" / "html")).resolve()
TOC = Path(os.environ.get("DDBOOK_TOC", ROOT / "_toc.yml"))
CHROMIUM = os.environ.get("DDBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# myst-nb's HTML render priority: the first of these present in an output is what the page shows.
MIME_PRIORITY = ["application/vnd.jupyter.widget-view+json", "application/javascript", "text/html", "image/svg+xml",
                 "image/png", "image/jpeg", "text/markdown", "text/latex", "text/plain"]
REMOVED = {"remove-cell", "remove_cell", "remove-output", "remove_output"}

pytestmark = [pytest.mark.book, pytest.mark.skipif(os.environ.get("DDBOOK_BOOK_TEST") != "1",
              reason="browser check of the built book: runs in `make test`'s last step (DDBOOK_BOOK_TEST=1)")]

def toc_docs(toc: Path = TOC) -> list:
    "Every document of a jb-book table of contents, in reading order (root first, then parts/chapters/sections)."
    def walk(entries):
        for e in entries or []:
            if "file" in e: yield e["file"]
            yield from walk(e.get("sections"))
            yield from walk(e.get("chapters"))
    t = yaml.safe_load(toc.read_text())
    return [t["root"]] + list(walk(t.get("parts"))) + list(walk(t.get("chapters")))

def expected_images(doc: str) -> int:
    "How many image outputs the page should show: from the executed notebook (else the source one), removed cells left out."
    for nb_path in (HTML.parent / "jupyter_execute" / f"{doc}.ipynb", ROOT / f"{doc}.ipynb"):
        if nb_path.exists(): break
    else: return 0
    n = 0
    for cell in json.loads(nb_path.read_text())["cells"]:
        if REMOVED.intersection(cell.get("metadata", {}).get("tags", [])): continue
        for out in cell.get("outputs", []):
            shown = next((m for m in MIME_PRIORITY if m in out.get("data", {})), "")
            n += shown.startswith("image/")
    return n

@pytest.fixture(scope="module")
def site():
    "Serve the built book on 127.0.0.1 (free port) from a background thread; yields the base URL."
    assert (HTML / "index.html").exists(), f"no built book at {HTML} (run the jupyter-book build first)"
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope="module")
def browser():
    "Debian's Chromium, headless, driven by Playwright."
    from playwright.sync_api import sync_playwright
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()

def open_page(browser, url: str):
    "Open `url`, blocking (and recording) every request that leaves 127.0.0.1; returns (page, problems)."
    page = browser.new_page()
    problems = []
    def route(r):
        if urlparse(r.request.url).hostname in ("127.0.0.1", None) or r.request.url.startswith("data:"): r.continue_()
        else: problems.append(f"external request {r.request.url}"); r.abort()
    page.route("**/*", route)
    page.on("response", lambda resp: resp.status >= 400 and problems.append(f"HTTP {resp.status} for {resp.url}"))
    page.on("pageerror", lambda err: problems.append(f"JavaScript error: {err}"))
    page.goto(url, wait_until="load", timeout=60_000)
    return page, problems

WAIT_MATHJAX = """async () => {
  const math = document.querySelectorAll('.math').length;
  if (!math) return {math: 0};
  for (let i = 0; i < 600 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return {math, loaded: false};
  await MathJax.startup.promise;
  const untypeset = [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
                      .map(e => e.textContent.slice(0, 80));
  return {math, loaded: true, version: MathJax.version, containers: document.querySelectorAll('mjx-container').length,
          errors: [...new Set([...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
                     .map(e => e.getAttribute('data-mjx-error') || e.textContent))],
          untypeset, script: [...document.scripts].map(s => s.src).filter(s => s.includes('mathjax'))};
}"""

WAIT_IMAGES = """async () => {
  const article = document.querySelector('article') || document.querySelector('main') || document.body;
  const imgs = [...article.querySelectorAll('img')];
  imgs.forEach(i => i.loading = 'eager');
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; setTimeout(r, 30000); })));
  return imgs.map(i => ({src: i.currentSrc.slice(0, 120), w: i.naturalWidth}));
}"""

def drawing_cells(doc: str) -> int:
    "How many shown code cells of the source notebook draw a matplotlib figure."
    nb = ROOT / f"{doc}.ipynb"
    if not nb.exists(): return 0
    cells = json.loads(nb.read_text())["cells"]
    return sum(c["cell_type"] == "code" and not REMOVED.intersection(c.get("metadata", {}).get("tags", []))
               and re.search(r"plt\.(subplots|figure)\(", "".join(c["source"])) is not None for c in cells)

READER_VIEW = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const article = document.querySelector('article') || document.querySelector('main') || document.body;
  const text = e => e.textContent;
  const outside = e => !e.closest('pre, code, .cell_input, script, style');
  return {
    prose: [...article.querySelectorAll('p, li, td, th, dd')].filter(outside).map(text),
    inputs: [...article.querySelectorAll('div.cell_input pre')].map(text),
    outputs: [...article.querySelectorAll('div.cell_output pre, div.cell_output .output')].map(text),
    boxes: [...article.querySelectorAll('pre')].map(e => ({
      w: e.scrollWidth, c: e.clientWidth, head: e.textContent.slice(0, 60)})),
    links: [...article.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    maths: [...article.querySelectorAll('mjx-container[display="true"]')].map(e => ({
      w: e.scrollWidth, c: e.clientWidth, head: (e.getAttribute('aria-label') || e.textContent).slice(0, 60)})),
  };
}"""

CODE_WIDTH = 88  # the longest code line the book shows (the notebooks keep to it)
# a Markdown table's rule row left as text (Sphinx's smart quotes turn --- into an em dash)
RAW_TABLE = re.compile(r"\|\s*:?(-{3,}|[—–]+)\s*:?\s*\|")
WARNING = re.compile(r"\b[A-Z]\w*Warning\b:|\bWarning: ")
BAR = re.compile(r"^(?P<desc>[^|\n]*?):?\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)")
RESUMING = re.compile(r"resuming\b.*?at iteration (\d+)(?: of (\d+))?")
PAPER_LINK = re.compile(r"^https?://(arxiv\.org/abs/|doi\.org/|dl\.acm\.org/doi/|openreview\.net/)")
METHOD_PARTS = {"Baselines", "Matching methods", "Kernel methods", "Trajectory methods", "Scaling up"}

def method_docs(toc: Path = TOC) -> set:
    "The chapters of the parts that hold methods: each must link its paper."
    t = yaml.safe_load(toc.read_text())
    return {c["file"] for p in t.get("parts", []) if p.get("caption") in METHOD_PARTS
            for c in p.get("chapters", [])}

def repeated_bars(text: str) -> list:
    "Progress-bar lines that redraw the bar of the line above (a bar printed twice)."
    found, prev = [], None
    for line in text.splitlines():
        m = BAR.match(line.strip())
        if m and prev is not None:
            pm, pline = prev
            same_bar = (pm["desc"], pm["total"]) == (m["desc"], m["total"])
            if same_bar and (pline == line.strip() or int(pm["n"]) < int(pm["total"])):
                found.append(line.strip()[:70])
        prev = (m, line.strip()) if m else None
    return found

def anchors_of(path: Path) -> set:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace")))

def broken_links(doc: str, links: list) -> list:
    "Links of the page to files or anchors of the site that do not exist."
    page = (HTML / f"{doc}.html").resolve()
    bad = []
    for href in links:
        u = urlparse(href)
        if u.scheme or u.netloc or href.startswith(("mailto:", "javascript:")): continue
        target = page if not u.path else (page.parent / u.path).resolve()
        if target.is_dir(): target = target / "index.html"
        if not target.exists(): bad.append(href); continue
        if u.fragment and target.suffix == ".html" and u.fragment not in anchors_of(target):
            bad.append(href)
    return bad

def reader_defects(doc: str, view: dict) -> list:
    "What a reader would trip over on the page; an empty list when there is nothing."
    out = []
    raw = [t.strip()[:70] for t in view["prose"] if RAW_TABLE.search(t)]
    if raw: out.append(f"Markdown tables shown as raw text: {raw[:3]}")
    nbdev = [l.strip() for t in view["inputs"] for l in t.splitlines() if l.lstrip().startswith("#|")]
    if nbdev: out.append(f"nbdev directives visible in code cells: {sorted(set(nbdev))[:3]}")
    warn = [l.strip()[:90] for t in view["outputs"] for l in t.splitlines() if WARNING.search(l)]
    if warn: out.append(f"Python warnings in outputs: {warn[:3]}")
    twice = [b for t in view["outputs"] for b in repeated_bars(t)]
    if twice: out.append(f"progress bars printed twice: {twice[:3]}")
    resumed = [m.group(0)[:90] for t in view["outputs"] for m in RESUMING.finditer(t)
               if m.group(2) is None or int(m.group(1)) >= int(m.group(2))]
    if resumed: out.append(f"a finished run resumed as if fresh: {resumed[:3]}")
    wide = [b["head"] for b in view["boxes"] if b["w"] > b["c"] + 1]
    if wide: out.append(f"{len(wide)} code blocks overflow their box: {wide[:3]}")
    wide_math = [b["head"] for b in view.get("maths", []) if b["w"] > b["c"] + 1]
    if wide_math: out.append(f"{len(wide_math)} display formulas wider than the page: {wide_math[:3]}")
    long = [l[:60] for t in view["inputs"] for l in t.splitlines() if len(l) > CODE_WIDTH]
    if long: out.append(f"{len(long)} code lines over {CODE_WIDTH} characters: {long[:3]}")
    if doc in method_docs() and not any(PAPER_LINK.match(h) for h in view["links"]):
        out.append("a method chapter without a link to its paper (arXiv, DOI or OpenReview)")
    bad = broken_links(doc, view["links"])
    if bad: out.append(f"broken internal links: {bad[:5]}")
    return out

@pytest.mark.parametrize("doc", toc_docs())
def test_page_reads_well(site, browser, doc):
    "The page as a reader sees it: rendered tables, clean outputs, code that fits, paper links, working links."
    page, problems = open_page(browser, f"{site}/{doc}.html")
    try: view = page.evaluate(READER_VIEW)
    finally: page.close()
    defects = reader_defects(doc, view)
    assert not defects, f"{doc}: " + " | ".join(defects)

@pytest.mark.parametrize("doc", toc_docs())
def test_chapter_page(site, browser, doc):
    html = HTML / f"{doc}.html"
    assert html.exists(), f"{doc} is in {TOC.name} but was not built ({html} missing)"
    scripts = [s for s in re.findall(r'<script[^>]*\ssrc="([^"]+)"', html.read_text()) if "mathjax" in s.lower()]
    assert len(scripts) <= 1, f"{doc}: the page loads {len(scripts)} MathJax scripts (is there a _static/ folder at the root?): {scripts[:5]}"
    page, problems = open_page(browser, f"{site}/{doc}.html")
    try:
        mj = page.evaluate(WAIT_MATHJAX)
        imgs = page.evaluate(WAIT_IMAGES)
    finally: page.close()
    if mj["math"]:
        assert mj["loaded"], f"{doc}: the page has {mj['math']} math elements but MathJax never started"
        assert all("/_static/mathjax/" in s for s in mj["script"]), f"{doc}: MathJax not loaded from the book: {mj['script']}"
        assert not mj["errors"], f"{doc}: MathJax errors: {mj['errors']}"
        assert not mj["untypeset"], f"{doc}: math left untypeset: {mj['untypeset']}"
        assert mj["containers"] >= mj["math"], mj
    broken = [i["src"] for i in imgs if i["w"] == 0]
    assert not broken, f"{doc}: images that did not load: {broken}"
    want = expected_images(doc)
    assert want >= drawing_cells(doc), (f"{doc}: {drawing_cells(doc)} cells draw figures but the executed notebook has {want} "
                                        "image outputs (a kernel with MPLBACKEND=Agg shows no inline figures)")
    assert len(imgs) >= want, f"{doc}: the notebook has {want} image outputs but the page shows {len(imgs)} images"
    assert not problems, f"{doc}: " + "; ".join(problems)
    print(f"{doc}: {mj['math']} math ({mj.get('containers', 0)} typeset), {len(imgs)} images loaded (notebook: {want})")

def test_index_redirects_to_root(site, browser):
    root = toc_docs()[0]
    page, problems = open_page(browser, f"{site}/index.html")
    try:
        page.wait_for_url(f"**/{root}.html", timeout=30_000)
        assert page.title(), "landing page has no title"
    finally: page.close()
    assert not problems, problems
