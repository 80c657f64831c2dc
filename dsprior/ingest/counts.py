"""What one ingest read, wrote and rejected, and the reconciliation metrics made of it.

What was read is counted by the reader from the files (``rawio.FileTally``), apart
from what was written or rejected, so a lost example shows as a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsprior.ingest.config import IngestConfig
from dsprior.rawio import FileTally, Reject, RejectCounts, file_bytes


@dataclass
class SourceCounts:
    """Reconciliation counters of one source.

    What was read (``examples_read``, ``rows_read``) is counted by the reader from the
    files (``rawio.FileTally``), apart from what was written or rejected, so a lost
    example shows as a difference. Rejects of a whole file (wrong header, empty,
    unreadable between examples) count in ``rejected.files``: they hold no example.
    """

    files: int = 0
    bytes_read: int = 0
    examples_read: int = 0
    rows_read: int = 0
    blank_lines: int = 0
    examples_written: int = 0
    rows_written: int = 0
    rejected: RejectCounts = field(default_factory=RejectCounts)

    def add_files(self, files: Sequence[tuple[Path, str]]) -> None:
        """The source's files (path, format), as ``list_source`` gives them: count and bytes."""
        self.files = len(files)
        self.bytes_read = sum(file_bytes(path, fmt) for path, fmt in files)

    def add_tally(self, tally: FileTally) -> None:
        self.examples_read += tally.examples
        self.rows_read += tally.rows
        self.blank_lines += tally.blank_lines

    @property
    def reconciled(self) -> bool:
        return (
            self.examples_read == self.examples_written + self.rejected.examples
            and self.rows_read == self.rows_written + self.rejected.rows
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes_read": self.bytes_read,
            "examples_read": self.examples_read,
            "examples_written": self.examples_written,
            "examples_rejected": self.rejected.examples,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
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
        count.examples_written += 1
        count.rows_written += n_rows
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
        "error": result.failure.message if failed else None,
        "on_error": config.on_error,
        "dtype": config.dtype,
        "dim": result.dim,
        **total,
        "reconciled": None if failed else reconciled,
        "rejected_by_reason": rejected.reasons(),
        "sources": sources,
    }


def failure_message(metrics: dict[str, Any], rejects: Path) -> str:
    """Why an ingest that was not stopped by a reject failed (``reconcile``'s status)."""
    return (
        _not_reconciled(metrics)
        if not metrics["reconciled"]
        else _nothing_written(metrics, rejects)
    )


def _not_reconciled(metrics: dict[str, Any]) -> str:
    """The message of an ingest whose counts do not add up (a bug: something was lost)."""
    parts = [
        f"{name}: read {s['examples_read']} examples / {s['rows_read']} rows, wrote "
        f"{s['examples_written']} / {s['rows_written']}, rejected {s['examples_rejected']} / "
        f"{s['rows_rejected']}"
        for name, s in metrics["sources"].items()
        if not s["reconciled"]
    ]
    return "examples were lost between reading and writing (please report this bug): " + (
        "; ".join(parts)
    )


def _nothing_written(metrics: dict[str, Any], rejects: Path) -> str:
    """The message of an ingest that wrote nothing: every example was rejected."""
    reasons = ", ".join(f"{k}: {v}" for k, v in metrics["rejected_by_reason"].items()) or "none"
    return (
        f"no valid example in any source: {metrics['examples_read']} examples read, all "
        f"rejected, and {metrics['files_rejected']} files rejected whole (by reason: {reasons}); "
        f"see {rejects}"
    )
