"""A user's mistake ends a stage with one ``ERROR: ...`` line and exit code 1, no traceback.

Each stage and command runs as dvc.yaml runs it (``python -m stages.<name>``) on a
wrong-typed or out-of-range param, a broken params.yaml or a missing input; every error
here is raised before any heavy work. A bug (any other exception) keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsprior import runtime, settings
from tests.conftest import ROOT, run, tool_env
from tests.rawfiles import INGEST_PARAMS


def stage(
    name: str, args: list[str], cwd: Path, package: str = "stages"
) -> subprocess.CompletedProcess:
    env = tool_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop(runtime.TRACEBACK_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", f"{package}.{name}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``ERROR:`` line of a run that failed on a user error."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def real_section(section: str) -> dict[str, Any]:
    """A section of the real params.yaml (every key of a section is required)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())[section]


def params_file(tmp_path: Path, section: str, values: dict[str, Any]) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({section: values}))
    return str(path)


def test_generate_wrong_type(tmp_path: Path) -> None:
    sources = {"pool": {"examples": 10, "negative_rate": 1.0}}
    params = params_file(tmp_path, "generate", {"seed": 1, "dim": "twelve", "sources": sources})
    proc = stage("generate", ["--params", params, "--out", "raw"], tmp_path)
    line = error_line(proc)
    assert "generate.dim must be an integer" in line and "'twelve'" in line
    assert not (tmp_path / "raw").exists()


def test_generate_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("generate:\n  seed: 1\n  dim: [12\n")
    proc = stage("generate", ["--params", str(path), "--out", "raw"], tmp_path)
    line = error_line(proc)
    assert str(path) in line and "line 4" in line and "not valid YAML" in line


def test_split_wrong_type(tmp_path: Path) -> None:
    params = params_file(tmp_path, "split", {"seed": 1.5, "feeds": {"a": {"train": 1.0}}})
    args = ["--params", params, "--dataset", "dataset", "--out", "m.parquet"]
    proc = stage("split", [*args, "--metrics", "m.json"], tmp_path)
    assert "split.seed must be an integer >= 0, got 1.5" in error_line(proc)


def test_downsample_out_of_range(tmp_path: Path) -> None:
    params = params_file(tmp_path, "downsample", {"seed": 1, "ratio": -2, "splits": ["train"]})
    args = ["--params", params, "--split-manifest", "s.parquet", "--out", "m.parquet"]
    proc = stage("downsample", [*args, "--metrics", "m.json"], tmp_path)
    assert "downsample.ratio must be null or a number > 0, got -2" in error_line(proc)


def test_audit_number_given_as_text(tmp_path: Path) -> None:
    params = params_file(tmp_path, "audit", {"alpha": "0.01"})
    args = ["--params", params, "--dataset", "dataset", "--manifest", "m.parquet"]
    proc = stage("audit", [*args, "--report", "a.md", "--metrics", "a.json"], tmp_path)
    assert "audit.alpha must be a number > 0 and < 1, got '0.01'" in error_line(proc)


def test_audit_missing_manifest(tmp_path: Path) -> None:
    params = params_file(tmp_path, "audit", real_section("audit"))
    args = ["--params", params, "--dataset", "dataset", "--manifest", "nowhere.parquet"]
    proc = stage("audit", [*args, "--report", "a.md", "--metrics", "a.json"], tmp_path)
    assert "nowhere.parquet: no such file or directory" in error_line(proc)


def test_train_wrong_type(tmp_path: Path) -> None:
    params = params_file(tmp_path, "train", {"pool_size": "many"})
    args = ["--params", params, "--dataset", "dataset", "--manifest", "m.parquet"]
    proc = stage("train", [*args, "--model-dir", "models", "--live-dir", "live"], tmp_path)
    assert "train.pool_size must be an integer >= 1, got 'many'" in error_line(proc)


def test_evaluate_wrong_type(tmp_path: Path) -> None:
    params = params_file(tmp_path, "evaluate", {"bootstrap": {"resamples": 1.5}})
    args = ["--params", params, "--dataset", "dataset", "--manifest", "m.parquet"]
    proc = stage("evaluate", [*args, "--model-dir", "models", "--reports", "r"], tmp_path)
    assert "evaluate.bootstrap.resamples must be an integer >= 1, got 1.5" in error_line(proc)


def test_monitor_wrong_type_and_missing_history(tmp_path: Path) -> None:
    monitor = {**real_section("monitor"), "consecutive": "three"}
    args = ["--params", params_file(tmp_path, "monitor", monitor), "--history", "h.jsonl"]
    args += ["--shipped", "m.json", "--plots", "p", "--metrics", "m2.json", "--report", "r.md"]
    proc = stage("monitor", args, tmp_path)
    assert "monitor.consecutive must be an integer >= 1, got 'three'" in error_line(proc)
    params_file(tmp_path, "monitor", real_section("monitor"))
    (tmp_path / "m.json").write_text("{}")
    line = error_line(stage("monitor", args, tmp_path))
    assert "h.jsonl: no such history file; `score --summary S.json --history h.jsonl`" in line


def test_bundle_missing_input(tmp_path: Path) -> None:
    params = params_file(tmp_path, "evaluate", {})
    args = ["--params", params, "--model-dir", "models", "--dataset", "dataset"]
    args += ["--metrics", "m.json", "--predictions", "p.parquet", "--out", "bundle"]
    proc = stage("bundle", args, tmp_path)
    assert "models/train.json: No such file or directory" in error_line(proc)


def test_score_bad_output_extension(tmp_path: Path) -> None:
    args = ["--bundle", "bundle", "--input", "in.csv", "--output", "scores.txt"]
    line = error_line(stage("score", args, tmp_path))
    assert "scores.txt" in line and "extension must be one of" in line


def test_team_unknown_remote(tmp_path: Path) -> None:
    run(["dvc", "init", "--no-scm", "-q"], tmp_path)
    proc = stage("team", ["push", "-r", "nosuch"], tmp_path, package="tools")
    assert "remote 'nosuch' doesn't exist" in error_line(proc)


def test_missing_params_file(tmp_path: Path) -> None:
    proc = stage(
        "split",
        ["--params", "nothere.yaml", "--dataset", "d", "--out", "m", "--metrics", "j"],
        tmp_path,
    )
    assert "nothere.yaml: No such file or directory" in error_line(proc)


# ----------------------------------------------------------------------------- run_main


def test_run_main_turns_a_user_error_into_one_line(caplog: pytest.LogCaptureFixture) -> None:
    def main() -> None:
        raise ValueError("x.y must be >= 1,\n  got 0")

    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        runtime.run_main(main)
    assert info.value.code == 1
    assert [r.getMessage() for r in caplog.records] == ["x.y must be >= 1, got 0"]


@pytest.mark.parametrize("exc", [KeyError("seed"), TypeError("bad operand"), RuntimeError("x")])
def test_run_main_lets_a_bug_keep_its_traceback(exc: Exception) -> None:
    def main() -> None:
        raise exc

    with pytest.raises(type(exc)):
        runtime.run_main(main)


def test_run_main_shows_the_traceback_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.TRACEBACK_ENV, "1")

    def main() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        runtime.run_main(main)


def test_error_records_print_as_one_error_line() -> None:
    record = logging.LogRecord("stages.x", logging.ERROR, __file__, 1, "a %s", ("b",), None)
    assert runtime._Formatter().format(record) == "ERROR: a b"
    record.levelno, record.levelname = logging.INFO, "INFO"
    assert runtime._Formatter().format(record).endswith("stages.x INFO a b")


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("3", {"integer": True}, "k must be an integer, got '3'"),
        (True, {}, "k must be a number, got True"),
        (float("nan"), {}, "k must be a number, got nan"),
        (0, {"minimum": 0, "min_open": True}, "k must be a number > 0, got 0"),
        (2, {"maximum": 1, "none": True}, "k must be null or a number <= 1, got 2"),
    ],
)
def test_check_number_names_key_value_and_allowed(value, kwargs, message) -> None:
    with pytest.raises(ValueError) as err:
        settings.check_number(value, "k", **kwargs)
    assert str(err.value) == message
    assert settings.check_number(None, "k", none=True) is None
    assert settings.check_number(3, "k", integer=True, minimum=1) == 3


def test_load_params_refuses_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("split: 3\n")
    with pytest.raises(ValueError, match=r"section 'split' must be a mapping of keys, got 3"):
        settings.load_params(path, "split")
    with pytest.raises(ValueError, match=r"split.seed is required"):
        settings.require({}, "seed", "split")


def _ingest(tmp_path: Path, values: dict[str, Any]) -> subprocess.CompletedProcess:
    params = params_file(tmp_path, "ingest", {**INGEST_PARAMS, **values})
    args = ["--params", params, "--out", "dataset", "--rejects", "rejects.jsonl"]
    return stage("ingest", [*args, "--metrics", "ingest.json"], tmp_path)


def test_ingest_wrong_type(tmp_path: Path) -> None:
    sources = {"s": {"path": "raw", "negative_rate": 1.0}}
    line = error_line(_ingest(tmp_path, {"chunk_rows": "many", "sources": sources}))
    assert line == "ERROR: ingest.chunk_rows must be an integer >= 1, got 'many'"


def test_ingest_all_input_rejected_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "raw.csv").write_text("example_id,group,label,f0\ne0,g0,maybe,1.0\n")
    sources = {"s": {"path": "raw.csv", "negative_rate": 1.0}}
    line = error_line(_ingest(tmp_path, {"on_error": "quarantine", "sources": sources}))
    assert "no valid example in any source: 1 examples read, all rejected" in line
    assert "bad_label: 1" in line and "rejects.jsonl" in line
    line = error_line(_ingest(tmp_path, {"on_error": "fail", "sources": sources}))
    assert "raw.csv, line 2: example 'e0': label must be 0 or 1, got 'maybe'" in line
    assert "set ingest.on_error: quarantine" in line


def test_tensorflow_starts_quietly_with_onednn_on(tmp_path: Path) -> None:
    """TF's C++ 'oneDNN custom operations are on' notice ignores TF_CPP_MIN_LOG_LEVEL."""
    env = tool_env()
    env.update(PYTHONPATH=str(ROOT), TF_ENABLE_ONEDNN_OPTS="1")
    code = "from dsprior import runtime; runtime.quiet_tensorflow(); import tensorflow as tf; tf.constant(1)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
