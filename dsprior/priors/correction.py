"""The prior correction (Dal Pozzolo et al. 2015; Elkan 2001, Theorem 2), its inverse, and prior shifts.

A model trained where negatives were kept at rate ``beta`` scores ``p_s``; at the production
prior its probability is ``beta*p_s / (beta*p_s - p_s + 1)``. ``shift_prior`` moves a
calibrated probability from one prior to another (Saerens et al. 2002).

In log-odds both are a shift: ``logit(p) = logit(p_s) + log(beta)``, and a prior move
``from -> to`` adds ``log(odds(to) / odds(from))`` (``prior_offset``, ``log_odds_at_prior``).
Scores flow as log-odds (the model's float64 logit); a float32 sigmoid is exactly 1 above a
logit of about 17, which would tie every confident example.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from dsprior.priors.checks import (
    check_beta,
    check_rate,
)


def odds(p: np.ndarray | float) -> np.ndarray | float:
    """``p / (1 - p)``."""
    return np.divide(p, np.subtract(1.0, p))


def beta_from_priors(*, production_prior: float, training_prior: float) -> float:
    """The fraction of production negatives a model saw: ``odds(pi) / odds(pi_s)``.

    1:100 thinned to 1:2 gives 0.02.
    """
    pi = check_rate("production_prior", production_prior)
    pi_s = check_rate("training_prior", training_prior)
    return float(odds(pi) / odds(pi_s))


def correct_prior(score: np.ndarray | float, *, beta: float) -> np.ndarray:
    """Map a probability learned with negatives kept at rate ``beta`` to the production prior.

    ``p = beta * p_s / (beta * p_s - p_s + 1)`` (Dal Pozzolo et al. 2015; Elkan
    2001, Theorem 2). A class-weighted loss with ``w_neg / w_pos = beta`` shifts
    probabilities the same way. Assumes ``score`` is calibrated at the training
    prior.
    """
    beta = check_beta(beta)
    p_s = np.asarray(score, dtype=np.float64)
    if np.any((p_s < 0) | (p_s > 1)):
        raise ValueError("score must be probabilities in [0, 1]")
    # clip: rounding can push p_s = 1 a hair above 1
    return np.clip(beta * p_s / (beta * p_s - p_s + 1.0), 0.0, 1.0)


def invert_prior_correction(probability: np.ndarray | float, *, beta: float) -> np.ndarray:
    """Inverse of :func:`correct_prior`: ``p_s = p / (p + beta * (1 - p))``."""
    beta = check_beta(beta)
    p = np.asarray(probability, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probability must be in [0, 1]")
    return np.clip(p / (p + beta * (1.0 - p)), 0.0, 1.0)


def shift_prior(probability: np.ndarray, *, from_prior: float, to_prior: float) -> np.ndarray:
    """Move calibrated probabilities from one class prior to another (Saerens et al. 2002)."""
    beta = odds(check_rate("to_prior", to_prior)) / odds(check_rate("from_prior", from_prior))
    return correct_prior(probability, beta=float(beta))


def prior_shift(*, model_prior: float | None, prior: float) -> tuple[float, float] | None:
    """The extra prior move evaluate makes after ``beta``: ``(from, to)``, or None.

    ``beta`` restores the prior that train's weights describe (``model_prior``);
    evaluate moves on to its own production prior when the two differ
    (Saerens et al. 2002). Used by evaluate, the bundle and score alike.
    """
    if model_prior is not None and 0 < model_prior < 1 and not np.isclose(model_prior, prior):
        return float(model_prior), float(prior)
    return None


def probability_at_prior(
    scores: np.ndarray, *, beta: float, shift: tuple[float, float] | None = None
) -> np.ndarray:
    """Raw sigmoid scores -> probabilities at the production prior (``beta``, then ``shift``).

    For probabilities only; scores that are log-odds go through ``log_odds_at_prior``,
    which keeps apart what a saturated sigmoid ties.
    """
    probability = correct_prior(np.asarray(scores, dtype=np.float64), beta=beta)
    if shift is not None:
        probability = shift_prior(probability, from_prior=shift[0], to_prior=shift[1])
    return probability


def prior_offset(*, beta: float, shift: tuple[float, float] | None = None) -> float:
    """What the prior correction adds to log-odds: ``log(beta)`` (+ ``log(odds(to)/odds(from))``)."""
    offset = float(np.log(check_beta(beta)))
    if shift is not None:
        from_prior = check_rate("from_prior", shift[0])
        to_prior = check_rate("to_prior", shift[1])
        offset += float(np.log(odds(to_prior) / odds(from_prior)))
    return offset


def log_odds_at_prior(
    logits: np.ndarray, *, beta: float, shift: tuple[float, float] | None = None
) -> np.ndarray:
    """Raw log-odds -> log-odds at the production prior: ``logit + prior_offset`` in float64.

    Equals ``logit(probability_at_prior(sigmoid(logit)))`` wherever both are finite, and
    stays finite and ordered where the probability rounds to 0 or 1.
    """
    z = np.asarray(logits, dtype=np.float64)
    if np.any(np.isnan(z)):
        raise ValueError(f"logits must not be NaN ({int(np.isnan(z).sum())} are)")
    return z + prior_offset(beta=beta, shift=shift)


def sigmoid(log_odds: np.ndarray | float) -> np.ndarray:
    """``1 / (1 + exp(-z))`` in float64: the probability where one is reported."""
    return expit(np.asarray(log_odds, dtype=np.float64))
