"""Every bad input of tests/bad_input_cases_core.py raises the expected exception with the expected text."""
import pytest

from bad_input_cases_core import CASES


def test_the_table_is_well_formed():
    assert len(CASES) >= 25
    whats = [case[1] for case in CASES]
    assert len(set(whats)) == len(whats), "each case describes a different bad input"
    for area, what, call, kind, text in CASES:
        assert isinstance(area, str) and isinstance(what, str) and callable(call)
        assert isinstance(kind, type) and issubclass(kind, Exception) and isinstance(text, str) and text


@pytest.mark.parametrize("area, what, call, kind, text", CASES, ids=[case[1] for case in CASES])
def test_bad_input_gets_a_clear_error(area, what, call, kind, text):
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is kind, f"{what}: expected {kind.__name__}, got {type(info.value).__name__}: {info.value}"
    assert text in str(info.value), f"{what}: {text!r} not in the message {str(info.value)!r}"
