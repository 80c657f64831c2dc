"""Push to a DVC remote everything a teammate needs, including the run-cache's outputs.

``dvc push --run-cache`` (DVC 3.67) sends the outputs in ``dvc.lock`` and the run-cache's
*records*, but not the outputs those records point to: neither an earlier run's model and
predictions, nor the metrics and plots that git holds for the current run (DVC copies those
into the cache for the run-cache, and ``dvc push`` skips them as ``cache: false``). A
teammate who sets a param to a value someone already ran finds the record, misses its
outputs and reruns the stage. This module does the same push, then sends the outputs that
local run-cache records point to, each one only if the local cache holds all of it (a
folder's listing never goes without its files). Records fetched from a teammate may point to
outputs this clone never had: those are skipped and counted, not an error. ``dvc repro
--pull`` on the other side fetches the records and, per stage, the matched run's outputs.

    python -m tools.team push [-r REMOTE] [-j JOBS]     # what `make push` runs
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dsprior import runtime


@dataclass(frozen=True)
class PushSummary:
    """One push: what ``dvc push`` sent, then what the run records point to."""

    files: int  # outputs of the current dvc.lock (``dvc push``)
    run_records: int  # run-cache records sent
    run_files: int  # files the records point to, sent now (not already on the remote)
    outputs_skipped: int  # record outputs the local cache lacks (in whole or in part)
    failed: int


def run_cache_entries(runs_dir: Path) -> Iterator[tuple[str, str]]:
    """(key, value) of every record in a local run-cache folder (``<cache>/runs/xx/key/value``)."""
    if not runs_dir.is_dir():
        return
    for record in sorted(runs_dir.glob("*/*/*")):
        if record.is_file() and not record.name.startswith("."):
            yield record.parent.name, record.name


class _Dvc:
    """Every use of DVC's internals, in one place: DVC 3.67 has no public API for these.

    A DVC upgrade that moves one of them breaks only this class; tests/test_team_push.py
    and tests/test_team.py exercise each line against the real DVC.
    """

    def __init__(self, repo: Any) -> None:
        self.repo = repo  # dvc.repo.Repo, opened and locked by push()

    def push_run_records(self, remote: str | None) -> int:
        # StageCache.push: what `dvc push --run-cache` adds, the records only
        return len(self.repo.stage_cache.push(remote))  # RunCacheNotSupported on HTTP

    def push_lock_outputs(self, remote: str | None, jobs: int | None) -> int:
        return self.repo.push(remote=remote, jobs=jobs)  # Repo.push: `dvc push` itself

    def runs_dir(self) -> Path:
        return Path(self.repo.stage_cache.cache_dir)  # StageCache.cache_dir: <cache>/runs

    def cache_for(self, hash_name: str) -> Any:
        from dvc.cachemgr import LEGACY_HASH_NAMES  # DVC 2's md5 names, kept apart

        # CacheManager.legacy / .local: the object stores of DVC 2 and DVC 3 hashes
        return self.repo.cache.legacy if hash_name in LEGACY_HASH_NAMES else self.repo.cache.local

    @staticmethod
    def folder_files(cache: Any, hash_info: Any, hash_name: str) -> set | None:
        """The objects a folder's listing names; None when the listing is corrupt."""
        from dvc_data.hashfile.tree import Tree  # a .dir listing
        from dvc_objects.errors import ObjectFormatError

        try:
            return {oid for _, _, oid in Tree.load(cache, hash_info, hash_name=hash_name)}
        except ObjectFormatError:
            return None

    def push_objects(self, objects: set, remote: str | None, jobs: int | None) -> tuple[int, int]:
        """(transferred, failed) for a set of cache objects sent to the remote."""
        result = self.repo.cloud.push(objects, jobs=jobs, remote=remote)  # DataCloud.push
        return len(result.transferred), len(result.failed)


def held_objects(dvc: _Dvc, record: dict[str, Any]) -> tuple[set, int]:
    """(objects of the record's outputs that the local cache holds in full, outputs skipped).

    A folder counts only if its listing and every file in it are here; otherwise none of it
    is sent, so the remote never gets a listing whose files are missing.
    """
    from dvc_data.hashfile.hash_info import HashInfo  # a (hash name, value) pair

    objects: set = set()
    skipped = 0
    for out in record.get("outs", []):
        # dvc.lock's format: `hash: md5` marks DVC 3 hashes; without it, DVC 2's md5
        name = out.get("hash", "md5-dos2unix")
        value = out.get("md5")
        if not value:
            continue
        cache = dvc.cache_for(name)
        hash_info = HashInfo(name, value)
        if not cache.exists(value):
            skipped += 1
            continue
        if not hash_info.isdir:
            objects.add(hash_info)
            continue
        files = dvc.folder_files(cache, hash_info, name)
        if files is not None and all(cache.exists(oid.value) for oid in files):
            objects |= files | {hash_info}
        else:
            skipped += 1
    return objects, skipped


def push(
    repo_root: str | Path = ".", remote: str | None = None, jobs: int | None = None
) -> PushSummary:
    """``dvc push --run-cache``, then the outputs the local run-cache records point to."""
    from dvc.repo import Repo, lock_repo

    with Repo(os.fspath(repo_root)) as repo, lock_repo(repo):
        dvc = _Dvc(repo)
        records = dvc.push_run_records(remote)
        files = dvc.push_lock_outputs(remote, jobs)
        objects: set = set()
        skipped = 0
        runs_dir = dvc.runs_dir()
        for key, value in run_cache_entries(runs_dir):
            record = yaml.safe_load((runs_dir / key[:2] / key / value).read_text()) or {}
            held, missing = held_objects(dvc, record)
            objects |= held
            skipped += missing
        sent, failed = dvc.push_objects(objects, remote, jobs) if objects else (0, 0)
    return PushSummary(
        files=files,
        run_records=records,
        run_files=sent,
        outputs_skipped=skipped,
        failed=failed,
    )


def main(argv: list[str] | None = None) -> None:
    from dvc.exceptions import DvcException

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    push_cmd = commands.add_parser("push", help="push outputs, run records and their outputs")
    push_cmd.add_argument(
        "-r", "--remote", default=None, help="a named remote (default: core.remote)"
    )
    push_cmd.add_argument("-j", "--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        summary = push(remote=args.remote, jobs=args.jobs)
    except DvcException as exc:
        raise SystemExit(f"ERROR: {exc}") from exc
    print(
        f"dvc push --run-cache: {summary.files} file(s) and {summary.run_records} run "
        f"record(s) sent; then {summary.run_files} more file(s) the records point to"
    )
    if summary.outputs_skipped:
        print(
            f"skipped {summary.outputs_skipped} output(s) of run records that this clone's "
            "cache lacks (records fetched from a teammate, or removed by dvc gc)"
        )
    if summary.failed:
        raise SystemExit(f"ERROR: failed to push {summary.failed} file(s)")


if __name__ == "__main__":
    runtime.run_main(main)
