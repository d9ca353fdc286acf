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


# --- the map is whole: begin here and the README name every notebook, in course order -----------------------

def course_notebooks(root=ROOT):
    """Every notebook of the course in reading order (chapters by number, then experiments by number)."""
    chapters = sorted(p for p in (root / "notebooks").glob("[0-9][0-9]*.ipynb") if p.stem != "00_begin_here")
    experiments = sorted((root / "notebooks" / "experiments").glob("[0-9][0-9]*.ipynb"))
    return chapters + experiments


def map_links(markdown, base):
    """The notebooks a map links to, in the order of first mention, as paths resolved from `base`."""
    seen = []
    for target in relative_links(markdown):
        path = (base / target).resolve()
        if path.suffix == ".ipynb" and path not in seen:
            seen.append(path)
    return seen


def map_problems(linked, expected):
    expected = [p.resolve() for p in expected]
    missing = [p.name for p in expected if p not in linked]
    order = [p for p in linked if p in expected]
    out_of_order = order != [p for p in expected if p in order]
    return missing, out_of_order


def begin_here_map(root=ROOT):
    cells = json.loads((root / "notebooks" / "00_begin_here.ipynb").read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    start = text.index("## 3. The map of the course")
    return text[start:text.index("\n## ", start + 1)]


def test_begin_here_map_lists_every_notebook_in_order():
    missing, out_of_order = map_problems(map_links(begin_here_map(), ROOT / "notebooks"), course_notebooks())
    assert not missing, f"begin here's course map (section 3) leaves out: {missing}"
    assert not out_of_order, "begin here's course map lists the notebooks out of course order"


def test_readme_course_table_lists_every_notebook_in_order():
    text = (ROOT / "README.md").read_text()
    start = re.search(r"^## The course\s*$", text, re.M).start()
    section = text[start:text.index("\n## ", start + 1)]
    missing, out_of_order = map_problems(map_links(section, ROOT), course_notebooks())
    assert not missing, f"the README's course tables leave out: {missing}"
    assert not out_of_order, "the README's course tables list the notebooks out of course order"


def test_the_map_check_fails_on_a_missing_or_misplaced_notebook(tmp_path):
    for name in ("01_a.ipynb", "02_b.ipynb", "experiments/01_c.ipynb"):
        (tmp_path / "notebooks" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "notebooks" / name).write_text("{}")
    expected = course_notebooks(tmp_path)
    base = tmp_path / "notebooks"
    assert map_problems(map_links("[a](01_a.ipynb) [b](02_b.ipynb) [c](experiments/01_c.ipynb)", base), expected) \
        == ([], False)
    assert map_problems(map_links("[a](01_a.ipynb) [c](experiments/01_c.ipynb)", base), expected) == (["02_b.ipynb"], False)
    assert map_problems(map_links("[b](02_b.ipynb) [a](01_a.ipynb) [c](experiments/01_c.ipynb)", base), expected)[1]
