"""metrics.json's declared shape (``dsprior.evaluation.record``) against what evaluate writes."""

from __future__ import annotations

import json

from dsprior import records
from dsprior.evaluation.record import Metrics
from tests.conftest import ROOT


def test_every_key_of_the_committed_metrics_json_is_declared():
    metrics = json.loads((ROOT / "reports" / "metrics.json").read_text())
    assert records.undeclared(metrics, Metrics) == []


def test_every_key_a_fresh_evaluation_writes_is_declared(evaluated):
    metrics, _, _ = evaluated
    written = json.loads(json.dumps(metrics))
    assert records.undeclared(written, Metrics) == []
    # and the check can fail: a renamed key is named
    written["test"]["prior"]["precison"] = written["test"]["prior"].pop("precision")
    assert records.undeclared(written, Metrics) == ["test.prior.precison"]


def test_every_declared_key_has_a_description():
    paths = list(records.describe(Metrics))
    assert len(paths) > 300
    assert [path for path, text in paths if not text] == []
