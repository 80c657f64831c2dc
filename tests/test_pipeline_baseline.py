"""End to end with the baseline: `dvc repro` of the whole pipeline with ``train.model:
pooled_logistic`` in a temporary git repository (tiny params), then ``score`` on new data
with the bundle it made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsprior import modeldir, records
from dsprior.bundle.spec import BundleSpec
from dsprior.evaluation.record import Metrics
from tests.conftest import make_project, run
from tests.factories import REQUIRED_METRICS

pytestmark = pytest.mark.slow


def test_repro_with_the_baseline_gives_metrics_a_bundle_and_scores(tmp_path: Path):
    project = make_project(tmp_path / "project", {"train": {"model": "pooled_logistic"}})
    out = run(["dvc", "repro"], project)
    assert "Running stage 'bundle'" in out.stdout
    assert "trained the pooled logistic model on" in out.stdout + out.stderr

    models = sorted(p.name for p in (project / "models").iterdir())
    assert models == ["pooled_logistic.json", "train.json"]  # no Keras model
    record = json.loads((project / "models/train.json").read_text())
    assert record["model"] == "pooled_logistic" and record["dim"] == 12
    assert records.undeclared(record, modeldir.TrainRecord) == []  # every key declared
    metrics = json.loads((project / "reports/metrics.json").read_text())
    for key in REQUIRED_METRICS:
        value = metrics
        for part in key.split("."):
            value = value[part]
        assert value is None or isinstance(value, (int, float)), (key, value)
    assert metrics["compute"]["evaluate"] == {"model": "pooled_logistic", "framework": "numpy"}
    assert records.undeclared(metrics, Metrics) == []
    # a tiny model still ranks: dev_b's positives above its negatives more often than not
    assert metrics["dev_b"]["prior"]["roc_auc"] > 0.6
    spec = json.loads((project / "bundle/bundle.json").read_text())
    assert spec["model"]["file"] == "pooled_logistic.json" and spec["model"]["format"] == "json"
    assert records.undeclared(spec, BundleSpec) == []
    assert (project / "bundle/pooled_logistic.json").read_bytes() == (
        project / "models/pooled_logistic.json"
    ).read_bytes()

    # Nothing changed: nothing reruns. Training again writes the same bytes.
    assert "Running stage" not in run(["dvc", "repro"], project).stdout
    lock = (project / "dvc.lock").read_text()
    run(["dvc", "repro", "--force", "--single-item", "train"], project)
    assert (project / "dvc.lock").read_text() == lock

    # New data scored with the bundle: the production source as raw files, through `score`,
    # gives evaluate's log-odds and probabilities for the same examples.
    run(["python", "-m", "stages.generate", "--params", "params.yaml", "--out", "../raw"], project)
    scores = tmp_path / "scores.parquet"
    run(["python", "-m", "stages.score", "--bundle", "bundle", "--input", "../raw/production"]
        + ["--output", str(scores), "--summary", str(tmp_path / "s.json"), "--resamples", "30"],
        project)  # fmt: skip
    got = pd.read_parquet(scores)
    predictions = pd.read_parquet(project / "reports/predictions.parquet")
    merged = predictions.merge(got, on="example_id", suffixes=("_evaluate", ""))
    assert len(merged) == (predictions["split"] != "dev_a").sum() > 0
    np.testing.assert_array_equal(merged["logit"], merged["logit_evaluate"])
    np.testing.assert_allclose(
        merged["probability"], merged["probability_evaluate"], rtol=1e-12, atol=0
    )
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["examples"] == len(got)
