"""dsprior.bundle.validate: every field scoring reads is checked, naming the field; files
named in bundle.json must lie inside the bundle folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsprior import bundle
from tests.factories import (
    DIM,
    edited_copy,
    model_beside_the_bundle,
    set_field,
    spec_inputs,
)

# ``pipeline`` (conftest) at each of PIPELINE_PRIORS: evaluate's estimate, or the model's own.
pytestmark = pytest.mark.every_prior


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
    outside = model_beside_the_bundle(tmp_path, pipeline)
    ref = str(outside) if ref == "ABSOLUTE" else ref
    copy = edited_copy(pipeline, tmp_path, set_field("model.file", ref))
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
    outside = model_beside_the_bundle(tmp_path, pipeline)
    copy = edited_copy(pipeline, tmp_path, set_field("model.file", "models/model.keras"))
    (copy / "models").symlink_to(outside.parent)
    with pytest.raises(
        ValueError, match="model.file is 'models/model.keras'; it must be a relative"
    ):
        bundle.load_bundle(copy)


def test_model_file_may_be_a_link_as_dvc_checks_it_out(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    """DVC's symlink cache type makes bundle/model.keras a link into .dvc/cache: still loads."""
    outside = model_beside_the_bundle(tmp_path, pipeline)
    copy = edited_copy(pipeline, tmp_path, lambda spec: None)
    (copy / "model.keras").unlink()
    (copy / "model.keras").symlink_to(outside)
    assert bundle.load_bundle(copy).dim == DIM


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            set_field("model", KeyError),
            "model is missing; it must be an object with file and sha256",
        ),
        (
            set_field("cost", KeyError),
            "cost is missing; it must be an object with false_positive and",
        ),
        (
            set_field("model", "model.keras"),
            "model is 'model.keras'; it must be an object with file",
        ),
        (set_field("model.file", KeyError), "model.file is missing; it must be a relative path"),
        (set_field("model.file", 3), "model.file is 3; it must be a relative path"),
        (set_field("model.file", ""), "model.file is ''; it must be a relative path"),
        (set_field("model.file", "."), "model.file is '.'; it must be a relative path"),
        (
            set_field("model.sha256", 7),
            "model.sha256 is 7; it must be the model file's sha256 as 64",
        ),
        (set_field("dim", "16"), "dim is '16'; it must be an integer >= 1"),
        (set_field("dim", True), "dim is True; it must be an integer >= 1"),
        (set_field("dim", 0), "dim is 0; it must be an integer >= 1"),
        (
            set_field("dtype", "float64"),
            "dtype is 'float64'; it must be one of ['float16', 'float32']",
        ),
        (set_field("max_abs", None), "max_abs is None; it must be a finite number > 0"),
        (set_field("min_rows", 0), "min_rows is 0; it must be an integer >= 1"),
        (
            set_field("prior_correction", KeyError),
            "prior_correction is missing; it must be an object",
        ),
        (
            set_field("prior_correction.beta", -1),
            "prior_correction.beta is -1; it must be a finite",
        ),
        (
            set_field("prior_correction.shift", 0.2),
            "prior_correction.shift is 0.2; it must be null or",
        ),
        (
            set_field("prior_correction.shift", {"from_prior": 0.08, "to_prior": 1.5}),
            "prior_correction.shift.to_prior is 1.5; it must be a number in (0, 1)",
        ),
        (
            set_field("prior_correction.shift", {"to_prior": 0.5}),
            "prior_correction.shift.from_prior is missing; it must be a number in (0, 1)",
        ),
        (set_field("threshold", 0.3), "threshold is 0.3; it must be an object with value"),
        (
            set_field("threshold.value", "0.3"),
            "threshold.value is '0.3'; it must be a finite number >= 0",
        ),
        (
            set_field("cost.false_negative", -10),
            "cost.false_negative is -10; it must be a finite number",
        ),
        (
            set_field("cost.false_positive", KeyError),
            "cost.false_positive is missing; it must be a",
        ),
        (
            set_field("format_version", 3),
            "format_version 3 is not supported; this code reads 1 or 2",
        ),
        (set_field("calibration", KeyError), "calibration is missing; it must be an object with"),
        (set_field("calibration.method", "spline"), "calibration.method is 'spline'; it must be"),
        (
            set_field("calibration.slope", 0),
            "calibration.slope is 0; it must be a finite number > 0",
        ),
        (set_field("calibration.fitted_on", "test"), "calibration.fitted_on is 'test'; it must be"),
        (set_field("reference", KeyError), "reference is missing; it must be null or an object"),
        (
            set_field("reference.file", "/etc/passwd"),
            "reference.file is '/etc/passwd'; it must be a",
        ),
        (set_field("reference.sha256", "x"), "reference.sha256 is 'x'; it must be the reference"),
    ],
)
def test_malformed_spec_is_refused_naming_the_field(
    pipeline: dict[str, Path], tmp_path: Path, edit, message: str
) -> None:
    copy = edited_copy(pipeline, tmp_path, edit)
    with pytest.raises(ValueError) as info:
        bundle.load_bundle(copy)
    assert str(info.value).startswith(f"{copy / 'bundle.json'}: {message}")


def spec_with_shift(tmp_path: Path, **shift: float) -> Path:
    """A bundle folder holding only bundle.json: spec_inputs' spec with a prior shift of
    0.05 -> 0.01, ``shift`` replacing either end."""
    spec = bundle.build_spec(**spec_inputs())
    spec["prior_correction"]["shift"] = {"from_prior": 0.05, "to_prior": 0.01, **shift}
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / bundle.SPEC_FILE).write_text(json.dumps(spec))
    return folder


@pytest.mark.parametrize("end", ["from_prior", "to_prior"])
@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, -1e-9, 1 + 1e-9])
def test_a_prior_shift_from_or_to_certainty_is_refused(
    tmp_path: Path, end: str, value: float
) -> None:
    """A prior of exactly 0 or 1 has no finite odds to shift between: refused at load, naming
    the field, not later by the first score."""
    folder = spec_with_shift(tmp_path, **{end: value})
    with pytest.raises(ValueError) as info:
        bundle.read_spec(folder, verify=False)
    assert str(info.value) == (
        f"{folder / bundle.SPEC_FILE}: prior_correction.shift.{end} is {value!r}; "
        "it must be a number in (0, 1)"
    )


@pytest.mark.parametrize("end", ["from_prior", "to_prior"])
@pytest.mark.parametrize("value", [1e-9, 1 - 1e-9])
def test_a_prior_shift_just_inside_zero_and_one_is_accepted(
    tmp_path: Path, end: str, value: float
) -> None:
    spec = bundle.read_spec(spec_with_shift(tmp_path, **{end: value}), verify=False)
    assert bundle.spec_shift(spec) == {"from_prior": (value, 0.01), "to_prior": (0.05, value)}[end]
