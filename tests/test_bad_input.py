"""Every bad input of the table gets the error it promises, and media/bad_input.md is up to date."""
import pytest

from bad_input_table import REGENERATE, ROOT, TABLE, load_cases, render, run_case

CASES = load_cases()


def test_there_are_cases_from_every_file():
    assert len(CASES) >= 20 and {c[0] for c in CASES} >= {"data"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_bad_input_gets_a_clear_error(case):
    source, area, what, call, expected_type, expected_text = case
    name, message = run_case(call, expected_type, expected_text)
    assert "/tmp/" not in message and str(ROOT) not in message, message   # the table shows no absolute paths


def test_the_committed_table_is_up_to_date():
    assert TABLE.exists(), f"media/bad_input.md is missing; create it with: {REGENERATE}"
    assert TABLE.read_text() == render(CASES), f"media/bad_input.md is out of date; regenerate it with: {REGENERATE}"
