"""The evaluate stage's inputs as tables (``dsprior.evaluation.inputs``): the evaluated rows,
the production priors (distant and gold) and the predictions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from dsprior import priors, sampling
from dsprior.evaluation.gold import GOLD
from dsprior.evaluation.inputs import (
    build_predictions,
    estimate_gold_prior,
    estimate_production_prior,
    evaluation_rows,
)


def test_estimate_production_prior_uses_production_ratio_rows():
    manifest = pd.DataFrame(
        {
            "label": [1, 0, 0, 0, 1, 0],
            "upstream_rate": [1.0, 1.0, 1.0, 1.0, 0.05, 0.05],
            "kept": [True, True, True, False, True, True],
            "weight": [1.0, 1.0, 2.0, 1.0, 1.0, 20.0],
        }
    )
    prior, source = estimate_production_prior(manifest)
    assert prior == pytest.approx(1 / 4)  # kept production rows: 1 positive, weight 3 of negatives
    assert "production-ratio" in source


def test_build_predictions_corrects_and_shifts():
    rows = pd.DataFrame(
        {
            "example_id": ["a", "b"],
            "split": ["test", "test"],
            "group": ["g", "h"],
            "label": [0, 1],
            "weight": [1.0, 1.0],
        }
    )
    logits = logit(np.array([0.2, 0.9]))
    out = build_predictions(rows, logits, beta=0.1)
    assert out["logit"].dtype == np.float64
    np.testing.assert_array_equal(out["logit"], logits)
    np.testing.assert_allclose(out["score"], [0.2, 0.9], rtol=1e-12)
    np.testing.assert_allclose(out["probability"], priors.correct_prior([0.2, 0.9], beta=0.1))
    np.testing.assert_allclose(out["logit_at_prior"], logit(out["probability"]), rtol=1e-12)
    shifted = build_predictions(rows, logits, beta=0.1, shift=(0.02, 0.01))
    assert (shifted["probability"] < out["probability"]).all()
    with pytest.raises(ValueError, match=r"logits must have shape \(2,\)"):
        build_predictions(rows, logits[:1], beta=0.1)


def test_build_predictions_keeps_saturated_logits_apart():
    """Logits of 20, 25 and 30 are all exactly 1 as a float32 sigmoid (the model's old score);
    from the logits the probabilities at the prior stay ordered, and so do the log-odds."""
    rows = pd.DataFrame(
        {
            "example_id": ["a", "b", "c"],
            "split": "test",
            "group": ["g", "h", "i"],
            "label": [1, 1, 0],
            "weight": 1.0,
        }
    )
    logits = np.array([20.0, 25.0, 30.0])
    assert len(set(1 / (1 + np.exp(-logits.astype(np.float32))))) == 1
    out = build_predictions(rows, logits, beta=0.02)
    assert out["logit_at_prior"].is_monotonic_increasing and out["logit_at_prior"].is_unique
    assert out["probability"].is_monotonic_increasing and out["probability"].is_unique
    np.testing.assert_allclose(out["logit_at_prior"], logits + np.log(0.02), rtol=1e-15)


def test_evaluation_rows_needs_every_split():
    manifest = sampling.MANIFEST_SCHEMA.empty_table().to_pandas()
    with pytest.raises(ValueError, match="no kept rows in splits"):
        evaluation_rows(manifest)
    # a missing column is refused where the stage reads the manifest (tests/test_evaluate.py)


def test_gold_prior_is_estimated_like_the_distant_one():
    manifest = pd.DataFrame(
        {
            "label": [1, 0, 0, 0, 1, 0, 0],
            GOLD: pd.array([1, 1, 0, 0, None, 0, None], dtype="Int8"),
            "upstream_rate": [1.0, 1.0, 1.0, 1.0, 0.05, 0.05, 1.0],
            "kept": [True, True, True, False, True, True, True],
            "weight": [1.0, 1.0, 2.0, 1.0, 1.0, 20.0, 1.0],
        }
    )
    prior, source = estimate_gold_prior(manifest)
    # kept, gold-labelled production rows: gold 1 (w 1), 1 (w 1), 0 (w 2)
    assert prior == pytest.approx(2 / 4) and "production-ratio" in source and "n=3" in source
    distant, _ = estimate_production_prior(manifest)
    assert distant == pytest.approx(1 / 5)
    assert (
        estimate_gold_prior(
            manifest.drop(columns=GOLD).assign(**{GOLD: pd.array([None] * 7, dtype="Int8")})
        )[0]
        is None
    )
