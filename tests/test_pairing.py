"""The literate-export gate: notebooks and their paired files agree, and modules are pure.

(a) every paired module's top level holds only imports, definitions, constants and
    docstrings, and importing it prints nothing;
(b) every notebook has its paired file, every paired file has its notebook, and the
    text jupytext writes from the notebook equals the committed paired file — so an
    edit on either side without re-pairing fails here.
"""
import ast
import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def notebooks(root):
    return sorted(p for p in (root / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def modules(root):
    return sorted((root / "diydnn").glob("_[0-9][0-9]*_*.py"))


def paired_file(root, notebook):
    """(path, format, config) of the text file jupytext.toml pairs with `notebook`."""
    from jupytext.config import load_jupytext_configuration_file
    from jupytext.paired_paths import paired_paths
    config = load_jupytext_configuration_file(str(root / "jupytext.toml"))
    rel = notebook.relative_to(root).as_posix()
    formats = config.default_formats(rel)
    if not formats:
        raise ValueError(f"{rel}: no pairing rule in jupytext.toml matches this notebook")
    others = [(path, fmt) for path, fmt in paired_paths(rel, "ipynb", formats) if fmt["extension"] != ".ipynb"]
    if len(others) != 1:
        raise ValueError(f"{rel}: expected exactly one paired text file, got {others}")
    return root / others[0][0], others[0][1], config


def sync_problems(root, notebook):
    """Why `notebook` and its paired file disagree, or None."""
    import jupytext
    path, fmt, config = paired_file(root, notebook)
    if not path.exists():
        return f"{notebook.name} has no paired file: expected {path.relative_to(root)}"
    expected = jupytext.writes(jupytext.read(notebook), fmt=fmt, config=config)
    actual = path.read_text()
    if actual == expected:
        return None
    diff = "".join(difflib.unified_diff(actual.splitlines(True), expected.splitlines(True),
                                        f"{path.relative_to(root)} (committed)", f"from {notebook.name}", n=1))
    return (f"{notebook.relative_to(root)} and {path.relative_to(root)} disagree; re-pair them "
            f"(README, 'Editing the course safely'):\n{diff[:3000]}")


def orphans(root):
    paired = {paired_file(root, nb)[0] for nb in notebooks(root)}
    texts = set(modules(root)) | set((root / "notebooks" / "experiments").glob("*.py"))
    return sorted(str(p.relative_to(root)) for p in texts - paired)


def test_there_is_something_to_check():
    assert notebooks(ROOT) and modules(ROOT)


@pytest.mark.parametrize("notebook", notebooks(ROOT), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_and_paired_file_agree(notebook):
    problem = sync_problems(ROOT, notebook)
    assert problem is None, problem


def test_every_paired_file_has_its_notebook():
    found = orphans(ROOT)
    assert not found, f"paired files without a notebook (create the notebook or delete the file): {found}"


@pytest.mark.parametrize("side", ["notebook", "module"])
def test_the_gate_catches_an_edit_on_either_side(tmp_path, side):
    """Edit a code cell on one side of a copy of chapter 00 without re-pairing: the gate must object."""
    import nbformat
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "diydnn").mkdir()
    nb_path = tmp_path / "notebooks" / "00_conventions.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_conventions.ipynb", nb_path)
    py_path = tmp_path / "diydnn" / "_00_conventions.py"
    shutil.copy(ROOT / "diydnn" / "_00_conventions.py", py_path)
    assert sync_problems(tmp_path, nb_path) is None
    if side == "notebook":
        nb = nbformat.read(nb_path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code" and "def rel_error" in c.source)
        cell.source = cell.source.replace("1e-300", "1e-30")
        nbformat.write(nb, nb_path)
    else:
        py_path.write_text(py_path.read_text().replace("1e-300", "1e-30"))
    assert "disagree" in sync_problems(tmp_path, nb_path)
    py_path.unlink()
    assert "has no paired file" in sync_problems(tmp_path, nb_path)


def _is_constant_expr(node):
    """Literals, names, attributes and containers/arithmetics of them: no calls, no comprehensions."""
    allowed = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Dict, ast.Set, ast.Load,
               ast.UnaryOp, ast.BinOp, ast.unaryop, ast.operator)
    return all(isinstance(n, allowed) for n in ast.walk(node))


@pytest.mark.parametrize("module", modules(ROOT), ids=lambda p: p.name)
def test_module_top_level_is_definitions_only(module):
    tree = ast.parse(module.read_text())
    for node in tree.body:
        ok = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        ok = ok or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        ok = ok or (isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_constant_expr(node.value))
        assert ok, (f"{module.name}, line {node.lineno}: top-level statement that is not an import, definition, "
                    f"constant or docstring: {ast.unparse(node)[:80]!r}. Tag teaching cells 'active-ipynb'.")


@pytest.mark.parametrize("name", ["diydnn"] + [f"diydnn.{p.stem}" for p in modules(ROOT)])
def test_import_prints_nothing(name):
    out = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", f"import {name} printed: {out.stdout!r} {out.stderr!r}"
