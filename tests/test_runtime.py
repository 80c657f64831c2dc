"""runtime: atomic folders follow the umask and clean up after killed runs; git ignores temporaries."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsprior import runtime
from tests.conftest import ROOT


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that sets it."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0o022, 0o755), (0o027, 0o750), (0o077, 0o700)],
    ids=["022", "027", "077"],
)
def test_atomic_directory_follows_the_umask(
    tmp_path: Path, umask: None, mask: int, expected: int
) -> None:
    """Not mkdtemp's owner-only 0o700: a teammate or a scoring service must read bundle/ etc."""
    os.umask(mask)
    assert runtime.current_umask() == mask
    assert os.umask(mask) == mask  # reading it did not change it
    with runtime.atomic_directory(tmp_path / "bundle") as tmp:
        (tmp / "bundle.json").write_text("{}")
    assert mode(tmp_path / "bundle") == expected
    assert mode(tmp_path / "bundle" / "bundle.json") == expected & 0o666


def test_atomic_directory_removes_temporaries_of_killed_runs(tmp_path: Path) -> None:
    stale = tmp_path / ".dataset.3q7_cj1n.tmp"  # what a SIGKILLed ingest leaves
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "shard-00000.parquet").write_bytes(b"partial")
    keep = [
        tmp_path / ".dataset.json.tmp",  # write_json's temp of another file
        tmp_path / ".other.abcd1234.tmp",  # another target's folder
        tmp_path / "dataset.abcd1234.tmp",  # not hidden: not ours
    ]
    keep[0].write_text("{}")
    keep[1].mkdir()
    keep[2].mkdir()
    with runtime.atomic_directory(tmp_path / "dataset") as tmp:
        assert stale.exists()  # nothing is removed before this run succeeds
        (tmp / "x").write_text("done")
    assert not stale.exists()
    assert (tmp_path / "dataset" / "x").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dataset"] + [p.name for p in keep]
    )


def test_failed_atomic_directory_leaves_target_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("old")
    with pytest.raises(RuntimeError), runtime.atomic_directory(tmp_path / "out") as tmp:
        (tmp / "new").write_text("new")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "old").read_text() == "old"


def test_write_json_replaces_a_stale_temporary(tmp_path: Path) -> None:
    (tmp_path / ".metrics.json.tmp").write_text('{"partial": ')
    runtime.write_json(tmp_path / "metrics.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_write_json_leaves_no_temporary_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "metrics.json").write_text('{"old": 1}\n')

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runtime.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        runtime.write_json(tmp_path / "metrics.json", {"new": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert (tmp_path / "metrics.json").read_text() == '{"old": 1}\n'


def test_atomic_file_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "table.parquet"  # parent folders are created
    runtime.write_atomic(path, b"old")
    with pytest.raises(RuntimeError, match="half way"), runtime.atomic_file(path) as tmp:
        tmp.write_bytes(b"ne")
        raise RuntimeError("half way")
    assert path.read_bytes() == b"old" and sorted(p.name for p in path.parent.iterdir()) == [
        "table.parquet"
    ]
    runtime.write_atomic(path, "new text")
    assert path.read_text() == "new text"


def test_file_sha256_is_the_sha256_of_the_bytes_whatever_the_block(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    import hashlib

    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    assert runtime.file_sha256(path) == runtime.file_sha256(path, block=7) == expected


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_ignores_the_temporaries_of_interrupted_runs(tmp_path: Path) -> None:
    """What a killed ingest, train, bundle or score leaves must not be committable."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    temporaries = [
        "data/.dataset.3q7_cj1n.tmp/shard-00000.parquet",  # atomic_directory's mkdtemp
        "data/ingest/.rejects.jsonl.tmp",  # rawio.RejectsFile
        ".scores_prev.csv.tmp",  # score's output
        "out/.scores.parquet.tmp",
        "reports/.metrics.json.tmp",  # write_json
    ]
    for name in temporaries + ["data/new.csv", "out/scores.tmp"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", *temporaries, "data/.dataset.3q7_cj1n.tmp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert len(checked.stdout.splitlines()) == len(temporaries) + 1
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert sorted(status) == ["?? .gitignore", "?? data/new.csv", "?? out/scores.tmp"]


def _pid_after(seconds: float) -> tuple[float, int]:
    """A worker's task: wait, then say which process ran it."""
    import time

    time.sleep(seconds)
    return seconds, os.getpid()


def test_map_in_processes_runs_in_other_processes_and_keeps_the_order():
    waits = [0.4, 0.0, 0.2, 0.0]  # the first finishes last
    done = runtime.map_in_processes(_pid_after, waits, workers=2)
    assert [seconds for seconds, _ in done] == waits
    pids = {pid for _, pid in done}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


@pytest.mark.parametrize(("workers", "items"), [(1, [0.0, 0.0]), (4, [0.0])])
def test_map_in_processes_stays_in_this_process_for_one_worker_or_one_item(workers, items):
    done = runtime.map_in_processes(_pid_after, items, workers=workers)
    assert done == [(0.0, os.getpid())] * len(items)


def test_a_workers_error_reaches_the_caller():
    with pytest.raises(ValueError, match="sleep length must be non-negative"):
        runtime.map_in_processes(_pid_after, [0.0, -1.0], workers=2)
