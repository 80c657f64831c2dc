"""The prior correction: the formula, Elkan's theorem 2 and the round trip."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import priors


@pytest.mark.parametrize("beta", [0.02, 0.1, 0.5, 1.0, 3.0])
def test_correct_prior_matches_formula_and_round_trips(beta):
    p_s = np.linspace(0, 1, 101)
    expected = beta * p_s / (beta * p_s - p_s + 1)
    np.testing.assert_allclose(priors.correct_prior(p_s, beta=beta), expected)
    np.testing.assert_allclose(
        priors.invert_prior_correction(priors.correct_prior(p_s, beta=beta), beta=beta),
        p_s,
        atol=1e-12,
    )


def test_correct_prior_matches_elkan_theorem_2_and_bayes_odds():
    # Elkan: p' = b'(p - p b) / (b - p b + b' p - b b') with base rates b (train), b' (new)
    b, b_new = 1 / 3, 1 / 101
    p = np.linspace(0.01, 0.99, 50)
    elkan = b_new * (p - p * b) / (b - p * b + b_new * p - b * b_new)
    beta = priors.beta_from_priors(production_prior=b_new, training_prior=b)
    assert beta == pytest.approx(0.02)
    np.testing.assert_allclose(priors.correct_prior(p, beta=beta), elkan)
    np.testing.assert_allclose(priors.shift_prior(p, from_prior=b, to_prior=b_new), elkan)
    # posterior odds scale by beta
    np.testing.assert_allclose(
        priors.odds(priors.correct_prior(p, beta=beta)), beta * priors.odds(p)
    )
