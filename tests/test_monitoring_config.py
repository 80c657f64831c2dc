"""The monitor params: every mistake named with its full key path, the value and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from dsprior.monitoring import Rules, check_params
from tests.conftest import ROOT

GOOD = {
    "precision_floor": 0.8,
    "prior_band": {"low": 0.005, "high": 0.025},
    "consecutive": 3,
    "fail_on_alert": False,
}


def with_(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def test_the_repositorys_params_are_valid() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["monitor"]
    assert isinstance(check_params(params), Rules)


def test_null_turns_a_rule_off() -> None:
    rules = check_params(with_(precision_floor=None, prior_band={"low": None, "high": 0.1}))
    assert rules.precision_floor is None and rules.prior_low is None and rules.prior_high == 0.1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (with_(precision_floor=1.5), "monitor.precision_floor must be null or a number > 0 and <= 1, got 1.5"),
        (with_(precision_floor="high"), "monitor.precision_floor must be null or a number > 0 and <= 1, got 'high'"),
        (with_(prior_band={"low": 0.0, "high": 0.1}), "monitor.prior_band.low must be null or a number > 0 and < 1, got 0.0"),
        (with_(prior_band={"low": 0.05, "high": 0.01}), "monitor.prior_band.low must be below monitor.prior_band.high, got low 0.05 and high 0.01"),
        (with_(prior_band=[0.01, 0.02]), "monitor.prior_band must be a mapping with keys ['low', 'high'], got [0.01, 0.02]"),
        (with_(prior_band={"low": 0.01}), "monitor.prior_band.high is required; add it to params.yaml"),
        (with_(consecutive=0), "monitor.consecutive must be an integer >= 1, got 0"),
        (with_(consecutive=2.5), "monitor.consecutive must be an integer >= 1, got 2.5"),
        (with_(fail_on_alert="yes"), "monitor.fail_on_alert must be true or false, got 'yes'"),
        ({**GOOD, "consecutiv": 3}, "monitor.consecutiv: unknown key (value 3); allowed keys in monitor are ['precision_floor', 'prior_band', 'consecutive', 'fail_on_alert']; did you mean 'consecutive'?"),
        ({k: v for k, v in GOOD.items() if k != "fail_on_alert"}, "monitor.fail_on_alert is required; add it to params.yaml"),
    ],
)  # fmt: skip
def test_bad_params_are_refused_with_key_value_and_what_is_allowed(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        check_params(params)
    assert str(info.value) == message
