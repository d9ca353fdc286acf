"""A fresh clone, with no ../shared beside it and no MNIST anywhere, must give ONE clear message.

The test copies the files a `git clone` would hold (tracked + new, not ignored) that the MNIST tests
need into a temporary folder, and runs `pytest tests/test_mnist.py` there in a subprocess, with an
empty cache folder and DIYDNN_OFFLINE=1 (so the answer does not depend on this machine's network):
  - without CI: the real-data tests are skipped, the message how to provide MNIST appears once,
    up front, and no traceback;
  - with CI=true: the run stops before any test with that message and a non-zero exit code;
  - with the project's shared copy beside the clone (../shared/data/mnist) the real-data tests run.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("conftest.py", "pyproject.toml", "diydnn/", "tests/conftest.py", "tests/test_mnist.py")
# the four real-data tests of test_mnist.py and one that needs no data (a subset keeps this test quick)
SUBSET = ("tests/test_mnist.py", "-k", "real_files or full_load or load_mnist_real or raw_and_unflattened or constants")
HEADLINE = "MNIST is not available, so the tests that read it cannot run."


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout to know which files a clone holds")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    base = tmp_path_factory.mktemp("fresh")
    dest = base / "diydnn-clone"
    for name in files:
        if name.startswith(NEEDED) and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    assert not (base / "shared").exists()
    return dest


def run_pytest(clone, *args, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("DIYDNN_DATA_DIR", "CI", "PYTEST_ADDOPTS")
           and not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=str(clone), DIYDNN_CACHE_DIR=str(clone.parent / "empty-cache"), DIYDNN_OFFLINE="1",
               **env_changes)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def test_fresh_clone_without_mnist_skips_with_one_clear_message(clone):
    code, out = run_pytest(clone, *SUBSET)
    assert code == 0, out
    assert out.count(HEADLINE) == 1 and "DIYDNN_DATA_DIR" in out and "1 passed, 4 skipped" in out, out
    assert "Traceback" not in out and "FileNotFoundError" not in out and " passed" in out, out
    assert out.index(HEADLINE) < out.index(" passed")              # up front, before the results


def test_fresh_clone_under_ci_fails_instead_of_skipping(clone):
    code, out = run_pytest(clone, *SUBSET, CI="true")
    assert code != 0, out
    assert out.count(HEADLINE) == 1 and "CI=true and MNIST is missing" in out, out
    assert "Traceback" not in out and " passed" not in out, out    # stopped before any test ran


def test_fresh_clone_finds_the_shared_copy_beside_it(clone):
    from diydnn._08_mnist import mnist_dir
    try:
        real = mnist_dir()
    except (FileNotFoundError, ValueError):
        pytest.skip("no MNIST in this session to put beside the clone")
    shared = clone.parent / "shared" / "data"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "mnist").symlink_to(real, target_is_directory=True)
    try:
        code, out = run_pytest(clone, "tests/test_mnist.py", "-k", "real_files or load_mnist_real", CI="true")
    finally:
        (shared / "mnist").unlink()
    assert code == 0 and "2 passed" in out and HEADLINE not in out, out
