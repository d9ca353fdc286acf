"""Every chapter and experiment ends with exercises, and every exercise has a worked solution that stays hidden
until the learner asks for it:

- a solution cell is tagged `solution`; a code solution is collapsed in JupyterLab — its source AND its output
  (`metadata.jupyter.source_hidden` and `outputs_hidden`) — and its first line, which the collapsed bar shows, is
  only its label; a markdown solution is a closed HTML <details> element, so no answer shows under its question;
- every run of solution cells follows a visible marker cell (markdown, not a solution) that says "Solution", so
  that in a plain notebook viewer, which ignores the collapse, an answer never sits under the question's text;
- nbval runs every notebook, so a solution's asserts are tested; in a chapter a code solution is also tagged
  `active-ipynb`, so it never becomes part of the package.

To fix a notebook (collapse every solution's source and output, add the missing markers):
    .venv/bin/python tests/test_solutions.py --fix notebooks/NN_x.ipynb [...]
"""
import ast
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


LABEL = re.compile(r"^# Solution \d+\.$")                       # a code solution's whole first line
DETAILS = re.compile(r"^<details><summary>.*Solution.*</summary>\n.*\n</details>$", re.S)


def runs_hidden(source):
    """True if the code is imports followed by one `with hidden_output(...):` block (chapter 00)."""
    body = ast.parse(source).body
    while body and isinstance(body[0], (ast.Import, ast.ImportFrom)):
        body = body[1:]
    return (len(body) == 1 and isinstance(body[0], ast.With) and isinstance(body[0].items[0].context_expr, ast.Call)
            and getattr(body[0].items[0].context_expr.func, "id", None) == "hidden_output")


def visibility_problems(nb):
    """Why a solution of `nb` could be seen before it is opened: [(cell index, reason)].

    JupyterLab shows a collapsed cell as a bar with the cell's FIRST LINE in it, Run All renders (and so
    un-collapses) every markdown cell, and running a code cell shows its output again. Hence: a code solution is
    collapsed (source and output), its first line is only its label, "# Solution N.", and it runs inside
    `hidden_output()`, which shows what it prints in a closed <details> element; a markdown solution is a <details>
    element itself, closed until clicked in JupyterLab and in plain viewers alike."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if not is_solution(cell):
            continue
        hidden = cell.metadata.get("jupyter", {})
        if cell.cell_type == "code":
            if not hidden.get("source_hidden"):
                problems.append((i, "its source is not collapsed"))
            if not hidden.get("outputs_hidden"):
                problems.append((i, "its output is not collapsed"))
            if not LABEL.match(cell.source.split("\n", 1)[0]):
                problems.append((i, "its first line (shown on the collapsed bar) is not just '# Solution N.'"))
            if not runs_hidden(cell.source):
                problems.append((i, "it does not run inside `with hidden_output():` (running it would print the answer)"))
        elif not DETAILS.match(cell.source.strip()) or "<details open" in cell.source:
            problems.append((i, "a markdown solution is not a closed <details> element"))
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
    cells.append(nbformat.v4.new_markdown_cell("**Solution 1.** The answer is $6 \\cdot 7$.",
                                               metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}}))
    cells.append(nbformat.v4.new_code_cell("# Solution 1. Print it.\nprint(42)", metadata={"tags": ["active-ipynb", "solution"],
                                                                                         "jupyter": hidden}))
    return nbformat.v4.new_notebook(cells=cells)


def test_the_check_fails_on_a_missing_or_visible_solution():
    asked, answered, _ = exercises_and_solutions(_toy())
    assert asked == {1, 2} and answered == {1}            # exercise 2 unanswered: the test above would fail
    reasons = [why for _, why in visibility_problems(_toy(hidden_output=False))]
    assert "its output is not collapsed" in reasons
    assert any("first line" in why for why in reasons) and any("<details>" in why for why in reasons)
    assert any("marker" in why for _, why in visibility_problems(_toy(marker=False)))


def test_fix_makes_a_notebook_pass():
    nb = _toy(hidden_output=False, marker=False)
    fix_notebook(nb)
    assert visibility_problems(nb) == []
    assert nb.cells[-1].source == f"# Solution 1.\n{IMPORT}\nwith hidden_output():\n    # Print it.\n    print(42)"
    assert nb.cells[-2].source.startswith("<details><summary><b>Solution 1</b>") and "$6 \\cdot 7$" in nb.cells[-2].source
    before = [c.source for c in nb.cells]
    fix_notebook(nb)                                      # idempotent
    assert [c.source for c in nb.cells] == before


def _label_first_line(source, number):
    """'# Solution 2. The rest' -> '# Solution 2.\n# The rest'; a cell without a label gets one."""
    first, _, rest = source.partition("\n")
    m = re.match(r"^# Solution (\d+)\s*[.:]?\s*(.*)$", first)
    if m is None:
        return f"# Solution {number}.\n{source}"
    if not m.group(2):
        return f"# Solution {m.group(1)}.\n{rest}" if rest else f"# Solution {m.group(1)}."
    return f"# Solution {m.group(1)}.\n# {m.group(2)}" + (f"\n{rest}" if rest else "")


IMPORT = "from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened"


def _wrap_in_hidden_output(source, first_in_notebook):
    """'# Solution N.' + body -> the label, then the body inside `with hidden_output():` (plt.show() dropped: the
    block draws the figures it leaves open)."""
    if runs_hidden(source.partition("\n")[2]) or runs_hidden(source):
        return source
    label, _, body = source.partition("\n")
    lines = [line for line in body.splitlines() if line.strip() != "plt.show()"]
    while lines and not lines[-1].strip():
        lines.pop()
    inner = "\n".join(("    " + line) if line.strip() else "" for line in lines) or "    pass"
    head = [label] + ([IMPORT] if first_in_notebook else []) + ["with hidden_output():"]
    return "\n".join(head) + "\n" + inner


def _outputs_as_details(outputs):
    """Stored outputs of a solution cell as `hidden_output` would have shown them: one closed <details> element
    with the printed text and the figures (so that re-running is not needed to hide an answer already stored)."""
    from diydnn._00_conventions import details_bundle
    if not outputs or all(o.get("output_type") == "error" or "<details>" in str(o.get("data", {}).get("text/html", ""))
                          for o in outputs):
        return outputs
    text = "".join(o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    images = [o["data"]["image/png"].replace("\n", "") for o in outputs if "image/png" in o.get("data", {})]
    rest = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    return [nbformat.v4.new_output("display_data", data=details_bundle("Output of the solution", text, images))] + rest


def _as_details(source, number):
    """A markdown solution as a closed <details> element (its '**Solution N.**' label moves into the summary)."""
    if DETAILS.match(source.strip()):
        return source
    body = re.sub(r"^\*\*Solution \d+\.?\*\*\.?\s*", "", source.strip())
    return f"<details><summary><b>Solution {number}</b> (click to open)</summary>\n\n{body}\n\n</details>"


def fix_notebook(nb):
    """Hide every solution until it is opened (see visibility_problems) and mark every run of solutions."""
    i, number = 0, None
    while i < len(nb.cells):
        cell = nb.cells[i]
        if is_solution(cell):
            found = re.findall(r"Solution (\d+)", cell.source)
            number = int(found[0]) if found else number
            hidden = cell.metadata.setdefault("jupyter", {})
            if cell.cell_type == "code":
                hidden["source_hidden"] = hidden["outputs_hidden"] = True
                cell.metadata["collapsed"] = True        # what JupyterLab writes beside outputs_hidden on save
                cell.source = _label_first_line(cell.source, number)
                first = not any(IMPORT in c.source for c in nb.cells[:i] if c.cell_type == "code")
                cell.source = _wrap_in_hidden_output(cell.source, first and "def hidden_output" not in
                                                     "".join(c.source for c in nb.cells[:i]))
                cell.outputs = _outputs_as_details(cell.outputs)
            else:
                hidden.pop("source_hidden", None)         # the closed <details> hides it; rendered, it stays closed
                if not hidden:
                    del cell.metadata["jupyter"]
                cell.source = _as_details(cell.source, number)
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
