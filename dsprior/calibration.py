"""Recalibration of probabilities at the production prior, and how calibrated they are.

Pure functions on arrays; no files. Scores arrive as log-odds (the model's float64 logit
moved by the prior correction); fits and maps work on them directly
(``fit_calibration_log_odds``, ``Calibration.map_log_odds``), and the probability forms
(``fit_calibration``, ``Calibration.apply``) remain for callers holding probabilities.
The prior correction (``dsprior.priors``) is
exact only when the raw scores were calibrated at the training prior; a network
rarely is, and the label-free estimators (``dsprior.quantify``) are only as good as
the calibration. Every map here is an affine map of the log-odds of the
prior-corrected probability ``p`` (docs/methods.md, sections 3 and 5):

    p_cal = sigmoid(slope * logit(p) + intercept)

- ``none``: slope 1, intercept 0 (the prior correction alone);
- ``temperature`` (Guo et al. 2017) or ``platt`` (Platt 1999) fitted on ``dev_a``
  at the training prior, on the raw score's log-odds, before the prior
  correction; the correction adds ``offset = log(beta) + shift`` to the log-odds,
  so the fit becomes ``slope * logit(p) + intercept + offset * (1 - slope)``;
- ``platt`` fitted on ``dev_b`` at the production prior, on ``logit(p)``;
- ``isotonic`` (Zadrozny and Elkan 2002) fitted on ``dev_b`` at the production
  prior: a monotone step map of ``logit(p)``, stored as its knots and applied by
  linear interpolation (``sklearn.isotonic.IsotonicRegression``'s own rule). Fitted on
  logits, the confident examples a float32 sigmoid would pile at exactly 1 stay apart.

The candidate with the lowest weighted log loss on ``dev_b`` at the prior is
chosen; a candidate fitted on ``dev_b`` is scored by group-wise cross-fitting
there, so that it is not judged on the rows it was fitted to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import numpy as np
from scipy.special import expit, logit
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold

from dsprior import priors

METHODS = ("none", "temperature", "platt", "isotonic")
FIT_SPLITS = ("dev_a", "dev_b")
EPS = 1e-12  # probabilities are clipped to [EPS, 1 - EPS] before taking log-odds
NEWTON_STEPS = 100
CV_FOLDS = 5
# isotonic outputs kept in [b, 1 - b], b = max(1e-6, 0.5 / rows): a step with no negative (or
# no positive) among a few rows is no evidence of a probability of 1 (or 0)
ISOTONIC_BOUND = 1e-6


class CalibrationRecord(TypedDict):
    """A ``Calibration`` as JSON (``as_dict``): bundle.json's and metrics.json's."""

    method: Annotated[str, "none (the identity), platt or isotonic"]
    fitted_on: Annotated[str | None, "the split it was fitted on; null for the identity"]
    slope: Annotated[float, "Platt slope on log-odds"]
    intercept: Annotated[float, "Platt intercept on log-odds"]
    offset: Annotated[float, "log-odds offset applied before the map"]
    knots_x: Annotated[list[float], "isotonic knots: log-odds in"]
    knots_y: Annotated[list[float], "isotonic knots: probability out"]


@dataclass(frozen=True)
class Calibration:
    """``p_cal = sigmoid(slope * logit(p) + intercept)`` on probabilities at the prior."""

    method: str = "none"
    fitted_on: str | None = None
    slope: float = 1.0
    intercept: float = 0.0
    # logit(p) - logit(what the fit saw): log(beta) (+ shift) for a dev_a fit, 0 for dev_b
    offset: float = 0.0
    # isotonic only: the step map's knots, log-odds in and probabilities out, nondecreasing
    knots_x: tuple[float, ...] = field(default=())
    knots_y: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "knots_x", tuple(float(v) for v in self.knots_x))
        object.__setattr__(self, "knots_y", tuple(float(v) for v in self.knots_y))
        if self.method == "isotonic":
            kx, ky = np.asarray(self.knots_x), np.asarray(self.knots_y)
            if len(kx) == 0 or len(kx) != len(ky):
                raise ValueError(
                    f"isotonic calibration needs knots_x and knots_y of one length >= 1, got "
                    f"{len(kx)} and {len(ky)}"
                )
            if not (np.all(np.isfinite(kx)) and np.all(np.diff(kx) >= 0)):
                raise ValueError("calibration knots_x must be finite and nondecreasing")
            if not (np.all((ky >= 0) & (ky <= 1)) and np.all(np.diff(ky) >= 0)):
                raise ValueError("calibration knots_y must be nondecreasing probabilities")
        elif self.knots_x or self.knots_y:
            raise ValueError(f"calibration knots are for method isotonic, not {self.method!r}")
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {METHODS}, got {self.method!r}")
        if self.fitted_on is not None and self.fitted_on not in FIT_SPLITS:
            raise ValueError(
                f"calibration fitted_on must be one of {FIT_SPLITS} or null, got {self.fitted_on!r}"
            )
        for name in ("slope", "intercept", "offset"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"calibration {name} must be finite, got {getattr(self, name)!r}")
        if self.slope <= 0:
            raise ValueError(f"calibration slope must be > 0 (a monotone map), got {self.slope}")

    @property
    def is_identity(self) -> bool:
        return self.method != "isotonic" and self.slope == 1.0 and self.intercept == 0.0

    def map_log_odds(self, log_odds_at_prior: np.ndarray) -> np.ndarray:
        """Calibrated log-odds from prior-corrected log-odds (``logit(p)``), in float64.

        The path scores take: no probability is formed, so nothing rounds to 0 or 1 on the
        way. Isotonic outputs are bounded away from 0 and 1, so their log-odds are finite.
        """
        z = np.asarray(log_odds_at_prior, dtype=np.float64)
        if self.is_identity:
            return z.copy()
        if self.method == "isotonic":
            return logit(np.interp(z, self.knots_x, self.knots_y))
        return self.slope * z + self.intercept

    def probability(self, log_odds_at_prior: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from prior-corrected log-odds."""
        z = np.asarray(log_odds_at_prior, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(z, self.knots_x, self.knots_y)
        return expit(self.map_log_odds(z))

    def apply(self, probability: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from probabilities; the identity returns them unchanged.

        For callers holding probabilities only; scores flow through ``map_log_odds``.
        """
        p = np.asarray(probability, dtype=np.float64)
        if self.is_identity:
            return p.copy()
        return self.probability(log_odds(p))

    def invert_log_odds(self, log_odds_calibrated: np.ndarray | float) -> np.ndarray:
        """The prior-corrected log-odds that this map sends to ``log_odds_calibrated``."""
        z = np.asarray(log_odds_calibrated, dtype=np.float64)
        if self.is_identity:
            return z.copy()
        if self.method == "isotonic":
            return self._isotonic_inverse(expit(z))
        return (z - self.intercept) / self.slope

    def _isotonic_inverse(self, probability: np.ndarray) -> np.ndarray:
        """The lowest knot (log-odds) whose output reaches ``probability`` (steps are flat)."""
        i = np.searchsorted(self.knots_y, probability, side="left")
        return np.asarray(self.knots_x)[np.minimum(i, len(self.knots_x) - 1)]

    def invert(self, probability: np.ndarray | float) -> np.ndarray:
        """The prior-corrected probability that this map sends to ``probability``."""
        p = np.asarray(probability, dtype=np.float64)
        if self.is_identity:
            return p.copy()
        if self.method == "isotonic":  # searched on the probabilities themselves, unrounded
            return expit(self._isotonic_inverse(p))
        return expit(self.invert_log_odds(log_odds(p)))

    def as_dict(self) -> CalibrationRecord:
        return {
            "method": self.method,
            "fitted_on": self.fitted_on,
            "slope": self.slope,
            "intercept": self.intercept,
            "offset": self.offset,
            "knots_x": list(self.knots_x),
            "knots_y": list(self.knots_y),
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Calibration:
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(record) - allowed)
        if unknown:
            raise ValueError(f"calibration has unknown keys {unknown}; allowed {sorted(allowed)}")
        return cls(**record)


IDENTITY = Calibration()


def log_odds(probability: np.ndarray) -> np.ndarray:
    """``logit(p)`` with ``p`` clipped to ``[EPS, 1 - EPS]`` (a float32 sigmoid reaches 0 and 1)."""
    return logit(np.clip(np.asarray(probability, dtype=np.float64), EPS, 1.0 - EPS))


def fit_logistic(
    x: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    fit_intercept: bool = True,
) -> tuple[float, float]:
    """Weighted maximum-likelihood ``(slope, intercept)`` of ``P(y=1|x) = sigmoid(a x + b)``.

    Newton's method on two parameters (unpenalised; sklearn's ``LogisticRegression``
    gives the same optimum, checked in the tests, but is ~50x slower for the
    thousand refits a bootstrap makes). ``fit_intercept=False`` is temperature
    scaling: ``b = 0``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = priors.check_binary(labels).astype(np.float64)
    w = priors.check_weights(weights, len(y))
    if x.shape != y.shape:
        raise ValueError(f"x and labels shapes differ: {x.shape} vs {y.shape}")
    if np.dot(w, y) <= 0 or np.dot(w, 1 - y) <= 0:
        raise ValueError("a calibration fit needs positive weight in both classes")

    # two parameters: the gradient and Hessian are written out as sums (no BLAS calls,
    # whose threads crawl on a busy small machine); steps are halved until the loss falls,
    # because near-separable data (saturated scores) throws a plain Newton step far off
    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))

    a, b = 1.0, 0.0  # start at the identity: the scores are nearly calibrated already
    current = loss(a, b)
    for _ in range(NEWTON_STEPS):
        p = expit(a * x + b)
        r, h = w * (p - y), w * p * (1 - p)
        g_a, h_aa = float(np.sum(r * x)), float(np.sum(h * x * x)) + 1e-12
        if fit_intercept:
            g_b, h_bb, h_ab = float(np.sum(r)), float(np.sum(h)) + 1e-12, float(np.sum(h * x))
            det = h_aa * h_bb - h_ab * h_ab
            step_a = (h_bb * g_a - h_ab * g_b) / det
            step_b = (h_aa * g_b - h_ab * g_a) / det
        else:
            step_a, step_b = g_a / h_aa, 0.0
        # halve until the loss falls or the step no longer moves (a, b) in floating point:
        # saturated scores (log-odds of +-30) make h ~ 0 and the step ~1e14, which a fixed
        # number of halvings (once 40) can leave far too long, stopping at the start
        scale, size = 1.0, max(abs(step_a), abs(step_b))
        while True:
            candidate = loss(a - scale * step_a, b - scale * step_b)
            if candidate <= current:
                break
            scale /= 2.0
            if scale * size <= 1e-15 * (1.0 + max(abs(a), abs(b))):
                scale = 0.0  # no step lowers the loss: at the optimum to rounding
                break
        if scale == 0.0:
            break
        a, b, current = a - scale * step_a, b - scale * step_b, candidate
        if scale * max(abs(step_a), abs(step_b)) < 1e-10:
            break
    theta = (a, b)
    slope = float(theta[0])
    intercept = float(theta[1]) if fit_intercept else 0.0
    return slope, intercept


def fit_calibration(
    probability: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    method: str,
    fitted_on: str,
    offset: float = 0.0,
) -> Calibration:
    """``fit_calibration_log_odds`` on ``log_odds(probability)``, for callers holding probabilities."""
    return fit_calibration_log_odds(
        log_odds(probability), labels, weights, method=method, fitted_on=fitted_on, offset=offset
    )


def fit_calibration_log_odds(
    log_odds_at_prior: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    method: str,
    fitted_on: str,
    offset: float = 0.0,
) -> Calibration:
    """Fit ``method`` on prior-corrected log-odds; the fit sees ``log_odds_at_prior - offset``.

    ``offset`` is ``log(beta)`` (plus any prior shift) for a fit at the training
    prior on raw scores (``dev_a``), 0 for a fit at the production prior (``dev_b``).
    The log-odds are taken as they are: the model's logits keep apart what a saturated
    sigmoid (clipped to ``logit(1 - EPS)``) would pile on one value.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    if method == "none":
        return IDENTITY
    if method == "isotonic" and offset != 0:
        # A step map's outputs are probabilities at the prior it was fitted at; moving its inputs
        # by the offset would not move its outputs, so the map would be wrong by the offset.
        raise ValueError(
            f"isotonic is fitted at the production prior only (offset 0), got offset {offset:g} "
            f"for a fit on {fitted_on}"
        )
    x = np.asarray(log_odds_at_prior, dtype=np.float64) - offset
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{int((~np.isfinite(x)).sum())} log-odds to fit on are not finite")
    if method == "isotonic":
        return fit_isotonic(x, labels, weights, fitted_on=fitted_on)
    slope, intercept = fit_logistic(x, labels, weights, fit_intercept=method == "platt")
    if slope <= 0:
        raise ValueError(f"the {method} fit on {fitted_on} has slope {slope:.3g} <= 0")
    # sigmoid(a (logit(p) - c) + b) at the fit's prior; the prior correction adds c again
    return Calibration(
        method=method,
        fitted_on=fitted_on,
        slope=slope,
        intercept=intercept + offset * (1.0 - slope),
        offset=float(offset),
    )


def fit_isotonic(
    x: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, *, fitted_on: str
) -> Calibration:
    """Weighted isotonic regression of the labels on log-odds ``x``, as its knots."""
    from sklearn.isotonic import IsotonicRegression

    y = priors.check_binary(labels).astype(np.float64)
    w = priors.check_weights(weights, len(y))
    if np.sum(w * y) <= 0 or np.sum(w * (1 - y)) <= 0:
        raise ValueError("a calibration fit needs positive weight in both classes")
    bound = max(ISOTONIC_BOUND, 0.5 / max(int(np.count_nonzero(w)), 1))
    model = IsotonicRegression(y_min=bound, y_max=1.0 - bound, out_of_bounds="clip").fit(
        x, y, sample_weight=w
    )
    return Calibration(
        method="isotonic",
        fitted_on=fitted_on,
        knots_x=tuple(model.X_thresholds_),
        knots_y=tuple(model.y_thresholds_),
    )


def refit(
    calibration: Calibration,
    probability: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
) -> Calibration:
    """The same method fitted again on other (resampled) rows of its split."""
    return refit_log_odds(calibration, log_odds(probability), labels, weights)


def refit_log_odds(
    calibration: Calibration,
    log_odds_at_prior: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
) -> Calibration:
    """:func:`refit` on prior-corrected log-odds, as the model's scores arrive."""
    if calibration.method == "none":
        return calibration
    return fit_calibration_log_odds(
        log_odds_at_prior,
        labels,
        weights,
        method=calibration.method,
        fitted_on=str(calibration.fitted_on),
        offset=calibration.offset,
    )


def weighted_log_loss(
    labels: np.ndarray, probability: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """sklearn's ``log_loss`` with ``sample_weight`` (probabilities clipped as ``log_odds``)."""
    p = np.clip(np.asarray(probability, dtype=np.float64), EPS, 1.0 - EPS)
    return float(log_loss(labels, p, sample_weight=weights, labels=[0, 1]))


def log_loss_of_log_odds(
    labels: np.ndarray, log_odds_values: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """The weighted mean log loss from log-odds ``z``: ``log(1 + e^z) - y z``, no clipping.

    A confident mistake at log-odds 40 costs 40, not the ``-log(EPS)`` = 27.6 a clipped
    probability would give it.
    """
    y = priors.check_binary(labels).astype(np.float64)
    z = np.asarray(log_odds_values, dtype=np.float64)
    w = priors.check_weights(weights, len(y))
    if w.sum() <= 0:
        raise ValueError("a log loss needs positive total weight")
    return float(np.average(np.logaddexp(0.0, z) - y * z, weights=w))


def calibration_quality(
    labels: np.ndarray,
    probability: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_bins: int = 10,
) -> dict[str, float]:
    """Calibration-in-the-large and a weighted calibration error, with ``weights`` at the prior.

    ``mean_probability`` against ``label_rate`` (the weighted positive fraction), their
    ratio, and ``calibration_error`` = sum over equal-weight bins of
    ``bin weight * |mean probability - observed rate|`` (an expected calibration
    error, ECE, with the weights that put the split at the prior).
    """
    y = priors.check_binary(labels)
    p = np.asarray(probability, dtype=np.float64)
    w = priors.check_weights(weights, len(y))
    if w.sum() <= 0:
        raise ValueError("calibration_quality needs positive total weight")
    mean_p = float(np.dot(w, p) / w.sum())
    rate = float(np.dot(w, y) / w.sum())
    table = priors.weighted_calibration(y, p, w, n_bins=n_bins)
    error = float(np.sum(table["weight"] * np.abs(table["predicted"] - table["observed"])))
    return {
        "mean_probability": mean_p,
        "label_rate": rate,
        "mean_to_rate": mean_p / rate if rate > 0 else float("nan"),
        "calibration_error": error,
        "log_loss": weighted_log_loss(y, p, w),
    }


def cross_fitted_log_loss(
    log_odds_at_prior: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray,
    *,
    method: str,
    offset: float = 0.0,
    folds: int = CV_FOLDS,
) -> float:
    """Log loss of ``method`` fitted on the other folds of the same split (groups kept whole),
    from prior-corrected log-odds."""
    y = priors.check_binary(labels)
    z = np.asarray(log_odds_at_prior, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    n_groups = len(np.unique(groups))
    folds = min(folds, n_groups)
    if folds < 2:
        return float("nan")
    out = np.empty(len(y))
    for train, held in GroupKFold(n_splits=folds).split(z, y, groups):
        try:
            fold = fit_calibration_log_odds(
                z[train], y[train], w[train], method=method, fitted_on="dev_b", offset=offset
            )
        except ValueError:  # a fold with one class only: score it uncalibrated
            fold = IDENTITY
        out[held] = fold.map_log_odds(z[held])
    return log_loss_of_log_odds(y, out, w)


def choose_calibration(
    *,
    dev_a: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    dev_b: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    dev_a_offset: float,
) -> tuple[Calibration, list[dict[str, object]]]:
    """The candidate with the lowest dev_b log loss at the prior, and every candidate's score.

    ``dev_a`` is ``(z, labels, weights at the training prior)`` or None (no dev_a
    candidates); ``dev_b`` is ``(z, labels, weights at the production prior, groups)``;
    ``z`` are prior-corrected log-odds (the model's logits moved by the prior correction).
    Ties keep the simpler map (the order of the candidates below).
    """
    z_b, y_b, w_b, g_b = dev_b
    candidates: list[tuple[Calibration, float, str]] = [
        (IDENTITY, log_loss_of_log_odds(y_b, z_b, w_b), "prior correction only")
    ]
    if dev_a is not None:
        z_a, y_a, w_a = dev_a
        for method in ("temperature", "platt"):
            try:
                fit = fit_calibration_log_odds(
                    z_a, y_a, w_a, method=method, fitted_on="dev_a", offset=dev_a_offset
                )
            except ValueError:
                continue
            candidates.append(
                (
                    fit,
                    log_loss_of_log_odds(y_b, fit.map_log_odds(z_b), w_b),
                    "dev_b, out of sample",
                )
            )
    for method in ("platt", "isotonic"):
        try:
            fit = fit_calibration_log_odds(z_b, y_b, w_b, method=method, fitted_on="dev_b")
            loss = cross_fitted_log_loss(z_b, y_b, w_b, g_b, method=method)
            candidates.append((fit, loss, f"dev_b, {CV_FOLDS}-fold group cross-fitting"))
        except ValueError:
            pass
    table: list[dict[str, object]] = [
        {
            "method": c.method,
            "fitted_on": c.fitted_on,
            "slope": c.slope,
            "intercept": c.intercept,
            "knots": len(c.knots_x),
            "dev_b_log_loss": loss,
            "scored_on": how,
        }
        for c, loss, how in candidates
    ]
    losses = np.array([loss if np.isfinite(loss) else np.inf for _, loss, _ in candidates])
    best = candidates[int(np.argmin(losses))][0]
    return best, table
