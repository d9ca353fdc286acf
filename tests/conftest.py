"""Make tests/ importable as plain modules (reference_autodiff, site_checks); the course website, built once."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def course_site(tmp_path_factory):
    """The course website built once per test session into a scratch folder (tests/site_checks.py)."""
    import site_checks
    return site_checks.build(site_checks.ROOT, tmp_path_factory.mktemp("site"))
