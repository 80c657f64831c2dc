"""The monitoring history: one JSON Lines record per scored batch, appended by ``score``.

A record is the batch's ``score --summary`` reduced to what a team follows over time
(``record_from_summary``): the estimated prior and its interval, the label-free
precision, recall, alerts per 1,000 and expected cost at the bundle's threshold with
their intervals (and the same on the true labels where the bundle holds noise rates:
every ``estimated_prior*`` / ``estimated_at_threshold*`` key of the summary is kept,
``label_noise`` as it is), the drift tests, the bundle's identity, the input's
fingerprint, and the measured values where the batch had labels. docs/production.md,
"The history's format", lists every field; ``SCHEMA_VERSION`` changes when one does.

Writers append under an exclusive ``flock`` on the history file, with one ``write`` of
the whole line and an ``fsync``, so two scoring runs that finish at once never tear or
lose a row. A batch is recorded once: a record with the same bundle and either the same
batch name or the same input fingerprint is a duplicate (``DUPLICATE_MODES`` says what
happens to it). Readers take a shared lock and skip, with a warning, a line a crashed
writer left unfinished. Memory and time are linear in the history's length (a year of
daily batches is 365 short lines).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dsprior import runtime

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# What a duplicate record does: skip it (the default), replace the earlier one in place, or
# append it anyway.
DUPLICATE_MODES = ("skip", "replace", "append")
ESTIMATES = ("precision", "recall", "alerts_per_1000", "expected_cost")
DRIFT = ("prior_shift", "score_shift_ks", "p_value")


def utc_now() -> str:
    """The time, UTC, to the second, as the history writes it (``2026-12-06T23:59:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_batch_name(input_path: str | Path, scored_at: str) -> str:
    """The input's name and the scoring time: ``batch.csv@2026-12-06T23:59:00Z``."""
    return f"{Path(input_path).name}@{scored_at}"


def input_fingerprint(path: str | Path) -> str:
    """BLAKE2b of the input's bytes: one file, or every file under a folder (names relative
    to it, sorted), so that the same data scored twice is known whatever the batch's name."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.blake2b(digest_size=20)
    for file in files:
        name = file.relative_to(path).as_posix() if path.is_dir() else ""
        with open(file, "rb") as f:
            content = hashlib.file_digest(f, "blake2b").hexdigest()
        digest.update(f"{name}\0{file.stat().st_size}\0{content}\n".encode())
    return "blake2b:" + digest.hexdigest()


def _pair(node: Any) -> dict[str, Any] | None:
    """``{value, ci}`` of a summary estimate (``ci`` [low, high], either null where refused)."""
    if not isinstance(node, dict):
        return None
    ci = node.get("ci") or [None, None]
    pair = {"value": node.get("value"), "ci": [ci[0], ci[1]]}
    if node.get("interval_refused"):
        pair["interval_refused"] = node["interval_refused"]
    return pair


def _prior(node: Any) -> dict[str, Any] | None:
    pair = _pair(node)
    if pair is not None:
        pair["method"] = node.get("method")
        implied = (node.get("cross_check") or {}).get("distant_prior_implied")
        if implied is not None:  # the true-prior estimate's distant prior (the monitor's rules)
            pair["cross_check"] = {"distant_prior_implied": _pair(implied)}
    return pair


def _at_threshold(node: Any) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        return None
    out = {name: _pair(node.get(name)) for name in ESTIMATES}
    if isinstance(node.get("distant_labels"), dict):  # the true-shift estimate's
        out["distant_labels"] = {k: _pair(v) for k, v in node["distant_labels"].items()}
    return out


def _numbers(node: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a ``measured`` block (prior, precision, ..., labelled_examples; the
    same on gold labels where a summary has them), without its text and sub-blocks."""
    return {
        k: v
        for k, v in node.items()
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool))
    }


def record_from_summary(
    summary: dict[str, Any],
    *,
    batch: str,
    scored_at: str,
    input_path: str | Path,
    fingerprint: str,
) -> dict[str, Any]:
    """One history record from a ``score --summary`` dict (see the module docstring).

    Read generically: every ``estimated_prior*`` and ``estimated_at_threshold*`` key the
    summary has is kept in the same reduced shape (``estimated_prior_true`` where the
    bundle holds gold-label noise rates), and ``label_noise`` as it is.
    """
    at_threshold = summary.get("estimated_at_threshold") or {}
    bundle = summary.get("bundle") or {}
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "batch": batch,
        "scored_at": scored_at,
        "input": {"path": str(input_path), "fingerprint": fingerprint},
        "examples": summary.get("examples"),
        "bundle": {
            "content_hash": bundle.get("content_hash"),
            "path": bundle.get("path"),
            "format_version": bundle.get("format_version"),
        },
        "bundle_prior": summary.get("bundle_prior"),
        "threshold": at_threshold.get("threshold"),
    }
    for key, value in summary.items():
        if key.startswith("estimated_prior"):
            record[key] = _prior(value)
        elif key.startswith("estimated_at_threshold"):
            record[key] = _at_threshold(value)
    if "label_noise" in summary:
        record["label_noise"] = summary["label_noise"]
    drift = summary.get("drift") or {}
    record["drift"] = {name: drift.get(name) for name in DRIFT}
    record["adapt_prior_applied"] = bool((summary.get("adapt_prior") or {}).get("applied"))
    measured = summary.get("measured")
    record["measured"] = None if measured is None else _numbers(measured)
    record["warnings"] = list(summary.get("warnings") or [])
    return runtime.finite_or_none(record)


def is_duplicate(row: dict[str, Any], record: dict[str, Any]) -> bool:
    """The same bundle, and the same batch name or the same input bytes."""
    if (row.get("bundle") or {}).get("content_hash") != record["bundle"]["content_hash"]:
        return False
    same_input = (row.get("input") or {}).get("fingerprint") == record["input"]["fingerprint"]
    return row.get("batch") == record["batch"] or same_input


def _line(record: dict[str, Any]) -> bytes:
    # json.dumps escapes every newline inside strings: one record is one line
    text = json.dumps(runtime.finite_or_none(record), allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode()


def _parse(data: bytes, path: Path) -> list[tuple[bytes, dict[str, Any] | None]]:
    """Each line's bytes and its record (None where it is not one: a torn or foreign line)."""
    rows: list[tuple[bytes, dict[str, Any] | None]] = []
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            logger.warning("%s line %d is not a history record; skipped", path, number)
            row = None
        rows.append((raw, row))
    return rows


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[int]:
    """The history's descriptor under ``flock(mode)``, opened for appending (created if absent).

    A writer that replaces the file swaps its inode; whoever waited on the old one would
    append to a file nobody reads, so the lock is retaken until it holds the current file.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, mode)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                yield fd
                return
        finally:
            os.close(fd)  # closing releases the lock


def _replace(path: Path, lines: list[bytes]) -> None:
    """The history rewritten with ``lines``, renamed into place (under the caller's lock)."""
    with runtime.atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(b"".join(lines))
        f.flush()
        os.fsync(f.fileno())


def append_record(
    path: str | Path, record: dict[str, Any], *, duplicate: str = "skip"
) -> tuple[str, dict[str, Any] | None]:
    """Add ``record`` to the history at ``path`` (created with its folder if absent).

    Returns what was done (``appended``, ``replaced`` or ``skipped``) and the earlier
    record it duplicates (None if none). ``duplicate``: ``skip`` leaves the history as it
    is, ``replace`` puts the record in the first duplicate's place and drops the others,
    ``append`` records it again.
    """
    if duplicate not in DUPLICATE_MODES:
        raise ValueError(f"duplicate must be one of {list(DUPLICATE_MODES)}, got {duplicate!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = _line(record)
    with _locked(path, fcntl.LOCK_EX) as fd:
        existing = _read_all(fd)
        rows = _parse(existing, path)
        dupes = [i for i, (_, row) in enumerate(rows) if row and is_duplicate(row, record)]
        earlier = rows[dupes[0]][1] if dupes else None
        if dupes and duplicate == "skip":
            return "skipped", earlier
        if dupes and duplicate == "replace":
            kept = [line if i == dupes[0] else raw for i, (raw, _) in enumerate(rows)]
            kept = [raw if raw.endswith(b"\n") else raw + b"\n" for raw in kept]
            _replace(path, [raw for i, raw in enumerate(kept) if i not in dupes[1:]])
            return "replaced", earlier
        # a line a crashed writer left unfinished stays on its own line, skipped by readers
        prefix = b"\n" if existing and not existing.endswith(b"\n") else b""
        _write_all(fd, prefix + line)
        os.fsync(fd)
        return "appended", earlier


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The history's records in the order they were written; ValueError for a record of a
    newer schema than this code reads. An empty or absent file is an empty history."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        data = f.read()
    rows = [row for _, row in _parse(data, path) if row is not None]
    for number, row in enumerate(rows, start=1):
        version = row.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(
                f"{path}: record {number} has schema_version {version!r}; this code reads "
                f"1 to {SCHEMA_VERSION}"
            )
    return rows


def batch_labels(rows: list[dict[str, Any]]) -> list[str]:
    """Each record's batch name, made unique (``name #2`` for a second record of it, as the
    same batch scored by another bundle or appended again), for plots and reports."""
    seen: dict[str, int] = {}
    labels = []
    for row in rows:
        name = str(row.get("batch"))
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return labels


def record_batch(
    history: str | Path,
    summary: dict[str, Any],
    *,
    input_path: str | Path,
    batch: str | None = None,
    duplicate: str = "skip",
) -> tuple[str, dict[str, Any]]:
    """Append a scored batch's summary to ``history`` (what ``score --history`` does).

    ``batch`` defaults to the input's name and the time. Returns what was done
    (``append_record``) and the record; a skipped duplicate is logged with the earlier batch.
    """
    scored_at = utc_now()
    record = record_from_summary(
        summary,
        batch=batch or default_batch_name(input_path, scored_at),
        scored_at=scored_at,
        input_path=input_path,
        fingerprint=input_fingerprint(input_path),
    )
    done, earlier = append_record(history, record, duplicate=duplicate)
    if done == "skipped":
        logger.warning(
            "%s already records this batch (batch %r, same bundle and %s): not appended; "
            "--history-duplicate replace or append to record it again",
            history,
            earlier.get("batch") if earlier else None,
            "same name" if earlier and earlier.get("batch") == record["batch"] else "same input",
        )
    else:
        logger.info("%s: batch %r %s", history, record["batch"], done)
    return done, record
