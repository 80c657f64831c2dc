"""dsprior.bundle.spec: building bundle.json, and refusing inputs that disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dsprior import bundle, priors
from tests.factories import BETA, DIM, spec_inputs

# ``pipeline`` (conftest) at each of PIPELINE_PRIORS: evaluate's estimate, or the model's own.
pytestmark = pytest.mark.every_prior


def test_stale_predictions_are_refused(pipeline: dict[str, Path]) -> None:
    spec = bundle.read_spec(pipeline["bundle"])
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    predictions["probability"] = priors.probability_at_prior(predictions["score"], beta=BETA * 2)
    with pytest.raises(ValueError, match="does not reproduce evaluate's probabilities"):
        bundle.check_against_predictions(spec, predictions)


def test_prior_shift_follows_evaluates_rule() -> None:
    assert priors.prior_shift(model_prior=None, prior=0.01) is None
    assert priors.prior_shift(model_prior=0.01, prior=0.01 + 1e-12) is None
    assert priors.prior_shift(model_prior=0.05, prior=0.01) == (0.05, 0.01)
    spec = bundle.build_spec(**spec_inputs())
    assert spec["prior_correction"]["shift"] is None
    # Elkan's worked example: beta 0.02, costs 1:10 -> raw score 0.833 is probability 1/11
    p = priors.probability_at_prior(np.array([1 / 11 / (1 / 11 + 0.02 * 10 / 11)]), beta=0.02)
    assert p[0] == pytest.approx(1 / 11)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset_dim": DIM + 1}, f"train.json has dim {DIM} but the dataset has dim {DIM + 1}"),
        ({"train_record": {"dim": DIM, "params": {}}}, "train.json lacks 'beta'"),
        ({"metrics": {"prior": 0.01, "beta": 0.02, "cost": {}}}, "metrics.json has no 'threshold'"),
        ({"dataset_dtype": "int8"}, "dataset dtype must be one of"),
    ],
)
def test_inconsistent_inputs_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bundle.build_spec(**spec_inputs(**changes))


def test_beta_disagreeing_with_evaluate_is_refused() -> None:
    metrics = {**spec_inputs()["metrics"], "beta": 0.5}
    with pytest.raises(ValueError, match="train.json has beta 0.02 but metrics.json 0.5"):
        bundle.build_spec(**spec_inputs(metrics=metrics))


def test_the_spec_keeps_its_fields_in_order_and_its_hash() -> None:
    """bundle.json's bytes follow the key order; a moved field would change every bundle's hash."""
    spec = bundle.build_spec(**spec_inputs())
    assert list(spec) == [
        "format_version", "model", "dim", "dtype", "max_abs", "min_rows", "prior_correction",
        "production_prior", "prior_source", "threshold", "cost", "calibration", "reference",
        "params", "train", "content_hash",
    ]  # fmt: skip
    assert spec["content_hash"] == bundle.content_hash(spec)
    assert list(spec["train"]) == [
        "training_prior", "production_prior_estimate", "best_step", "select_metric", "best_value",
    ]  # fmt: skip
