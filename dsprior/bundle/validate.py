"""Checking bundle.json's fields before anything reads them.

A hand-edited or damaged bundle.json fails here with one line naming the file, the
field's key path, its value and what is allowed, instead of a ``KeyError`` or a wrong
score; paths to the model and the reference must stay inside the bundle folder.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from dsprior import calibration as cal
from dsprior import contract, modeldir
from dsprior.bundle.reference import REFERENCE_FILE
from dsprior.bundle.spec import FORMAT_VERSION, SCORES
from dsprior.external import SCALES, TrainedAt, is_external_spec

_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_inside(bundle_dir: Path, ref: str) -> bool:
    """``ref`` names a file inside ``bundle_dir``: relative, no ``..`` out, no folder link out.

    The file itself may be a link (DVC's symlink and hardlink cache types make one);
    its bytes are checked against the spec's sha256 anyway.
    """
    if not ref or "\0" in ref or Path(ref).is_absolute():
        return False
    parts = Path(os.path.normpath(ref)).parts
    if not parts or parts[0] in (".", "..") or ref.endswith(("/", os.sep)):
        return False
    folder = bundle_dir.resolve()
    return (bundle_dir / ref).parent.resolve().is_relative_to(folder)


def _spec_rules(bundle_dir: Path) -> list[tuple[str, bool, Any, str]]:
    """(key path, optional, check, what is allowed) for every field scoring reads, parents first."""
    probability = lambda v: _is_number(v) and 0 < v < 1  # noqa: E731
    return [
        ("model", False, lambda v: isinstance(v, dict), "an object with file and sha256"),
        *_model_rules(bundle_dir),
    ] + _correction_rules(probability)


def _model_rules(bundle_dir: Path) -> list[tuple[str, bool, Any, str]]:
    """The model file's fields (a bundle of external scores has none: ``_external_rules``)."""
    return [
        (
            "model.file",
            False,
            lambda v: isinstance(v, str) and _is_inside(bundle_dir, v),
            f"a relative path to a file inside the bundle folder {bundle_dir} "
            f"(the bundle stage writes one of {[f for f, _, _ in modeldir.MODEL_FILES.values()]})",
        ),
        (
            "model.sha256",
            False,
            lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
            "the model file's sha256 as 64 lowercase hex digits",
        ),
    ]


def _external_rules() -> list[tuple[str, bool, Any, str]]:
    """A bundle of external scores (``model.kind: external_scores``): what the scores are."""
    return [
        ("model.name", False, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        ("model.column", False, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        ("model.scale", False, lambda v: v in SCALES, f"one of {list(SCALES)}"),
        (
            "model.trained_at",
            False,
            lambda v: _trained_at_ok(v),
            TrainedAt.ALLOWED,
        ),
    ]


def _trained_at_ok(value: Any) -> bool:
    try:
        TrainedAt().check(value, "model.trained_at")
    except ValueError:
        return False
    return True


def _correction_rules(probability: Any) -> list[tuple[str, bool, Any, str]]:
    """dim, dtype, the prior correction, the threshold and the costs."""
    return [
        ("dim", False, lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("dtype", False, lambda v: v in contract.DTYPES, f"one of {sorted(contract.DTYPES)}"),
        ("max_abs", False, lambda v: _is_number(v) and v > 0, "a finite number > 0"),
        ("min_rows", True, lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("prior_correction", False, lambda v: isinstance(v, dict), "an object with beta, shift"),
        ("prior_correction.beta", False, lambda v: _is_number(v) and v > 0, "a finite number > 0"),
        (
            "prior_correction.shift",
            False,
            lambda v: v is None or isinstance(v, dict),
            "null or an object with from_prior and to_prior",
        ),
        ("prior_correction.shift.from_prior", False, probability, "a number in (0, 1)"),
        ("prior_correction.shift.to_prior", False, probability, "a number in (0, 1)"),
        ("threshold", False, lambda v: isinstance(v, dict), "an object with value"),
        (
            "threshold.value",
            False,
            lambda v: _is_number(v) and v >= 0,
            "a finite number >= 0 (the probability threshold; above 1 flags nothing)",
        ),
        (
            "cost",
            False,
            lambda v: isinstance(v, dict),
            "an object with false_positive and false_negative",
        ),
        ("cost.false_positive", False, lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
        ("cost.false_negative", False, lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    ]


def _spec_rules_v2(bundle_dir: Path) -> list[tuple[str, bool, Any, str]]:
    """The fields format 2 adds: the recalibration and the labelled reference."""
    return [
        (
            "calibration",
            False,
            lambda v: isinstance(v, dict),
            "an object with method, fitted_on, slope, intercept, offset",
        ),
        ("calibration.method", False, lambda v: v in cal.METHODS, f"one of {list(cal.METHODS)}"),
        (
            "calibration.fitted_on",
            False,
            lambda v: v is None or v in cal.FIT_SPLITS,
            f"null or one of {list(cal.FIT_SPLITS)}",
        ),
        ("calibration.slope", False, lambda v: _is_number(v) and v > 0, "a finite number > 0"),
        ("calibration.intercept", False, _is_number, "a finite number"),
        ("calibration.offset", False, _is_number, "a finite number"),
        (
            "calibration.knots_x",
            True,
            lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
            "a list of finite numbers (isotonic: the log-odds knots)",
        ),
        (
            "calibration.knots_y",
            True,
            lambda v: isinstance(v, list) and all(_is_number(x) and 0 <= x <= 1 for x in v),
            "a list of probabilities (isotonic: the calibrated value at each knot)",
        ),
        (
            "reference",
            False,
            lambda v: v is None or isinstance(v, dict),
            f"null or an object with file and sha256 (the bundle stage writes {REFERENCE_FILE!r})",
        ),
        (
            "reference.file",
            False,
            lambda v: isinstance(v, str) and _is_inside(bundle_dir, v),
            f"a relative path to a file inside the bundle folder {bundle_dir}",
        ),
        (
            "reference.sha256",
            False,
            lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
            "the reference file's sha256 as 64 lowercase hex digits",
        ),
    ]


def _spec_rules_v3() -> list[tuple[str, bool, Any, str]]:
    """The fields format 3 adds: what the scores are, and the threshold's log-odds."""
    return [
        ("scores", False, lambda v: isinstance(v, dict), "an object with kind"),
        ("scores.kind", False, lambda v: v == SCORES, f"{SCORES!r}"),
        (
            "threshold.logit",
            False,
            lambda v: v is None or _is_number(v),
            "a finite number (the log-odds decisions compare) or null (flags nothing)",
        ),
    ]


def validate_spec(spec: Any, path: Path, bundle_dir: Path) -> None:
    """ValueError naming ``path``, the field's key path, its value and what is allowed.

    Checks every field that loading and scoring read, so a hand-edited or damaged
    bundle.json fails here with one line instead of a ``KeyError`` or a wrong score.
    A child is checked only when its parent is present (``prior_correction.shift``
    may be null).
    """
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: must be a JSON object, got {type(spec).__name__}")
    rules = _spec_rules(bundle_dir)
    if is_external_spec(spec):  # no model file: check what the scores are instead
        rules = [rule for rule in rules if rule[0] not in ("model.file", "model.sha256")]
        rules += _external_rules()
    if spec.get("format_version", FORMAT_VERSION) >= 2:
        rules += _spec_rules_v2(bundle_dir)
    if spec.get("format_version", FORMAT_VERSION) >= 3:
        rules += _spec_rules_v3()
    for key, optional, check, allowed in rules:
        *parents, name = key.split(".")
        node: Any = spec
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # the parent is null where null is allowed (shift), else already refused
        value = node.get(name, _MISSING)
        if value is _MISSING:
            if optional:
                continue
            raise ValueError(f"{path}: {key} is missing; it must be {allowed}")
        if not check(value):
            raise ValueError(f"{path}: {key} is {value!r}; it must be {allowed}")
