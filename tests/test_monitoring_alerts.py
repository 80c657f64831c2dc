"""Breaches are judged on the whole interval, and an alert fires after `consecutive` in a row."""

from __future__ import annotations

from typing import Any

import pytest

from dsprior.monitoring import Rules, breaches, find_alerts

RULES = Rules(precision_floor=0.8, prior_low=0.005, prior_high=0.025, consecutive=3)


def row(prior_ci: list[Any], precision_ci: list[Any] = (0.85, 0.95)) -> dict[str, Any]:
    return {
        "estimated_prior": {"value": None, "ci": list(prior_ci)},
        "estimated_at_threshold": {"precision": {"value": None, "ci": list(precision_ci)}},
    }


@pytest.mark.parametrize(
    ("prior_ci", "precision_ci", "expected"),
    [
        ([0.01, 0.02], [0.85, 0.95], {"prior_high": False, "prior_low": False, "precision": False}),
        # the point may be past the line; only an interval wholly past it breaches
        ([0.02, 0.03], [0.7, 0.82], {"prior_high": False, "prior_low": False, "precision": False}),
        ([0.026, 0.04], [0.6, 0.79], {"prior_high": True, "prior_low": False, "precision": True}),
        ([0.001, 0.004], [0.85, 0.95], {"prior_high": False, "prior_low": True, "precision": False}),
        ([None, None], [0.85, None], {"prior_high": None, "prior_low": None, "precision": None}),
    ],
)  # fmt: skip
def test_a_breach_is_the_whole_interval_past_the_line(prior_ci, precision_ci, expected) -> None:
    assert breaches(row(prior_ci, precision_ci), RULES) == expected


def test_a_rule_set_to_null_is_not_judged() -> None:
    rules = Rules(precision_floor=None, prior_low=None, prior_high=0.025, consecutive=3)
    assert breaches(row([0.03, 0.04], [0.1, 0.2]), rules) == {"prior_high": True}
    assert breaches({}, rules) == {"prior_high": None}  # an empty batch: undecided


def verdicts(states: str) -> list[dict[str, bool | None]]:
    """``"..XX?X."``: no breach, breach, undecided (of the rule prior_high)."""
    return [{"prior_high": {".": False, "X": True, "?": None}[s]} for s in states]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ("....", []),
        ("XX.XX.", []),  # never three in a row
        ("..XXX", [("b2", "b4", "b4", 3, True)]),
        ("..XXXX..", [("b2", "b4", "b5", 4, False)]),
        # an undecided batch neither counts nor breaks the run
        ("X?XX.", [("b0", "b3", "b3", 3, False)]),
        ("XXX.XXX", [("b0", "b2", "b2", 3, False), ("b4", "b6", "b6", 3, True)]),
        ("XXX??", [("b0", "b2", "b2", 3, True)]),  # still active: no batch met the rule since
    ],
)
def test_an_alert_fires_after_consecutive_breaches_and_not_before(states, expected) -> None:
    names = [f"b{i}" for i in range(len(states))]
    got = find_alerts(names, verdicts(states), consecutive=3)
    assert [(a.since, a.fired_at, a.last, a.breaches, a.active) for a in got] == expected
    assert all(a.rule == "prior_high" for a in got)


def test_alerts_of_several_rules_are_listed_oldest_first() -> None:
    names = ["a", "b", "c", "d"]
    states = [
        {"prior_high": False, "precision": True},
        {"prior_high": True, "precision": True},
        {"prior_high": True, "precision": False},
        {"prior_high": False, "precision": False},
    ]
    got = find_alerts(names, states, consecutive=2)
    assert [(a.rule, a.since, a.active) for a in got] == [
        ("precision", "a", False),
        ("prior_high", "b", False),
    ]
    assert got[0].as_dict()["what"] == "precision below the floor"
