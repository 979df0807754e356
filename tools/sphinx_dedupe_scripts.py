"""Sphinx extension for the ddbook book: drop duplicated inline <script> blocks from each page.

With Sphinx 7.4, the inline scripts that sphinx-togglebutton and sphinx-thebe add while the build is running end up
twice in every page, and the second `const THEBE_JS_URL = ...` is a JavaScript SyntaxError in the browser console.
This keeps the first copy of each identical script (same file, same attributes, same body). Loaded by _config.yml.
"""

def _dedupe(app, pagename, templatename, context, doctree):
    "Remove repeated identical entries of the page's script list (order of first appearance kept)."
    scripts = context.get("script_files")
    if not scripts: return
    seen, kept = set(), []
    for js in scripts:
        # an inline script is registered once with filename None and once with "": treat both as the same
        key = (str(getattr(js, "filename", js) or ""),
               tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen: seen.add(key); kept.append(js)
    scripts[:] = kept

def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
