"""Shared fixtures: tiny params and a temporary git + DVC repository of the project."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Small enough that the whole pipeline runs in well under a minute on 2 cores.
TINY_PARAMS: dict[str, Any] = {
    "generate": {
        "seed": 11,
        "dim": 12,
        "min_rows": 3,
        "max_rows": 20,
        "evidence_min_len": 3,
        "evidence_max_len": 4,
        "evidence_strength": 2.0,
        "prior": 0.05,
        "files_per_source": 2,
        "sources": {
            "pool": {"examples": 1500, "negative_rate": 0.2},
            "production": {"examples": 800, "negative_rate": 1.0},
        },
    },
    "ingest": {
        "row_group_size": 32,
        "shard_size": 200,
        "sources": {
            "pool": {"path": "dsprior/simulator.py", "format": "simulated", "negative_rate": 0.2},
            "production": {
                "path": "dsprior/simulator.py",
                "format": "simulated",
                "negative_rate": 1.0,
            },
        },
    },
    "train": {
        "filter_sizes": [2, 3, 4],
        "filters": 8,
        "batch_size": 16,
        "epochs": 2,
        "log_every": 2,
        "eval_every": 5,
        "eval_batch_size": 32,
        "checkpoint_every": 4,
        "pool_size": 200,
    },
    "evaluate": {"bootstrap": {"resamples": 200}},
}


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged in, nested dicts key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tool_env() -> dict[str, str]:
    """Environment in which `dvc` and `python` are this venv's."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.com")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in ``cwd`` with the venv's tools; fail with its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def make_project(path: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A fresh git + DVC repository holding the project's code and ``params``."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "stages", path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", path / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = deep_merge(params, deep_merge(TINY_PARAMS, overrides or {}))
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], path)
    run(["dvc", "init", "-q"], path)
    # dvc.yaml's plots name the templates kept in the repository (.dvc/plots/)
    shutil.copytree(ROOT / ".dvc" / "plots", path / ".dvc" / "plots")
    for key, value in [
        ("core.analytics", "false"),
        ("core.check_update", "false"),
        ("core.autostage", "true"),
    ]:
        run(["dvc", "config", key, value], path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "init"], path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary project repository with tiny params."""
    return make_project(tmp_path / "project")
