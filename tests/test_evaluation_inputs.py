"""The evaluate stage's inputs as tables (``dsprior.evaluation.inputs``): the evaluated rows,
the production priors (distant and gold) and the predictions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
    out = build_predictions(rows, np.array([0.2, 0.9]), beta=0.1)
    np.testing.assert_allclose(out["probability"], priors.correct_prior([0.2, 0.9], beta=0.1))
    shifted = build_predictions(rows, np.array([0.2, 0.9]), beta=0.1, shift=(0.02, 0.01))
    assert (shifted["probability"] < out["probability"]).all()
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        build_predictions(rows, np.array([0.2]), beta=0.1)


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
