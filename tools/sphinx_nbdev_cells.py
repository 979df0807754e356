"""Sphinx extension for the ddbook book: notebook cells as a reader should see them.

1. nbdev's `#|` directives (`#| export`, `#| default_exp ...`) are instructions to nbdev, not code for the reader:
   they are dropped from every code cell of the page, and a cell that held nothing else (the `#| default_exp`
   cell at the top of each chapter) is removed. The notebooks keep them (JupyterLab shows them, nbdev needs them).
2. Progress bars are shown as a terminal shows them. A progress bar redraws its line with a carriage return;
   myst-nb's `nb_merge_streams` (myst_nb/core/utils.py, `coalesce_streams`) strips and ends every stream chunk with
   a newline before it handles carriage returns, so every redraw of a bar becomes a line of its own. Here the chunks
   of a stream are joined as they came, and each line keeps the text after its last carriage return.
Loaded by _config.yml (sphinx.local_extensions).
"""
import re

from docutils import nodes

_DIRECTIVE = re.compile(r"^\s*#\|")


def _strip_directives(app, doctree):
    "Drop `#|` lines from code-cell inputs; remove cells that held nothing else and show no output."
    for block in list(doctree.findall(nodes.literal_block)):
        cell_input = block.parent
        if not (isinstance(cell_input, nodes.container) and "cell_input" in cell_input.get("classes", [])):
            continue
        text = block.astext()
        if not any(_DIRECTIVE.match(l) for l in text.splitlines()):
            continue
        kept = "\n".join(l for l in text.splitlines() if not _DIRECTIVE.match(l)).strip("\n")
        cell = cell_input.parent
        if not kept.strip():
            outputs = [c for c in cell.children if c is not cell_input]
            (cell.parent.remove(cell) if not outputs else cell.remove(cell_input))
            continue
        new = nodes.literal_block(kept, kept, **{k: v for k, v in block.attributes.items() if k != "ids"})
        new.source, new.line = block.source, block.line
        block.replace_self(new)


def terminal_text(text: str) -> str:
    "What a terminal shows for `text`: each line is what follows its last carriage return."
    return "\n".join(line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n"))


def coalesce_streams(outputs):
    "myst-nb's stream merge, keeping each stream's chunks as they came before carriage returns are applied."
    merged, streams = [], {}
    for out in outputs or []:
        if out["output_type"] == "stream":
            if out["name"] in streams:
                streams[out["name"]]["text"] += out["text"]
                continue
            streams[out["name"]] = out
        merged.append(out)
    for out in streams.values():
        out["text"] = terminal_text(out["text"]).strip("\n") + "\n"
    return [o for o in merged if o["output_type"] != "stream" or o["text"].strip()]


def setup(app):
    import myst_nb.core.render as render
    render.coalesce_streams = coalesce_streams
    app.connect("doctree-read", _strip_directives)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
