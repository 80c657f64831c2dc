"""A corrected thinned model is as calibrated as an unthinned one (weighted calibration)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss

from dsprior import priors


def _simulate(n, prior, rng):
    labels = (rng.random(n) < prior).astype(int)
    x = rng.normal(size=(n, 2)) + labels[:, None] * np.array([1.5, 1.0])
    return x, labels


def test_corrected_thinned_model_is_as_calibrated_as_unthinned_model():
    rng = np.random.default_rng(7)
    prior, beta = 0.01, 0.02
    x, y = _simulate(150_000, prior, rng)
    x_test, y_test = _simulate(150_000, prior, rng)
    keep = (y == 1) | (rng.random(len(y)) < beta)
    full = LogisticRegression().fit(x, y)
    thinned = LogisticRegression().fit(x[keep], y[keep])
    p_full = full.predict_proba(x_test)[:, 1]
    p_raw = thinned.predict_proba(x_test)[:, 1]
    p_corrected = priors.correct_prior(p_raw, beta=beta)

    ll_full, ll_raw, ll_corr = (log_loss(y_test, p) for p in (p_full, p_raw, p_corrected))
    assert ll_corr == pytest.approx(ll_full, rel=0.03)
    assert ll_raw > 2 * ll_full  # uncorrected is badly miscalibrated at the prior
    b_full, b_corr = (brier_score_loss(y_test, p) for p in (p_full, p_corrected))
    assert b_corr == pytest.approx(b_full, rel=0.03)
    # mean predicted probability matches the observed rate, bin by bin
    table = priors.weighted_calibration(y_test, p_corrected, n_bins=5)
    np.testing.assert_allclose(table["predicted"], table["observed"], atol=0.015)
    assert p_corrected.mean() == pytest.approx(y_test.mean(), rel=0.1)


def test_weighted_calibration_by_hand():
    """Equal-weight bins by each example's weight midpoint; means and weight shares by hand."""
    # sorted: p 0.1 0.2 0.3 0.6 0.9, w 2 1 1 3 1 (total 8); midpoints 1 2.5 3.5 5.5 7.5 of 8
    labels = np.array([1, 0, 1, 0, 1])
    p = np.array([0.6, 0.1, 0.9, 0.3, 0.2])
    w = np.array([3.0, 2.0, 1.0, 1.0, 1.0])
    table = priors.weighted_calibration(labels, p, w, n_bins=2)
    np.testing.assert_allclose(table["predicted"], [(0.2 + 0.2 + 0.3) / 4, (1.8 + 0.9) / 4])
    np.testing.assert_allclose(table["observed"], [1 / 4, 4 / 4])
    np.testing.assert_allclose(table["weight"], [0.5, 0.5])
    one = priors.weighted_calibration(labels, p, w, n_bins=1)
    np.testing.assert_allclose(one["predicted"], [np.dot(w, p) / 8])
    np.testing.assert_allclose(one["observed"], [5 / 8])
    np.testing.assert_allclose(one["weight"], [1.0])


def test_weighted_calibration_drops_empty_bins_and_reports_weight_shares():
    """A heavy example spans several bins: bins left empty are dropped, shares sum to 1."""
    table = priors.weighted_calibration([0, 1, 0], [0.1, 0.5, 0.9], [1.0, 10.0, 1.0], n_bins=4)
    np.testing.assert_allclose(table["predicted"], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(table["observed"], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(table["weight"], [1 / 12, 10 / 12, 1 / 12])
    # the heaviest last: the top bins are empty
    table = priors.weighted_calibration([0, 1], [0.2, 0.7], [1.0, 10.0], n_bins=4)
    np.testing.assert_allclose(table["predicted"], [0.2, 0.7])
    np.testing.assert_allclose(table["weight"], [1 / 11, 10 / 11])


def test_weighted_calibration_small_weights_one_example_and_default_bins():
    """Total weight below 1 is fine, zero-weight bins go, one example is one bin, ten by default."""
    table = priors.weighted_calibration([1, 0], [0.8, 0.3], [0.25, 0.25], n_bins=2)
    np.testing.assert_allclose(table["predicted"], [0.3, 0.8])
    np.testing.assert_allclose(table["weight"], [0.5, 0.5])
    # a weightless example's bin has no weight and is dropped
    table = priors.weighted_calibration([0, 1], [0.3, 0.8], [0.0, 2.0], n_bins=2)
    np.testing.assert_allclose(table["predicted"], [0.8])
    np.testing.assert_allclose(table["weight"], [1.0])
    one = priors.weighted_calibration([1], [0.4])
    assert one["predicted"].tolist() == [0.4] and one["observed"].tolist() == [1.0]
    rng = np.random.default_rng(0)
    table = priors.weighted_calibration(rng.integers(0, 2, 40), rng.random(40))
    assert len(table["predicted"]) == 10
    np.testing.assert_allclose(table["weight"], 0.1)


def test_tied_probabilities_fill_bins_in_input_order():
    """Ties are split between bins in the order given (a stable sort): the table is reproducible."""
    rng = np.random.default_rng(0)
    p = rng.choice([0.2, 0.5], 40)
    labels = rng.integers(0, 2, 40)
    table = priors.weighted_calibration(labels, p, n_bins=4)
    low = labels[p == 0.2]
    high = labels[p == 0.5]
    in_order = np.concatenate([low, high]).reshape(4, 10).mean(axis=1)
    np.testing.assert_allclose(table["observed"], in_order)


def test_an_example_goes_to_the_bin_holding_the_middle_of_its_weight():
    """Weights 3 then 1, two bins: the first's middle (1.5 of 4) is in bin 0; at most n_bins rows."""
    table = priors.weighted_calibration([0, 1], [0.2, 0.8], [3.0, 1.0], n_bins=2)
    np.testing.assert_allclose(table["predicted"], [0.2, 0.8])
    np.testing.assert_allclose(table["weight"], [0.75, 0.25])
    # a negligible weight on top still falls in the last of the n_bins bins
    table = priors.weighted_calibration([0, 1], [0.2, 0.9], [1.0, 1e-20], n_bins=2)
    assert len(table["predicted"]) == 1
    np.testing.assert_allclose(table["weight"], [1.0])
