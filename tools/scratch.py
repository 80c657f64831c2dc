"""A scratch copy of the project: its code, dvc.yaml and params, in a fresh git + DVC repository.

What the tests and the benchmarks run the pipeline in, so that a run never touches the
checkout's own data, cache or lock file. ``make_project`` copies the project's code
(``PROJECT_CODE``), ``dvc.yaml`` and the plot templates, writes ``params.yaml`` with
overrides merged in, and commits it all; ``run`` and ``tool_env`` run commands there with
this interpreter's ``dvc`` and ``python``.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The packages a pipeline run imports: the entry points, the library, the tools.
PROJECT_CODE = ("stages", "dsprior", "tools")


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


def copy_code(path: Path) -> None:
    """The project's packages (``PROJECT_CODE``) into ``path``, without byte-code caches."""
    for package in PROJECT_CODE:
        shutil.copytree(
            ROOT / package, path / package, ignore=shutil.ignore_patterns("__pycache__")
        )


def make_project(path: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A fresh git + DVC repository holding the project's code and its params with ``overrides``."""
    path.mkdir(parents=True, exist_ok=True)
    copy_code(path)
    shutil.copy(ROOT / "dvc.yaml", path / "dvc.yaml")
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides or {})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], path)
    run(["dvc", "init", "-q"], path)
    # dvc.yaml's plots name the templates kept in the repository (.dvc/plots/)
    shutil.copytree(ROOT / ".dvc" / "plots", path / ".dvc" / "plots")
    # the monitor stage's history is appended to by scoring, outside the pipeline: it starts
    # empty, as in the repository
    history = path / params["paths"]["history"]
    history.parent.mkdir(parents=True, exist_ok=True)
    history.touch()
    # train depends on the external scores' fingerprint folder, kept by its README
    fingerprints = params["paths"]["external_scores"]
    shutil.copytree(ROOT / fingerprints, path / fingerprints, dirs_exist_ok=True)
    for key, value in [
        ("core.analytics", "false"),
        ("core.check_update", "false"),
        ("core.autostage", "true"),
    ]:
        run(["dvc", "config", key, value], path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "init"], path)
    return path


def foreach_items(stage: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The mapping a ``foreach: ${a.b}`` stage iterates over (``ingest.sources``,
    ``train.external_scores``), from params.yaml; a stage per key, none for an empty one."""
    mapping: Any = params
    for key in stage["foreach"].strip().removeprefix("${").removesuffix("}").split("."):
        mapping = mapping[key]
    return dict(mapping or {})


def stages_in_order(project: Path) -> list[str]:
    """Every stage (one per item for ``foreach``), in dvc.yaml's order: the pipeline's."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    names: list[str] = []
    for name, stage in spec.items():
        if "foreach" in stage:
            names += [f"{name}@{key}" for key in foreach_items(stage, params)]
        else:
            names.append(name)
    return names
