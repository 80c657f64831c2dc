"""End to end: `dvc repro` of the whole pipeline in a temporary git repository, tiny params."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from stages.contract import read_metadata
from tests.conftest import run

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
    assert ingest["total"]["read"] == ingest["total"]["written"] + ingest["total"]["rejected"]
    assert ingest["total"]["written"] == drawn
    shard = sorted((project / "data/dataset").glob("part-*.parquet"))[0]
    assert pq.ParquetFile(shard).metadata.num_row_groups >= 1

    # Stage outputs are ignored by git (DVC writes the ignores); small reports are not.
    ignored = run(["git", "check-ignore", "data/dataset", "data/raw/sim"], project)
    assert ignored.stdout.split() == ["data/dataset", "data/raw/sim"]
    assert run(["git", "check-ignore", "reports/ingest.json"], project, check=False).returncode == 1

    # Nothing changed: nothing reruns, and `dvc status` is clean.
    again = run(["dvc", "repro"], project)
    assert "Running stage" not in again.stdout, again.stdout
    assert "up to date" in run(["dvc", "status"], project).stdout
