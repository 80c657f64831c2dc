"""bundle stage: what it writes, that it reproduces evaluate's probabilities, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dsprior import bundle, priors
from stages import bundle as bundle_stage
from tests.factories import BETA, DIM, MODEL_PRIOR, read_json

# ``pipeline`` (conftest) at each of PIPELINE_PRIORS: evaluate's estimate, or the model's own.
pytestmark = pytest.mark.every_prior


def test_bundle_records_what_scoring_needs(pipeline: dict[str, Path]) -> None:
    spec = read_json(pipeline["bundle"] / "bundle.json")
    metrics = read_json(pipeline["reports"] / "metrics.json")
    train = read_json(pipeline["model_dir"] / "train.json")
    assert sorted(p.name for p in pipeline["bundle"].iterdir()) == [
        "bundle.json",
        "model.keras",
        "reference.parquet",
    ]
    assert (pipeline["bundle"] / "model.keras").read_bytes() == (
        pipeline["model_dir"] / "model.keras"
    ).read_bytes()
    assert spec["dim"] == DIM and spec["dtype"] == "float16" and spec["max_abs"] == 65504.0
    assert spec["prior_correction"]["beta"] == train["beta"]
    assert spec["production_prior"] == metrics["prior"]
    assert spec["threshold"]["value"] == metrics["threshold"]
    assert spec["threshold"]["applies_to"] == "probability"
    assert spec["cost"]["false_positive"] == 1 and spec["cost"]["false_negative"] == 10
    assert spec["params"]["train"] == train["params"]
    assert spec["params"]["evaluate"] == yaml.safe_load(pipeline["params"].read_text())["evaluate"]
    assert spec["content_hash"] == bundle.content_hash(spec)
    # evaluate moved probabilities on from the prior train's weights describe, iff the priors differ
    shift = spec["prior_correction"]["shift"]
    if np.isclose(metrics["prior"], MODEL_PRIOR):
        assert shift is None
    else:
        assert shift == {"from_prior": MODEL_PRIOR, "to_prior": metrics["prior"]}


def test_bundle_maps_scores_like_evaluate(pipeline: dict[str, Path]) -> None:
    spec = bundle.read_spec(pipeline["bundle"])
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    # the prior correction is a shift of the model's log-odds; sigmoid of it is evaluate's
    corrected = priors.log_odds_at_prior(
        predictions["logit"].to_numpy(), beta=BETA, shift=bundle.spec_shift(spec)
    )
    np.testing.assert_allclose(
        priors.sigmoid(corrected), predictions["probability_prior_corrected"], rtol=0, atol=1e-15
    )
    # then evaluate's recalibration, as the bundle records it, applied to the log-odds
    metrics = read_json(pipeline["reports"] / "metrics.json")
    assert spec["calibration"] == metrics["calibration"]["chosen"]
    calibration = bundle.spec_calibration(spec)
    got = calibration.probability(corrected)
    np.testing.assert_allclose(got, predictions["probability"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        calibration.map_log_odds(corrected), predictions["logit_at_prior"], rtol=1e-12
    )
    # the rule the bundle states gives evaluate's decisions and thus its test confusion matrix
    test = predictions[predictions["split"] == "test"]
    # the threshold travels as evaluate decided with it: its log-odds, and the probability
    assert spec["threshold"]["logit"] == metrics["threshold_logit"]
    assert spec["threshold"]["value"] == metrics["threshold"]
    assert bundle.spec_threshold_logit(spec) == metrics["threshold_logit"]
    predicted = (test["logit_at_prior"] >= spec["threshold"]["logit"]).astype(int)
    tp = float((predicted * test["label"]).sum())
    assert tp == pytest.approx(metrics["test"]["sample"]["confusion"]["tp"])


def test_stage_output_is_deterministic(pipeline: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "again"
    bundle_stage.main(
        ["--params", str(pipeline["params"]), "--model-dir", str(pipeline["model_dir"])]
        + ["--dataset", str(pipeline["dataset"])]
        + ["--metrics", str(pipeline["reports"] / "metrics.json")]
        + ["--predictions", str(pipeline["reports"] / "predictions.parquet")]
        + ["--out", str(again)]
    )
    for name in ("bundle.json", "model.keras", "reference.parquet"):
        assert (again / name).read_bytes() == (pipeline["bundle"] / name).read_bytes()


def test_the_model_field_says_how_to_load_it(pipeline: dict[str, Path]) -> None:
    model = read_json(pipeline["bundle"] / "bundle.json")["model"]
    assert model["file"] == "model.keras" and model["format"] == "keras"
    assert model["load"] == (
        "keras.saving.load_model(path, safe_mode=True) after importing dsprior.cnn"
    )
