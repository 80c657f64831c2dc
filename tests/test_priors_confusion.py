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
