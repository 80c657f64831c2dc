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
