"""`tools.team push` (what `make push` runs) on a tiny DVC project: fast, no TensorFlow.

The project has one stage with the output kinds the pipeline uses: a cached folder, a cached
file, a `cache: false` metric and a `cache: false` plots folder. Two runs (a = 1, a = 2)
leave two run records; the remote is a local folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import run
from tools import scratch, team

SCRIPT = """\
import json, pathlib, yaml
a = yaml.safe_load(open("params.yaml"))["a"]
for folder in ("out", "pl"):
    pathlib.Path(folder).mkdir(exist_ok=True)
pathlib.Path("out/x.txt").write_text(f"x{a}\\n")
pathlib.Path("out/y.txt").write_text(f"y{a}\\n")
pathlib.Path("r.md").write_text(f"# run {a}\\n")
pathlib.Path("m.json").write_text(json.dumps({"a": a}))
pathlib.Path("pl/p.tsv").write_text(f"step\\tv\\n0\\t{a}\\n")
print("RAN", a)
"""
DVC_YAML = {
    "stages": {
        "s": {
            "cmd": "python s.py",
            "deps": ["s.py"],
            "params": ["a"],
            "outs": ["out", "r.md"],
            "metrics": [{"m.json": {"cache": False}}],
            "plots": [{"pl": {"cache": False, "x": "step"}}],
        }
    }
}


def sh(cmd: list[str], cwd: Path) -> str:
    return run(cmd, cwd).stdout


def set_a(repo: Path, value: int) -> None:
    (repo / "params.yaml").write_text(f"a: {value}\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two committed runs (a = 1, then a = 2) and a default local remote beside the repo."""
    repo = tmp_path / "alice"
    repo.mkdir()
    (repo / "s.py").write_text(SCRIPT)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    scratch.copy_code(repo)
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "config", "core.analytics", "false"], repo)
    sh(["dvc", "remote", "add", "-d", "storage", str(tmp_path / "storage")], repo)
    for value in (1, 2):
        set_a(repo, value)
        assert f"RAN {value}" in sh(["dvc", "repro"], repo)
        sh(["git", "add", "-A"], repo)
        sh(["git", "commit", "-qm", f"a = {value}"], repo)
    return repo


def run_one(repo: Path, value: int) -> dict:
    """The cache entries of the record for ``a = value``: {path: md5}."""
    runs = repo / ".dvc" / "cache" / "runs"
    for record in runs.glob("*/*/*"):
        entry = yaml.safe_load(record.read_text())
        if entry["params"]["params.yaml"]["a"] == value:
            return {out["path"]: out["md5"] for out in entry["outs"]}
    raise AssertionError(f"no run record for a = {value}")


def cache_file(root: Path, md5: str) -> Path:
    return root / "files" / "md5" / md5[:2] / md5[2:]


def test_push_sends_what_records_point_to_and_a_clone_restores_without_running(
    project: Path, tmp_path: Path
):
    first = team.push(project)
    assert first.run_records == 2 and first.outputs_skipped == 0 and first.failed == 0
    # the cache:false metric and plot of both runs, and the a = 1 run's cached outputs
    assert first.run_files > 0
    assert team.push(project).run_files == 0  # all there now

    storage = tmp_path / "storage"
    for md5 in run_one(project, 1).values():  # every output of the earlier run, listings too
        assert cache_file(storage, md5).is_file(), md5

    bob = tmp_path / "bob"
    sh(["git", "clone", "-q", str(project), str(bob)], tmp_path)
    sh(["dvc", "remote", "add", "-d", "--local", "storage", str(storage)], bob)
    set_a(bob, 1)
    out = sh(["dvc", "repro", "--pull"], bob)
    assert "Stage 's' is cached - skipping run, checking out outputs" in out, out
    assert "RAN" not in out
    assert json.loads((bob / "m.json").read_text()) == {"a": 1}
    assert (bob / "out" / "y.txt").read_text() == "y1\n"
    assert (bob / "pl" / "p.tsv").read_text() == "step\tv\n0\t1\n"
    assert (bob / "r.md").read_text() == "# run 1\n"


def test_outputs_missing_here_are_skipped_and_a_folder_never_goes_half(
    project: Path, tmp_path: Path
):
    cache = project / ".dvc" / "cache"
    earlier = run_one(project, 1)
    listing = earlier["out"]
    files = json.loads(cache_file(cache, listing).read_text())
    cache_file(cache, files[0]["md5"]).unlink()  # one file of the a = 1 folder is gone
    cache_file(cache, earlier["r.md"]).unlink()  # and its report

    summary = team.push(project)
    assert summary.outputs_skipped == 2 and summary.failed == 0
    storage = tmp_path / "storage"
    assert not cache_file(storage, listing).exists()  # no listing without its files
    assert not cache_file(storage, files[1]["md5"]).exists()
    assert cache_file(storage, earlier["m.json"]).is_file()  # the rest of that run went

    cache_file(cache, listing).unlink()  # the listing itself gone: skipped, no prompt, no crash
    assert team.push(project).outputs_skipped == 2


def test_command_line_summary_and_errors(project: Path):
    out = sh(["python", "-m", "tools.team", "push"], project)
    assert out.startswith("dvc push --run-cache: "), out
    assert "run record(s) sent; then" in out and "more file(s) the records point to" in out
    bad = run(["python", "-m", "tools.team", "push", "-r", "nowhere"], project, check=False)
    assert bad.returncode != 0
    assert bad.stderr.startswith("ERROR: ") and "nowhere" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
