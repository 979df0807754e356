"""Fetch MathJax 3 from the npm registry into `_assets/mathjax/` so the book renders math offline.

The tarball is pinned by version and checked against the registry's sha512 integrity string, then
its `es5/` tree is unpacked next to the target and renamed into place (a half-finished fetch never
looks finished). `_config.yml` adds `_assets` to Sphinx's html_static_path, so the tree is served as
`_static/mathjax/` and `mathjax_path: mathjax/tex-chtml.js` finds it.
Usage: python3 tools/fetch_mathjax.py [DEST]   (DEST defaults to _assets/mathjax)
"""
import base64, hashlib, io, shutil, sys, tarfile, tempfile, urllib.request
from pathlib import Path

VERSION = "3.2.2"
URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{VERSION}.tgz"
INTEGRITY = "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="

def fetch(url: str = URL, tries: int = 3) -> bytes:
    "Download `url`, retrying a couple of times on network errors."
    for i in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=120) as r: return r.read()
        except OSError as e:
            if i == tries - 1:
                sys.exit(f"fetch_mathjax: cannot download {url}: {e}\n"
                         "The book needs MathJax for offline math; check access to the npm registry.")

def main(dest: str = "_assets/mathjax") -> None:
    dest = Path(dest)
    data = fetch()
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != INTEGRITY: sys.exit(f"fetch_mathjax: integrity mismatch for {URL}: {got} != {INTEGRITY}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".mathjax-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            members = [m for m in tf.getmembers() if m.name.startswith(("package/es5/", "package/LICENSE"))]
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(tmp, members=members, **kw)
        es5 = Path(tmp) / "package" / "es5"
        shutil.copy(Path(tmp) / "package" / "LICENSE", es5 / "LICENSE")
        (es5 / "VERSION").write_text(VERSION + "\n")
        if dest.exists(): shutil.rmtree(dest)
        es5.rename(dest)
    n = sum(1 for p in dest.rglob("*") if p.is_file())
    print(f"fetch_mathjax: MathJax {VERSION} ({n} files) in {dest}/ ; entry point {dest}/tex-chtml.js")

if __name__ == "__main__": main(*sys.argv[1:])
