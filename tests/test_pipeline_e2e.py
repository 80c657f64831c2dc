"""End to end: `dvc repro` of the whole pipeline in a temporary git repository, tiny params."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from dsprior import simulator
from dsprior.contract import read_metadata
from tests.conftest import run, tool_env
from tests.factories import REQUIRED_METRICS as REQUIRED
from tests.factories import declared_plots


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
    """Stage names as DVC prints them: a ``foreach`` over ingest.sources gives ``name@source``."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    sources = yaml.safe_load((project / "params.yaml").read_text())["ingest"]["sources"]
    names = []
    for name, stage in stages.items():
        names += [f"{name}@{key}" for key in sources] if "foreach" in stage else [name]
    return names


def test_dvc_repro_runs_every_stage_then_nothing(project: Path):
    out = run(["dvc", "repro"], project)
    for stage in stages_in(project):
        assert f"Running stage '{stage}'" in out.stdout, out.stdout

    # simulated sources -> ingest: every drawn example is in the dataset, counts reconcile.
    generate = yaml.safe_load((project / "params.yaml").read_text())["generate"]
    tables = simulator.draw_sources(
        simulator.SimulatorConfig.from_params(generate),
        simulator.sources_from_params(generate),
        seed=generate["seed"],
        shared_fraction=generate["shared_groups"],
    )
    ingest = json.loads((project / "reports/ingest.json").read_text())
    meta = read_metadata(project / "data/dataset")
    drawn = sum(len(t) for t in tables.values())
    assert meta["example_id"].to_pylist() == [i for t in tables.values() for i in t.example_id]
    assert not (project / "data/raw/sim").exists()  # nothing simulated is written as raw files
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
    # every plot dvc.yaml declares is drawn from this run's files, with data
    shown = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
    assert not shown.get("errors"), shown["errors"]
    assert list(shown["data"]) == declared_plots(project)
    assert all(e[0]["content"]["data"]["values"] for e in shown["data"].values())

    # Stage outputs are ignored by git (DVC writes the ignores); small reports are not.
    ignored = run(["git", "check-ignore", "data/dataset"], project)
    assert ignored.stdout.split() == ["data/dataset"]
    sources = run(["git", "check-ignore", "data/sources/pool.json"], project, check=False)
    assert sources.returncode == 1  # source fingerprints are in git
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


def curve_files(project: Path) -> dict[str, pd.DataFrame]:
    """Every DVCLive curve file of the train stage, by path under reports/train/plots."""
    plots = project / "reports/train/plots"
    return {
        path.relative_to(plots).as_posix(): pd.read_csv(path, sep="\t")
        for path in sorted(plots.rglob("*.tsv"))
    }


def kill_after_checkpoint(cmd: list[str], project: Path, *, epochs: int) -> tuple[int, int]:
    """Run ``cmd`` and SIGKILL its whole process group once the training backup holds
    ``epochs`` checkpoints; return the killed run's exit status and the checkpointed epoch."""
    meta = project / ".cache/train_backup/keras/training_metadata.json"
    proc = subprocess.Popen(
        cmd,
        cwd=project,
        env=tool_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: dvc and the training process under it
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                epoch = int(json.loads(meta.read_text())["epoch"])
            except (OSError, ValueError, KeyError):
                epoch = 0  # not written yet, or caught mid-write
            if epoch >= epochs:
                os.killpg(proc.pid, signal.SIGKILL)  # a crash, an OOM kill, a preempted node
                break
            time.sleep(0.01)
        else:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            raise AssertionError(f"no checkpoint to kill after (exit {proc.returncode}):\n{stderr}")
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, epoch


def test_training_killed_under_dvc_repro_resumes_with_complete_curves(project: Path):
    """DVC deletes the stage's curve files before it reruns a killed training; the
    resumed run must still end with the curves of an uninterrupted one."""
    train_params = yaml.safe_load((project / "params.yaml").read_text())["train"]
    every, log_every = train_params["checkpoint_every"], train_params["log_every"]

    # Never completed with these params, so the run-cache cannot stand in for the resume.
    returncode, epoch = kill_after_checkpoint(["dvc", "repro", "train"], project, epochs=2)
    assert returncode == -signal.SIGKILL
    assert not (project / "models/train.json").exists()

    resumed = run(["dvc", "repro", "train"], project)
    assert "Running stage 'train'" in resumed.stdout, resumed.stdout
    record = json.loads((project / "models/train.json").read_text())
    start, total = record["resumed_from_step"], record["steps"]
    assert start >= epoch * every and 0 < start < total - log_every  # resumed mid-run
    resumed_curves = curve_files(project)

    fresh = run(["dvc", "repro", "--force", "--single-item", "train"], project)
    assert "Running stage 'train'" in fresh.stdout, fresh.stdout
    assert json.loads((project / "models/train.json").read_text())["resumed_from_step"] == 0
    fresh_curves = curve_files(project)

    assert fresh_curves["metrics/train/loss.tsv"]["step"].tolist() == sorted(
        {*range(log_every, total + 1, log_every), total}
    )
    assert sorted(resumed_curves) == sorted(fresh_curves)
    for name, expected in fresh_curves.items():
        got = resumed_curves[name]
        assert got["step"].tolist() == expected["step"].tolist(), name  # every step, once
        assert list(got.columns) == list(expected.columns), name
        np.testing.assert_allclose(
            got.iloc[:, -1].to_numpy(float), expected.iloc[:, -1].to_numpy(float), atol=1e-6
        )
