"""tools.cache_links: where reflinks fail, `dvc repro` links outputs into the cache, no copy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tools import cache_links
from tools.scratch import run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    # the repository's own setting (.dvc/config)
    run(["dvc", "config", "cache.type", cache_links.REFLINK_FIRST], tmp_path)
    return tmp_path


def local_type(repo: Path) -> str:
    return run(["dvc", "config", "--local", "cache.type"], repo, check=False).stdout.strip()


def test_the_cache_type_follows_what_the_filesystem_can_do(repo):
    chosen, changed = cache_links.configure(repo)
    if cache_links.reflinks_work(repo / ".dvc" / "tmp"):
        assert (chosen, changed) == (cache_links.REFLINK_FIRST, False)
        assert local_type(repo) == ""
    else:  # ext4 and the like: hardlinks first, for this clone only
        assert (chosen, changed) == (cache_links.HARDLINK_FIRST, True)
        assert local_type(repo) == cache_links.HARDLINK_FIRST
        # the repository's own .dvc/config (in git) is left as it was
        project = run(["dvc", "config", "--project", "cache.type"], repo).stdout.strip()
        assert project == cache_links.REFLINK_FIRST
    # a second run changes nothing
    assert cache_links.configure(repo) == (chosen, False)


def test_a_cache_type_the_user_set_for_the_clone_is_kept(repo):
    run(["dvc", "config", "--local", "cache.type", "copy"], repo)
    assert cache_links.configure(repo) == ("copy", False)
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
    chosen, _ = cache_links.configure(repo)
    shutil.rmtree(repo / ".dvc" / "cache")  # the output is new to the cache again
    run(["dvc", "repro", "-q", "-f"], repo)
    linked = os.stat(repo / "out" / "0.bin").st_nlink
    if chosen == cache_links.HARDLINK_FIRST:
        assert (copied, linked) == (1, 2)
    else:
        assert linked == 1  # a reflink clone: its own inode
