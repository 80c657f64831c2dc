"""monitor stage: its outputs from a history, its CI gate, and a prior jump on the simulator
seen end to end through `dvc repro`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsprior import monitoring
from stages import monitor, score
from tests.conftest import make_project, run
from tests.factories import monitor_record
from tools.drift import DRIFT_WORLD, write_stream
from tools.scratch import deep_merge

RULES = {
    "precision_floor": 0.8,
    "prior_band": {"low": 0.005, "high": 0.025},
    "consecutive": 2,
    "fail_on_alert": False,
}
SHIPPED = {"prior": 0.0114, "threshold": 0.26, "test": {"prior": {"precision": 0.9,
           "recall": 0.87, "alerts_per_1000": 11.0}}}  # fmt: skip


def stage_files(tmp_path: Path, priors: list[float], **rules: Any) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"monitor": {**RULES, **rules}}))
    (tmp_path / "metrics.json").write_text(json.dumps(SHIPPED))
    history = tmp_path / "history.jsonl"
    history.touch()
    for d, prior in enumerate(priors):
        monitoring.append_record(history, monitor_record(f"day-{d}", prior=prior))
    return ["--params", str(tmp_path / "params.yaml"), "--history", str(history)] + [
        "--shipped", str(tmp_path / "metrics.json"), "--plots", str(tmp_path / "r" / "monitor"),
        "--metrics", str(tmp_path / "r" / "monitor.json"), "--report", str(tmp_path / "r" / "monitor.md"),
    ]  # fmt: skip


def test_the_stage_writes_its_plots_metrics_and_report(tmp_path: Path) -> None:
    (tmp_path / "r" / "monitor").mkdir(parents=True)
    (tmp_path / "r" / "monitor" / "stale.json").write_text("[]")  # a picture no longer drawn
    monitor.main(stage_files(tmp_path, [0.01, 0.01, 0.04, 0.04]))
    assert sorted(p.name for p in (tmp_path / "r" / "monitor").iterdir()) == [
        "alerts.json",
        "precision.json",
        "prior.json",
    ]
    metrics = json.loads((tmp_path / "r" / "monitor.json").read_text())
    assert metrics["alerting"] and metrics["alerts"][0]["fired_at"] == "day-3"
    assert "ACTIVE: prior above the band" in (tmp_path / "r" / "monitor.md").read_text()


def test_an_active_alert_fails_the_stage_only_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor.main(stage_files(tmp_path / "a", [0.04, 0.04]))  # alerting, but not a gate
    with pytest.raises(SystemExit) as info:
        monitor.main(stage_files(tmp_path / "b", [0.04, 0.04], fail_on_alert=True))
    assert info.value.code == monitor.EXIT_ALERT == 3
    assert "an alert is active and monitor.fail_on_alert is true" in caplog.text
    assert (tmp_path / "b" / "r" / "monitor.md").is_file()  # written before failing
    # an alert that ended does not fail the gate
    monitor.main(stage_files(tmp_path / "c", [0.04, 0.04, 0.01], fail_on_alert=True))


def test_bad_params_stop_the_stage_with_the_key(tmp_path: Path) -> None:
    argv = stage_files(tmp_path, [], consecutive=0)
    with pytest.raises(ValueError, match=r"^monitor.consecutive must be an integer >= 1, got 0$"):
        monitor.main(argv)


def _scored(project: Path, batch: dict[str, Any], tmp: Path, *extra: str) -> None:
    score.main(
        ["--bundle", str(project / "bundle"), "--input", str(batch["path"])]
        + ["--output", str(tmp / f"{batch['batch']}.parquet")]
        + ["--summary", str(tmp / f"{batch['batch']}.json"), "--resamples", "100"]
        + ["--history", str(project / "monitoring" / "history.jsonl"), *extra]
    )  # fmt: skip


@pytest.mark.slow
def test_a_prior_jump_alerts_after_consecutive_batches_through_dvc_repro(tmp_path: Path) -> None:
    """Three batches at the bundle's 1:100, then three at 1:25, drawn from the project's own
    world; the alert fires within `consecutive` batches of the jump and not before."""
    rules = {**RULES, "precision_floor": 0.3, "prior_band": {"low": 0.004, "high": 0.02}}
    project = make_project(tmp_path / "project", deep_merge(DRIFT_WORLD, {"monitor": rules}))
    run(["dvc", "repro"], project)
    generate = yaml.safe_load((project / "params.yaml").read_text())["generate"]
    priors = [0.01] * 3 + [0.04] * 3
    batches = write_stream(generate, priors, tmp_path / "raw", examples=4000, prefix="day")
    for batch in batches:
        _scored(project, batch, tmp_path, "--batch-name", batch["batch"])
    _scored(project, batches[0], tmp_path / "again")  # the same data again: recorded once
    history = monitoring.read_history(project / "monitoring" / "history.jsonl")
    assert [r["batch"] for r in history] == [b["batch"] for b in batches]

    out = run(["dvc", "repro"], project).stdout
    assert [line for line in out.splitlines() if line.startswith("Running stage")] == [
        "Running stage 'monitor':"
    ]
    metrics = json.loads((project / "reports" / "monitor.json").read_text())
    verdicts = [v["breaches"] for v in metrics["batch_verdicts"]]
    assert verdicts[:3] == [[], [], []], verdicts  # nothing before the jump
    (alert,) = metrics["alerts"]
    assert alert["rule"] == "prior_high" and alert["active"]
    fired = [b["batch"] for b in batches].index(alert["fired_at"])
    assert 3 + rules["consecutive"] - 1 <= fired <= 3 + rules["consecutive"], (fired, verdicts)
    shown = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
    prior = shown["data"]["reports/monitor/prior.json"][0]["content"]["data"]["values"]
    assert {r["batch"] for r in prior} == {b["batch"] for b in batches}
    assert "since `day_003`" in (project / "reports" / "monitor.md").read_text() or fired == 5

    # the CI gate: the same history, the stage told to fail on an active alert
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["monitor"]["fail_on_alert"] = True
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    gate = run(["dvc", "repro"], project, check=False)
    assert gate.returncode != 0
    assert "an alert is active and monitor.fail_on_alert is true" in gate.stdout + gate.stderr
