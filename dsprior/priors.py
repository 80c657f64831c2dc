"""Prior and cost math: measuring a classifier at the production prior.

Pure functions on arrays; no files, no network. ``../shared/METHODS.md`` has the
formulas and their sources. Everything scikit-learn already ships (metrics with
``sample_weight``, confusion matrices at every threshold) is used, not rewritten;
what is here is what it lacks:

- the prior correction of Dal Pozzolo et al. (2015) / Elkan (2001, Theorem 2)
  and its inverse;
- rescaling per-example weights to a chosen production prior, and estimating
  that prior from weights;
- Siblini et al.'s (2020) calibrated precision, used to cross-check the
  weighted route;
- expected cost per 1,000 production examples, the cost-minimising threshold
  and the Bayes threshold ``c_FP / (c_FP + c_FN)`` (Elkan 2001, eq. 2);
- a weighted calibration table (``sklearn.calibration.calibration_curve`` takes
  no ``sample_weight``);
- group-level bootstrap confidence intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix, confusion_matrix_at_thresholds

logger = logging.getLogger(__name__)

PER_EXAMPLES = 1000  # expected cost and alert counts are reported per 1,000 production examples


# ----------------------------------------------------------------------------- validation


def _check_rate(name: str, value: float, *, closed: bool = False) -> float:
    value = float(value)
    ok = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not ok:
        allowed = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return value


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0.0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    return beta


def _check_costs(cost_fp: float, cost_fn: float) -> tuple[float, float]:
    cost_fp, cost_fn = float(cost_fp), float(cost_fn)
    if not (np.isfinite(cost_fp) and np.isfinite(cost_fn)) or cost_fp < 0 or cost_fn < 0:
        raise ValueError(f"costs must be finite and >= 0, got cost_fp={cost_fp}, cost_fn={cost_fn}")
    if cost_fp + cost_fn == 0:
        raise ValueError("cost_fp and cost_fn are both 0; at least one must be > 0")
    return cost_fp, cost_fn


def _check_binary(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise ValueError(f"labels must be 0 or 1, got {np.unique(labels[bad])[:5].tolist()}")
    return labels.astype(np.int8)


def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise ValueError("weights must be finite and >= 0")
    return weights


# ----------------------------------------------------------------------------- prior correction


def odds(p: np.ndarray | float) -> np.ndarray | float:
    """``p / (1 - p)``."""
    return np.divide(p, np.subtract(1.0, p))


def beta_from_priors(*, production_prior: float, training_prior: float) -> float:
    """The fraction of production negatives a model saw: ``odds(pi) / odds(pi_s)``.

    1:100 thinned to 1:2 gives 0.02.
    """
    pi = _check_rate("production_prior", production_prior)
    pi_s = _check_rate("training_prior", training_prior)
    return float(odds(pi) / odds(pi_s))


def correct_prior(score: np.ndarray | float, *, beta: float) -> np.ndarray:
    """Map a probability learned with negatives kept at rate ``beta`` to the production prior.

    ``p = beta * p_s / (beta * p_s - p_s + 1)`` (Dal Pozzolo et al. 2015; Elkan
    2001, Theorem 2). A class-weighted loss with ``w_neg / w_pos = beta`` shifts
    probabilities the same way. Assumes ``score`` is calibrated at the training
    prior.
    """
    beta = _check_beta(beta)
    p_s = np.asarray(score, dtype=np.float64)
    if np.any((p_s < 0) | (p_s > 1)):
        raise ValueError("score must be probabilities in [0, 1]")
    # clip: rounding can push p_s = 1 a hair above 1
    return np.clip(beta * p_s / (beta * p_s - p_s + 1.0), 0.0, 1.0)


def invert_prior_correction(probability: np.ndarray | float, *, beta: float) -> np.ndarray:
    """Inverse of :func:`correct_prior`: ``p_s = p / (p + beta * (1 - p))``."""
    beta = _check_beta(beta)
    p = np.asarray(probability, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probability must be in [0, 1]")
    return np.clip(p / (p + beta * (1.0 - p)), 0.0, 1.0)


def shift_prior(probability: np.ndarray, *, from_prior: float, to_prior: float) -> np.ndarray:
    """Move calibrated probabilities from one class prior to another (Saerens et al. 2002)."""
    beta = odds(_check_rate("to_prior", to_prior)) / odds(_check_rate("from_prior", from_prior))
    return correct_prior(probability, beta=float(beta))


# ----------------------------------------------------------------------------- weights and prior


def estimate_prior(labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted positive fraction: the population prior that the weights restore."""
    labels = _check_binary(labels)
    weights = _check_weights(weights, len(labels))
    total = weights.sum()
    if total <= 0:
        raise ValueError("cannot estimate a prior from zero total weight")
    return float(np.dot(labels, weights) / total)


def weights_at_prior(
    labels: np.ndarray, weights: np.ndarray | None = None, *, prior: float | None
) -> np.ndarray:
    """Rescale negative weights so that the weighted positive fraction equals ``prior``.

    Relative weights within each class are kept (so sources thinned at different
    rates stay in proportion); only the class balance moves. ``prior=None``
    returns the weights unchanged. With unit input weights every negative gets
    Siblini's ratio ``r = pi_s (1 - pi) / (pi (1 - pi_s))``.
    """
    labels = _check_binary(labels)
    weights = _check_weights(weights, len(labels)).copy()
    if prior is None:
        return weights
    prior = _check_rate("prior", prior)
    positive = labels == 1
    pos_total, neg_total = weights[positive].sum(), weights[~positive].sum()
    if pos_total <= 0 or neg_total <= 0:
        logger.warning("cannot move to prior %.4g: one class has zero weight", prior)
        return weights
    weights[~positive] *= (pos_total / neg_total) * odds(1.0 - prior)
    return weights


# ----------------------------------------------------------------------------- confusion and rates


@dataclass(frozen=True)
class Confusion:
    """Binary confusion counts; weighted counts are floats."""

    tn: float
    fp: float
    fn: float
    tp: float

    @property
    def total(self) -> float:
        return self.tn + self.fp + self.fn + self.tp

    def scaled(self, factor: float) -> Confusion:
        return Confusion(self.tn * factor, self.fp * factor, self.fn * factor, self.tp * factor)

    def as_dict(self) -> dict[str, float]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}


def confusion(
    labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None
) -> Confusion:
    """Weighted binary confusion counts via ``sklearn.metrics.confusion_matrix``."""
    labels = _check_binary(labels)
    predicted = _check_binary(predicted)
    weights = _check_weights(weights, len(labels))
    tn, fp, fn, tp = confusion_matrix(
        labels, predicted, labels=[0, 1], sample_weight=weights
    ).ravel()
    return Confusion(float(tn), float(fp), float(fn), float(tp))


def _ratio(num, den):
    """``num / den``, NaN where ``den <= 0``; a float for scalars, an array for arrays."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return float(out) if out.ndim == 0 else out


def confusion_rows(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> Confusion:
    """Confusion counts for each row of a ``[k, n]`` weight matrix: a Confusion of arrays.

    ``rates``, ``expected_cost`` and ``production_terms`` accept it as they accept
    scalar counts. One matrix product per cell, for bootstrap resamples.
    """
    labels = _check_binary(labels).astype(bool)
    predicted = _check_binary(predicted).astype(bool)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != len(labels) or len(predicted) != len(labels):
        raise ValueError(
            f"weights {weights.shape}, labels {len(labels)} and predicted {len(predicted)} "
            "must describe the same examples"
        )
    cell = {
        "tn": ~labels & ~predicted,
        "fp": ~labels & predicted,
        "fn": labels & ~predicted,
        "tp": labels & predicted,
    }
    return Confusion(**{name: weights @ mask.astype(np.float64) for name, mask in cell.items()})


def weights_at_prior_rows(
    labels: np.ndarray, weights: np.ndarray, *, prior: float | None
) -> np.ndarray:
    """``weights_at_prior`` for each row of a ``[k, n]`` weight matrix.

    A row in which one class has zero weight is left unchanged, as
    ``weights_at_prior`` leaves such weights (without a warning per row).
    """
    weights = np.array(np.atleast_2d(weights), dtype=np.float64)
    if prior is None:
        return weights
    prior = _check_rate("prior", prior)
    positive = _check_binary(labels) == 1
    pos_total = weights @ positive.astype(np.float64)
    neg_total = weights @ (~positive).astype(np.float64)
    ok = (pos_total > 0) & (neg_total > 0)
    factor = np.ones(len(weights))
    factor[ok] = pos_total[ok] / neg_total[ok] * odds(1.0 - prior)
    weights[:, ~positive] *= factor[:, None]
    return weights


def rates(cm: Confusion) -> dict[str, float]:
    """Precision, recall, F1, FPR and LR+ of one confusion matrix (NaN where undefined).

    Used on weighted counts where sklearn's own functions would need the rows
    again (bootstrap resamples, the worked example); the stage's headline
    numbers come from sklearn and tests check the two agree.
    """
    precision = _ratio(cm.tp, cm.tp + cm.fp)
    recall = _ratio(cm.tp, cm.tp + cm.fn)
    fpr = _ratio(cm.fp, cm.fp + cm.tn)
    f1 = _ratio(2 * cm.tp, 2 * cm.tp + cm.fp + cm.fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fpr,
        "lr_plus": _ratio(recall, fpr),
    }


def calibrated_precision(tp: float, fp: float, *, sample_prior: float, prior: float) -> float:
    """Siblini et al. (2020) calibrated precision ``TP / (TP + r FP)``.

    ``r = pi_s (1 - pi) / (pi (1 - pi_s))`` moves the false positives from the
    sample's positive fraction ``pi_s`` to the reference prior ``pi``.
    """
    pi_s = _check_rate("sample_prior", sample_prior)
    pi = _check_rate("prior", prior)
    r = pi_s * (1.0 - pi) / (pi * (1.0 - pi_s))
    return _ratio(tp, tp + r * fp)


def calibrated_f1(precision_c: float, recall: float) -> float:
    """Siblini's ``F_c = 2 prec_c rec / (prec_c + rec)``."""
    return _ratio(2 * precision_c * recall, precision_c + recall)


def expected_cost(
    cm: Confusion, *, cost_fp: float, cost_fn: float, per: float = PER_EXAMPLES
) -> float:
    """Cost of the errors in ``cm`` per ``per`` examples of the population ``cm`` weighs."""
    cost_fp, cost_fn = _check_costs(cost_fp, cost_fn)
    return _ratio(per * (cm.fp * cost_fp + cm.fn * cost_fn), cm.total)


def production_terms(cm: Confusion, *, per: float = PER_EXAMPLES) -> dict[str, float]:
    """What a decision rule means per ``per`` examples: alerts, true alerts, missed positives."""
    return {
        "alerts": _ratio(per * (cm.tp + cm.fp), cm.total),
        "true_alerts": _ratio(per * cm.tp, cm.total),
        "false_alerts": _ratio(per * cm.fp, cm.total),
        "missed": _ratio(per * cm.fn, cm.total),
        "positives": _ratio(per * (cm.tp + cm.fn), cm.total),
    }


# ----------------------------------------------------------------------------- thresholds


def bayes_threshold(*, cost_fp: float, cost_fn: float) -> float:
    """Bayes-optimal threshold on calibrated probabilities: ``c_FP / (c_FP + c_FN)``."""
    cost_fp, cost_fn = _check_costs(cost_fp, cost_fn)
    return cost_fp / (cost_fp + cost_fn)


@dataclass(frozen=True)
class CostCurve:
    """Expected cost (per 1,000) of the rule ``score >= threshold`` at each cut, decreasing."""

    thresholds: np.ndarray
    costs: np.ndarray
    confusions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # tn, fp, fn, tp


def cost_curve(
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    cost_fp: float,
    cost_fn: float,
    per: float = PER_EXAMPLES,
) -> CostCurve:
    """Expected cost at every distinct score cut, plus the rule that flags nothing.

    Uses ``sklearn.metrics.confusion_matrix_at_thresholds``; the first entry has
    threshold ``+inf`` (no alerts), which sklearn's cuts do not include.
    """
    labels = _check_binary(labels)
    scores = np.asarray(scores, dtype=np.float64)
    weights = _check_weights(weights, len(labels))
    cost_fp, cost_fn = _check_costs(cost_fp, cost_fn)
    if len(labels) == 0:
        raise ValueError("cost_curve needs at least one example")
    tns, fps, fns, tps, thresholds = confusion_matrix_at_thresholds(
        labels, scores, sample_weight=weights
    )
    neg_total, pos_total = fps[-1] + tns[-1], tps[-1] + fns[-1]
    tns = np.concatenate([[neg_total], tns])
    fps = np.concatenate([[0.0], fps])
    fns = np.concatenate([[pos_total], fns])
    tps = np.concatenate([[0.0], tps])
    thresholds = np.concatenate([[np.inf], thresholds])
    total = neg_total + pos_total
    costs = per * (fps * cost_fp + fns * cost_fn) / total
    return CostCurve(thresholds, costs, (tns, fps, fns, tps))


def cost_minimising_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    cost_fp: float,
    cost_fn: float,
) -> tuple[float, float]:
    """Threshold minimising weighted expected cost, searched exactly over all score cuts.

    Returns ``(threshold, cost per 1,000)``. The threshold is the midpoint between
    the chosen cut and the next lower distinct score, so the rule
    ``score >= threshold`` reproduces the chosen cut on these data and does not
    hinge on one example's exact score when applied elsewhere. Ties go to the
    higher threshold (fewer alerts).
    """
    curve = cost_curve(labels, scores, weights, cost_fp=cost_fp, cost_fn=cost_fn)
    best = int(np.argmin(curve.costs))  # first minimum = highest threshold
    cut = curve.thresholds[best]
    lower = curve.thresholds[best + 1] if best + 1 < len(curve.thresholds) else None
    if np.isinf(cut):  # flag nothing: just above the highest score
        threshold = float(np.nextafter(curve.thresholds[1], np.inf))
    elif lower is None:  # flag everything: the lowest score itself
        threshold = float(cut)
    else:
        threshold = float((cut + lower) / 2.0)
    return threshold, float(curve.costs[best])


# ----------------------------------------------------------------------------- calibration


def weighted_calibration(
    labels: np.ndarray,
    probabilities: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_bins: int = 10,
) -> dict[str, np.ndarray]:
    """Mean predicted vs weighted observed positive rate in bins of equal weight.

    Equal-weight (quantile) bins because at a 1:100 prior almost every
    probability falls in the first of ten uniform bins.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    labels = _check_binary(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    weights = _check_weights(weights, len(labels))
    order = np.argsort(p, kind="stable")
    p, y, w = p[order], labels[order], weights[order]
    cum = np.cumsum(w)
    if len(cum) == 0 or cum[-1] <= 0:
        raise ValueError("weighted_calibration needs positive total weight")
    bins = np.minimum((cum - w / 2) / cum[-1] * n_bins, n_bins - 1).astype(int)
    sums_w = np.bincount(bins, weights=w, minlength=n_bins)
    keep = sums_w > 0
    mean_pred = np.bincount(bins, weights=w * p, minlength=n_bins)[keep] / sums_w[keep]
    observed = np.bincount(bins, weights=w * y, minlength=n_bins)[keep] / sums_w[keep]
    return {"predicted": mean_pred, "observed": observed, "weight": sums_w[keep] / cum[-1]}


# ----------------------------------------------------------------------------- bootstrap


BOOTSTRAP_CHUNK = 100  # resamples per vectorised step of group_bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals and the resampled values they came from."""

    intervals: dict[str, tuple[float, float]]
    samples: dict[str, np.ndarray]
    level: float


def group_bootstrap(
    groups: np.ndarray,
    statistic: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    *,
    resamples: int,
    level: float,
    seed: int | np.random.Generator,
    progress: bool = False,
    chunk: int = BOOTSTRAP_CHUNK,
) -> BootstrapResult:
    """Percentile bootstrap that resamples whole groups with replacement, vectorised.

    Examples of one entity group are correlated, so resampling examples would
    understate the uncertainty. Each resample draws as many groups as there
    are; ``statistic`` receives a ``[k, n]`` matrix, one row per resample, of each
    example's multiplicity (how many times its group was drawn, often 0), which it
    multiplies into its weights (the same as concatenating the drawn groups' rows),
    and returns ``{name: k values}``. Resamples come ``chunk`` at a time, so memory is
    ``chunk * n`` floats. Resamples where a statistic is undefined (NaN) are left out
    of that statistic's interval. The draws are the same for any ``chunk``.
    """
    if int(resamples) < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples!r}")
    level = _check_rate("level", level)
    groups = np.asarray(groups)
    if len(groups) == 0:
        raise ValueError("group_bootstrap needs at least one example")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    _, codes = np.unique(groups, return_inverse=True)
    n_groups = int(codes.max()) + 1
    draws: dict[str, list[np.ndarray]] = {}
    starts = range(0, int(resamples), max(int(chunk), 1))
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="bootstrap", unit="chunk", leave=False)
    for start in starts:
        k = min(int(chunk), int(resamples) - start)
        drawn = rng.integers(0, n_groups, (k, n_groups))
        flat = (np.arange(k)[:, None] * n_groups + drawn).ravel()
        counts = np.bincount(flat, minlength=k * n_groups).reshape(k, n_groups)
        values = statistic(counts[:, codes].astype(np.float64))
        for name, value in values.items():
            value = np.asarray(value, dtype=np.float64).reshape(-1)
            if len(value) != k:
                raise ValueError(f"statistic {name!r} gave {len(value)} values for {k} resamples")
            draws.setdefault(name, []).append(value)
    alpha = (1.0 - level) / 2.0
    samples = {name: np.concatenate(values) for name, values in draws.items()}
    intervals = {}
    for name, values in samples.items():
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            intervals[name] = (float("nan"), float("nan"))
        else:
            low, high = np.quantile(finite, [alpha, 1.0 - alpha])
            intervals[name] = (float(low), float(high))
    return BootstrapResult(intervals=intervals, samples=samples, level=level)


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
