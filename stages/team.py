"""Push to a DVC remote everything a teammate needs, including the run-cache's outputs.

``dvc push --run-cache`` (DVC 3.67) sends the outputs in ``dvc.lock`` and the run-cache's
*records*, but not the outputs those records point to: neither an earlier run's model and
predictions, nor the metrics and plots that git holds for the current run (DVC copies those
into the cache for the run-cache, and ``dvc push`` skips them as ``cache: false``). A
teammate who sets a param to a value someone already ran finds the record, misses its
outputs and reruns the stage. This module does the same push, then sends every object that
a local run-cache record points to and the local cache holds. ``dvc repro --pull`` on the
other side fetches the records and, per stage, the matched run's outputs.

    python -m stages.team push [-r REMOTE] [-j JOBS]     # what `make push` runs
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PushSummary:
    """Counts of one push: workspace outputs, run records, and run-cache objects."""

    workspace_files: int
    run_records: int
    run_objects: int
    run_objects_failed: int


def run_cache_entries(runs_dir: Path) -> Iterator[tuple[str, str]]:
    """(key, value) of every record in a local run-cache folder (``<cache>/runs/xx/key/value``)."""
    if not runs_dir.is_dir():
        return
    for record in sorted(runs_dir.glob("*/*/*")):
        if record.is_file() and not record.name.startswith("."):
            yield record.parent.name, record.name


def push(
    repo_root: str | Path = ".", remote: str | None = None, jobs: int | None = None
) -> PushSummary:
    """``dvc push --run-cache``, then the objects the local run-cache records refer to."""
    from dvc.repo import Repo

    with Repo(os.fspath(repo_root)) as repo:
        workspace = repo.push(remote=remote, jobs=jobs, run_cache=True)
        entries = list(run_cache_entries(Path(repo.stage_cache.cache_dir)))
        used = repo.stage_cache.get_used_objs(entries, remote=remote, jobs=jobs)
        sent = failed = 0
        for odb, objs in used.items():
            # Only what this clone holds: records fetched from the remote point to objects
            # that are already there, or were never pushed by whoever ran them.
            held = {obj for obj in objs if _held(repo, obj)}
            if not held:
                continue
            result = repo.cloud.push(held, jobs=jobs, remote=remote, odb=odb)
            sent += len(result.transferred)
            failed += len(result.failed)
    return PushSummary(workspace, len(entries), sent, failed)


def _held(repo, hash_info) -> bool:
    """Whether the local cache has the object (a file, or a directory's listing)."""
    cache = repo.cache.legacy if hash_info.name == "md5-dos2unix" else repo.cache.local
    return cache.exists(hash_info.value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    push_cmd = commands.add_parser("push", help="push outputs, run records and their outputs")
    push_cmd.add_argument(
        "-r", "--remote", default=None, help="a named remote (default: core.remote)"
    )
    push_cmd.add_argument("-j", "--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    summary = push(remote=args.remote, jobs=args.jobs)
    print(
        f"dvc push --run-cache: {summary.workspace_files} file(s), {summary.run_records} run "
        f"record(s) sent; then {summary.run_objects} more file(s) the records point to"
    )
    if summary.run_objects_failed:
        raise SystemExit(f"failed to push {summary.run_objects_failed} run-cache object(s)")


if __name__ == "__main__":
    main()
