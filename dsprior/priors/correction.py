"""The prior correction (Dal Pozzolo et al. 2015; Elkan 2001, Theorem 2), its inverse, and prior shifts.

A model trained where negatives were kept at rate ``beta`` scores ``p_s``; at the production
prior its probability is ``beta*p_s / (beta*p_s - p_s + 1)``. ``shift_prior`` moves a
calibrated probability from one prior to another (Saerens et al. 2002).
"""

from __future__ import annotations

import numpy as np

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
    """Raw sigmoid scores -> probabilities at the production prior (``beta``, then ``shift``)."""
    probability = correct_prior(np.asarray(scores, dtype=np.float64), beta=beta)
    if shift is not None:
        probability = shift_prior(probability, from_prior=shift[0], to_prior=shift[1])
    return probability
