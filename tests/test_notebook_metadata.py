"""Open + save in JupyterLab, with no edit, must change no file.

What a JupyterLab save changes, and so what every committed notebook must already be:
  - the kernelspec becomes the running kernel's (display name "Python 3 (ipykernel)", not jupytext's
    default "Python 3");
  - jupytext records the format option that jupytext.toml sets: `"jupytext": {"notebook_metadata_filter": "-all"}`;
  - a code cell whose outputs are collapsed (`jupyter.outputs_hidden`) gets the legacy key `"collapsed": true`;
  - the notebook makes a round trip through the browser's JSON: a float with an integral value (10.0, stored
    by nbconvert in widget state such as a progress bar's "max": 5148.0) comes back as the integer 10.
This test simulates that save and requires the file to come out byte for byte the same; the browser test
(tests/browser/test_learner.py) checks real saves.

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


def _as_javascript_would(value):
    """value after JSON.parse + JSON.stringify in a browser: integral floats become integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _as_javascript_would(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_javascript_would(v) for v in value]
    return value


def saved_by_jupyterlab(text):
    """The text a JupyterLab save writes for this notebook (jupyter_server writes it with nbformat)."""
    import nbformat
    nb = nbformat.from_dict(_as_javascript_would(json.loads(text)))
    for cell in nb.cells:      # a code cell with collapsed outputs is saved with the legacy key "collapsed" too
        if cell.cell_type == "code" and cell.metadata.get("jupyter", {}).get("outputs_hidden"):
            cell.metadata["collapsed"] = True
    nb.metadata["kernelspec"] = expected_kernelspec()
    nb.metadata["jupytext"] = dict(JUPYTEXT_METADATA)
    return nbformat.writes(nb, version=4) + "\n"


def metadata_problems(path):
    text = path.read_text()
    metadata = json.loads(text)["metadata"]
    problems = []
    if metadata.get("kernelspec") != expected_kernelspec():
        problems.append(f"kernelspec is {metadata.get('kernelspec')}, JupyterLab saves {expected_kernelspec()}")
    if metadata.get("jupytext") != JUPYTEXT_METADATA:
        problems.append(f"jupytext metadata is {metadata.get('jupytext')}, jupytext saves {JUPYTEXT_METADATA}")
    if not problems and saved_by_jupyterlab(text) != text:
        diff = next(i for i, (a, b) in enumerate(zip(saved_by_jupyterlab(text), text)) if a != b)
        problems.append(f"a save rewrites it (e.g. an integral float such as 10.0 -> 10), near {text[diff - 80:diff + 20]!r}")
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


def test_the_save_simulation_rewrites_integral_floats():
    text = notebooks()[0].read_text()
    nb = json.loads(text)
    nb["metadata"]["widgets"] = {"state": {"x": {"max": 5148.0, "value": 0.5}}}
    rewritten = json.loads(saved_by_jupyterlab(json.dumps(nb, indent=1)))
    assert rewritten["metadata"]["widgets"]["state"]["x"] == {"max": 5148, "value": 0.5}


def fix(path):
    """Write the notebook as a JupyterLab save would (metadata, integral floats); nothing else changes."""
    path.write_text(saved_by_jupyterlab(path.read_text()))


if __name__ == "__main__":
    if sys.argv[1:2] != ["--fix"]:
        sys.exit(__doc__)
    for name in sys.argv[2:] or notebooks():
        fix(Path(name))
