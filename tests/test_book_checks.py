"""The browser check's rules (tests/test_book.py) on small made-up pages: each one fires on the defect it names
and stays quiet on the fixed form. The browser test itself runs them on every page of the built book."""
from pathlib import Path

import pytest

import test_book as tb


def view(**kw):
    v = {"prose": [], "inputs": [], "outputs": [], "boxes": [], "links": [], "maths": []}
    v.update(kw)
    return v

CASES = [  # (defect the rule must name, page with it, the same page fixed)
    ("Markdown tables shown as raw text", view(prose=["| a | b |\n|—|—|\n| 1 | 2 |"]),
     view(prose=["a", "b"])),
    ("nbdev directives visible", view(inputs=["#| export\ndef f(): pass"]), view(inputs=["def f(): pass"])),
    ("Python warnings in outputs", view(outputs=["/x.py:8: UserWarning: Converting a tensor"]),
     view(outputs=["a warning-free line"])),
    ("progress bars printed twice",
     view(outputs=["distill: 100%|████| 2/2 [00:00<?, ?it/s]\ndistill: 100%|████| 2/2 [00:00<?, ?it/s]"]),
     view(outputs=["distill: 100%|████| 2/2 [00:01<00:00, 1.9it/s]\nDSA: 1 s"])),
    ("progress bars printed twice",
     view(outputs=["distill:  50%|██  | 1/2 [00:00<00:00]\ndistill: 100%|████| 2/2 [00:01<00:00]"]),
     view(outputs=["distill: 100%|████| 2/2 [00:01<00:00]\nevaluate: 100%|████| 3/3 [00:01<00:00]"])),
    ("a finished run resumed as if fresh", view(outputs=["resuming from runs/dm/checkpoint.pt at iteration 4"]),
     view(outputs=["runs/dm/checkpoint.pt: resuming at iteration 2 of 4"])),
    ("code blocks overflow their box", view(boxes=[{"w": 900, "c": 680, "head": "x"}]),
     view(boxes=[{"w": 680, "c": 680, "head": "x"}])),
    ("code lines over 88", view(inputs=["x = 1  # " + "a" * 80]), view(inputs=["x = 1  # " + "a" * 79])),
    ("display formulas wider than the page", view(maths=[{"w": 990, "c": 684, "head": "θ′ = θ + ρ g"}]),
     view(maths=[{"w": 684, "c": 684, "head": "θ′ = θ + ρ g"}])),
]

@pytest.mark.parametrize("defect, bad, good", CASES, ids=[c[0][:30] for c in CASES])
def test_rule_fires_on_its_defect_only(defect, bad, good):
    assert any(defect in d for d in tb.reader_defects("nbs/core", bad)), tb.reader_defects("nbs/core", bad)
    assert tb.reader_defects("nbs/core", good) == []

def test_method_chapter_needs_a_paper_link():
    doc = sorted(tb.method_docs())[0]
    assert any("without a link to its paper" in d for d in tb.reader_defects(doc, view()))
    assert tb.reader_defects(doc, view(links=["https://arxiv.org/abs/2110.04181"])) == []

def test_broken_internal_links(tmp_path, monkeypatch):
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "a.html").write_text('<h2 id="summary">Summary</h2>')
    (tmp_path / "nbs" / "b.html").write_text("<p>b</p>")
    monkeypatch.setattr(tb, "HTML", tmp_path)
    links = ["b.html", "a.html#summary", "#summary", "https://arxiv.org/abs/1", "c.html", "b.html#nowhere"]
    assert tb.broken_links("nbs/a", links) == ["c.html", "b.html#nowhere"]
