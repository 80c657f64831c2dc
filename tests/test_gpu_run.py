"""benchmarks/gpu_run.py, tried on the CPU path (CI has no GPU), and the lock of its CUDA build."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TINY_PARAMS

_SPEC = importlib.util.spec_from_file_location("gpu_run", ROOT / "benchmarks" / "gpu_run.py")
gpu_run = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gpu_run)


def _pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_gpu_lock_pins_tensorflow_at_the_cpu_builds_version_and_nothing_the_lock_has() -> None:
    cpu = _pins(ROOT / "requirements.lock")
    gpu = _pins(ROOT / "requirements-gpu.lock")
    assert gpu["tensorflow"] == cpu["tensorflow-cpu"]
    # installed together with requirements.lock: a package in both would be two versions
    assert not set(gpu) & set(cpu), set(gpu) & set(cpu)
    assert {name for name in gpu if name.startswith("nvidia-cudnn")}, "no cuDNN wheel pinned"


def _metrics(precision: float, interval: list[float] | None, cost: float) -> dict:
    return {
        "test": {"prior": {"precision": precision, "precision_ci": interval}},
        "dev_b": {"prior": {"expected_cost": cost, "expected_cost_ci": None}},
    }


def test_compare_metrics_reads_the_reference_interval() -> None:
    reference = _metrics(0.80, [0.75, 0.85], 12.0)
    inside = gpu_run.compare_metrics(_metrics(0.84, None, 13.5), reference)
    assert inside["test.precision"]["within_interval"] is True
    assert inside["test.precision"]["difference"] == pytest.approx(0.04)
    # dev_b's cost chose the threshold and carries no interval: no verdict, only the numbers
    assert inside["dev_b.expected_cost"]["within_interval"] is None
    assert inside["dev_b.expected_cost"]["difference"] == pytest.approx(1.5)
    outside = gpu_run.compare_metrics(_metrics(0.86, None, 12.0), reference)
    assert outside["test.precision"]["within_interval"] is False
    # a metric the reference lacks is not compared at all
    assert "test.recall" not in inside


def test_without_a_gpu_the_script_refuses_unless_asked(capsys: pytest.CaptureFixture) -> None:
    assert gpu_run.main(["--work", "/nonexistent/never-made"]) == 2
    assert "sees no GPU" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cpu_path_runs_every_stage_and_measures_it(tmp_path: Path) -> None:
    overrides = tmp_path / "tiny.yaml"
    overrides.write_text(yaml.safe_dump(TINY_PARAMS))
    out = tmp_path / "gpu.json"
    # the committed default run's metrics stand in for a CPU run's: the tiny run is compared
    compare = ROOT / "reports" / "metrics.json"
    code = gpu_run.main(
        [
            "--allow-cpu",
            "--overrides",
            str(overrides),
            "--work",
            str(tmp_path / "project"),
            "--out",
            str(out),
            "--compare",
            str(compare),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["devices"]["gpus"] == []
    assert {"ingest", "train", "evaluate", "bundle"} <= set(result["stages"])
    assert all(stage["wall_s"] > 0 for stage in result["stages"].values())
    speed = result["throughput"]
    assert speed["train_examples"] > 0 and speed["train_examples_per_s"] > 0
    assert speed["evaluate_examples"] > 0 and speed["evaluate_examples_per_s"] > 0
    assert speed["compute"]["device"] == "cpu"
    assert set(result["metrics"]) >= {"test.precision", "dev_b.expected_cost"}
    assert not (tmp_path / "project").exists()  # removed unless --keep
