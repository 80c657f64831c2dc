"""`dvc plots show` on the committed plot data: every declared plot drawn, with data, in words.

Runs DVC on a copy of the repository's files (no pipeline run: the plot files are in git),
so it checks what a reader of a fresh clone gets: templates found in .dvc/plots/, every
anchor filled, every plot titled in words rather than by its path, and the story first.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, run
from tests.factories import declared_plots

STORY = ("dev_a_precision", "precision_recall", "cost")  # top-level plots: drawn first


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tracked and new (not ignored) files, in a fresh git repository."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split("\0")
    path = tmp_path_factory.mktemp("plots") / "repo"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    run(["git", "init", "-q", "-b", "main"], path)
    return path


@pytest.fixture(scope="module")
def shown(clone: Path) -> dict[str, Any]:
    return json.loads(run(["dvc", "plots", "show", "--json"], clone).stdout)


def test_every_declared_plot_is_drawn_with_data(clone: Path, shown: dict[str, Any]) -> None:
    assert not shown.get("errors"), shown["errors"]
    declared = declared_plots(clone)
    assert list(shown["data"]) == declared  # in dvc.yaml's order, nothing more, nothing less
    for plot_id, entries in shown["data"].items():
        (entry,) = entries
        assert entry["type"] == "vega" and entry["revisions"] == ["workspace"], plot_id
        spec = entry["content"]
        values = spec["data"]["values"]
        assert values, f"{plot_id}: no data"
        text = json.dumps(spec)
        assert "<DVC_METRIC_" not in text, f"{plot_id}: an anchor its template left unfilled"
        # titled in words, not by the path DVC falls back on
        assert spec["title"]["text"] not in ("", plot_id), plot_id
        # the fields the template draws are in the data (TSV values arrive as strings)
        for step in spec.get("transform", []):
            for field in re.findall(r"datum\['([^']+)'\]", step.get("calculate", "")):
                assert all(field in row for row in values), (plot_id, field)
            for field in re.findall(r"datum\.(\w+)", step.get("calculate", "")):
                assert field in values[0] or field == "series", (plot_id, field)


def test_the_story_comes_first_and_every_template_is_the_repositorys(
    clone: Path, shown: dict[str, Any]
) -> None:
    assert tuple(shown["data"])[: len(STORY)] == STORY
    spec = yaml.safe_load((clone / "dvc.yaml").read_text())
    entries = list(spec.get("plots", []))
    for stage in spec["stages"].values():
        entries += stage.get("plots", [])
    templates = {props["template"] for entry in entries for props in entry.values()}
    assert templates == {p.stem for p in (clone / ".dvc/plots").glob("*.json")}
    # the cost picture marks the run's two thresholds, from its own metrics
    metrics = json.loads((clone / "reports/metrics.json").read_text())
    for plot_id in ("cost", "reports/evaluate_plots/cost.json"):  # the story's and evaluate's
        cost = shown["data"][plot_id][0]["content"]["data"]["values"]
        marks = {row["kind"]: row["threshold"] for row in cost if row["kind"] != "curve"}
        assert marks == {"chosen": metrics["threshold"], "bayes": metrics["bayes_threshold"]}


def test_html_names_every_plot(clone: Path, shown: dict[str, Any]) -> None:
    run(["dvc", "plots", "show", "-o", "html"], clone)
    page = (clone / "html" / "index.html").read_text()
    assert "<DVC_METRIC_" not in page
    for plot_id in shown["data"]:
        div = re.sub(r"[/.]", "_", plot_id)  # DVC's id for the plot's <div>
        assert f'<div id = "{div}">' in page, plot_id
    assert page.count("vegaEmbed(") == len(shown["data"])
