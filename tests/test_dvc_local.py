"""tools.dvc_local: where reflinks fail, `dvc repro` links outputs into the cache, no copy;
DVC hashes new outputs on every core."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dsprior.runtime import machine_cores
from tools import dvc_local
from tools.scratch import run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    # the repository's own setting (.dvc/config)
    run(["dvc", "config", "cache.type", dvc_local.REFLINK_FIRST], tmp_path)
    return tmp_path


def local_type(repo: Path) -> str:
    return run(["dvc", "config", "--local", "cache.type"], repo, check=False).stdout.strip()


def test_the_cache_type_follows_what_the_filesystem_can_do(repo):
    chosen, changed = dvc_local.configure_cache_type(repo)
    if dvc_local.reflinks_work(repo / ".dvc" / "tmp"):
        assert (chosen, changed) == (dvc_local.REFLINK_FIRST, False)
        assert local_type(repo) == ""
    else:  # ext4 and the like: hardlinks first, for this clone only
        assert (chosen, changed) == (dvc_local.HARDLINK_FIRST, True)
        assert local_type(repo) == dvc_local.HARDLINK_FIRST
        # the repository's own .dvc/config (in git) is left as it was
        project = run(["dvc", "config", "--project", "cache.type"], repo).stdout.strip()
        assert project == dvc_local.REFLINK_FIRST
    # a second run changes nothing
    assert dvc_local.configure_cache_type(repo) == (chosen, False)


def test_a_cache_type_the_user_set_for_the_clone_is_kept(repo):
    run(["dvc", "config", "--local", "cache.type", "copy"], repo)
    assert dvc_local.configure_cache_type(repo) == ("copy", False)
    assert local_type(repo) == "copy"


def test_dvc_repro_links_an_output_into_the_cache_instead_of_copying_it(repo):
    """Through `dvc repro`: under hardlink,copy the output shares its inode with the cache
    (one copy on disk); under the repository's reflink-first type on a filesystem without
    reflinks, DVC copies it (two)."""
    # a folder of shards, as ingest writes the dataset
    write = "import os; os.makedirs('out'); [open(f'out/{i}.bin', 'wb').write(bytes([i]) * 4096) for i in range(3)]"
    (repo / "dvc.yaml").write_text(
        f'stages:\n  make:\n    cmd: python -c "{write}"\n    outs:\n      - out\n'
    )
    run(["dvc", "repro", "-q"], repo)
    copied = os.stat(repo / "out" / "0.bin").st_nlink
    chosen, _ = dvc_local.configure_cache_type(repo)
    shutil.rmtree(repo / ".dvc" / "cache")  # the output is new to the cache again
    run(["dvc", "repro", "-q", "-f"], repo)
    linked = os.stat(repo / "out" / "0.bin").st_nlink
    if chosen == dvc_local.HARDLINK_FIRST:
        assert (copied, linked) == (1, 2)
    else:
        assert linked == 1  # a reflink clone: its own inode


def local_jobs(repo: Path) -> str:
    return run(["dvc", "config", "--local", "core.checksum_jobs"], repo, check=False).stdout.strip()


@pytest.mark.parametrize(("cores", "jobs"), [(1, 1), (2, 2), (3, 3), (4, 4), (16, 4)])
def test_new_outputs_are_hashed_on_every_core_up_to_dvcs_cap(repo, cores, jobs):
    # DVC's default on the same machine: max(1, min(4, cores // 2)), one thread on 2 cores
    assert dvc_local.checksum_jobs(cores) == jobs >= max(1, min(4, cores // 2))
    assert dvc_local.configure_checksum_jobs(repo, cores) == (jobs, True)
    assert local_jobs(repo) == str(jobs)
    # the repository's own .dvc/config (in git) is left as it was
    project = run(["dvc", "config", "--project", "core.checksum_jobs"], repo, check=False)
    assert project.stdout.strip() == ""
    # a second run changes nothing
    assert dvc_local.configure_checksum_jobs(repo, cores + 1) == (jobs, False)


def test_hashing_threads_set_at_any_level_are_kept(repo):
    run(["dvc", "config", "--project", "core.checksum_jobs", "1"], repo)
    assert dvc_local.configure_checksum_jobs(repo, 2) == (1, False)
    assert local_jobs(repo) == ""


def test_dvc_hashes_with_the_threads_set(repo):
    """DVC itself reads the setting (`Repo.fs.hash_jobs`, what it hands its hashing pool)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as before:
        default = before.fs.hash_jobs
    dvc_local.configure_checksum_jobs(repo, 3)
    with Repo(str(repo)) as after:
        assert after.fs.hash_jobs == 3 != default


def test_the_command_sets_both_and_says_so(repo, capsys):
    dvc_local.main(["--repo", str(repo)])
    out = capsys.readouterr().out
    assert "DVC cache.type: " in out
    assert (
        f"DVC core.checksum_jobs: {dvc_local.checksum_jobs(machine_cores())} (.dvc/config.local)"
        in out
    )
    dvc_local.main(["--repo", str(repo)])
    assert "(.dvc/config.local)" not in capsys.readouterr().out  # nothing new to set
