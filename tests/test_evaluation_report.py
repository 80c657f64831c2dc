"""The report (``dsprior.evaluation.report``), read from one ``evaluate_predictions`` run on
conftest's ``evaluated`` (a predictions table whose truth is known)."""

from __future__ import annotations

import pytest


def test_report_has_table_classic_example_and_production_terms(evaluated):
    metrics, _, report = evaluated
    for row in (
        "dev_a as sampled",
        "dev_a projected to the prior",
        "dev_b measured at the prior",
        "test measured at the prior",
    ):
        assert report.count(f"| {row} |") == 2  # the shipped rule and the chosen threshold
    assert "shipped rule (raw score >= 0.5)" in report
    assert "97/(97+150) = 0.393" in report
    assert "precision 97/(97+3) = 0.97" in report
    assert f"{metrics['test']['prior']['alerts_per_1000']:.1f} alerts" in report
    assert metrics["classic_example"]["precision_projected"] == pytest.approx(97 / 247)
    assert metrics["classic_example"]["precision_siblini"] == pytest.approx(97 / 247)
