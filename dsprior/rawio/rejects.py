"""Rejects: why an example (or a whole file) was not read, where, and how they are counted.

A ``Reject`` carries a reason code and a message naming file, line or row,
example_id and problem; ``RejectsFile`` writes them as JSON Lines; ``RejectCounts``
is the one way ingest and scoring count them. ``FileTally`` is what the reader
took from one file, counted apart from what it made of it, so that what was
read can be reconciled with what was written and rejected (``Reconciliation``,
the one counter ingest and scoring keep, and ``lost_message``, what they say when
it does not add up).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ON_ERROR = ("fail", "quarantine")  # stop at the first rejected example, or write it aside and go on

# Reason codes of rejected examples, in the order row-level checks are applied.
WRONG_COLUMNS = "wrong_columns"
NON_NUMERIC = "non_numeric"
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"
BAD_LABEL = "bad_label"
MISSING_ID = "missing_id"
MISSING_GROUP = "missing_group"
DUPLICATE_ID = "duplicate_id"
INCONSISTENT_LABEL = "inconsistent_label"
INCONSISTENT_GROUP = "inconsistent_group"
EMPTY_EXAMPLE = "empty_example"
DIM_MISMATCH = "dim_mismatch"
BAD_JSON = "bad_json"
UNREADABLE_FILE = "unreadable_file"
EMPTY_FILE = "empty_file"
REASONS = (
    WRONG_COLUMNS,
    NON_NUMERIC,
    NON_FINITE,
    OUT_OF_RANGE,
    BAD_LABEL,
    MISSING_ID,
    MISSING_GROUP,
    DUPLICATE_ID,
    INCONSISTENT_LABEL,
    INCONSISTENT_GROUP,
    EMPTY_EXAMPLE,
    DIM_MISMATCH,
    BAD_JSON,
    UNREADABLE_FILE,
    EMPTY_FILE,
)


class RawDataError(ValueError):
    """Raised by callers that stop at the first rejected example; carries the ``Reject``."""

    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.message)
        self.reject = reject


@dataclass
class Reject:
    """A rejected example (or unreadable file, then ``example_id`` may be None)."""

    source: str
    file: str
    position: int | None  # CSV/JSONL: 1-based line; Parquet: 0-based row index
    position_kind: str  # "line" or "row"
    example_id: str | None
    reason: str
    message: str
    n_rows: int = 0
    # Where the rejected example tried to claim its example_id (first row or line); None when
    # it never did. Parallel ingest uses it to redo cross-file duplicate checks in file order.
    claimed_at: int | None = None
    # "example": one example (its rows, if any, are n_rows); "file": a file rejected before or
    # after its examples (wrong header, empty, unreadable between examples), no example in it.
    scope: str = "example"

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            self.position_kind: self.position,
            "example_id": self.example_id,
            "reason": self.reason,
            "message": self.message,
            "n_rows": self.n_rows,
            "scope": self.scope,
        }


class RejectsFile:
    """JSON Lines of rejects, written beside the target and renamed into place on close."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._file = open(self._tmp, "w")

    def write(self, reject: Reject) -> None:
        self._file.write(json.dumps(reject.to_record(), sort_keys=True) + "\n")

    def close(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> RejectsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_reject(
    *,
    source: str,
    file: str,
    position_kind: str,
    example_id: str | None,
    reason: str,
    position: int | None,
    problem: str,
    n_rows: int = 0,
) -> Reject:
    """A ``Reject`` whose message names file, line or row, example_id and problem."""
    where = f"{file}, {position_kind} {position}" if position is not None else file
    who = f"example {example_id!r}" if example_id is not None else "example_id unknown"
    return Reject(
        source=source,
        file=file,
        position=position,
        position_kind=position_kind,
        example_id=example_id,
        reason=reason,
        message=f"{where}: {who}: {problem}",
        n_rows=n_rows,
    )


def duplicate_problem(first_file: str, first_source: str) -> str:
    """The problem text of an example_id first read from another file."""
    return f"duplicate example_id, already read from {first_file} (source {first_source!r})"


@dataclass
class FileTally:
    """What the reader took from one file, counted apart from what it made of it.

    ``rows``: data rows (CSV: records found by the byte scanner, header and blank lines
    excluded; Parquet: rows of the batches read; JSON Lines: the rows inside its
    examples). ``examples``: runs of consecutive rows sharing an example_id (JSON Lines:
    non-blank lines). The examples written plus the example rejects must add up to
    both, or something was lost. ``complete``: the file was read to its end.
    """

    source: str
    file: str
    rows: int = 0
    examples: int = 0
    blank_lines: int = 0
    items: int = 0
    complete: bool = False


@dataclass
class RejectCounts:
    """Rejects counted one way: examples and their rows apart from whole files, and by reason.

    A reject of a whole file (``scope == "file"``: a wrong header, an empty file, a file
    unreadable between examples) holds no example, so it counts in ``files`` only; any
    other reject is one example of ``n_rows`` rows. Every reject counts once by reason.
    """

    examples: int = 0
    rows: int = 0
    files: int = 0
    by_reason: Counter = field(default_factory=Counter)

    def add(self, reject: Reject) -> None:
        """Count one reject."""
        if reject.scope == "file":
            self.files += 1
        else:
            self.examples += 1
            self.rows += reject.n_rows
        self.by_reason[reject.reason] += 1

    @classmethod
    def combined(cls, counts: Iterable[RejectCounts]) -> RejectCounts:
        """The sum of several counts (of several sources)."""
        total = cls()
        for count in counts:
            total.examples += count.examples
            total.rows += count.rows
            total.files += count.files
            total.by_reason.update(count.by_reason)
        return total

    def reasons(self) -> dict[str, int]:
        """Rejects by reason, sorted by reason: as the metrics and summaries write them."""
        return dict(sorted(self.by_reason.items()))


@dataclass
class Reconciliation:
    """What a reader read from the files against what came of it: read = kept + rejected.

    What was read (``examples_read``, ``rows_read``) is counted by the reader from the
    files (``FileTally``), apart from what was kept (ingest: written; scoring: scored)
    or rejected, so a lost example shows as a difference. Rejects of a whole file
    count in ``rejected.files``: they hold no example.
    """

    examples_read: int = 0
    rows_read: int = 0
    blank_lines: int = 0
    examples_kept: int = 0
    rows_kept: int = 0
    rejected: RejectCounts = field(default_factory=RejectCounts)

    def add_tally(self, tally: FileTally) -> None:
        """What the reader counted in one file."""
        self.examples_read += tally.examples
        self.rows_read += tally.rows
        self.blank_lines += tally.blank_lines

    def keep(self, *, examples: int, rows: int) -> None:
        """``examples`` examples of ``rows`` rows in all passed on (written or scored)."""
        self.examples_kept += examples
        self.rows_kept += rows

    @property
    def reconciled(self) -> bool:
        return (
            self.examples_read == self.examples_kept + self.rejected.examples
            and self.rows_read == self.rows_kept + self.rejected.rows
        )

    def account(self, kept_as: str) -> str:
        """The counts as one clause: ``read ... examples / ... rows, <kept_as> ... / ...,
        rejected ... / ...``, for the message of a run that lost examples."""
        return (
            f"read {self.examples_read} examples / {self.rows_read} rows, {kept_as} "
            f"{self.examples_kept} / {self.rows_kept}, rejected {self.rejected.examples} / "
            f"{self.rejected.rows}"
        )


def lost_message(step: str, accounts: Iterable[str]) -> str:
    """Why a run whose counts do not add up fails: examples were lost (a bug) between
    reading and ``step`` ("writing", "scoring"); ``accounts`` from ``Reconciliation.account``."""
    return f"examples were lost between reading and {step} (please report this bug): " + "; ".join(
        accounts
    )
