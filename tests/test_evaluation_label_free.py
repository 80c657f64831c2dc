"""The label-free estimates (``dsprior.evaluation.label_free``), with the calibration at the prior
and the prior sensitivity beside them, read from one ``evaluate_predictions`` run on scores
exactly calibrated at the prior, so that the estimates must find the measured numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dsprior import runtime
from dsprior.calibration import IDENTITY
from dsprior.evaluation import label_free
from dsprior.evaluation.config import check_params
from dsprior.evaluation.label_free import label_free_metrics
from dsprior.evaluation.metrics import PRIOR_FACTORS
from dsprior.evaluation.pipeline import evaluate_predictions
from dsprior.priors import Bootstrap, Costs
from tests.factories import EVAL_BETA as BETA
from tests.factories import EVAL_PARAMS as PARAMS
from tests.factories import EVAL_PRIOR as PRIOR
from tests.factories import make_split, with_log_odds


@pytest.fixture(scope="module")
def calibrated_frame():
    """Predictions with probabilities exactly calibrated at PRIOR (two Gaussian log-odds
    classes), so that the label-free estimates must find the measured numbers."""
    rng = np.random.default_rng(43)
    frame = pd.concat(
        [make_split(rng, s, n, keep) for s, n, keep in
         (("dev_a", 1500, BETA), ("dev_b", 2400, 1.0), ("test", 2400, 1.0))],
        ignore_index=True,
    )  # fmt: skip
    x = np.where(frame["label"] == 1, 2.0, -2.0) + rng.normal(size=len(frame))
    frame = with_log_odds(frame, 4.0 * x + np.log(PRIOR / (1 - PRIOR)), beta=BETA)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def calibrated(calibrated_frame):
    """``evaluate_predictions`` on ``calibrated_frame``."""
    return evaluate_predictions(
        calibrated_frame,
        config=check_params(PARAMS),
        prior=PRIOR,
        prior_source="fixture",
        beta=BETA,
    )


LABEL_FREE_ARGS = {
    "prior": PRIOR,
    "threshold": 0.3,
    "costs": Costs(false_positive=1, false_negative=10),
    "calibration": IDENTITY,
    "training_prior": BETA * PRIOR / (BETA * PRIOR + 1 - PRIOR),
    "bootstrap": Bootstrap(resamples=40, level=0.9, seed=5),
}


def test_batches_estimated_side_by_side_in_processes_give_the_same_bytes(calibrated_frame):
    alone = label_free_metrics(calibrated_frame, workers=1, **LABEL_FREE_ARGS)
    side_by_side = label_free_metrics(calibrated_frame, workers=2, **LABEL_FREE_ARGS)
    assert list(side_by_side) == list(alone) == [
        "dev_b", "test", "test_at_1_30", "test_at_1_100", "test_at_1_250"
    ]  # fmt: skip
    assert json.dumps(side_by_side) == json.dumps(alone)
    # each batch draws its own resamples: not one shared stream cut into pieces
    assert alone["dev_b"]["estimated_prior"]["ci"] != alone["test"]["estimated_prior"]["ci"]


@pytest.mark.parametrize(("processes_from", "expected"), [(None, 1), (1, "cores")])
def test_processes_are_started_only_for_work_that_pays_for_them(
    calibrated_frame, monkeypatch, processes_from, expected
):
    asked: list[int] = []

    def in_this_process(function, items, *, workers):
        asked.append(workers)
        return [function(item) for item in items]

    monkeypatch.setattr(runtime, "map_in_processes", in_this_process)
    if processes_from is not None:
        monkeypatch.setattr(label_free, "PROCESSES_FROM", processes_from)
    label_free_metrics(calibrated_frame, **LABEL_FREE_ARGS)
    # the fixture's 5 batches of up to 2,400 examples and 40 resamples: about 1e6
    assert asked == [runtime.machine_cores() if expected == "cores" else expected]


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
    from dsprior.evaluation.report import interval_check_lines

    text = "\n".join(interval_check_lines({"label_free_checks": checks}))
    assert (
        "- prior, EM: the 90% interval held in 2 of 3 checks (missed: c); not printed for d" in text
    )
    assert "- prior, PACC: no interval printed (a, b, c, d)" in text


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


def _gold_predictions(rng: np.random.Generator) -> pd.DataFrame:
    """dev_b and test at a true prior of 0.05, distant labels flipped class-conditionally
    (a = 0.9, b = 0.01), probabilities that flag 80% of true positives and 2% of negatives."""
    n = 3000
    truth = (rng.random(2 * n) < 0.05).astype(np.int8)
    flagged = np.where(truth == 1, rng.random(2 * n) < 0.8, rng.random(2 * n) < 0.02)
    distant = np.where(truth == 1, rng.random(2 * n) < 0.9, rng.random(2 * n) < 0.01)
    return pd.DataFrame(
        {
            "split": np.repeat(["dev_b", "test"], n),
            "group": np.arange(2 * n) // 2,
            "label": distant.astype(np.int8),
            "true_label": truth,
            "weight": 1.0,
            "probability": np.where(flagged, 0.6, 0.01),
        }
    )


def test_true_shift_batches_stand_beside_what_gold_and_distant_labels_measure():
    from dsprior.evaluation.label_free import interval_checks, true_shift_metrics
    from dsprior.evaluation.report import true_shift_lines

    predictions = _gold_predictions(np.random.default_rng(9))
    kw = {"threshold": 0.5, "costs": Costs(1, 10), "bootstrap": Bootstrap(200, 0.95, seed=2)}
    got = true_shift_metrics(predictions, **kw)
    assert {"dev_b", "test", "test_true_at_1_30", "test_true_at_1_100"} <= set(got)
    thinned = got["test_true_at_1_100"]
    assert thinned["measured"]["prior_true"] == pytest.approx(1 / 101, rel=0.05)
    assert thinned["in_sample"] is False and got["dev_b"]["in_sample"] is True
    # measured on the batch as it is: gold on its gold-labelled rows, distant on all
    test = predictions[predictions["split"] == "test"]
    alerts = test["probability"] >= 0.5
    assert got["test"]["measured"]["precision_true"] == pytest.approx(
        test.loc[alerts, "true_label"].mean()
    )
    assert got["test"]["measured"]["precision_distant"] == pytest.approx(
        test.loc[alerts, "label"].mean()
    )
    # in sample, the adjusted count against gold gives dev_b's own gold prior and precision
    dev_b = got["dev_b"]
    assert dev_b["estimated_prior_true"]["value"] == pytest.approx(dev_b["measured"]["prior_true"])
    precision = dev_b["estimated_at_threshold_true"]["precision"]["value"]
    assert precision == pytest.approx(dev_b["measured"]["precision_true"])
    for name, entry in got.items():
        low, high = entry["estimated_prior_true"]["ci"]
        assert low <= entry["estimated_prior_true"]["value"] <= high, name
    report = "\n".join(true_shift_lines({"label_free_true_shift": got}))
    assert "## When the true prior moves" in report and "| test_true_at_1_100 |" in report
    # every run counts how often these intervals held, out of sample only
    checks = interval_checks({}, level=0.95, true_shift=got)["intervals"]
    out_of_sample = [n for n, e in got.items() if not e["in_sample"]]
    for name in ("true prior", "precision against gold", "recall against gold",
                 "precision against distant labels, true shift"):  # fmt: skip
        c = checks[name]
        assert c["checks"] + len(c["not_checked"]) == len(out_of_sample), name
        assert "dev_b" not in c["missed"] + c["not_checked"], name
    prior = checks["true prior"]
    assert prior["held"] == sum(
        got[n]["estimated_prior_true"]["ci"][0] <= got[n]["measured"]["prior_true"]
        <= got[n]["estimated_prior_true"]["ci"][1] for n in out_of_sample
    )  # fmt: skip
    assert "true prior" not in interval_checks({}, level=0.95)["intervals"]  # no gold, no line
    # without gold labels on dev_b: nothing, and nothing in the report
    assert true_shift_metrics(predictions.drop(columns="true_label"), **kw) is None
    assert true_shift_lines({}) == []


def test_evaluate_without_gold_labels_adds_no_true_shift_keys(calibrated):
    metrics, _, report = calibrated
    assert "label_free_true_shift" not in metrics
    assert "When the true prior moves" not in report


def test_noisy_gold_rates_on_dev_b_refuse_the_label_shift_intervals_of_every_batch():
    """dev_b's gold labels put the missing-label rate's interval above 5%: every label-free
    batch loses EM's, ACC's, PACC's and CBPE's intervals, with the reason (a batch without the
    cross-checks is passed over where they would be); clean rates keep them."""
    from dsprior.evaluation.pipeline import refuse_label_shift_on_noisy_labels

    def metrics(missing_ci):
        def batch(cross):
            return {
                "estimated_prior": {"value": 0.01, "ci": [0.005, 0.02], "cross_check": cross},
                "estimated_at_threshold": {
                    k: {"value": 0.5, "ci": [0.4, 0.6]}
                    for k in ("precision", "recall", "alerts_per_1000", "expected_cost")
                },
            }

        checks = {k: {"value": 0.012, "ci": [0.004, 0.03]} for k in ("acc", "pacc")}
        noise = {"missing_label_rate_ci": missing_ci, "false_label_rate_ci": [0.0, 0.03]}
        free = {"test": batch(checks), "bare": batch({"available": False, "reason": "none"})}
        return {"dev_b": {"label_noise": noise}, "label_free": free}

    noisy, clean = metrics([0.08, 0.2]), metrics([0.01, 0.2])
    refuse_label_shift_on_noisy_labels(noisy)
    refuse_label_shift_on_noisy_labels(clean)
    got = noisy["label_free"]["test"]
    assert got["estimated_prior"]["ci"] == [None, None]
    assert got["estimated_at_threshold"]["precision"]["ci"] == [None, None]
    assert "interval starts at 0.080" in got["estimated_at_threshold"]["recall"]["interval_refused"]
    assert got["estimated_at_threshold"]["alerts_per_1000"]["ci"] == [0.4, 0.6]
    for name in ("acc", "pacc"):
        check = got["estimated_prior"]["cross_check"][name]
        assert check["ci"] == [None, None] and check["value"] == 0.012
        assert "interval starts at 0.080" in check["interval_refused"]
    bare = noisy["label_free"]["bare"]["estimated_prior"]
    assert bare["ci"] == [None, None] and bare["cross_check"] == {
        "available": False,
        "reason": "none",
    }
    assert clean["label_free"]["test"]["estimated_prior"]["ci"] == [0.005, 0.02]
    assert clean["label_free"]["test"]["estimated_prior"]["cross_check"]["pacc"]["ci"] == [
        0.004,
        0.03,
    ]
    no_gold = {"dev_b": {}, "label_free": {}}
    refuse_label_shift_on_noisy_labels(no_gold)  # without gold labels: nothing to judge


def test_the_report_says_why_the_label_shift_intervals_are_missing():
    from dsprior.evaluation.report import label_free_estimate_lines

    batch = {
        "examples": 10,
        "measured": {k: 0.1 for k in ("prior", "precision", "recall", "alerts_per_1000")}
        | {"expected_cost": 5.0},
        "estimated_prior": {
            "value": 0.1,
            "ci": [None, None],
            "interval_refused": "dev_b's gold labels show noisy distant labels",
            "cross_check": {},
        },
        "estimated_at_threshold": {
            k: {"value": 0.1, "ci": [None, None]}
            for k in ("precision", "recall", "alerts_per_1000", "expected_cost")
        },
        "drift": {"prior_shift": None, "p_value": None},
    }
    text = "\n".join(label_free_estimate_lines({"label_free": {"test": batch}}))
    assert (
        "No interval on the prior (EM, ACC, PACC) or CBPE's precision, recall and cost: dev_b"
        in text
    )
