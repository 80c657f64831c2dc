"""Report numbers: one way to write a value, a missing one, a percentage and an interval."""

from __future__ import annotations

from dsprior.formatting import number, percent, with_interval


def test_numbers_in_decimals_or_significant_digits_and_missing_as_n_a() -> None:
    assert number(0.123456) == "0.123"
    assert number(12.5, 0) == "12"  # round half to even, as Python's format does
    assert number(0.000123456, 3, style="g") == "0.000123"
    assert number(None) == "n/a" and number(None, style="g") == "n/a"
    assert percent(0.25) == "25.0%" and percent(None) == "n/a"


def test_an_interval_follows_its_value_only_when_both_ends_are_known() -> None:
    assert with_interval(0.5, [0.25, 0.75], 2) == "0.50 [0.25, 0.75]"
    assert with_interval(0.5, [0.25, None], 2) == "0.50"
    assert with_interval(0.5, None, 2) == "0.50"
    assert with_interval(None, [0.1, 0.2], 1) == "n/a [0.1, 0.2]"
    assert with_interval(1234.5, (1000, 2000), 2, style="g") == "1.2e+03 [1e+03, 2e+03]"
