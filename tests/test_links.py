"""Every relative link in the README and in the notebooks' markdown cells points at a file that exists.

The reading path (course map, previous/next links) must keep working when chapters are added or renamed.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")       # [text](target)


def relative_links(text):
    for target in LINK.findall(text):
        if not re.match(r"^[a-z]+:", target) and not target.startswith("#"):   # skip http:, mailto:, anchors
            yield target.split("#")[0]


def documents():
    docs = [ROOT / "README.md"]
    docs += sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return docs


def markdown_of(path):
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_the_link_pattern_finds_relative_links_only():
    text = "[a](x.ipynb) [b](https://example.org) [c](../y.md#part) [d](#anchor)"
    assert list(relative_links(text)) == ["x.ipynb", "../y.md"]


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc):
    broken = [t for t in relative_links(markdown_of(doc)) if not (doc.parent / t).exists()]
    assert not broken, f"{doc.relative_to(ROOT)} links to files that do not exist: {broken}"
