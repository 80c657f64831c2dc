"""HDy (dsprior.distribution_matching) against QuaPy's recorded output, and its invariants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dsprior.distribution_matching import hdy_prior, hellinger_distance

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "quapy_hdy.json").read_text())
QUAPY_GRID = np.linspace(0, 1, 100)  # quapy.functional.linear_search's grid


@pytest.mark.parametrize("batch", FIXTURE["batches"], ids=lambda b: f"prior {b['true_prior']}")
def test_hdy_matches_quapy_in_its_settings(batch):
    """Probabilities binned on [0, 1], the prior searched on QuaPy's grid: QuaPy's value.

    Tolerance 1e-9: the same grid value, so only float formatting may differ.
    """
    ref = FIXTURE["reference"]
    found = hdy_prior(
        np.array(ref["labels"]),
        np.array(ref["probability"]),
        np.array(batch["probability"]),
        score_range=(0.0, 1.0),
        prevalences=QUAPY_GRID,
    )
    assert found == pytest.approx(batch["quapy"]["hdy"], abs=1e-9)


@pytest.mark.parametrize("batch", FIXTURE["batches"], ids=lambda b: f"prior {b['true_prior']}")
def test_hdy_minimised_is_within_a_grid_step_of_quapy(batch):
    """The continuous search lands within a grid step (1/99) of QuaPy's grid minimum per bin count,
    so their medians differ by less than one step as well."""
    ref = FIXTURE["reference"]
    found = hdy_prior(
        np.array(ref["labels"]),
        np.array(ref["probability"]),
        np.array(batch["probability"]),
        score_range=(0.0, 1.0),
    )
    assert abs(found - batch["quapy"]["hdy"]) <= 1 / 99 + 1e-9


def test_hdy_recovers_a_known_mixture_on_log_odds():
    """A batch made of the reference's own positives and negatives at a known mix: that mix."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(300, int), np.zeros(30_000, int)]
    s = np.where(y == 1, 2.0, -2.0) + rng.normal(size=len(y))
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    batch = np.r_[s[rng.choice(pos, 60)], s[rng.choice(neg, 5940)]]  # prior 0.01
    assert hdy_prior(y, s, batch) == pytest.approx(0.01, abs=0.004)


def test_hdy_weights_equal_repeats():
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.3).astype(int)
    s = y + rng.normal(size=400)
    batch = rng.normal(size=50) + (rng.random(50) < 0.5)
    w = rng.integers(0, 3, size=50).astype(float)
    repeated = np.repeat(batch, w.astype(int))
    assert hdy_prior(y, s, batch, batch_weights=w) == pytest.approx(
        hdy_prior(y, s, repeated), abs=1e-6
    )


def test_hellinger_distance_of_identical_histograms_is_zero():
    p = np.array([0.2, 0.3, 0.5])
    assert hellinger_distance(p, p) == 0.0
    assert hellinger_distance(p, p[::-1]) > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference_labels": np.zeros(4, int)}, "both classes"),
        (
            {"reference_scores": np.array([0.1, np.nan, 0.3, 0.4])},
            "reference_scores must be finite",
        ),
        ({"batch_scores": np.ones((2, 2))}, "batch_scores must be one-dimensional"),
        ({"reference_scores": np.array([0.1, 0.2])}, "reference_scores has 2 values"),
        ({"bin_counts": [0]}, "bin_counts must be positive"),
        ({"score_range": (1.0, 0.0)}, "score_range must be"),
        ({"prevalences": np.array([0.5, 2.0])}, "prevalences must be"),
        ({"batch_weights": np.zeros(3)}, "at least one batch example"),
    ],
)
def test_hdy_refuses_bad_input(kwargs, message):
    args = {
        "reference_labels": np.array([0, 1, 0, 1]),
        "reference_scores": np.array([0.1, 0.9, 0.2, 0.8]),
        "batch_scores": np.array([0.3, 0.5, 0.7]),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        hdy_prior(
            args.pop("reference_labels"),
            args.pop("reference_scores"),
            args.pop("batch_scores"),
            **args,
        )
