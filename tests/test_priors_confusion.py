"""Weighted confusion counts, rates at the production prior, calibrated precision, cost."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from dsprior import priors


def classic_arrays() -> tuple[np.ndarray, np.ndarray]:
    """TP 97, FN 3, FP 3, TN 197 as rows (labels, predictions)."""
    labels = np.array([1] * 100 + [0] * 200)
    predicted = np.array([1] * 97 + [0] * 3 + [1] * 3 + [0] * 197)
    return labels, predicted


def test_classic_example_precision_drops_from_097_to_039():
    labels, predicted = classic_arrays()
    cm = priors.confusion(labels, predicted)
    assert (cm.tp, cm.fn, cm.fp, cm.tn) == (97, 3, 3, 197)
    assert priors.rates(cm)["precision"] == pytest.approx(0.97)
    # negatives x50 takes 1:2 to 1:100
    weights = np.where(labels == 0, 50.0, 1.0)
    weighted = priors.confusion(labels, predicted, weights)
    assert priors.rates(weighted)["precision"] == pytest.approx(97 / (97 + 150))
    assert priors.rates(weighted)["precision"] == pytest.approx(0.393, abs=5e-4)
    assert precision_score(labels, predicted, sample_weight=weights) == pytest.approx(97 / 247)
    assert recall_score(labels, predicted, sample_weight=weights) == pytest.approx(0.97)
    # the same via rescaling to the prior 1/101
    rescaled = priors.weights_at_prior(labels, prior=1 / 101)
    np.testing.assert_allclose(rescaled[labels == 0], 50.0)
    np.testing.assert_allclose(rescaled[labels == 1], 1.0)


def test_weighted_precision_equals_siblini_calibrated_precision():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype(int)
    predicted = np.where(labels == 1, rng.random(500) < 0.8, rng.random(500) < 0.1).astype(int)
    cm = priors.confusion(labels, predicted)
    for prior in (0.5, 0.1, 0.01, 0.001):
        weights = priors.weights_at_prior(labels, prior=prior)
        weighted = precision_score(labels, predicted, sample_weight=weights)
        siblini = priors.calibrated_precision(cm.tp, cm.fp, sample_prior=labels.mean(), prior=prior)
        assert weighted == pytest.approx(siblini, rel=1e-12)
        recall = recall_score(labels, predicted)
        f1_weighted = priors.rates(priors.confusion(labels, predicted, weights))["f1"]
        assert f1_weighted == pytest.approx(priors.calibrated_f1(siblini, recall))
    # the calibrated precision changes with the prior (the test could fail)
    assert priors.calibrated_precision(
        cm.tp, cm.fp, sample_prior=labels.mean(), prior=0.01
    ) < precision_score(labels, predicted)


def test_rates_match_sklearn_on_weighted_data():
    rng = np.random.default_rng(1)
    labels = (rng.random(300) < 0.4).astype(int)
    predicted = (rng.random(300) < 0.5).astype(int)
    weights = rng.uniform(0.5, 20, 300)
    r = priors.rates(priors.confusion(labels, predicted, weights))
    assert r["precision"] == pytest.approx(
        precision_score(labels, predicted, sample_weight=weights)
    )
    assert r["recall"] == pytest.approx(recall_score(labels, predicted, sample_weight=weights))


def test_expected_cost_and_production_terms():
    cm = priors.Confusion(tn=900.0, fp=50.0, fn=2.0, tp=48.0)
    assert priors.expected_cost(cm, cost_fp=1, cost_fn=10) == pytest.approx(1000 * 70 / 1000)
    terms = priors.production_terms(cm)
    assert terms["alerts"] == pytest.approx(98)
    assert terms["true_alerts"] == pytest.approx(48)
    assert terms["missed"] == pytest.approx(2)


def test_fpr_recall_and_lr_plus_by_hand_and_unmoved_by_the_prior():
    """Classic example: FPR 3/200, LR+ 0.97/0.015; class rescaling moves precision only."""
    labels, predicted = classic_arrays()
    r = priors.rates(priors.confusion(labels, predicted))
    assert r["fpr"] == pytest.approx(0.015)
    assert r["lr_plus"] == pytest.approx(0.97 / 0.015)
    assert r["f1"] == pytest.approx(2 * 97 / (2 * 97 + 3 + 3))
    moved = priors.rates(priors.confusion(labels, predicted, np.where(labels == 0, 50.0, 1.0)))
    for name in ("recall", "fpr", "lr_plus"):
        assert moved[name] == pytest.approx(r[name])
    assert all(type(value) is float for value in r.values())


def test_undefined_rates_are_nan_not_inf():
    """No alerts: precision 0/0; no false positives: LR+ x/0; no negatives: FPR 0/0."""
    r = priors.rates(priors.Confusion(tn=5.0, fp=0.0, fn=5.0, tp=0.0))
    assert np.isnan(r["precision"]) and np.isnan(r["lr_plus"])
    assert r["recall"] == 0.0 and r["fpr"] == 0.0 and r["f1"] == 0.0
    r = priors.rates(priors.Confusion(tn=5.0, fp=0.0, fn=1.0, tp=3.0))
    assert r["lr_plus"] != r["lr_plus"] and r["recall"] == 0.75  # NaN, not inf
    r = priors.rates(priors.Confusion(tn=0.0, fp=0.0, fn=1.0, tp=3.0))
    assert np.isnan(r["fpr"]) and r["precision"] == 1.0


def test_rates_broadcast_scalar_and_array_counts():
    """A Confusion mixing scalar and per-resample counts gives per-resample rates."""
    r = priors.rates(priors.Confusion(tn=90.0, fp=10.0, fn=np.array([0.0, 5.0]), tp=10.0))
    np.testing.assert_allclose(r["recall"], [1.0, 2 / 3])
    np.testing.assert_allclose(r["lr_plus"], [10.0, 20 / 3])
    r = priors.rates(priors.Confusion(tn=np.array([0.0, 90.0]), fp=0.0, fn=1.0, tp=1.0))
    np.testing.assert_array_equal(r["fpr"], [np.nan, 0.0])


def test_confusion_with_one_class_present_still_has_four_cells():
    """All negatives, none flagged: everything is a true negative."""
    cm = priors.confusion([0, 0, 0], [0, 0, 0], [1.0, 2.0, 3.0])
    assert cm == priors.Confusion(tn=6.0, fp=0.0, fn=0.0, tp=0.0)
    assert priors.confusion([1], [1]).as_dict() == {"tn": 0.0, "fp": 0.0, "fn": 0.0, "tp": 1.0}


def test_confusion_scaled_total_and_as_dict():
    """scaled multiplies every cell; total sums them; as_dict names them."""
    cm = priors.Confusion(tn=1.0, fp=2.0, fn=3.0, tp=4.0)
    assert cm.total == 10.0
    assert cm.scaled(10.0) == priors.Confusion(tn=10.0, fp=20.0, fn=30.0, tp=40.0)
    assert cm.scaled(1000 / cm.total).as_dict() == {"tn": 100, "fp": 200, "fn": 300, "tp": 400}


def test_confusion_rows_equal_sklearn_row_by_row():
    """Each row of a weight matrix gives the weighted confusion that sklearn gives."""
    labels = np.array([1, 1, 0, 0, 1])
    predicted = np.array([1, 0, 1, 0, 1])
    weights = np.array([[1, 2, 3, 4, 5], [0, 1, 0, 2, 0]])
    rows = priors.confusion_rows(labels, predicted, weights)
    for i, w in enumerate(weights):
        cm = priors.confusion(labels, predicted, w)
        assert (rows.tn[i], rows.fp[i], rows.fn[i], rows.tp[i]) == (cm.tn, cm.fp, cm.fn, cm.tp)
    one = priors.confusion_rows(labels, predicted, weights[0])
    assert one.tp.tolist() == [6.0]


def test_expected_cost_and_production_terms_per_hundred():
    """Every production term and the cost, per 100, with cost_fp != 1."""
    cm = priors.Confusion(tn=70.0, fp=10.0, fn=5.0, tp=15.0)
    assert priors.expected_cost(cm, cost_fp=2, cost_fn=10, per=100) == pytest.approx(70.0)
    assert priors.production_terms(cm, per=100) == pytest.approx(
        {
            "alerts": 25.0,
            "true_alerts": 15.0,
            "false_alerts": 10.0,
            "missed": 5.0,
            "positives": 20.0,
        }
    )
    empty = priors.production_terms(priors.Confusion(0.0, 0.0, 0.0, 0.0))
    assert all(np.isnan(value) for value in empty.values())


def test_calibrated_precision_and_f1_by_hand():
    """r = pi_s(1-pi)/(pi(1-pi_s)) moves FP; F_c is the harmonic mean."""
    # sample 1:2 (pi_s = 1/3), prior 1:100 (pi = 1/101): r = 50, so 97 / (97 + 150)
    got = priors.calibrated_precision(97, 3, sample_prior=1 / 3, prior=1 / 101)
    assert got == pytest.approx(97 / 247)
    assert priors.calibrated_f1(0.5, 1.0) == pytest.approx(2 / 3)
    assert np.isnan(priors.calibrated_f1(0.0, 0.0))
