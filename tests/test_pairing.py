"""The literate-export gate: notebooks and their paired files agree, and modules are pure.

(a) every paired module's top level holds only imports, definitions, constants and
    docstrings, and importing it prints nothing;
(b) every notebook has its paired file, every paired file has its notebook, and the
    text jupytext writes from the notebook equals the committed paired file — so an
    edit on either side without re-pairing fails here.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
MODULES = sorted((ROOT / "diydnn").glob("_[0-9][0-9]_*.py"))


def _paired_path(notebook):
    from jupytext.config import load_jupytext_configuration_file
    from jupytext.paired_paths import paired_paths
    config = load_jupytext_configuration_file(str(ROOT / "jupytext.toml"))
    rel = notebook.relative_to(ROOT).as_posix()
    formats = config.default_formats(rel)
    assert formats, f"{rel}: no pairing rule in jupytext.toml matches this notebook"
    others = [(path, fmt) for path, fmt in paired_paths(rel, "ipynb", formats) if fmt["extension"] != ".ipynb"]
    assert len(others) == 1, f"{rel}: expected exactly one paired text file, got {others}"
    return ROOT / others[0][0], others[0][1], config


def test_there_is_something_to_check():
    assert NOTEBOOKS and MODULES


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_and_paired_file_agree(notebook):
    import jupytext
    path, fmt, config = _paired_path(notebook)
    assert path.exists(), f"{notebook.name} has no paired file: expected {path.relative_to(ROOT)}"
    expected = jupytext.writes(jupytext.read(notebook), fmt=fmt, config=config)
    actual = path.read_text()
    if actual != expected:
        import difflib
        diff = "".join(difflib.unified_diff(actual.splitlines(True), expected.splitlines(True),
                                            f"{path.relative_to(ROOT)} (committed)", f"from {notebook.name}", n=1))
        pytest.fail(f"{notebook.relative_to(ROOT)} and {path.relative_to(ROOT)} disagree; re-pair them "
                    f"(see README, 'Editing the course'):\n{diff[:3000]}")


def test_every_paired_file_has_its_notebook():
    paired = {_paired_path(nb)[0] for nb in NOTEBOOKS}
    texts = set(MODULES) | {p for p in (ROOT / "notebooks" / "experiments").glob("*.py")}
    orphans = sorted(str(p.relative_to(ROOT)) for p in texts - paired)
    assert not orphans, f"paired files without a notebook (create the notebook or delete the file): {orphans}"


def _is_constant_expr(node):
    """Literals, names, attributes and containers/arithmetics of them: no calls, no comprehensions."""
    allowed = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Dict, ast.Set, ast.Load,
               ast.UnaryOp, ast.BinOp, ast.unaryop, ast.operator)
    return all(isinstance(n, allowed) for n in ast.walk(node))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_top_level_is_definitions_only(module):
    tree = ast.parse(module.read_text())
    for node in tree.body:
        ok = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        ok = ok or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        ok = ok or (isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_constant_expr(node.value))
        assert ok, (f"{module.name}, line {node.lineno}: top-level statement that is not an import, definition, "
                    f"constant or docstring: {ast.unparse(node)[:80]!r}. Tag teaching cells 'active-ipynb'.")


@pytest.mark.parametrize("name", ["diydnn"] + [f"diydnn.{p.stem}" for p in MODULES])
def test_import_prints_nothing(name):
    out = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", f"import {name} printed: {out.stdout!r} {out.stderr!r}"
