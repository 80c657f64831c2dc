"""Your own data, three layouts, each declared in params.yaml only and run with `dvc repro`.

docs/own-data.md ("Three layouts") gives these params; each test writes raw files
(the simulator's examples, as a user's export would hold them), `dvc add`s them,
replaces ingest.sources and split.feeds, and runs the whole pipeline. The simulator
never runs, and a teammate's fresh clone pulls and dry-runs clean.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import make_project, run

pytestmark = pytest.mark.slow

SIMULATED = {"path": "dsprior/simulator.py", "format": "simulated"}


def write_raw(project: Path, sources: dict[str, dict[str, Any]], fmt: str) -> None:
    """The simulator's ``sources`` written as raw ``fmt`` files under data/raw/<name>/."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    generate = {**params["generate"], "format": fmt, "files_per_source": 2, "sources": sources}
    scratch = project.parent / "scratch-params.yaml"
    scratch.write_text(yaml.safe_dump({"generate": generate}))
    out = project.parent / "generated"
    run(["python", "-m", "stages.generate", "--params", str(scratch), "--out", str(out)], project)
    for name in sources:
        shutil.move(str(out / name), str(project / "data" / "raw" / name))
    shutil.rmtree(out)


def declare(project: Path, sources: dict[str, Any], feeds: dict[str, Any]) -> None:
    """Replace ingest.sources and split.feeds (and split.priority) in params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["ingest"]["sources"] = sources
    params["split"]["feeds"] = feeds
    params["split"]["priority"] = None
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def repro_own_data(project: Path, names: list[str]) -> str:
    for name in names:
        run(["dvc", "add", "-q", f"data/raw/{name}"], project)
    out = run(["dvc", "repro"], project).stdout
    for name in names:
        assert f"Running stage 'source@{name}'" in out, out
    assert "Running stage 'ingest'" in out and "Running stage 'bundle'" in out
    assert "simulat" not in (project / "reports/ingest.json").read_text()
    assert not (project / "data/raw/sim").exists()
    ingest = json.loads((project / "reports/ingest.json").read_text())
    assert ingest["status"] == "ok" and ingest["reconciled"] is True
    assert sorted(ingest["sources"]) == sorted(names)
    return out


def test_one_production_ratio_source_feeds_all_four_splits(tmp_path: Path) -> None:
    project = make_project(tmp_path / "alice")
    write_raw(project, {"prod": {"examples": 2500, "negative_rate": 1.0}}, "csv")
    declare(
        project,
        {"prod": {"path": "data/raw/prod", "format": "csv", "negative_rate": 1.0}},
        {"prod": {"train": 0.6, "dev_a": 0.1, "dev_b": 0.15, "test": 0.15}},
    )
    repro_own_data(project, ["prod"])
    downsample = json.loads((project / "reports/downsample.json").read_text())
    assert set(downsample["splits"]) >= {"train", "dev_a"}

    # A change in the source's files reruns ingest; nothing else does.
    assert "Running stage" not in run(["dvc", "repro"], project).stdout
    part = sorted((project / "data/raw/prod").glob("*.csv"))[0]
    lines = part.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:-1]))  # the last row of the last example is gone
    run(["dvc", "add", "-q", "data/raw/prod"], project)
    assert "source@prod" in run(["dvc", "status"], project).stdout
    out = run(["dvc", "repro", "ingest"], project).stdout
    assert "Running stage 'source@prod'" in out and "Running stage 'ingest'" in out
    run(["dvc", "repro"], project)

    # A teammate's fresh clone: dvc pull and the CI dry run are clean.
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], project)
    run(["dvc", "push", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "own data"], project)
    bob = tmp_path / "bob"
    run(["git", "clone", "-q", str(project), str(bob)], tmp_path)
    dry = run(["dvc", "repro", "--pull", "--allow-missing", "--dry"], bob).stdout
    assert "Running stage" not in dry, dry
    run(["dvc", "pull", "-q"], bob)
    assert "up to date" in run(["dvc", "status"], bob).stdout


def test_the_seeds_layout_thinned_pool_and_dev_and_a_production_test_set(tmp_path: Path) -> None:
    """A training pool and a dev set thinned upstream at the same ratio, a production test set."""
    project = make_project(tmp_path / "project")
    write_raw(
        project,
        {
            "pool": {"examples": 4000, "negative_rate": 0.2},
            "dev": {"examples": 1500, "negative_rate": 0.2},
            "test": {"examples": 2000, "negative_rate": 1.0},
        },
        "parquet",
    )
    declare(
        project,
        {
            "pool": {"path": "data/raw/pool", "negative_rate": 0.2},
            "dev": {"path": "data/raw/dev", "negative_rate": 0.2},
            "test": {"path": "data/raw/test", "negative_rate": 1.0},
        },
        {"pool": {"train": 1.0}, "dev": {"dev_a": 1.0}, "test": {"dev_b": 0.5, "test": 0.5}},
    )
    repro_own_data(project, ["pool", "dev", "test"])
    split = json.loads((project / "reports/split.json").read_text())
    assert all(split["splits"][s]["examples"] > 0 for s in ("train", "dev_a", "dev_b", "test"))


def test_a_headerless_csv_with_columns_by_position(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    write_raw(project, {"export": {"examples": 2500, "negative_rate": 1.0}}, "csv")
    for part in (project / "data/raw/export").glob("*.csv"):
        part.write_text(part.read_text().split("\n", 1)[1])  # drop the header line
    declare(
        project,
        {
            "export": {
                "path": "data/raw/export",
                "format": "csv",
                "negative_rate": 1.0,
                "header": False,
                "columns": {"example_id": 0, "group": 1, "label": 2, "true_label": 3},
            }
        },
        {"export": {"train": 0.6, "dev_a": 0.1, "dev_b": 0.15, "test": 0.15}},
    )
    repro_own_data(project, ["export"])
    ingest = json.loads((project / "reports/ingest.json").read_text())
    assert ingest["dim"] == 12 and ingest["examples_rejected"] == 0
