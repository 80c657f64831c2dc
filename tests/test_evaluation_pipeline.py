"""The evaluation wired (``dsprior.evaluation.pipeline``): metrics and plot records from a
predictions table whose truth is known (``tests.factories.make_predictions``).

The report's tests are in test_evaluation_report.py, the label-free estimates' (with the
calibration at the prior) in test_evaluation_label_free.py; they too read one
``evaluate_predictions`` run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsprior import priors
from dsprior.evaluation.inputs import SPLITS
from dsprior.evaluation.plots import CURVE_POINTS, PR_CHOSEN, PR_SHIPPED
from tests.factories import EVAL_BETA as BETA


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
        expected, drawn = entry["estimated_prior"]["ci"], [estimate["low"], estimate["high"]]
        if expected == [None, None]:  # refused (noisy labels, or one value): null ends
            assert entry["estimated_prior"]["interval_refused"]
            assert all(pd.isna(v) for v in drawn), drawn
        else:
            assert drawn == pytest.approx(expected)
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
