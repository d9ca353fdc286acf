"""Every chapter and experiment ends with exercises, and every exercise has a worked solution that stays hidden
until the learner asks for it:

- a solution cell is tagged `solution` and collapsed in JupyterLab — its source AND its output
  (`metadata.jupyter.source_hidden` and `outputs_hidden`), so no answer prints under its question;
- every run of solution cells follows a visible marker cell (markdown, not a solution) that says "Solution", so
  that in a plain notebook viewer, which ignores the collapse, an answer never sits under the question's text;
- nbval runs every notebook, so a solution's asserts are tested; in a chapter a code solution is also tagged
  `active-ipynb`, so it never becomes part of the package.

To fix a notebook (collapse every solution's source and output, add the missing markers):
    .venv/bin/python tests/test_solutions.py --fix notebooks/NN_x.ipynb [...]
"""
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "experiments").glob("*.ipynb"))
MARKER = re.compile(r"\bSolutions?\b")


def is_solution(cell):
    return "solution" in cell.metadata.get("tags", [])


def exercises_and_solutions(nb):
    """(exercise numbers, solution numbers, solution cells) after the '## Exercises' heading."""
    cells = nb.cells
    start = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and re.search(r"^## Exercises", c.source, re.M)),
                 None)
    if start is None:
        return None, None, None
    after = cells[start:]
    solutions = [c for c in after if is_solution(c)]
    asked = {int(n) for c in after if c not in solutions and c.cell_type == "markdown"
             for n in re.findall(r"^(\d+)\. ", c.source, re.M)}
    answered = {int(n) for c in solutions for n in re.findall(r"Solution (\d+)", c.source)}
    return asked, answered, solutions


def visibility_problems(nb):
    """Why a solution of `nb` could be seen before it is opened: [(cell index, reason)]."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if not is_solution(cell):
            continue
        hidden = cell.metadata.get("jupyter", {})
        if not hidden.get("source_hidden"):
            problems.append((i, "its source is not collapsed"))
        if cell.cell_type == "code" and not hidden.get("outputs_hidden"):
            problems.append((i, "its output is not collapsed"))
        first_of_run = i == 0 or not is_solution(nb.cells[i - 1])
        if first_of_run:
            before = nb.cells[i - 1] if i else None
            if before is None or before.cell_type != "markdown" or not MARKER.search(before.source):
                problems.append((i, "no visible 'Solution' marker cell right before it (a plain viewer would show "
                                    "the answer under the question)"))
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_every_exercise_has_a_hidden_executed_solution(path):
    nb = nbformat.read(path, as_version=4)
    asked, answered, solutions = exercises_and_solutions(nb)
    assert asked is not None, f"{path.name}: no '## Exercises' section"
    assert asked, f"{path.name}: the Exercises section lists no numbered exercises"
    assert asked <= answered, f"{path.name}: exercises {sorted(asked - answered)} have no cell tagged 'solution'"
    problems = visibility_problems(nb)
    assert not problems, (f"{path.name}: solutions visible before they are opened (fix: .venv/bin/python "
                          f"tests/test_solutions.py --fix {path.relative_to(ROOT)}):\n"
                          + "\n".join(f"  cell {i}: {why}: {nb.cells[i].source[:60]!r}" for i, why in problems))
    for cell in solutions:
        if cell.cell_type == "code" and path.parent.name == "notebooks":     # a chapter: its code cells are the package
            assert "active-ipynb" in cell.metadata.get("tags", []), \
                f"{path.name}: a code solution without 'active-ipynb' would become package code: {cell.source[:60]!r}"


def _toy(hidden_output=True, marker=True):
    hidden = {"source_hidden": True, "outputs_hidden": hidden_output}
    cells = [nbformat.v4.new_markdown_cell("## Exercises\n\n1. One.\n2. Two.")]
    if marker:
        cells.append(nbformat.v4.new_markdown_cell("**Solution 1** — collapsed below."))
    cells.append(nbformat.v4.new_code_cell("# Solution 1.\nprint(42)", metadata={"tags": ["active-ipynb", "solution"],
                                                                                 "jupyter": hidden}))
    return nbformat.v4.new_notebook(cells=cells)


def test_the_check_fails_on_a_missing_or_visible_solution():
    asked, answered, _ = exercises_and_solutions(_toy())
    assert asked == {1, 2} and answered == {1}            # exercise 2 unanswered: the test above would fail
    assert visibility_problems(_toy()) == []
    assert [why for _, why in visibility_problems(_toy(hidden_output=False))] == ["its output is not collapsed"]
    assert "marker" in visibility_problems(_toy(marker=False))[0][1]


def test_fix_makes_a_notebook_pass():
    nb = _toy(hidden_output=False, marker=False)
    fix_notebook(nb)
    assert visibility_problems(nb) == []
    before = len(nb.cells)
    fix_notebook(nb)                                      # idempotent: no second marker
    assert len(nb.cells) == before


def fix_notebook(nb):
    """Collapse every solution's source and output; put a marker cell before every run of solution cells."""
    i = 0
    while i < len(nb.cells):
        cell = nb.cells[i]
        if is_solution(cell):
            hidden = cell.metadata.setdefault("jupyter", {})
            hidden["source_hidden"] = True
            if cell.cell_type == "code":
                hidden["outputs_hidden"] = True
            before = nb.cells[i - 1] if i else None
            first_of_run = before is None or not is_solution(before)
            if first_of_run and (before is None or before.cell_type != "markdown" or not MARKER.search(before.source)):
                end = next((j for j in range(i, len(nb.cells)) if not is_solution(nb.cells[j])), len(nb.cells))
                numbers = sorted({int(n) for c in nb.cells[i:end] for n in re.findall(r"Solution (\d+)", c.source)})
                label = ("**Solution**" if not numbers else f"**Solution {numbers[0]}**" if len(numbers) == 1
                         else f"**Solutions {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}**")
                marker = nbformat.v4.new_markdown_cell(
                    f"{label} — try the exercises first. The worked solutions are in the collapsed cells below "
                    "(click a bar to open it; outputs are collapsed too).")
                nb.cells.insert(i, marker)
                i += 1
        i += 1
    return nb


if __name__ == "__main__":
    if sys.argv[1:2] != ["--fix"] or len(sys.argv) < 3:
        sys.exit(__doc__)
    for name in sys.argv[2:]:
        path = Path(name)
        nb = nbformat.read(path, as_version=4)
        fix_notebook(nb)
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"fixed {path}")
