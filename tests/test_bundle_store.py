"""dsprior.bundle.store: writing a bundle, and how reading it refuses an edited or unsafe one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsprior import bundle, cnn, runtime
from tests.factories import (
    DIM,
    downgrade_to_format_1,
    downgrade_to_format_2,
    edited_copy,
    read_json,
    spec_inputs,
)

# ``pipeline`` (conftest) at each of PIPELINE_PRIORS: evaluate's estimate, or the model's own.
pytestmark = pytest.mark.every_prior


def test_load_bundle_gives_the_model_and_its_dim(pipeline: dict[str, Path]) -> None:
    loaded = bundle.load_bundle(pipeline["bundle"])
    assert loaded.dim == DIM and cnn.model_dim(loaded.model) == DIM
    assert loaded.threshold == read_json(pipeline["reports"] / "metrics.json")["threshold"]


def test_edited_bundle_is_refused(pipeline: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(pipeline["bundle"], copy)
    spec = read_json(copy / "bundle.json")
    spec["threshold"]["value"] = 0.5
    runtime.write_json(copy / "bundle.json", spec)
    with pytest.raises(ValueError, match="content hash does not match"):
        bundle.load_bundle(copy)
    shutil.copy(pipeline["bundle"] / "bundle.json", copy / "bundle.json")
    (copy / "model.keras").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not the model this bundle was built with"):
        bundle.load_bundle(copy)
    with pytest.raises(FileNotFoundError, match="is not a model bundle"):
        bundle.load_bundle(tmp_path / "nowhere")


def test_a_changed_reference_file_is_refused(pipeline: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(pipeline["bundle"], copy)
    table = pd.read_parquet(copy / "reference.parquet")
    table.loc[0, "label"] = 1 - table.loc[0, "label"]
    table.to_parquet(copy / "reference.parquet")
    with pytest.raises(ValueError, match="reference.parquet: missing or not the reference"):
        bundle.load_bundle(copy)


def test_a_format_1_bundle_still_scores_without_recalibration(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    copy = edited_copy(pipeline, tmp_path, downgrade_to_format_1)
    (copy / "reference.parquet").unlink()
    old = bundle.load_bundle(copy)
    logits = np.array([-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(old.probability(logits), old.prior_corrected(logits))
    assert old.reference() is None


def test_a_format_2_bundle_scores_from_log_odds_and_says_what_it_lacks(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bundle written before scores were log-odds loads, scores and decides as the current
    format does (its threshold's log-odds computed from the probability), and says, at load
    and in ``notes``, that its threshold is a probability only."""
    current = bundle.load_bundle(pipeline["bundle"])
    assert current.notes == []
    copy = edited_copy(pipeline, tmp_path, downgrade_to_format_2)
    with caplog.at_level("WARNING", logger="dsprior.bundle.store"):
        old = bundle.load_bundle(copy)
    (note,) = old.notes
    assert "format 2 bundle: threshold stored as a probability only" in note
    assert "dvc repro bundle" in caplog.text
    logits = np.linspace(-40.0, 40.0, 81)  # far beyond where a float32 sigmoid saturates
    np.testing.assert_array_equal(old.log_odds(logits), current.log_odds(logits))
    np.testing.assert_array_equal(old.probability(logits), current.probability(logits))
    assert old.threshold_logit == pytest.approx(current.threshold_logit, rel=1e-12)
    np.testing.assert_array_equal(old.decide(logits), current.decide(logits))


def test_lambda_layers_are_refused_in_safe_mode(tmp_path: Path) -> None:
    """A bundle whose model holds a Lambda (arbitrary code) never loads, even with a valid hash."""
    runtime.quiet_tensorflow()
    import keras

    inputs = keras.Input(shape=(None, DIM), name="features")
    lengths = keras.Input(shape=(), name="lengths", dtype="int32")
    pooled = keras.layers.GlobalMaxPooling1D()(keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    model = keras.Model({"features": inputs, "lengths": lengths}, keras.layers.Dense(1)(pooled))
    model.save(tmp_path / "model.keras")
    spec = bundle.build_spec(
        **spec_inputs(model_sha256=bundle.file_sha256(tmp_path / "model.keras"))
    )
    bundle.write_bundle(tmp_path / "bundle", model_path=tmp_path / "model.keras", spec=spec)
    with pytest.raises(ValueError, match="safe_mode"):
        bundle.load_bundle(tmp_path / "bundle")


def test_spec_that_is_not_json_or_not_an_object_is_refused(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    copy = edited_copy(pipeline, tmp_path, lambda spec: None)
    spec_path = copy / "bundle.json"
    spec_path.write_text('{"model": ')
    with pytest.raises(ValueError) as info:
        bundle.load_bundle(copy)
    assert str(info.value).startswith(
        f"{spec_path}: not valid JSON (Expecting value: line 1 column 11 (char 10)); rebuild"
    )
    spec_path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"bundle.json: must be a JSON object, got list$"):
        bundle.load_bundle(copy)
