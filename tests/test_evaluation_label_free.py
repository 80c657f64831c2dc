"""The label-free estimates (``dsprior.evaluation.label_free``), with the calibration at the prior
and the prior sensitivity beside them, read from one ``evaluate_predictions`` run on scores
exactly calibrated at the prior, so that the estimates must find the measured numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsprior.evaluation.metrics import PRIOR_FACTORS
from dsprior.evaluation.pipeline import evaluate_predictions
from tests.factories import EVAL_BETA as BETA
from tests.factories import EVAL_PARAMS as PARAMS
from tests.factories import EVAL_PRIOR as PRIOR
from tests.factories import make_split, with_log_odds


@pytest.fixture(scope="module")
def calibrated():
    """Like ``predictions``, but with probabilities exactly calibrated at PRIOR (two Gaussian
    log-odds classes), so that the label-free estimates must find the measured numbers."""
    rng = np.random.default_rng(43)
    frame = pd.concat(
        [make_split(rng, s, n, keep) for s, n, keep in
         (("dev_a", 1500, BETA), ("dev_b", 2400, 1.0), ("test", 2400, 1.0))],
        ignore_index=True,
    )  # fmt: skip
    x = np.where(frame["label"] == 1, 2.0, -2.0) + rng.normal(size=len(frame))
    frame = with_log_odds(frame, 4.0 * x + np.log(PRIOR / (1 - PRIOR)), beta=BETA)
    frame = frame.reset_index(drop=True)
    return evaluate_predictions(
        frame, params=PARAMS, prior=PRIOR, prior_source="fixture", beta=BETA
    )


def test_evaluate_reports_calibration_and_the_label_free_estimates(calibrated):
    metrics, _, report = calibrated
    for split in ("dev_a", "dev_b", "test"):
        c = metrics[split]["calibration_at_prior"]
        assert c["mean_to_rate"] == pytest.approx(c["mean_probability"] / c["label_rate"])
        assert 0 <= c["calibration_error"] <= 1
    free = metrics["label_free"]
    assert {"dev_b", "test", "test_at_1_30", "test_at_1_100", "test_at_1_250"} <= set(free)
    for name, entry in free.items():
        est = entry["estimated_prior"]
        assert est["ci"][0] <= est["value"] <= est["ci"][1], name
        assert set(entry["estimated_at_threshold"]) >= {
            "precision", "recall", "alerts_per_1000", "expected_cost"
        }  # fmt: skip
        assert set(entry["drift"]) >= {"prior_shift", "score_shift_ks", "p_value"}
        assert {"prior", "precision", "recall"} <= set(entry["measured"])
    # calibrated scores: the estimate's interval covers test's measured prior, and test
    # subsampled to 1:30 (above the fixture's 1:49) is found to have moved up
    test = free["test"]
    assert test["estimated_prior"]["ci"][0] <= test["measured"]["prior"]
    assert test["measured"]["prior"] <= test["estimated_prior"]["ci"][1]
    assert free["test_at_1_30"]["estimated_prior"]["ci"][0] > metrics["prior"]
    assert free["test_at_1_30"]["drift"]["prior_shift"] is True
    assert "## What the label-free estimate would have said" in report
    assert "## Calibration at the prior" in report
    # prior sensitivity: recall is prior-free, precision falls and alerts shrink with the prior
    rows = metrics["prior_sensitivity"]["rows"]
    assert [r["factor"] for r in rows] == list(PRIOR_FACTORS)
    assert len({round(r["recall"], 12) for r in rows}) == 1
    assert all(a["precision"] < b["precision"] for a, b in zip(rows, rows[1:], strict=False))
    one = next(r for r in rows if r["factor"] == 1.0)
    assert one["precision"] == pytest.approx(metrics["test"]["prior"]["precision"])
    assert "## Prior sensitivity" in report


def _batch(ci, measured, *, in_sample=False):
    entry = {"value": measured, "ci": ci}
    return {
        "in_sample": in_sample,
        "estimated_prior": {**entry, "cross_check": {"acc": entry, "pacc": {"value": 0.1}}},
        "estimated_at_threshold": {"precision": entry, "recall": entry, "expected_cost": entry},
        "measured": {"prior": measured, "precision": measured, "recall": measured,
                     "expected_cost": measured},
    }  # fmt: skip


def test_interval_checks_count_what_each_interval_held_out_of_sample_only():
    from dsprior.evaluation.label_free import interval_checks

    free = {
        "dev_b": _batch([0.5, 0.6], 0.9, in_sample=True),  # in sample: never counted
        "a": _batch([0.1, 0.3], 0.3),  # on the upper end: held
        "b": _batch([0.1, 0.3], 0.1),  # on the lower end: held
        "c": _batch([0.1, 0.3], 0.3000001),  # just outside: missed
        "d": _batch([None, None], 0.2),  # no interval printed
    }
    checks = interval_checks(free, level=0.9)
    assert checks["level"] == 0.9
    em = checks["intervals"]["prior, EM"]
    assert (em["held"], em["checks"], em["missed"], em["not_checked"]) == (2, 3, ["c"], ["d"])
    # PACC has a value but no interval anywhere: nothing checked, nothing claimed
    pacc = checks["intervals"]["prior, PACC"]
    assert (pacc["held"], pacc["checks"], pacc["not_checked"]) == (0, 0, ["a", "b", "c", "d"])
    free["c"]["measured"]["precision"] = None  # no measured value: not a check either
    precision = interval_checks(free, level=0.9)["intervals"]["precision at the threshold"]
    assert (precision["held"], precision["checks"], precision["not_checked"]) == (2, 2, ["c", "d"])


def test_every_run_reports_how_often_its_own_label_free_intervals_held(calibrated):
    metrics, _, report = calibrated
    checks = metrics["label_free_checks"]["intervals"]
    level = round(metrics["label_free_checks"]["level"] * 100)
    assert level == round(metrics["bootstrap"]["level"] * 100)
    out_of_sample = [n for n, s in metrics["label_free"].items() if not s["in_sample"]]
    assert "dev_b" not in out_of_sample and len(out_of_sample) == 4
    for name, c in checks.items():
        assert c["checks"] + len(c["not_checked"]) == len(out_of_sample), name
        assert c["held"] + len(c["missed"]) == c["checks"], name
        line = f"- {name}: the {level}% interval held in {c['held']} of {c['checks']} checks"
        assert line in report, name
    # EM on exactly calibrated probabilities: its interval holds each batch's label rate
    free = metrics["label_free"]
    em = checks["prior, EM"]
    assert em["checks"] == 4
    assert em["held"] == sum(
        free[n]["estimated_prior"]["ci"][0] <= free[n]["measured"]["prior"]
        <= free[n]["estimated_prior"]["ci"][1] for n in out_of_sample
    )  # fmt: skip
    assert em["held"] >= 3
