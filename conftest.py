"""Test configuration for the whole suite (unit tests and notebooks under nbval).

Set here, once, before any test or notebook kernel starts (kernels inherit os.environ):
  - matplotlib draws off-screen;
  - DIYDNN_QUICK=1 shrinks long notebook runs (each still asserts that it learned);
  - MNIST is found the way a user's session finds it: DIYDNN_DATA_DIR if set, else the project's
    shared copy ../shared/data/mnist *if it exists*, else the cache folder, else a verified download
    (see chapter 08). When no copy can be reached, the tests that need MNIST are skipped with ONE
    message saying how to provide the files; under CI (CI=true) the run stops with that message
    instead, so CI can never pass by skipping the real-data tests;
  - Weights & Biases is disabled, silent, and keeps any files under a git-ignored folder.
"""
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
ARTIFACTS = ROOT / ".test-artifacts"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

os.environ["MPLBACKEND"] = "Agg"
os.environ["DIYDNN_QUICK"] = "1"
if not os.environ.get("DIYDNN_DATA_DIR") and SHARED_MNIST.is_dir():
    os.environ["DIYDNN_DATA_DIR"] = str(SHARED_MNIST.resolve())
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
for var, sub in (("WANDB_DIR", "wandb"), ("WANDB_CACHE_DIR", "wandb-cache"), ("WANDB_CONFIG_DIR", "wandb-config"),
                 ("WANDB_DATA_DIR", "wandb-data")):
    os.environ[var] = str(ARTIFACTS / sub)
    (ARTIFACTS / sub).mkdir(parents=True, exist_ok=True)

# a notebook needs MNIST when one of its code cells calls the loader (directly or through the toolkit)
_USES_MNIST = re.compile(r"\b(load_mnist|mnist_splits|mnist_dir)\(")
_MISSING = {}          # "message": why MNIST cannot be reached (filled once, when a test needs it)


def pytest_configure(config):
    config.addinivalue_line("markers", "mnist: the test reads the real MNIST files (skipped with one message "
                                       "when they cannot be reached; an error under CI)")


_NOTEBOOK_USES_MNIST = {}   # notebook path -> bool, read once per notebook (nbval makes one item per cell)


def _notebook_uses_mnist(path):
    if path not in _NOTEBOOK_USES_MNIST:
        try:
            cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
            uses = any(c["cell_type"] == "code" and _USES_MNIST.search("".join(c["source"])) for c in cells)
        except (OSError, ValueError, KeyError):
            uses = False
        _NOTEBOOK_USES_MNIST[path] = uses
    return _NOTEBOOK_USES_MNIST[path]


def _needs_mnist(item):
    path = str(getattr(item, "path", item.fspath))
    return item.get_closest_marker("mnist") is not None or (path.endswith(".ipynb") and _notebook_uses_mnist(path))


def _mnist_problem():
    """None if MNIST is reachable (found, or downloaded and verified now); else the message to show."""
    from diydnn._08_mnist import mnist_dir
    try:
        mnist_dir()
        return None
    except (FileNotFoundError, ValueError) as e:
        return (f"MNIST is not available, so the tests that read it cannot run.\n{e}\n"
                f"For the tests, the files are looked for in: DIYDNN_DATA_DIR, then {SHARED_MNIST} (if it exists), "
                f"then the cache folder, then a verified download (unless DIYDNN_OFFLINE is set).")


def _in_ci():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(session, config, items):
    needing = [item for item in items if _needs_mnist(item)]
    if not needing:
        return
    problem = _mnist_problem()
    if problem is None:
        return
    if _in_ci():
        pytest.exit(f"CI=true and MNIST is missing: failing instead of skipping {len(needing)} real-data tests.\n"
                    + problem, returncode=pytest.ExitCode.TESTS_FAILED)
    _MISSING["message"] = f"{problem}\nSkipping the {len(needing)} tests that need MNIST."
    skip = pytest.mark.skip(reason="MNIST not available (see the message printed before the tests)")
    for item in needing:
        item.add_marker(skip)


def pytest_report_collectionfinish(config, start_path, items):
    """Printed once, right after collection, before any test runs."""
    return ["", _MISSING["message"], ""] if "message" in _MISSING else []
