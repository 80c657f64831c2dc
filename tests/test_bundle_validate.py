"""dsprior.bundle.validate: every field scoring reads is checked, naming the field; files
named in bundle.json must lie inside the bundle folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dsprior import bundle
from dsprior.bundle.validate import validate_spec
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
        f"inside the bundle folder {copy} (the bundle stage writes one of "
        "['model.keras', 'pooled_logistic.json'])"
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
            set_field("format_version", 4),
            "format_version 4 is not supported; this code reads 1 or 2 or 3",
        ),
        (set_field("scores", KeyError), "scores is missing; it must be an object with kind"),
        (set_field("scores.kind", "probability"), "scores.kind is 'probability'; it must be"),
        (set_field("threshold.logit", KeyError), "threshold.logit is missing; it must be a"),
        (set_field("threshold.logit", "2"), "threshold.logit is '2'; it must be a finite number"),
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


# ----------------------------------------------------------------------------- each rule, no model

HEX = "0123456789abcdef" * 4


def checked(tmp_path: Path, edit) -> str | None:
    """``validate_spec``'s message for spec_inputs' spec after ``edit`` (None: accepted), with
    ``tmp_path`` as the bundle folder."""
    spec = bundle.build_spec(**spec_inputs())
    edit(spec)
    try:
        validate_spec(spec, tmp_path / "bundle.json", tmp_path)
    except ValueError as err:
        return str(err)
    return None


def fields(**changes: Any):
    """An edit setting several dotted keys (``__`` for the dot; ``KeyError`` deletes)."""

    def edit(spec: dict[str, Any]) -> None:
        for key, value in changes.items():
            set_field(key.replace("__", "."), value)(spec)

    return edit


ISOTONIC = {"calibration__method": "isotonic", "calibration__fitted_on": "dev_a"}


@pytest.mark.parametrize(
    "edit",
    [
        fields(dim=1),
        fields(min_rows=1),
        fields(min_rows=KeyError),  # optional
        fields(max_abs=1e-9),
        fields(prior_correction__beta=1e-9),
        fields(prior_correction__shift={"from_prior": 0.5, "to_prior": 0.5}),
        fields(threshold__value=0),
        fields(threshold__value=0.0),
        fields(threshold__value=2),  # above 1: flags nothing, still a threshold
        fields(cost__false_positive=0, cost__false_negative=0.0),
        fields(model__file="sub/model.keras", model__sha256=HEX),
        fields(calibration__slope=1e-9, calibration__intercept=-3, calibration__offset=2.5),
        fields(**ISOTONIC, calibration__knots_x=[-1.5, 0, 2], calibration__knots_y=[0, 0.5, 1]),
        fields(calibration__knots_x=KeyError, calibration__knots_y=KeyError),  # optional
        fields(calibration__fitted_on="dev_b", calibration__method="platt"),
        fields(calibration__method="temperature"),
        fields(reference={"file": "reference.parquet", "sha256": HEX}),
        fields(format_version=1, calibration=KeyError, reference=KeyError, scores=KeyError),
        fields(format_version=2, scores=KeyError, threshold__logit=KeyError),
        fields(threshold__logit=None),  # flags nothing
        fields(threshold__logit=-40),
    ],
)
def test_values_at_the_edge_of_what_is_allowed_are_accepted(tmp_path: Path, edit) -> None:
    """Every bound is inclusive or exclusive exactly as its message says."""
    assert checked(tmp_path, edit) is None


RULES = [
    # key, a refused value, what the message says is allowed
    ("model", [], "an object with file and sha256"),
    ("model.sha256", "A" * 64, "the model file's sha256 as 64 lowercase hex digits"),
    ("model.sha256", HEX[:63], "the model file's sha256 as 64 lowercase hex digits"),
    ("model.sha256", HEX + "0", "the model file's sha256 as 64 lowercase hex digits"),
    ("dim", 1.0, "an integer >= 1"),
    ("dtype", None, "one of ['float16', 'float32']"),
    ("max_abs", 0, "a finite number > 0"),
    ("max_abs", float("inf"), "a finite number > 0"),
    ("max_abs", True, "a finite number > 0"),
    ("min_rows", 1.0, "an integer >= 1"),
    ("min_rows", False, "an integer >= 1"),
    ("prior_correction", None, "an object with beta, shift"),
    ("prior_correction.beta", 0, "a finite number > 0"),
    ("prior_correction.beta", float("nan"), "a finite number > 0"),
    ("threshold", None, "an object with value"),
    (
        "threshold.value",
        -1e-9,
        "a finite number >= 0 (the probability threshold; above 1 flags nothing)",
    ),
    ("cost", None, "an object with false_positive and false_negative"),
    ("cost.false_positive", -1e-9, "a finite number >= 0"),
    ("cost.false_negative", float("inf"), "a finite number >= 0"),
    ("calibration", None, "an object with method, fitted_on, slope, intercept, offset"),
    ("calibration.method", "Platt", "one of ['none', 'temperature', 'platt', 'isotonic']"),
    ("calibration.fitted_on", "test", "null or one of ['dev_a', 'dev_b']"),
    ("calibration.slope", -1, "a finite number > 0"),
    ("calibration.slope", 0, "a finite number > 0"),  # a flat map would rank nothing
    ("prior_correction.shift", [], "null or an object with from_prior and to_prior"),
    ("calibration.intercept", "0", "a finite number"),
    ("calibration.intercept", True, "a finite number"),
    ("calibration.offset", float("nan"), "a finite number"),
    (
        "calibration.knots_x",
        [0, float("inf")],
        "a list of finite numbers (isotonic: the log-odds knots)",
    ),
    ("calibration.knots_x", "0", "a list of finite numbers (isotonic: the log-odds knots)"),
    (
        "calibration.knots_y",
        [0, 1.5],
        "a list of probabilities (isotonic: the calibrated value at each knot)",
    ),
    (
        "calibration.knots_y",
        [-1e-9],
        "a list of probabilities (isotonic: the calibrated value at each knot)",
    ),
    (
        "calibration.knots_y",
        (0.5,),
        "a list of probabilities (isotonic: the calibrated value at each knot)",
    ),
    (
        "reference",
        [],
        "null or an object with file and sha256 (the bundle stage writes 'reference.parquet')",
    ),
]


@pytest.mark.parametrize(("key", "value", "allowed"), RULES)
def test_each_rule_names_the_field_its_value_and_what_is_allowed(
    tmp_path: Path, key: str, value: Any, allowed: str
) -> None:
    message = checked(tmp_path, set_field(key, value))
    assert message == f"{tmp_path / 'bundle.json'}: {key} is {value!r}; it must be {allowed}"


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("dim", "an integer >= 1"),
        ("model.file", "a relative path to a file inside the bundle folder {dir} "),
        ("calibration.slope", "a finite number > 0"),
    ],
)
def test_a_missing_field_is_named_with_what_is_allowed(
    tmp_path: Path, key: str, allowed: str
) -> None:
    message = checked(tmp_path, set_field(key, KeyError))
    assert message is not None
    assert message.startswith(
        f"{tmp_path / 'bundle.json'}: {key} is missing; it must be {allowed.format(dir=tmp_path)}"
    )


def test_reference_fields_are_checked_when_there_is_a_reference(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    edit = fields(reference={"file": "reference.parquet", "sha256": HEX.upper()})
    assert checked(tmp_path, edit) == (
        f"{path}: reference.sha256 is {HEX.upper()!r}; "
        "it must be the reference file's sha256 as 64 lowercase hex digits"
    )
    edit = fields(reference={"file": "../reference.parquet", "sha256": HEX})
    assert checked(tmp_path, edit) == (
        f"{path}: reference.file is '../reference.parquet'; "
        f"it must be a relative path to a file inside the bundle folder {tmp_path}"
    )


@pytest.mark.parametrize(
    "ref", ["", "a\0b", "..", "model.keras/", "sub/", "./", "./..", "/model.keras"]
)
def test_a_model_file_that_names_no_file_inside_is_refused(tmp_path: Path, ref: str) -> None:
    assert checked(tmp_path, set_field("model.file", ref)) == (
        f"{tmp_path / 'bundle.json'}: model.file is {ref!r}; it must be a relative path to a "
        f"file inside the bundle folder {tmp_path} (the bundle stage writes one of "
        "['model.keras', 'pooled_logistic.json'])"
    )


def test_a_bundle_folder_reached_through_a_link_still_holds_its_model(tmp_path: Path) -> None:
    """The folder is compared resolved on both sides, so a linked bundle path is no escape."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert checked(tmp_path / "link", fields(model__file="model.keras")) is None


def test_spec_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        validate_spec([1], tmp_path / "bundle.json", tmp_path)
    assert str(info.value) == f"{tmp_path / 'bundle.json'}: must be a JSON object, got list"


def test_a_spec_without_format_version_is_checked_as_the_current_format(tmp_path: Path) -> None:
    message = checked(tmp_path, fields(format_version=KeyError, calibration=KeyError))
    assert message is not None
    assert message.startswith(f"{tmp_path / 'bundle.json'}: calibration is missing")


def test_an_absolute_path_is_refused_even_into_the_bundle_folder(tmp_path: Path) -> None:
    """bundle.json must not depend on where the folder lies: the path is relative or refused."""
    ref = str(tmp_path / "model.keras")
    assert checked(tmp_path, set_field("model.file", ref)) == (
        f"{tmp_path / 'bundle.json'}: model.file is {ref!r}; it must be a relative path to a "
        f"file inside the bundle folder {tmp_path} (the bundle stage writes one of "
        "['model.keras', 'pooled_logistic.json'])"
    )


@pytest.mark.parametrize(
    "key",
    [
        "model",
        "model.file",
        "model.sha256",
        "dim",
        "dtype",
        "max_abs",
        "prior_correction",
        "prior_correction.beta",
        "prior_correction.shift",
        "prior_correction.shift.from_prior",
        "prior_correction.shift.to_prior",
        "threshold",
        "threshold.value",
        "cost",
        "cost.false_positive",
        "cost.false_negative",
        "calibration",
        "calibration.method",
        "calibration.fitted_on",
        "calibration.slope",
        "calibration.intercept",
        "calibration.offset",
        "reference",
        "reference.file",
        "reference.sha256",
    ],
)
def test_every_field_scoring_reads_is_required(tmp_path: Path, key: str) -> None:
    """Only min_rows and the isotonic knots may be left out; a null parent (shift, reference)
    stands for all its children."""

    def edit(spec: dict[str, Any]) -> None:
        spec["prior_correction"]["shift"] = {"from_prior": 0.05, "to_prior": 0.01}
        spec["reference"] = {"file": "reference.parquet", "sha256": HEX}
        set_field(key, KeyError)(spec)

    message = checked(tmp_path, edit)
    assert message is not None
    assert message.startswith(f"{tmp_path / 'bundle.json'}: {key} is missing; it must be ")


def test_the_fields_after_a_left_out_optional_one_are_still_checked(tmp_path: Path) -> None:
    message = checked(tmp_path, fields(min_rows=KeyError, cost__false_negative=-1))
    assert message == (
        f"{tmp_path / 'bundle.json'}: cost.false_negative is -1; it must be a finite number >= 0"
    )
