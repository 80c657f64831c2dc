"""dev_a's evaluation sample: a fixed, stratified, weighted subsample scored at every
evaluation during training, with a bootstrap interval on each score at the production prior.

Scoring all of dev_a every ``eval_every`` steps costs its size times the number of
evaluations; at the reference scale that was more forward passes than the examples trained
on. The sample bounds that cost (``train.eval_sample`` examples), and the whole of dev_a is
scored only where a decision is made (``callback.StepCurves``).

- **Stratified:** the strata are dev_a's (source, label) cells; each gets its share of the
  sample (largest remainder), at least one example, drawn without replacement with a seeded
  generator. The sample is the same at every evaluation and on a resumed run.
- **Weighted:** an example drawn from a stratum of ``N`` examples of which ``n`` were drawn
  stands for ``N / n`` of dev_a's (``expansion``). The as-sampled view weighs by it, the
  production-prior view by it times the manifest's ``weight``, so both views estimate the
  whole of dev_a's scores, not the sample's own mix.
- **Interval:** a stratified bootstrap (each stratum resampled with replacement to its own
  size, ``RESAMPLES`` times, the same draws at every evaluation), percentile 95%, of the
  production-prior view's loss, precision, recall and F1 (``INTERVAL_SCORES``; not average
  precision, see there), computed for all resamples at once (``bootstrap_scores``). It is
  the sample's uncertainty about the whole of dev_a's score, not dev_a's own uncertainty
  about production.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_expit, logit

RESAMPLES = 200
LEVEL = 0.95
# The scores whose sample interval holds the whole of dev_a's value at about its stated rate
# (measured over repeated draws: tests/test_training_devsample.py). Average precision at the
# production prior has none: it is a ratio over ranks in which each sampled negative stands
# for many (dev_a's weight of about 48, times what the draw left out), so the sample's value
# runs above the whole's, and a percentile, basic or bias-corrected bootstrap interval held it
# 60-80% of the time on an 18,400-example dev_a sampled to 1,000-4,000. Its sample curve is a
# trend only; the decisions use the whole of dev_a's.
INTERVAL_SCORES = ("loss", "precision", "recall", "f1")
# the sample's generator is seeded [train.seed, _SEED_STREAM], the bootstrap's [.., + 1]
_SEED_STREAM = 7


@dataclass(frozen=True)
class DevSample:
    """The sampled dev_a rows (in dev_a's order), what each stands for, and its strata."""

    rows: pd.DataFrame
    expansion: np.ndarray  # dev_a examples each sampled example stands for (N / n of its stratum)
    strata: np.ndarray  # stratum number of each sampled example
    population: int  # dev_a's size


def strata_of(rows: pd.DataFrame) -> np.ndarray:
    """Each row's stratum: its (source, label) cell, numbered in sorted order."""
    keys = rows[["source", "label"]] if "source" in rows else rows[["label"]]
    return keys.astype(str).agg("\0".join, axis=1).pipe(pd.factorize, sort=True)[0]


def allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Each stratum's share of ``total`` draws, proportional to ``sizes`` by largest remainder,
    at least one from every non-empty stratum and never more than the stratum holds."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if total >= sizes.sum():
        return sizes.copy()
    exact = total * sizes / sizes.sum()
    counts = np.minimum(np.maximum(np.floor(exact).astype(np.int64), 1), sizes)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    for i in np.resize(order, 2 * len(order)):
        if counts.sum() >= total:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
    while counts.sum() > total:  # the floors of one pushed it over: take from the largest
        counts[int(np.argmax(counts))] -= 1
    return counts


def draw_dev_sample(rows: pd.DataFrame, size: int, *, seed: int) -> DevSample | None:
    """The evaluation sample of ``size`` of dev_a's ``rows``; None when dev_a is not larger
    (then the whole of dev_a is scored at every evaluation)."""
    if size >= len(rows):
        return None
    strata = strata_of(rows)
    sizes = np.bincount(strata)
    counts = allocate(sizes, size)
    rng = np.random.default_rng([int(seed), _SEED_STREAM])
    chosen = []
    for stratum, n in enumerate(counts):
        members = np.flatnonzero(strata == stratum)
        chosen.append(np.sort(rng.choice(members, size=n, replace=False)) if n else members[:0])
    keep = np.sort(np.concatenate(chosen))
    expansion = (sizes / np.maximum(counts, 1))[strata[keep]]
    return DevSample(
        rows=rows.iloc[keep].reset_index(drop=True),
        expansion=expansion.astype(np.float64),
        strata=strata[keep],
        population=len(rows),
    )


def bootstrap_counts(strata: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` draw counts of a stratified bootstrap: each stratum's members drawn
    with replacement as many times as it has members."""
    strata = np.asarray(strata)
    rng = np.random.default_rng([int(seed), _SEED_STREAM + 1])
    counts = np.zeros((resamples, len(strata)), dtype=np.float64)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        probabilities = np.full(len(members), 1 / len(members))
        counts[:, members] = rng.multinomial(len(members), probabilities, size=resamples)
    return counts


def bootstrap_scores(
    y_true: np.ndarray,
    log_odds: np.ndarray,
    weight: np.ndarray,
    counts: np.ndarray,
    *,
    threshold: float,
) -> dict[str, np.ndarray]:
    """Loss, precision, recall and F1 (``INTERVAL_SCORES``) of every bootstrap resample at
    once: resample ``b`` weighs example ``i`` by ``weight[i] * counts[b, i]``.

    Each equals ``scores.classification_scores`` on that resample (scikit-learn's
    definitions: precision 0 with nothing flagged), which the tests check.
    """
    y = np.asarray(y_true).astype(bool)
    z = np.asarray(log_odds, dtype=np.float64)
    w = counts * np.asarray(weight, dtype=np.float64)  # (B, n)
    flagged = z > logit(threshold)
    loss_each = -np.where(y, log_expit(z), log_expit(-z))
    total = w.sum(axis=1)
    tp = w[:, y & flagged].sum(axis=1)
    fp = w[:, ~y & flagged].sum(axis=1)
    positives = w[:, y].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(positives > 0, tp / positives, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        loss = (w @ loss_each) / total
    return {
        "loss": loss,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of the finite draws (NaN, NaN when none is finite)."""
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
