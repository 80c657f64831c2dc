"""dsprior.records: the declared shapes of train.json and bundle.json, read as data.

Each written record must hold only declared keys (a key added without its declaration, or
renamed on one side, fails here), and each declared key has a description for the docs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict

import pytest

from dsprior import modeldir, records
from dsprior.bundle.spec import BundleSpec


class Inner(TypedDict):
    a: Annotated[int, "an a"]
    b: NotRequired[Annotated[list[float], "some b"]]


class Outer(TypedDict):
    x: Annotated[Inner | None, "an inner record, or null"]
    by_split: Annotated[dict[str, Inner], "one inner record a split"]
    items: Annotated[list[Inner], "inner records"]
    free: Annotated[dict[str, Any], "anything"]


def test_a_record_of_declared_keys_passes_and_each_stray_key_is_named():
    good = {
        "x": {"a": 1},
        "by_split": {"dev_b": {"a": 2, "b": [0.5]}, "test": {"a": 3}},
        "items": [{"a": 4}],
        "free": {"whatever": {"deep": 1}},
    }
    assert records.undeclared(good, Outer) == []
    assert records.undeclared({**good, "x": None}, Outer) == []
    bad = {
        **good,
        "y": 1,
        "x": {"a": 1, "c": 2},
        "by_split": {"test": {"a": 3, "typo": 0}},
        "items": [{"a": 4}, {"a": 5, "d": 1}],
    }
    assert sorted(records.undeclared(bad, Outer)) == [
        "by_split.test.typo",
        "items.d",
        "x.c",
        "y",
    ]


def test_describe_lists_every_declared_path_with_its_text():
    described = dict(records.describe(Outer))
    assert described["x"] == "an inner record, or null"
    assert described["x.a"] == "an a"
    assert described["by_split.*.b"] == "some b"
    assert described["items.a"] == "an a"
    assert "free.*" not in described  # an open map of anything declares no keys below it


@pytest.mark.parametrize("shape", [modeldir.TrainRecord, BundleSpec], ids=lambda s: s.__name__)
def test_every_declared_key_has_a_description(shape):
    missing = [path for path, text in records.describe(shape) if not text]
    assert missing == []


def test_every_key_of_the_pipelines_bundle_json_is_declared(pipeline: dict[str, Path]):
    spec = json.loads((pipeline["bundle"] / "bundle.json").read_text())
    assert records.undeclared(spec, BundleSpec) == []
    # and the check can fail: a key the declaration lacks is named
    spec["threshold"]["logit_new"] = 1.0
    assert records.undeclared(spec, BundleSpec) == ["threshold.logit_new"]


def test_every_declared_score_summary_key_has_a_description():
    from dsprior.scoring.record import ScoreSummaryRecord

    described = list(records.describe(ScoreSummaryRecord))
    assert len(described) > 50
    assert [path for path, text in described if not text] == []
