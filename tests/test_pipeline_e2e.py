"""End to end: `dvc repro` of the whole pipeline in a temporary git repository, tiny params."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from dsprior import simulator
from dsprior.contract import read_metadata
from tests.conftest import make_project, run, tool_env
from tests.factories import REQUIRED_METRICS as REQUIRED
from tests.factories import declared_plots
from tools.scratch import stages_in_order


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
    """Stage names as DVC prints them: a ``foreach`` gives ``name@key`` per item it iterates."""
    return stages_in_order(project)


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


def checkpoint_steps(project: Path) -> list[int]:
    """The steps of the training backup's complete checkpoints (``dsprior.training.resume``)."""
    root = project / ".cache/train_backup/checkpoints"
    names = [p.name for p in root.iterdir()] if root.is_dir() else []
    return sorted(int(name) for name in names if name.isdigit())


def writing_checkpoint(project: Path, *, after: int) -> bool:
    """A checkpoint past step ``after`` is being written (its staging folder exists)."""
    root = project / ".cache/train_backup/checkpoints"
    names = [p.name for p in root.iterdir()] if root.is_dir() else []
    return any(n.startswith(".staging-") and int(n.split("-")[-1]) > after for n in names)


def kill_when(
    cmd: list[str], project: Path, when: Callable[[], bool], *, then: float = 0.0
) -> tuple[int, str, int]:
    """Run ``cmd`` and SIGKILL its whole process group ``then`` seconds after ``when()`` holds
    (polled every 2 ms); return the exit status, the run's output and the step of the newest
    complete checkpoint the kill left, which the next run must resume from."""
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(
            cmd,
            cwd=project,
            env=tool_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: dvc and the training under it
        )
        try:
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline and not when():
                time.sleep(0.002)
            if then:
                time.sleep(then)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # a crash, an OOM kill, a preempted node
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        output.seek(0)
        text = output.read()
    assert proc.returncode == -signal.SIGKILL, f"not killed (exit {proc.returncode}):\n{text}"
    return proc.returncode, text, max(checkpoint_steps(project), default=0)


def assert_same_curves(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert sorted(got) == sorted(expected)
    for name, frame in expected.items():
        assert got[name]["step"].tolist() == frame["step"].tolist(), name  # every step, once
        assert list(got[name].columns) == list(frame.columns), name
        np.testing.assert_allclose(
            got[name].iloc[:, -1].to_numpy(float), frame.iloc[:, -1].to_numpy(float), atol=1e-6
        )


def test_training_killed_under_dvc_repro_resumes_with_complete_curves(project: Path):
    """DVC deletes the stage's curve files before it reruns a killed training; the
    resumed run must still end with the curves of an uninterrupted one."""
    train_params = yaml.safe_load((project / "params.yaml").read_text())["train"]
    every, log_every = train_params["checkpoint_every"], train_params["log_every"]

    # Never completed with these params, so the run-cache cannot stand in for the resume.
    _, _, step = kill_when(
        ["dvc", "repro", "train"],
        project,
        lambda: max(checkpoint_steps(project), default=0) >= 2 * every,
    )
    assert not (project / "models/train.json").exists()

    resumed = run(["dvc", "repro", "train"], project)
    assert "Running stage 'train'" in resumed.stdout, resumed.stdout
    record = json.loads((project / "models/train.json").read_text())
    start, total = record["resumed_from_step"], record["steps"]
    assert start == step and 0 < start < total - log_every  # resumed mid-run, where it stopped
    resumed_curves = curve_files(project)

    fresh = run(["dvc", "repro", "--force", "--single-item", "train"], project)
    assert "Running stage 'train'" in fresh.stdout, fresh.stdout
    assert json.loads((project / "models/train.json").read_text())["resumed_from_step"] == 0
    fresh_curves = curve_files(project)

    assert fresh_curves["metrics/train/loss.tsv"]["step"].tolist() == sorted(
        {*range(log_every, total + 1, log_every), total}
    )
    assert_same_curves(resumed_curves, fresh_curves)


def test_training_killed_again_and_again_under_dvc_repro_resumes_each_time(tmp_path: Path):
    """#29: kills at several moments of one training, the checkpoint writes included (a
    SIGKILL there once left a torn Keras backup and the next run exited 1). Each restart
    resumes from the newest complete checkpoint, never from zero, and the curves in the
    end are an uninterrupted run's."""
    project = make_project(tmp_path / "project", {"train": {"epochs": 4}})  # 32 steps
    every = yaml.safe_load((project / "params.yaml").read_text())["train"]["checkpoint_every"]

    def newest() -> int:
        return max(checkpoint_steps(project), default=0)

    cmd = ["dvc", "repro", "train"]  # the run-cache holds no run of these params
    start = 0
    moments = [  # (when, then, checkpointed further?), relative to where the run resumed
        (lambda: newest() >= 2 * every, 0.0, True),  # just after a checkpoint
        # as soon as a checkpoint is being written (should the 2 ms poll miss every write,
        # just after the second checkpoint of the run)
        (
            lambda: writing_checkpoint(project, after=start) or newest() >= start + 2 * every,
            0,
            False,
        ),
        (lambda: newest() >= start + every, 0.15, True),  # between checkpoints
    ]
    cut_short = False
    for when, then, further in moments:
        _, output, left = kill_when(cmd, project, when, then=then)
        assert "Traceback" not in output, output
        if start:  # the run began where the previous kill left the backup
            assert f"resuming from step {start} " in output, output
        if cut_short:  # and threw away the checkpoint that kill cut short
            assert "a checkpoint whose writing was cut short" in output, output
        assert left > start if further else left >= start, output
        cut_short = writing_checkpoint(project, after=left)
        start = left
    assert not (project / "models/train.json").exists()

    resumed = run(cmd, project)
    assert f"resuming from step {start} " in resumed.stderr, resumed.stderr
    record = json.loads((project / "models/train.json").read_text())
    assert record["resumed_from_step"] == start < record["steps"]
    assert not (project / ".cache/train_backup").exists()  # removed after success
    resumed_curves = curve_files(project)

    run(["dvc", "repro", "--force", "--single-item", "train"], project)
    assert json.loads((project / "models/train.json").read_text())["resumed_from_step"] == 0
    assert_same_curves(resumed_curves, curve_files(project))
