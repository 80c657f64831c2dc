"""The evaluation wired (``dsprior.evaluation.pipeline``): metrics, plot records and report
from a predictions table, checked on tables made here whose truth is known.

These tests read the report, the plot records and the label-free estimates of one
``evaluate_predictions`` run each; the modules that make them (report, plots,
recalibration, label_free) are tested through it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsprior import priors
from dsprior.evaluation.inputs import SPLITS
from dsprior.evaluation.metrics import PRIOR_FACTORS
from dsprior.evaluation.pipeline import evaluate_predictions
from dsprior.evaluation.plots import CURVE_POINTS, PR_CHOSEN, PR_SHIPPED
from tests.factories import EVAL_BETA as BETA
from tests.factories import EVAL_PARAMS as PARAMS
from tests.factories import EVAL_PRIOR as PRIOR
from tests.factories import make_split


def test_thinned_dev_a_looks_better_as_sampled_than_at_the_prior(evaluated):
    metrics, _, _ = evaluated
    dev_a = metrics["dev_a"]
    assert dev_a["sample"]["precision"] > dev_a["prior"]["precision"] + 0.2
    # recall does not depend on the prior
    assert dev_a["sample"]["recall"] == pytest.approx(dev_a["prior"]["recall"])
    # dev_b/test are at the production ratio: weights are 1, sample and prior nearly agree
    assert metrics["test"]["sample"]["precision"] == pytest.approx(
        metrics["test"]["prior"]["precision"], abs=0.05
    )
    low, high = dev_a["prior"]["precision_ci"]
    assert low < dev_a["prior"]["precision"] < high


def test_threshold_near_bayes_on_calibrated_scores(evaluated):
    metrics, _, _ = evaluated
    assert metrics["bayes_threshold"] == pytest.approx(1 / 11)
    assert metrics["bayes_threshold_score"] == pytest.approx(
        float(priors.invert_prior_correction(1 / 11, beta=BETA))
    )
    # searched on a few thousand examples: same order as the analytic optimum
    assert 0.3 * metrics["bayes_threshold"] < metrics["threshold"] < 3 * metrics["bayes_threshold"]


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


def test_plot_data_series(evaluated, predictions):
    metrics, plots, _ = evaluated
    assert set(plots) == {
        "precision_recall", "roc", "calibration", "cost", "confusion",
        "prior_sensitivity", "label_free",
    }  # fmt: skip
    # the label-free picture: every batch's estimate with its interval beside the measured prior
    free = pd.DataFrame(plots["label_free"])
    for batch, entry in metrics["label_free"].items():
        name = f"{batch} (in sample)" if entry.get("in_sample") else batch
        rows = free[free["batch"] == name].set_index("series")
        estimate = rows.loc["estimated without labels (EM, 95% interval)"]
        assert estimate["prior"] == pytest.approx(entry["estimated_prior"]["value"])
        assert [estimate["low"], estimate["high"]] == pytest.approx(entry["estimated_prior"]["ci"])
        if entry.get("measured"):
            assert rows.loc["measured with labels", "prior"] == pytest.approx(
                entry["measured"]["prior"]
            )
    sensitivity = pd.DataFrame(plots["prior_sensitivity"])
    assert set(sensitivity["series"]) == {"precision", "recall"}
    assert len(sensitivity) == 2 * len(metrics["prior_sensitivity"]["rows"])
    for name, records in plots.items():
        assert records and all(set(r) == set(records[0]) for r in records), name
    pr = pd.DataFrame(plots["precision_recall"])
    assert set(pr["series"]) == {
        "dev_a as sampled",
        "dev_a projected to the production prior",
        "test at the production prior",
    }
    curves = pr[pr["kind"] == "curve"]
    assert (curves.groupby("series").size() <= CURVE_POINTS + 2).all()
    # each series' operating points: the shipped rule's and the chosen threshold's metrics
    points = pr[pr["kind"] != "curve"].set_index(["series", "kind"])
    shipped = points.loc[("test at the production prior", PR_SHIPPED)]
    assert shipped["precision"] == metrics["test"]["shipped"]["prior"]["precision"]
    chosen = points.loc[("dev_a as sampled", PR_CHOSEN)]
    assert chosen["recall"] == metrics["dev_a"]["sample"]["recall"]
    assert set(pd.DataFrame(plots["roc"])["series"]) == set(SPLITS)
    # confusion: the share of each label flagged or not, per set, adding up to 1 per label
    confusion = pd.DataFrame(plots["confusion"])
    assert len(confusion) == 4 * len(SPLITS)
    np.testing.assert_allclose(confusion.groupby(["series", "actual"])["rate"].sum(), 1.0)
    test = predictions[predictions["split"] == "test"]
    flagged = (test["probability"] >= metrics["threshold"]) & (test["label"] == 1)
    tp = confusion.query("series == 'test' and actual == 1 and predicted == 1")["examples"]
    assert tp.item() == int(flagged.sum())
    # cost: the curve in threshold order, and the run's two thresholds at their dev_b cost
    cost = pd.DataFrame(plots["cost"])
    curve = cost[cost["kind"] == "curve"]
    assert curve["threshold"].is_monotonic_increasing
    assert curve["expected_cost"].min() == pytest.approx(metrics["dev_b"]["prior"]["expected_cost"])
    marks = cost[cost["kind"] != "curve"].set_index("kind")
    assert marks.loc["chosen", "threshold"] == metrics["threshold"]
    assert marks.loc["bayes", "threshold"] == metrics["bayes_threshold"]
    bayes_cost = metrics["dev_b"]["prior_at_bayes_threshold"]["expected_cost"]
    assert marks.loc["bayes", "expected_cost"] == pytest.approx(bayes_cost)


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
    probability = 1 / (1 + np.exp(-(4.0 * x + np.log(PRIOR / (1 - PRIOR)))))
    frame["score"] = priors.invert_prior_correction(probability, beta=BETA)
    frame["probability"] = priors.correct_prior(frame["score"].to_numpy(), beta=BETA)
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
