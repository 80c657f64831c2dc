"""The monitor's metrics, plot rows and report on a drifting history of records."""

from __future__ import annotations

from dsprior.monitoring import NO_BATCHES, Rules, monitor_history
from tests.factories import monitor_record

RULES = Rules(precision_floor=0.8, prior_low=0.005, prior_high=0.025, consecutive=3)
SHIPPED = {"prior": 0.0114, "threshold": 0.26, "precision": 0.9, "recall": 0.87,
           "alerts_per_1000": 11.0}  # fmt: skip


def drifting(priors: list[float], precisions: list[float] | None = None) -> list[dict]:
    precisions = precisions or [0.9] * len(priors)
    return [
        monitor_record(f"day-{d:02d}", prior=p, precision=q)
        for d, (p, q) in enumerate(zip(priors, precisions, strict=True))
    ]


def test_a_prior_that_drifts_out_alerts_after_consecutive_batches_and_says_what_to_do() -> None:
    # the interval is the value -+20%: 0.025 / 0.8 = 0.031 is the first prior wholly above
    priors = [0.01] * 5 + [0.02, 0.03, 0.035, 0.04, 0.04, 0.04] + [0.012] * 3
    metrics, plots, report = monitor_history(drifting(priors), rules=RULES, shipped=SHIPPED)
    (alert,) = metrics["alerts"]
    assert alert == {
        "rule": "prior_high",
        "what": "prior above the band",
        "since": "day-07",
        "fired_at": "day-09",  # the third breach in a row, not before
        "last": "day-10",
        "breaches": 4,
        "active": False,
    }
    assert metrics["batches"] == 14 and metrics["breaching_batches"] == 4
    assert not metrics["alerting"] and metrics["latest"]["batch"] == "day-13"
    assert "ended: prior above the band** since `day-07` (fired at `day-09`" in report
    assert "`--adapt-prior`" in report and "**No alert is active.**" in report
    assert report.count("\n| day-") == 14
    # the pictures: every batch of the estimate with its interval, the reference lines
    prior_rows = [r for r in plots["prior"] if r["series"].startswith("estimated")]
    assert [r["batch"] for r in prior_rows] == [f"day-{d:02d}" for d in range(14)]
    assert prior_rows[7]["low"] == prior_rows[7]["value"] * 0.8
    series = {r["series"] for r in plots["prior"]}
    assert series == {
        "estimated without labels (EM, 95% interval)",
        "the bundle's prior",
        "prior band: high (monitor.prior_band)",
        "prior band: low (monitor.prior_band)",
    }
    assert {r["series"] for r in plots["precision"]} == {
        "estimated without labels (CBPE, 95% interval)",
        "shipped: evaluate's test at the chosen threshold",
        "floor (monitor.precision_floor)",
    }
    assert all(r["order"] == int(r["batch"][-2:]) for r in plots["alerts"])


def test_a_falling_precision_still_breaching_at_the_end_is_active() -> None:
    precisions = [0.9] * 4 + [0.7] * 3
    metrics, _, report = monitor_history(
        drifting([0.01] * 7, precisions), rules=RULES, shipped=SHIPPED
    )
    (alert,) = metrics["alerts"]
    assert alert["rule"] == "precision" and alert["active"] and alert["fired_at"] == "day-06"
    assert metrics["alerting"] and "**1 alert(s) active.**" in report
    assert "ACTIVE: precision below the floor** since `day-04`" in report
    assert "Relabel a random sample" in report


def test_labels_and_true_label_estimates_are_drawn_where_the_batches_have_them() -> None:
    rows = drifting([0.01, 0.01])
    rows[1]["measured"] = {"prior": 0.011, "precision": 0.88, "alerts_per_1000": 10.0}
    rows[1]["estimated_prior_true"] = {"value": 0.012, "ci": [0.01, 0.014], "method": "EM"}
    _, plots, report = monitor_history(rows, rules=RULES, shipped=SHIPPED)
    measured = [r for r in plots["precision"] if r["series"].startswith("measured")]
    assert [(r["batch"], r["value"], r["low"]) for r in measured] == [("day-01", 0.88, None)]
    true = [r for r in plots["prior"] if "true labels" in r["series"]]
    assert [r["value"] for r in true] == [0.012]
    assert "| 0.011 / 0.88 |" in report


def test_an_empty_history_draws_the_reference_lines_and_says_no_batches_yet() -> None:
    metrics, plots, report = monitor_history([], rules=RULES, shipped=SHIPPED)
    assert metrics["batches"] == 0 and metrics["alerts"] == [] and metrics["latest"] is None
    for rows in plots.values():
        assert rows and {r["batch"] for r in rows} == {NO_BATCHES}
    assert {r["value"] for r in plots["precision"]} == {0.9, 0.8}
    assert "No batches yet" in report


def test_a_years_history_is_read_in_linear_time() -> None:
    import time

    rows = drifting([0.01] * 365)
    # this process's CPU seconds, not the wall clock: a CI run once saw 47 s of wall time
    # here (the shared machine stalled) for work that takes 0.01 s
    began = time.process_time()
    metrics, plots, _ = monitor_history(rows, rules=RULES, shipped=SHIPPED)
    assert time.process_time() - began < 2.0
    assert metrics["batches"] == 365 and len(plots["prior"]) == 365 * 4
