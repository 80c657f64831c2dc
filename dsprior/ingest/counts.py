"""What one ingest read, wrote and rejected, and the reconciliation metrics made of it.

What was read is counted by the reader from the files (``rawio.FileTally``), apart
from what was written or rejected, so a lost example shows as a difference
(``rawio.Reconciliation``, the counter scoring keeps too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsprior.ingest.config import IngestConfig
from dsprior.rawio import Reconciliation, Reject, RejectCounts, file_bytes, lost_message


@dataclass
class SourceCounts(Reconciliation):
    """Reconciliation counters of one source (kept: written), with its files and bytes."""

    files: int = 0
    bytes_read: int = 0

    def add_files(self, files: Sequence[tuple[Path, str]]) -> None:
        """The source's files (path, format), as ``list_source`` gives them: count and bytes."""
        self.files = len(files)
        self.bytes_read = sum(file_bytes(path, fmt) for path, fmt in files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes_read": self.bytes_read,
            "examples_read": self.examples_read,
            "examples_written": self.examples_kept,
            "examples_rejected": self.rejected.examples,
            "rows_read": self.rows_read,
            "rows_written": self.rows_kept,
            "rows_rejected": self.rejected.rows,
            "blank_lines": self.blank_lines,
            "files_rejected": self.rejected.files,
            "reconciled": self.reconciled,
            "rejected_by_reason": self.rejected.reasons(),
        }


@dataclass
class IngestResult:
    """What one ingest did; ``failure`` is the reject that stopped it in fail mode."""

    counts: dict[str, SourceCounts]
    dim: int | None
    failure: Reject | None = None
    written: int = 0  # examples written, all sources

    def count_written(self, count: SourceCounts, n_rows: int) -> None:
        """One example of ``n_rows`` rows written, of the source ``count`` counts."""
        count.keep(examples=1, rows=n_rows)
        self.written += 1

    def count_reject(
        self,
        count: SourceCounts,
        reject: Reject,
        *,
        on_reject: Callable[[Reject], None],
        stop: bool,
    ) -> bool:
        """One reject counted and handed to ``on_reject``; with ``stop`` (fail mode) it ends
        the run as its ``failure``. Whether the run stops."""
        count.rejected.add(reject)
        on_reject(reject)
        if stop:
            self.failure = reject
        return stop


def reconcile(result: IngestResult, config: IngestConfig) -> dict[str, Any]:
    """The metrics: read (counted from the files) = written + rejected, per source and reason.

    After a fail-mode stop only part of the input was read and nothing was written:
    ``examples_written`` is 0, ``examples_valid_before_stop`` says how many passed before
    the bad one, and ``reconciled`` is null (the reader stopped inside a file).
    """
    sources = {name: c.as_dict() for name, c in result.counts.items()}
    rejected = RejectCounts.combined(c.rejected for c in result.counts.values())
    keys = ("files", "bytes_read", "examples_read", "examples_written", "examples_rejected",
            "rows_read", "rows_written", "rows_rejected", "blank_lines", "files_rejected")  # fmt: skip
    total = {key: sum(s[key] for s in sources.values()) for key in keys}
    reconciled = all(c.reconciled for c in result.counts.values())
    failed = result.failure is not None
    if failed:
        total["examples_valid_before_stop"] = total["examples_written"]
        total["examples_written"] = total["rows_written"] = 0
        for s in sources.values():
            s["examples_written"] = s["rows_written"] = 0
            s["reconciled"] = None
    return {
        "status": "failed" if failed or result.written == 0 or not reconciled else "ok",
        "error": result.failure.message if result.failure is not None else None,
        "on_error": config.on_error,
        "dtype": config.dtype,
        "dim": result.dim,
        **total,
        "reconciled": None if failed else reconciled,
        "rejected_by_reason": rejected.reasons(),
        "sources": sources,
    }


def failure_message(result: IngestResult, metrics: dict[str, Any], rejects: Path) -> str:
    """Why an ingest that was not stopped by a reject failed (``reconcile``'s status)."""
    return (
        _not_reconciled(result) if not metrics["reconciled"] else _nothing_written(metrics, rejects)
    )


def _not_reconciled(result: IngestResult) -> str:
    """The message of an ingest whose counts do not add up (a bug: something was lost)."""
    return lost_message(
        "writing",
        (f"{name}: {c.account('wrote')}" for name, c in result.counts.items() if not c.reconciled),
    )


def _nothing_written(metrics: dict[str, Any], rejects: Path) -> str:
    """The message of an ingest that wrote nothing: every example was rejected."""
    reasons = ", ".join(f"{k}: {v}" for k, v in metrics["rejected_by_reason"].items()) or "none"
    return (
        f"no valid example in any source: {metrics['examples_read']} examples read, all "
        f"rejected, and {metrics['files_rejected']} files rejected whole (by reason: {reasons}); "
        f"see {rejects}"
    )
