"""Open + save in JupyterLab, with no edit, must change no file.

On save, JupyterLab writes the running kernel's kernelspec into the notebook (its display name is
"Python 3 (ipykernel)", not jupytext's default "Python 3"), and jupytext records the format option that
jupytext.toml sets (`"jupytext": {"notebook_metadata_filter": "-all"}`). So every committed notebook carries
exactly that metadata, and this test keeps it so (the browser test checks the real save, byte for byte).

To fix a notebook that fails here (e.g. a new one made with `jupytext --to notebook`):
    .venv/bin/python tests/test_notebook_metadata.py --fix notebooks/NN_x.ipynb
"""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTEXT_METADATA = {"notebook_metadata_filter": "-all"}    # what jupytext.toml makes jupytext record on save


def notebooks(root=ROOT):
    return sorted(p for p in (root / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def expected_kernelspec():
    """The kernelspec JupyterLab writes on save: the installed python3 kernel's."""
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec("python3")
    return {"display_name": spec.display_name, "language": spec.language, "name": "python3"}


def metadata_problems(path):
    metadata = json.loads(path.read_text())["metadata"]
    problems = []
    if metadata.get("kernelspec") != expected_kernelspec():
        problems.append(f"kernelspec is {metadata.get('kernelspec')}, JupyterLab saves {expected_kernelspec()}")
    if metadata.get("jupytext") != JUPYTEXT_METADATA:
        problems.append(f"jupytext metadata is {metadata.get('jupytext')}, jupytext saves {JUPYTEXT_METADATA}")
    return problems


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_metadata_is_what_a_save_writes(notebook):
    problems = metadata_problems(notebook)
    assert not problems, (f"{notebook.relative_to(ROOT)}: " + "; ".join(problems)
                          + f"\nfix with: .venv/bin/python tests/test_notebook_metadata.py --fix {notebook.relative_to(ROOT)}")


def test_the_check_can_fail(tmp_path):
    nb = json.loads(notebooks()[0].read_text())
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3"
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert metadata_problems(tmp_path / "x.ipynb")


def fix(path):
    """Set the metadata a JupyterLab save writes; leave everything else (written the way the server writes)."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = expected_kernelspec()
    nb.metadata["jupytext"] = dict(JUPYTEXT_METADATA)
    nbformat.write(nb, path)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--fix"]:
        sys.exit(__doc__)
    for name in sys.argv[2:] or notebooks():
        fix(Path(name))
