"""Every chapter and experiment ends with exercises, and every exercise has a worked solution: collapsed (its source
hidden in JupyterLab) and tagged `solution`; nbval runs every notebook, so a solution's asserts are tested. In a
chapter, a code solution is also tagged `active-ipynb`, so it never becomes part of the package."""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "experiments").glob("*.ipynb"))


def exercises_and_solutions(nb):
    """(exercise numbers, solution numbers, solution cells) after the '## Exercises' heading."""
    cells = nb.cells
    start = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and re.search(r"^## Exercises", c.source, re.M)),
                 None)
    if start is None:
        return None, None, None
    after = cells[start:]
    solutions = [c for c in after if "solution" in c.metadata.get("tags", [])]
    asked = {int(n) for c in after if c not in solutions and c.cell_type == "markdown"
             for n in re.findall(r"^(\d+)\. ", c.source, re.M)}
    answered = {int(n) for c in solutions for n in re.findall(r"Solution (\d+)", c.source)}
    return asked, answered, solutions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_every_exercise_has_a_hidden_executed_solution(path):
    asked, answered, solutions = exercises_and_solutions(nbformat.read(path, as_version=4))
    assert asked is not None, f"{path.name}: no '## Exercises' section"
    assert asked, f"{path.name}: the Exercises section lists no numbered exercises"
    assert asked <= answered, f"{path.name}: exercises {sorted(asked - answered)} have no cell tagged 'solution'"
    for cell in solutions:
        assert cell.metadata.get("jupyter", {}).get("source_hidden"), \
            f"{path.name}: a solution cell is not collapsed: {cell.source[:60]!r}"
        if cell.cell_type == "code" and path.parent.name == "notebooks":     # a chapter: its code cells are the package
            assert "active-ipynb" in cell.metadata.get("tags", []), \
                f"{path.name}: a code solution without 'active-ipynb' would become package code: {cell.source[:60]!r}"


def test_the_check_fails_on_a_missing_or_visible_solution():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Exercises\n\n1. One.\n2. Two."),
        nbformat.v4.new_code_cell("# Solution 1.\nassert True", metadata={"tags": ["active-ipynb", "solution"],
                                                                          "jupyter": {"source_hidden": True}})])
    asked, answered, _ = exercises_and_solutions(nb)
    assert asked == {1, 2} and answered == {1}            # exercise 2 unanswered: the test above would fail
