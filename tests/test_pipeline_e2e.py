"""End to end: `dvc repro` of the whole pipeline in a temporary git repository, tiny params."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from stages.contract import read_metadata
from tests.conftest import run

REQUIRED = [
    f"{split}.{view}.{name}"
    for split in ("dev_a", "dev_b", "test")
    for view in ("sample", "prior")
    for name in ("precision", "recall", "f1", "average_precision")
] + ["dev_b.prior.expected_cost", "test.prior.expected_cost", "threshold"]


def check_required_metrics(metrics: dict) -> None:
    """Every key the evaluate issue requires is there, finite or null; CIs are [low, high]."""
    for key in REQUIRED:
        value = metrics
        for part in key.split("."):
            value = value[part]
        assert value is None or isinstance(value, (int, float)), (key, value)
    for key in ("precision_ci", "recall_ci"):
        low, high = metrics["test"]["prior"][key]
        assert low is None or low <= high


pytestmark = pytest.mark.slow


def stages_in(project: Path) -> list[str]:
    return list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])


def test_dvc_repro_runs_every_stage_then_nothing(project: Path):
    out = run(["dvc", "repro"], project)
    for stage in stages_in(project):
        assert f"Running stage '{stage}'" in out.stdout, out.stdout

    # generate -> ingest: every raw example is in the dataset or the rejects, counts reconcile.
    simulation = json.loads((project / "data/raw/sim/simulation.json").read_text())
    ingest = json.loads((project / "reports/ingest.json").read_text())
    meta = read_metadata(project / "data/dataset")
    drawn = sum(s["examples"] for s in simulation["sources"].values())
    assert meta.num_rows == drawn
    assert ingest["reconciled"] is True
    assert ingest["examples_read"] == ingest["examples_written"] + ingest["examples_rejected"]
    assert ingest["examples_written"] == drawn
    shard = sorted((project / "data/dataset").glob("part-*.parquet"))[0]
    assert pq.ParquetFile(shard).metadata.num_row_groups >= 1

    # split -> downsample -> audit: no leak, every positive kept, counts add up.
    split = json.loads((project / "reports/split.json").read_text())
    assert split["read"] == meta.num_rows
    assert split["read"] == split["assigned"] + sum(split["dropped"].values())
    manifest = pd.read_parquet(project / "data/manifest.parquet")
    assert set(manifest["split"]) == {"train", "dev_a", "dev_b", "test"}
    positives = manifest[manifest["label"] == 1]
    assert positives["kept"].all() and (positives["weight"] == 1.0).all()
    kept = manifest[manifest["kept"]]
    assert (kept.groupby("group")["split"].nunique() == 1).all()
    audit = json.loads((project / "reports/audit.json").read_text())
    assert audit["leakage"]["shared_groups"] == 0 and audit["flags"]["leakage"] is False

    # train -> evaluate: a Keras model, step curves, and the metrics the issue requires.
    assert (project / "models/model.keras").is_file()
    train_info = json.loads((project / "models/train.json").read_text())
    assert train_info["dim"] == 12 and 0 < train_info["beta"] < 1
    assert (project / "reports/train/plots/metrics/train/loss.tsv").is_file()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    check_required_metrics(metrics)
    predictions = pd.read_parquet(project / "reports/predictions.parquet")
    assert set(predictions["split"]) == {"dev_a", "dev_b", "test"}
    assert len(predictions) == len(kept[kept["split"] != "train"])
    assert "test.prior.precision" in run(["dvc", "metrics", "show"], project).stdout

    # Stage outputs are ignored by git (DVC writes the ignores); small reports are not.
    ignored = run(["git", "check-ignore", "data/dataset", "data/raw/sim"], project)
    assert ignored.stdout.split() == ["data/dataset", "data/raw/sim"]
    assert run(["git", "check-ignore", "reports/ingest.json"], project, check=False).returncode == 1

    # Nothing changed: nothing reruns, and `dvc status` is clean.
    again = run(["dvc", "repro"], project)
    assert "Running stage" not in again.stdout, again.stdout
    assert "up to date" in run(["dvc", "status"], project).stdout

    # Determinism: training again from scratch, in a new process, writes the same bytes.
    lock = (project / "dvc.lock").read_text()
    retrained = run(["dvc", "repro", "--force", "--single-item", "train"], project)
    assert "Running stage 'train'" in retrained.stdout, retrained.stdout
    assert (project / "dvc.lock").read_text() == lock
    assert "up to date" in run(["dvc", "status"], project).stdout
