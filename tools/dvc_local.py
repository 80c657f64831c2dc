"""DVC settings for this clone's disk and CPU, set in ``.dvc/config.local`` (``make setup``).

Two settings depend on the machine, not on the project, so they belong to the clone:

- ``cache.type``. The repository's ``.dvc/config`` says ``reflink,hardlink,copy``: on a
  filesystem with reflinks (XFS, btrfs, APFS) outputs are copy-on-write clones of the cache,
  writable and free. Where reflinks fail (ext4, as on our machines), ``dvc repro`` then
  *copies* each new output into the cache, because DVC hardlinks an output into its cache
  only when hardlink is the first type it is given (``dvc.output.Output.commit``): 18 GB and
  about half a minute at the reference scale, and twice the disk until ``dvc checkout
  --relink``. There this sets ``hardlink,copy``: outputs are linked into the cache as they are
  committed, read-only as after a relink (the stages write new files, never into old ones).
- ``core.checksum_jobs``. DVC hashes a new output's files with ``max(1, min(4, cores // 2))``
  threads (``dvc_objects.fs.base.FileSystem.HASH_JOBS``): one on a 2-core machine, where
  hashing the reference dataset's 18 GB after ingest then takes about 25 s on one core while
  the other idles (md5 releases the GIL, so threads hash files side by side). This sets
  ``min(cores, 4)``: every core while DVC hashes (it hashes after a stage's command has
  ended, when nothing else runs), and never more than DVC's own cap of 4.

A setting already in ``.dvc/config.local`` is left as it is; so is a ``core.checksum_jobs``
set at any level (your global or system config included).

Usage::

    python -m tools.dvc_local [--repo .]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from dsprior.runtime import machine_cores
from tools import scratch

REFLINK_FIRST = "reflink,hardlink,copy"  # the repository's .dvc/config
HARDLINK_FIRST = "hardlink,copy"
MAX_CHECKSUM_JOBS = 4  # DVC's own cap on its default


def reflinks_work(directory: Path) -> bool:
    """Whether a file in ``directory`` can be cloned by reflink (DVC's own call)."""
    from dvc_objects.fs.system import reflink

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        source = Path(tmp, "source")
        source.write_bytes(b"reflink probe\n")
        try:
            reflink(str(source), str(Path(tmp, "clone")))
        except OSError:
            return False
    return True


def checksum_jobs(cores: int) -> int:
    """Threads to hash with on ``cores`` cores: all of them, at most DVC's cap."""
    return max(1, min(cores, MAX_CHECKSUM_JOBS))


def _config(repo: Path, *args: str, check: bool = False) -> str:
    """``dvc config <args>`` in ``repo`` with this venv's DVC: what it prints."""
    return scratch.run(["dvc", "config", *args], repo, check=check).stdout.strip()


def configure_cache_type(repo: Path) -> tuple[str, bool]:
    """The cache type this clone uses, and whether this call set it in ``.dvc/config.local``."""
    local = _config(repo, "--local", "cache.type")
    if local:
        return local, False
    if reflinks_work(repo / ".dvc" / "tmp"):  # the repository's own setting serves
        return _config(repo, "cache.type") or "DVC's default", False
    _config(repo, "--local", "cache.type", HARDLINK_FIRST, check=True)
    return HARDLINK_FIRST, True


def configure_checksum_jobs(repo: Path, cores: int | None = None) -> tuple[int, bool]:
    """The hashing threads this clone uses, and whether this call set them in
    ``.dvc/config.local`` (``cores``: this machine's, by default)."""
    configured = _config(repo, "core.checksum_jobs")  # any level: yours wins
    if configured:
        return int(configured), False
    jobs = checksum_jobs(machine_cores() if cores is None else cores)
    _config(repo, "--local", "core.checksum_jobs", str(jobs), check=True)
    return jobs, True


def configure(repo: Path) -> dict[str, tuple[str, bool]]:
    """Both settings: ``{key: (value, set by this call)}``."""
    cache_type = configure_cache_type(repo)
    jobs, changed = configure_checksum_jobs(repo)
    return {"cache.type": cache_type, "core.checksum_jobs": (str(jobs), changed)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    for key, (value, changed) in configure(args.repo).items():
        print(f"DVC {key}: {value} ({'.dvc/config.local' if changed else 'as configured'})")


if __name__ == "__main__":
    main()
