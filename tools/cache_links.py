"""DVC's cache link type for this clone's filesystem, set in ``.dvc/config.local`` (``make setup``).

The repository's ``.dvc/config`` says ``cache.type: reflink,hardlink,copy``: on a filesystem
with reflinks (XFS, btrfs, APFS) outputs are copy-on-write clones of the cache, writable and
free. Where reflinks fail (ext4, as on our machines), ``dvc repro`` then *copies* each new
output into the cache, because DVC hardlinks an output into its cache only when hardlink
is the first type it is given (``dvc.output.Output.commit``): 18 GB and about half a
minute at the reference scale, and twice the disk until ``dvc checkout --relink``. There
this sets ``hardlink,copy`` for this clone only: outputs are linked into the cache as they
are committed, read-only as after a relink (the stages write new files, never into old
ones). A ``cache.type`` already in ``.dvc/config.local`` is left as it is.

Usage::

    python -m tools.cache_links [--repo .]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tools import scratch

REFLINK_FIRST = "reflink,hardlink,copy"  # the repository's .dvc/config
HARDLINK_FIRST = "hardlink,copy"


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


def _config(repo: Path, *args: str, check: bool = False) -> str:
    """``dvc config <args>`` in ``repo`` with this venv's DVC: what it prints."""
    return scratch.run(["dvc", "config", *args], repo, check=check).stdout.strip()


def configure(repo: Path) -> tuple[str, bool]:
    """The cache type this clone uses, and whether this call set it in ``.dvc/config.local``."""
    local = _config(repo, "--local", "cache.type")
    if local:
        return local, False
    if reflinks_work(repo / ".dvc" / "tmp"):  # the repository's own setting serves
        return _config(repo, "cache.type") or "DVC's default", False
    _config(repo, "--local", "cache.type", HARDLINK_FIRST, check=True)
    return HARDLINK_FIRST, True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    chosen, changed = configure(args.repo)
    where = ".dvc/config.local" if changed else "as configured"
    print(f"DVC cache.type: {chosen} ({where})")


if __name__ == "__main__":
    main()
