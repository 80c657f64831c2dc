"""bundle: what it records, that it reproduces evaluate's probabilities, and how it refuses to load.

``build_pipeline`` makes a tiny dataset, manifest, model and train.json, runs
the evaluate stage and the bundle stage on them; test_score.py reuses it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dsprior import common, contract, priors
from stages import bundle, evaluate

common.quiet_tensorflow()

import keras  # noqa: E402

from dsprior import cnn  # noqa: E402

DIM = 16
FILTER_SIZES = [2, 3]
MODEL_PRIOR = 0.08  # the prior train's weights describe (train.json production_prior_estimate)
BETA = 0.25


def make_examples(n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` examples of 1-9 rows, groups of two, labels alternating by group."""
    rng = np.random.default_rng(seed)
    return [
        {
            "example_id": f"x{i:03d}",
            "group": f"g{i // 2:03d}",
            "label": int((i // 2) % 5 in (0, 2)),
            "rows": rng.normal(size=(int(rng.integers(1, 10)), DIM)) * 2.0,
        }
        for i in range(n)
    ]


def write_dataset(directory: Path, examples: list[dict[str, Any]]) -> None:
    with contract.DatasetWriter(directory, dim=DIM, row_group_size=8, shard_size=40) as writer:
        for ex in examples:
            writer.add(
                example_id=ex["example_id"],
                group=ex["group"],
                label=ex["label"],
                source="tiny",
                negative_rate=1.0,
                rows=ex["rows"],
            )


def make_manifest(examples: list[dict[str, Any]]) -> pd.DataFrame:
    """dev_a thinned (negatives kept at 0.5, one thinned away), dev_b and test production-ratio."""
    splits = ["dev_a", "dev_b", "test"]
    frame = pd.DataFrame(
        {
            "example_id": [e["example_id"] for e in examples],
            "group": [e["group"] for e in examples],
            "label": np.array([e["label"] for e in examples], np.int8),
            "source": "tiny",
            "n_rows": np.array([len(e["rows"]) for e in examples], np.int32),
            "split": [splits[(i // 2) % 3] for i in range(len(examples))],
            "upstream_rate": 1.0,
        }
    )
    thinned = (frame["split"] == "dev_a") & (frame["label"] == 0)
    frame["downsample_rate"] = np.where(thinned, 0.5, 1.0)
    frame["kept"] = True
    frame.loc[frame.index[thinned][0], "kept"] = False
    frame["weight"] = np.where(frame["label"] == 0, 1.0 / frame["downsample_rate"], 1.0)
    return frame


def save_model(model_dir: Path, *, dim: int = DIM, seed: int = 3) -> None:
    model = cnn.build_cnn(
        dim=dim, filter_sizes=FILTER_SIZES, filters=4, dropout=0.5, l2=0.0, seed=seed
    )
    # Spread the untrained scores out so thresholds and decisions are not all alike.
    kernel, bias = model.get_layer("score").get_weights()
    model.get_layer("score").set_weights([kernel * 8.0, bias])
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "model.keras")
    record = {
        "dim": dim,
        "beta": BETA,
        "training_prior": 0.3,
        "production_prior_estimate": MODEL_PRIOR,
        "params": {"filter_sizes": FILTER_SIZES, "filters": 4, "seed": seed},
        "min_rows": max(FILTER_SIZES),
        "best_step": 7,
    }
    common.write_json(model_dir / "train.json", record)


def build_pipeline(root: Path, *, prior: float | None) -> dict[str, Path]:
    """Dataset, manifest, model, then the evaluate and bundle stages, under ``root``."""
    paths = {
        "params": root / "params.yaml",
        "dataset": root / "data" / "dataset",
        "manifest": root / "data" / "manifest.parquet",
        "model_dir": root / "models",
        "reports": root / "reports",
        "bundle": root / "bundle",
    }
    examples = make_examples(90, seed=5)
    write_dataset(paths["dataset"], examples)
    make_manifest(examples).to_parquet(paths["manifest"], index=False)
    save_model(paths["model_dir"])
    params = {
        "evaluate": {
            "prior": prior,
            "cost": {"false_positive": 1, "false_negative": 10},
            "bootstrap": {"resamples": 10, "level": 0.9, "seed": 1},
            "calibration_bins": 4,
            "batch_size": 8,
            "precision": "auto",
            "onednn": "auto",
            "threshold_labels": "distant",
        }
    }
    paths["params"].write_text(yaml.safe_dump(params))
    evaluate.main(
        ["--params", str(paths["params"]), "--dataset", str(paths["dataset"])]
        + ["--manifest", str(paths["manifest"]), "--model-dir", str(paths["model_dir"])]
        + ["--reports", str(paths["reports"])]
    )
    bundle.main(
        ["--params", str(paths["params"]), "--model-dir", str(paths["model_dir"])]
        + ["--dataset", str(paths["dataset"]), "--metrics", str(paths["reports"] / "metrics.json")]
        + ["--predictions", str(paths["reports"] / "predictions.parquet")]
        + ["--out", str(paths["bundle"])]
    )
    return paths


@pytest.fixture(
    scope="module", params=[None, MODEL_PRIOR], ids=["shifted-to-estimated-prior", "no-shift"]
)
def pipeline(request, tmp_path_factory) -> dict[str, Path]:
    return build_pipeline(tmp_path_factory.mktemp("pipeline"), prior=request.param)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- the stage


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
    corrected = priors.probability_at_prior(
        predictions["score"].to_numpy(), beta=BETA, shift=bundle.spec_shift(spec)
    )
    np.testing.assert_allclose(
        corrected, predictions["probability_prior_corrected"], rtol=0, atol=1e-15
    )
    # then evaluate's recalibration, as the bundle records it
    metrics = read_json(pipeline["reports"] / "metrics.json")
    assert spec["calibration"] == metrics["calibration"]["chosen"]
    got = bundle.spec_calibration(spec).apply(corrected)
    np.testing.assert_allclose(got, predictions["probability"], rtol=0, atol=1e-15)
    # the rule the bundle states gives evaluate's decisions and thus its test confusion matrix
    test = predictions[predictions["split"] == "test"]
    metrics = read_json(pipeline["reports"] / "metrics.json")
    predicted = (test["probability"] >= spec["threshold"]["value"]).astype(int)
    tp = float((predicted * test["label"]).sum())
    assert tp == pytest.approx(metrics["test"]["sample"]["confusion"]["tp"])


def test_stage_output_is_deterministic(pipeline: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "again"
    bundle.main(
        ["--params", str(pipeline["params"]), "--model-dir", str(pipeline["model_dir"])]
        + ["--dataset", str(pipeline["dataset"])]
        + ["--metrics", str(pipeline["reports"] / "metrics.json")]
        + ["--predictions", str(pipeline["reports"] / "predictions.parquet")]
        + ["--out", str(again)]
    )
    for name in ("bundle.json", "model.keras", "reference.parquet"):
        assert (again / name).read_bytes() == (pipeline["bundle"] / name).read_bytes()


def test_reference_holds_dev_b_as_evaluate_saw_it(pipeline: dict[str, Path]) -> None:
    loaded = bundle.load_bundle(pipeline["bundle"])
    ref = loaded.reference()
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    dev_b = predictions[predictions["split"] == "dev_b"]
    rows = ref.split == "dev_b"
    assert rows.sum() == len(dev_b) == loaded.spec["reference"]["dev_b_rows"]
    np.testing.assert_array_equal(ref.label[rows], dev_b["label"])
    np.testing.assert_allclose(ref.probability[rows], dev_b["probability_prior_corrected"])
    # groups travel as codes: the same partition of rows, no entity names
    assert ref.group.dtype.kind == "i"
    assert len(np.unique(ref.group[rows])) == dev_b["group"].nunique()


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
    def downgrade(spec: dict[str, Any]) -> None:
        spec["format_version"] = 1
        del spec["calibration"], spec["reference"]

    copy = edited_copy(pipeline, tmp_path, downgrade)
    (copy / "reference.parquet").unlink()
    old = bundle.load_bundle(copy)
    scores = np.array([0.1, 0.5, 0.9])
    np.testing.assert_array_equal(old.probability(scores), old.prior_corrected(scores))
    assert old.reference() is None


def test_stale_predictions_are_refused(pipeline: dict[str, Path]) -> None:
    spec = bundle.read_spec(pipeline["bundle"])
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    predictions["probability"] = priors.probability_at_prior(predictions["score"], beta=BETA * 2)
    with pytest.raises(ValueError, match="does not reproduce evaluate's probabilities"):
        bundle.check_against_predictions(spec, predictions)


# ----------------------------------------------------------------------------- building the spec


def spec_inputs(**changes: Any) -> dict[str, Any]:
    inputs = {
        "train_record": {"dim": DIM, "beta": 0.02, "params": {"filter_sizes": [2]}, "min_rows": 2},
        "metrics": {
            "threshold": 0.09,
            "prior": 0.01,
            "beta": 0.02,
            "cost": {"false_positive": 1, "false_negative": 10},
            "prior_of_model": 0.01,
        },
        "evaluate_params": {"prior": None},
        "dataset_dim": DIM,
        "dataset_dtype": "float16",
        "model_sha256": "0" * 64,
    }
    inputs.update(changes)
    return inputs


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


# ----------------------------------------------------------------------------- loading


def test_load_bundle_gives_the_model_and_its_dim(pipeline: dict[str, Path]) -> None:
    loaded = bundle.load_bundle(pipeline["bundle"])
    assert loaded.dim == DIM and bundle.model_dim(loaded.model) == DIM
    assert loaded.threshold == read_json(pipeline["reports"] / "metrics.json")["threshold"]


def test_edited_bundle_is_refused(pipeline: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(pipeline["bundle"], copy)
    spec = read_json(copy / "bundle.json")
    spec["threshold"]["value"] = 0.5
    common.write_json(copy / "bundle.json", spec)
    with pytest.raises(ValueError, match="content hash does not match"):
        bundle.load_bundle(copy)
    shutil.copy(pipeline["bundle"] / "bundle.json", copy / "bundle.json")
    (copy / "model.keras").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not the model this bundle was built with"):
        bundle.load_bundle(copy)
    with pytest.raises(FileNotFoundError, match="is not a model bundle"):
        bundle.load_bundle(tmp_path / "nowhere")


def test_lambda_layers_are_refused_in_safe_mode(tmp_path: Path) -> None:
    """A bundle whose model holds a Lambda (arbitrary code) never loads, even with a valid hash."""
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


# ----------------------------------------------------------------------------- a malformed spec


def edited_copy(pipeline: dict[str, Path], tmp_path: Path, edit) -> Path:
    """A copy of the bundle with ``edit(spec)`` applied and the content hash made to match.

    The hash is no defence against an edit (anyone can recompute it), so each
    refusal below must come from checking the field itself.
    """
    copy = tmp_path / "b" / "bundle"
    shutil.copytree(pipeline["bundle"], copy)
    spec = read_json(copy / "bundle.json")
    edit(spec)
    if isinstance(spec, dict):
        spec[bundle.HASH_KEY] = bundle.content_hash(spec)
    (copy / "bundle.json").write_text(json.dumps(spec))
    return copy


def _set(key: str, value: Any):
    def edit(spec: dict[str, Any]) -> None:
        *parents, name = key.split(".")
        node = spec
        for parent in parents:
            node = node[parent]
        if value is KeyError:
            del node[name]
        else:
            node[name] = value

    return edit


def _model_beside_the_bundle(tmp_path: Path, pipeline: dict[str, Path]) -> Path:
    """A genuine model (right sha256) outside the bundle folder: loadable if not refused."""
    outside = tmp_path / "models" / "model.keras"
    outside.parent.mkdir(parents=True)
    shutil.copy(pipeline["bundle"] / "model.keras", outside)
    return outside


@pytest.mark.parametrize(
    "ref",
    [
        "../../models/model.keras",
        "ABSOLUTE",
        "./../../models/model.keras",
        "x/../../../models/model.keras",
    ],
)
def test_model_file_outside_the_bundle_is_refused(
    pipeline: dict[str, Path], tmp_path: Path, ref: str
) -> None:
    outside = _model_beside_the_bundle(tmp_path, pipeline)
    ref = str(outside) if ref == "ABSOLUTE" else ref
    copy = edited_copy(pipeline, tmp_path, _set("model.file", ref))
    assert (copy / ref).resolve() == outside.resolve()  # it would have loaded the outside model
    with pytest.raises(ValueError) as info:
        bundle.load_bundle(copy)
    assert str(info.value) == (
        f"{copy / 'bundle.json'}: model.file is {ref!r}; it must be a relative path to a file "
        f"inside the bundle folder {copy} (the bundle stage writes 'model.keras')"
    )


def test_model_file_through_a_linked_folder_is_refused(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    outside = _model_beside_the_bundle(tmp_path, pipeline)
    copy = edited_copy(pipeline, tmp_path, _set("model.file", "models/model.keras"))
    (copy / "models").symlink_to(outside.parent)
    with pytest.raises(
        ValueError, match="model.file is 'models/model.keras'; it must be a relative"
    ):
        bundle.load_bundle(copy)


def test_model_file_may_be_a_link_as_dvc_checks_it_out(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    """DVC's symlink cache type makes bundle/model.keras a link into .dvc/cache: still loads."""
    outside = _model_beside_the_bundle(tmp_path, pipeline)
    copy = edited_copy(pipeline, tmp_path, lambda spec: None)
    (copy / "model.keras").unlink()
    (copy / "model.keras").symlink_to(outside)
    assert bundle.load_bundle(copy).dim == DIM


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("model", KeyError), "model is missing; it must be an object with file and sha256"),
        (_set("cost", KeyError), "cost is missing; it must be an object with false_positive and"),
        (_set("model", "model.keras"), "model is 'model.keras'; it must be an object with file"),
        (_set("model.file", KeyError), "model.file is missing; it must be a relative path"),
        (_set("model.file", 3), "model.file is 3; it must be a relative path"),
        (_set("model.file", ""), "model.file is ''; it must be a relative path"),
        (_set("model.file", "."), "model.file is '.'; it must be a relative path"),
        (_set("model.sha256", 7), "model.sha256 is 7; it must be the model file's sha256 as 64"),
        (_set("dim", "16"), "dim is '16'; it must be an integer >= 1"),
        (_set("dim", True), "dim is True; it must be an integer >= 1"),
        (_set("dim", 0), "dim is 0; it must be an integer >= 1"),
        (_set("dtype", "float64"), "dtype is 'float64'; it must be one of ['float16', 'float32']"),
        (_set("max_abs", None), "max_abs is None; it must be a finite number > 0"),
        (_set("min_rows", 0), "min_rows is 0; it must be an integer >= 1"),
        (_set("prior_correction", KeyError), "prior_correction is missing; it must be an object"),
        (_set("prior_correction.beta", -1), "prior_correction.beta is -1; it must be a finite"),
        (_set("prior_correction.shift", 0.2), "prior_correction.shift is 0.2; it must be null or"),
        (
            _set("prior_correction.shift", {"from_prior": 0.08, "to_prior": 1.5}),
            "prior_correction.shift.to_prior is 1.5; it must be a number in (0, 1)",
        ),
        (
            _set("prior_correction.shift", {"to_prior": 0.5}),
            "prior_correction.shift.from_prior is missing; it must be a number in (0, 1)",
        ),
        (_set("threshold", 0.3), "threshold is 0.3; it must be an object with value"),
        (
            _set("threshold.value", "0.3"),
            "threshold.value is '0.3'; it must be a finite number >= 0",
        ),
        (
            _set("cost.false_negative", -10),
            "cost.false_negative is -10; it must be a finite number",
        ),
        (_set("cost.false_positive", KeyError), "cost.false_positive is missing; it must be a"),
        (_set("format_version", 3), "format_version 3 is not supported; this code reads 1 or 2"),
        (_set("calibration", KeyError), "calibration is missing; it must be an object with"),
        (_set("calibration.method", "spline"), "calibration.method is 'spline'; it must be"),
        (_set("calibration.slope", 0), "calibration.slope is 0; it must be a finite number > 0"),
        (_set("calibration.fitted_on", "test"), "calibration.fitted_on is 'test'; it must be"),
        (_set("reference", KeyError), "reference is missing; it must be null or an object"),
        (_set("reference.file", "/etc/passwd"), "reference.file is '/etc/passwd'; it must be a"),
        (_set("reference.sha256", "x"), "reference.sha256 is 'x'; it must be the reference"),
    ],
)
def test_malformed_spec_is_refused_naming_the_field(
    pipeline: dict[str, Path], tmp_path: Path, edit, message: str
) -> None:
    copy = edited_copy(pipeline, tmp_path, edit)
    with pytest.raises(ValueError) as info:
        bundle.load_bundle(copy)
    assert str(info.value).startswith(f"{copy / 'bundle.json'}: {message}")


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


def test_score_command_names_the_bad_field(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from stages import score

    _model_beside_the_bundle(tmp_path, pipeline)
    copy = edited_copy(pipeline, tmp_path, _set("model.file", "../../models/model.keras"))
    raw = tmp_path / "new.csv"
    raw.write_text("example_id," + ",".join(f"f{j}" for j in range(DIM)) + "\n")
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main(
            ["--bundle", str(copy), "--input", str(raw), "--output", str(tmp_path / "o.csv")]
        )
    assert info.value.code == 1
    assert f"{copy / 'bundle.json'}: model.file is '../../models/model.keras'" in caplog.text
    assert "KeyError" not in caplog.text and not (tmp_path / "o.csv").exists()
