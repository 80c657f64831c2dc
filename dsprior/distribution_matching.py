"""Distribution matching for a batch's prior: HDy (Gonzalez-Castro, Alaiz-Rodriguez, Alegre 2013).

A binary quantifier of the family that comparisons of many quantifiers put in the best
group (docs/methods.md, section 8): the batch's score histogram is matched, in Hellinger
distance, by a mixture ``pi * H_pos + (1 - pi) * H_neg`` of the two class-conditional
histograms of a labelled reference (dev_b), and ``pi`` is the estimate. As the authors do,
the estimate is the median over histograms of 10, 20, ..., 110 bins.

Unlike EM it does not need calibrated posteriors: any score whose class-conditional
distributions are the same in the reference and in the batch will do (the label-shift
assumption), which makes it a cross-check that fails differently.

Two departures from QuaPy's ``HDy`` are options, so the tests can reproduce QuaPy exactly:

- QuaPy bins probabilities on ``[0, 1]``; at a prior of 1:100 nearly every score falls in
  the first bin, and the histograms see nothing. ``score_range=None`` (the default) bins the
  scores on the reference's own range instead; give log-odds for rare classes.
- QuaPy searches ``pi`` on a grid of 100 values (steps of 1/99, coarser than a 1:100 prior).
  ``prevalences=None`` (the default) minimises instead: the squared Hellinger distance is
  convex in ``pi`` (the square root of a mixture is concave in its weight), so a bounded
  scalar search finds the one minimum.

Pure functions on arrays; no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from dsprior import priors

HDY_BIN_COUNTS = tuple(range(10, 111, 10))  # Gonzalez-Castro et al. 2013: 10 to 110 bins
HDY_METHOD = "HDy (Gonzalez-Castro et al. 2013): Hellinger distance of score histograms, median over 10-110 bins"


def hellinger_distance(p: np.ndarray, q: np.ndarray) -> float:
    """``sqrt(sum (sqrt(p) - sqrt(q))**2)`` of two histograms (QuaPy's form, without 1/sqrt 2)."""
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def _histogram(
    scores: np.ndarray, weights: np.ndarray, *, bins: int, score_range: tuple[float, float]
) -> np.ndarray:
    """The weighted histogram of ``scores`` as fractions of the total weight."""
    counts, _ = np.histogram(scores, bins=bins, range=score_range, weights=weights)
    total = counts.sum()
    return counts / total if total > 0 else counts


def _closest_mixture(
    positive: np.ndarray, negative: np.ndarray, batch: np.ndarray, prevalences: np.ndarray | None
) -> float:
    """The mixture weight of ``positive`` whose mixture is nearest ``batch`` in Hellinger distance."""

    def distance(pi: float) -> float:
        return hellinger_distance(pi * positive + (1.0 - pi) * negative, batch)

    if prevalences is not None:  # QuaPy's linear search: the first value at the minimum
        values = [distance(float(pi)) for pi in prevalences]
        return float(prevalences[int(np.argmin(values))])
    found = minimize_scalar(
        lambda pi: distance(pi) ** 2, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-7}
    )
    # a bounded search never quite reaches the ends: look at them too
    candidates = [0.0, float(found.x), 1.0]
    return min(candidates, key=distance)


def hdy_prior(
    reference_labels: np.ndarray,
    reference_scores: np.ndarray,
    batch_scores: np.ndarray,
    *,
    reference_weights: np.ndarray | None = None,
    batch_weights: np.ndarray | None = None,
    bin_counts: Sequence[int] = HDY_BIN_COUNTS,
    score_range: tuple[float, float] | None = None,
    prevalences: np.ndarray | None = None,
) -> float:
    """The batch's positive prior by HDy: the median over ``bin_counts`` of the matched mixture weight.

    ``reference_*``: a labelled set scored by the same model (dev_b). Scores may be
    probabilities or log-odds; any monotone scale works, but the histogram bins are equal
    in width on it, so rare classes want log-odds. ``score_range``: the histograms' range
    (QuaPy: ``(0, 1)``); None takes the reference's min and max. Batch scores outside the
    range count in the end bins. ``prevalences``: a grid to search (QuaPy:
    ``np.linspace(0, 1, 100)``); None minimises over ``[0, 1]``. Weights: per-example
    multiplicities (a bootstrap's), ones when None.
    """
    y = priors.check_binary(reference_labels)
    ref = priors.check_finite_vector(reference_scores, "reference_scores")
    batch = priors.check_finite_vector(batch_scores, "batch_scores")
    if len(ref) != len(y):
        raise ValueError(f"reference_scores has {len(ref)} values, reference_labels {len(y)}")
    ref_w = priors.check_weights(reference_weights, len(ref))
    batch_w = priors.check_weights(batch_weights, len(batch))
    if not (ref_w * (y == 1)).sum() > 0 or not (ref_w * (y == 0)).sum() > 0:
        raise ValueError("hdy_prior needs reference examples of both classes with positive weight")
    if not batch_w.sum() > 0:
        raise ValueError("hdy_prior needs at least one batch example with positive weight")
    counts = [int(b) for b in bin_counts]
    if not counts or min(counts) < 1:
        raise ValueError(f"bin_counts must be positive integers, got {list(bin_counts)}")
    if score_range is None:
        low, high = float(ref.min()), float(ref.max())
        score_range = (low, high) if high > low else (low - 0.5, high + 0.5)
    low, high = float(score_range[0]), float(score_range[1])
    if not high > low:
        raise ValueError(f"score_range must be (low, high) with high > low, got {score_range}")
    grid = None if prevalences is None else np.asarray(prevalences, dtype=np.float64)
    if grid is not None and (grid.ndim != 1 or len(grid) == 0 or grid.min() < 0 or grid.max() > 1):
        raise ValueError("prevalences must be a non-empty 1-d grid of values in [0, 1]")
    batch = np.clip(batch, low, high)
    estimates = []
    for bins in counts:
        kw: dict[str, Any] = {"bins": bins, "score_range": (low, high)}
        positive = _histogram(ref[y == 1], ref_w[y == 1], **kw)
        negative = _histogram(ref[y == 0], ref_w[y == 0], **kw)
        estimates.append(
            _closest_mixture(positive, negative, _histogram(batch, batch_w, **kw), grid)
        )
    return float(np.median(estimates))
