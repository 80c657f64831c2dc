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


def test_correction_keeps_the_ends_and_takes_scalars():
    """0 and 1 stay 0 and 1 both ways; beta=1 is the identity; a scalar gives a 0-d array."""
    for beta in (0.02, 0.1, 1.0, 50.0):  # 0.1: p_s = 1 rounds a hair above 1
        for f in (priors.correct_prior, priors.invert_prior_correction):
            ends = f([0.0, 1.0], beta=beta)
            np.testing.assert_allclose(ends, [0.0, 1.0], atol=1e-12)
            assert ((ends >= 0) & (ends <= 1)).all()
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(priors.correct_prior(p, beta=1.0), p)
    assert float(priors.correct_prior(0.5, beta=0.02)) == pytest.approx(0.02 / 1.02)
    # MET example: t* = 1/11 at the prior is a raw score of 1/(1 + 0.02 * 10) = 0.8333
    assert float(priors.invert_prior_correction(1 / 11, beta=0.02)) == pytest.approx(1 / 1.2)


def test_odds_and_beta_from_priors_by_hand():
    """odds(p) = p/(1-p); 1:100 thinned to 1:2 keeps 2% of negatives; equal priors keep all."""
    assert priors.odds(0.2) == pytest.approx(0.25)
    np.testing.assert_allclose(priors.odds(np.array([0.5, 0.75])), [1.0, 3.0])
    assert priors.beta_from_priors(production_prior=1 / 101, training_prior=1 / 3) == (
        pytest.approx(0.02)
    )
    assert priors.beta_from_priors(production_prior=0.4, training_prior=0.4) == pytest.approx(1.0)
    assert priors.beta_from_priors(production_prior=0.5, training_prior=0.2) == pytest.approx(4.0)


def test_prior_shift_only_between_different_valid_priors():
    """A shift (from, to) exists iff the model's prior is a rate in (0, 1) unlike the prior."""
    assert priors.prior_shift(model_prior=None, prior=0.01) is None
    assert priors.prior_shift(model_prior=0.01, prior=0.01 + 1e-12) is None
    assert priors.prior_shift(model_prior=0.0, prior=0.01) is None
    assert priors.prior_shift(model_prior=1.0, prior=0.01) is None
    shift = priors.prior_shift(model_prior=0.05, prior=0.01)
    assert shift == (0.05, 0.01) and all(type(x) is float for x in shift)
    assert priors.prior_shift(model_prior=np.float32(0.5), prior=0.25) == (0.5, 0.25)


def test_probability_at_prior_corrects_then_shifts():
    """beta first, then the Saerens shift: odds scale by beta * odds(to)/odds(from)."""
    scores = np.array([0.0, 0.3, 0.5, 0.8, 1.0])
    beta = 0.1
    corrected = priors.probability_at_prior(scores, beta=beta)
    np.testing.assert_allclose(corrected, priors.correct_prior(scores, beta=beta))
    shifted = priors.probability_at_prior(list(scores), beta=beta, shift=(0.2, 0.05))
    scale = beta * (0.05 / 0.95) / (0.2 / 0.8)
    inner = scores[1:-1]
    np.testing.assert_allclose(priors.odds(shifted[1:-1]), scale * priors.odds(inner))
    np.testing.assert_allclose(shifted[[0, -1]], [0.0, 1.0], atol=1e-12)
    # the shift goes from the first prior to the second, not back
    back = priors.probability_at_prior(scores, beta=beta, shift=(0.05, 0.2))
    assert (back[1:-1] > corrected[1:-1]).all() and (shifted[1:-1] < corrected[1:-1]).all()


def test_float32_inputs_are_computed_in_float64():
    """Single-precision scores come back float64 and equal the float64 computation."""
    p32 = np.array([0.1, 0.3, 0.7], dtype=np.float32)
    p64 = p32.astype(np.float64)
    for f in (priors.correct_prior, priors.invert_prior_correction):
        got = f(p32, beta=0.1)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, f(p64, beta=0.1))


@pytest.mark.parametrize(
    ("beta", "shift"), [(0.02, None), (0.1, (0.01, 0.03)), (3.0, (0.2, 0.05)), (1.0, None)]
)
def test_log_odds_correction_equals_the_probability_formula(beta, shift):
    """``logit + log(beta) (+ log(odds(to)/odds(from)))`` is ``logit`` of the probability
    route wherever both are finite; beyond where the probability rounds to 1 the log-odds
    keep their order (the probability route ties them)."""
    z = np.linspace(-30, 30, 121)
    at_prior = priors.log_odds_at_prior(z, beta=beta, shift=shift)
    via_p = priors.probability_at_prior(priors.sigmoid(z), beta=beta, shift=shift)
    inside = (via_p > 1e-300) & (via_p < 1 - 1e-6)
    np.testing.assert_allclose(priors.sigmoid(at_prior), via_p, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(
        at_prior[inside], np.log(via_p[inside] / (1 - via_p[inside])), rtol=1e-7, atol=1e-7
    )
    assert at_prior.dtype == np.float64
    assert priors.prior_offset(beta=beta, shift=shift) == pytest.approx(at_prior[0] - z[0])
    far = np.array([40.0, 45.0, 50.0])
    assert len(np.unique(priors.probability_at_prior(priors.sigmoid(far), beta=beta))) == 1
    assert np.all(np.diff(priors.log_odds_at_prior(far, beta=beta)) > 0)


def test_log_odds_correction_refuses_nan_and_a_bad_beta():
    with pytest.raises(ValueError, match="logits must not be NaN"):
        priors.log_odds_at_prior(np.array([0.0, np.nan]), beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        priors.log_odds_at_prior(np.zeros(2), beta=0.0)
