"""dsprior.bundle.spec: building bundle.json, and refusing inputs that disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

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
        "format_version", "scores", "model", "dim", "dtype", "max_abs", "min_rows",
        "prior_correction",
        "production_prior", "prior_source", "threshold", "cost", "calibration", "reference",
        "params", "train", "content_hash",
    ]  # fmt: skip
    assert spec["content_hash"] == bundle.content_hash(spec)
    assert list(spec["train"]) == [
        "training_prior", "production_prior_estimate", "best_step", "select_metric", "best_value",
    ]  # fmt: skip


def test_the_threshold_is_stored_as_a_probability_and_as_log_odds() -> None:
    """Format 3 stores the threshold's log-odds beside the probability, and says that scores
    are log-odds; the log-odds decide, and a threshold that flags nothing stores null."""
    spec = bundle.build_spec(**spec_inputs())
    assert spec["format_version"] == bundle.FORMAT_VERSION == 3
    assert spec["scores"]["kind"] == "log-odds"
    record = spec["threshold"]
    assert record["value"] == 0.09
    assert record["logit"] == pytest.approx(np.log(0.09 / 0.91), rel=1e-15)
    assert bundle.spec_threshold_logit(spec) == record["logit"]
    # near 1 two probabilities round together; their log-odds do not
    near_one = {**spec_inputs()["metrics"], "threshold": float(expit(30.0))}
    high = bundle.build_spec(**spec_inputs(metrics=near_one))["threshold"]
    assert high["logit"] == pytest.approx(30.0, abs=0.01)
    below, above = 29.9, 30.1  # probabilities 1e-13 apart, decided apart in log-odds
    assert expit(above) - expit(below) < 1e-13
    assert (below < high["logit"]) and (above >= high["logit"])
    nothing = {**spec_inputs()["metrics"], "threshold": float(np.nextafter(1.0, 2.0))}
    none = bundle.build_spec(**spec_inputs(metrics=nothing))
    assert none["threshold"]["logit"] is None
    assert bundle.spec_threshold_logit(none) == np.inf


def test_format_notes_say_what_an_old_bundle_lacks() -> None:
    spec = bundle.build_spec(**spec_inputs())
    assert bundle.format_notes(spec) == []
    two = {**spec, "format_version": 2}
    (note,) = bundle.format_notes(two)
    assert note.startswith("format 2 bundle: threshold stored as a probability only")
    assert "dvc repro bundle" in note
    assert len(bundle.format_notes({**spec, "format_version": 1})) == 2
