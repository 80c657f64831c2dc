"""The reader core: raw rows grouped into validated examples, one file after another.

``RawReader`` calls the format reader of each file (``csv``, ``parquet``, ``jsonl``,
or one passed in ``formats``, as ``rawio.simulated`` does), which yields validated
``Chunk`` objects of long-layout rows, or rejects of the whole file. The core
groups consecutive rows of one example_id into an ``Example``, or a ``Reject`` at
the first problem of any of its rows; it tracks the feature dimension and the
example_ids already read, across files and sources, and tallies each file.

A format reader is a function ``read(reader, spec, path, state)`` yielding chunks
(a ``Whole`` chunk is one complete example) and rejects: it may fix the dimension
with ``reader.check_dim``, claim an example_id with ``reader.start_example``,
validate rows with ``validation.validate_rows`` and reject with ``state.reject``.
"""

from __future__ import annotations

import csv
import logging
import zlib
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dsprior.contract import EXAMPLE_ID, GROUP, LABEL
from dsprior.rawio.csv import read_csv
from dsprior.rawio.csvrecords import UnclosedRecordError
from dsprior.rawio.jsonl import read_jsonl
from dsprior.rawio.parquet import read_parquet
from dsprior.rawio.rejects import (
    DUPLICATE_ID,
    EMPTY_EXAMPLE,
    EMPTY_FILE,
    INCONSISTENT_GROUP,
    INCONSISTENT_LABEL,
    UNREADABLE_FILE,
    FileTally,
    Reject,
    duplicate_problem,
    make_reject,
)
from dsprior.rawio.sources import REQUIRED_ROLES, SIMULATED, SourceSpec, file_bytes, list_files
from dsprior.rawio.validation import ROW_CODES, Chunk, Whole, is_none

log = logging.getLogger(__name__)

# The readers of the file formats, by name: read(reader, spec, path, state) yields chunks.
READERS = {"csv": read_csv, "parquet": read_parquet, "jsonl": read_jsonl}


@dataclass
class Example:
    """A validated example: ``rows`` is a ``(n_rows, dim)`` array in file order.

    float64, or float32 where the file's features are float32 (the same numbers).
    """

    source: str
    example_id: str
    group: str | None  # None only when read without requiring groups (scoring)
    label: int | None  # None only when read without requiring labels (scoring)
    true_label: int | None
    rows: np.ndarray
    file: str
    position: int

    @property
    def n_rows(self) -> int:
        return int(self.rows.shape[0])


@dataclass
class _Pending:
    """The example being assembled from consecutive rows."""

    example_id: str | None
    group: str | None
    label: int | None
    true_label: int | None
    position: int
    parts: list[np.ndarray] = field(default_factory=list)
    n_rows: int = 0
    error: tuple[str, int | None, str] | None = None  # (reason, position, problem)


@dataclass
class FileState:
    """What the core and the format reader know of the file being read."""

    spec: SourceSpec
    file: str
    file_index: int
    kind: str
    tally: FileTally | None = None
    examples: int = 0
    pending: _Pending | None = None
    rows: int = 0
    last_position: int | None = None
    first_position: int | None = None
    blank_lines: int = 0
    dim_ok: bool = True
    file_dim: int | None = None
    feature_names: list[str] | None = None

    def reject(
        self,
        example_id: str | None,
        reason: str,
        position: int | None,
        problem: str,
        *,
        n_rows: int = 0,
        scope: str = "example",
    ) -> Reject:
        """A reject in this file (``make_reject`` with the file's source, name and position kind)."""
        reject = make_reject(
            source=self.spec.name,
            file=self.file,
            position_kind=self.kind,
            example_id=example_id,
            reason=reason,
            position=position,
            problem=problem,
            n_rows=n_rows,
        )
        reject.scope = scope
        return reject


class RawReader:
    """Reads sources one after the other, sharing the feature dimension and the seen ids.

    ``dim`` is fixed by the first file read unless given; ``max_abs`` rejects
    values that would overflow the output dtype (65504 for float16).
    """

    def __init__(
        self,
        *,
        chunk_rows: int = 8192,
        dim: int | None = None,
        max_abs: float | None = None,
        required_roles: Sequence[str] = REQUIRED_ROLES,
        dim_owner: str = "the dataset",
        dim_origin: str | None = None,
        csv_block_bytes: int | None = None,
        csv_max_record_bytes: int = 1 << 28,
        reject_empty_files: bool = True,
        formats: Mapping[str, Any] | None = None,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
        if dim is not None and dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim!r}")
        required_roles = tuple(required_roles)
        if EXAMPLE_ID not in required_roles or not set(required_roles) <= set(REQUIRED_ROLES):
            raise ValueError(
                f"required_roles must include {EXAMPLE_ID!r} and be among {REQUIRED_ROLES}, "
                f"got {required_roles!r}"
            )
        self.chunk_rows = chunk_rows
        # A file with no example: an ``empty_file`` reject (ingest), or a warning (scoring,
        # where an empty batch is normal).
        self.reject_empty_files = reject_empty_files
        # Readers of more formats (or formats that are not files), by name, as READERS;
        # rawio.simulated.READERS reads format: simulated.
        self._formats = dict(formats or {})
        # CSV bytes cut per block: about chunk_rows / 6 lines of 700 numbers (a longer record
        # makes its block longer); per-block costs stay small, memory well under a chunk.
        self.csv_block_bytes = csv_block_bytes or chunk_rows * 1024
        self.csv_max_record_bytes = csv_max_record_bytes  # an unclosed quote stops here
        self.dim = dim
        self.dim_origin = (dim_origin or "the dim argument") if dim is not None else None
        self.dim_owner = dim_owner
        self.max_abs = max_abs
        # Scoring reads unlabelled files: group and label may then be absent (or empty);
        # when present they are validated as in ingest.
        self.required_roles = required_roles
        self.labels_required = LABEL in required_roles
        self.groups_required = GROUP in required_roles
        self.rows_read = 0
        self.tallies: list[FileTally] = []  # one per file read, in order
        self._seen: dict[str, int] = {}
        self._files: list[tuple[str, str]] = []  # (source, file) by index, for duplicate messages

    def read_source(self, spec: SourceSpec) -> Iterator[Example | Reject]:
        """Every example and reject of one source, files sorted by path, rows in file order."""
        for path, fmt in list_files(spec):
            yield from self.read_file(spec, path, fmt)

    def read_file(
        self, spec: SourceSpec, path: Path, fmt: str
    ) -> Generator[Example | Reject, None, None]:
        """Every example and reject of one file; an unreadable file ends in an ``unreadable_file`` reject."""
        self._files.append((spec.name, str(path)))
        kind = "row" if fmt in ("parquet", SIMULATED) else "line"
        tally = FileTally(source=spec.name, file=str(path))
        self.tallies.append(tally)
        state = FileState(
            spec=spec, file=str(path), file_index=len(self._files) - 1, kind=kind, tally=tally
        )
        for item in self._read_items(spec, path, fmt, state):
            tally.items += 1
            yield item
        tally.rows, tally.examples = state.rows, state.examples
        tally.blank_lines = state.blank_lines
        if tally.items == 0:
            what = "0 bytes" if file_bytes(path, fmt) == 0 else "no data rows"
            reject = state.reject(
                None, EMPTY_FILE, None, f"file holds no example ({what})", scope="file"
            )
            if self.reject_empty_files:
                yield reject
            else:
                log.warning("%s", reject.message)
        tally.complete = True

    def _read_items(
        self, spec: SourceSpec, path: Path, fmt: str, state: FileState
    ) -> Iterator[Example | Reject]:
        """The file's examples and rejects from its format reader; unreadable: a last reject."""
        if fmt != SIMULATED and path.stat().st_size == 0:
            return
        readers = {**READERS, **self._formats}
        if fmt not in readers:
            raise ValueError(f"{path}: no reader for format {fmt!r} (known: {sorted(readers)})")
        read = readers[fmt]
        try:
            for item in read(self, spec, path, state):
                if isinstance(item, Whole):
                    yield from self._flush(state)
                    yield from self._consume(item, state)
                    yield from self._flush(state)
                elif isinstance(item, Chunk):
                    yield from self._consume(item, state)
                else:
                    yield from self._flush(state)
                    yield item
        except (
            OSError, EOFError, zlib.error, pa.ArrowException, UnicodeDecodeError,
            UnclosedRecordError, csv.Error,  # csv.Error: a bare "\r" in a CSV header line
        ) as exc:  # fmt: skip
            yield from self._unreadable(state, exc)
            return
        yield from self._flush(state)

    def _consume(self, chunk: Chunk, state: FileState) -> Iterator[Example | Reject]:
        """Add a chunk's rows to the examples they belong to; yield the examples they close."""
        n = len(chunk)
        if n == 0:
            return
        self.rows_read += n
        ids = chunk.ids
        missing = is_none(ids)
        if missing.any():
            # A row without an id belongs to the example above it: that example is rejected.
            previous = state.pending.example_id if state.pending else None
            filled = ids.copy()
            for i in np.flatnonzero(missing):
                filled[i] = filled[i - 1] if i > 0 else previous
            ids = filled
        change = np.ones(n, bool)
        change[1:] = ids[1:] != ids[:-1]
        starts = np.flatnonzero(change)
        ends = np.append(starts[1:], n)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            example_id = ids[s]
            pending = state.pending
            if pending is None or example_id != pending.example_id:
                if not isinstance(chunk, Whole):  # JSON Lines count their lines instead
                    state.examples += 1
                yield from self._flush(state)
                pending = state.pending = self.start_example(
                    example_id, int(chunk.positions[s]), state
                )
            self._extend(pending, chunk, s, e)

    def start_example(self, example_id: str | None, position: int, state: FileState) -> _Pending:
        """Begin an example at ``position``: claim its example_id, or note why it is taken."""
        pending = _Pending(example_id, None, None, None, position)
        if example_id is None:
            return pending
        first = self._seen.get(example_id)
        if first is None:
            self._seen[example_id] = state.file_index
        elif first == state.file_index:
            pending.error = (
                DUPLICATE_ID,
                position,
                "rows are not contiguous (the id reappears after other examples in the same "
                "file; rows of one example must be consecutive)",
            )
        else:
            source, file = self._files[first]
            pending.error = (DUPLICATE_ID, position, duplicate_problem(file, source))
        return pending

    def _extend(self, pending: _Pending, chunk: Chunk, s: int, e: int) -> None:
        """Add rows ``s:e`` of a chunk to the example; note its first bad or disagreeing row."""
        pending.n_rows += e - s
        if pending.error is not None:
            return
        codes = chunk.codes[s:e]
        bad = np.flatnonzero(codes)
        if bad.size:
            i = s + int(bad[0])
            reason = ROW_CODES[codes[bad[0]]]
            assert reason is not None  # code 0 (a good row) is not in ``bad``
            pending.error = (reason, int(chunk.positions[i]), chunk.describe(i))
            pending.parts.clear()
            return
        if not pending.parts:
            pending.group = chunk.groups[s]
            pending.label = int(chunk.labels[s])
            pending.true_label = int(chunk.true_labels[s])
        checks = (
            ("group", chunk.groups, pending.group, INCONSISTENT_GROUP),
            ("label", chunk.labels, pending.label, INCONSISTENT_LABEL),
            ("true_label", chunk.true_labels, pending.true_label, INCONSISTENT_LABEL),
        )
        for name, values, current, code in checks:
            differ = np.flatnonzero(values[s:e] != current)
            if differ.size:
                i = s + int(differ[0])
                pending.error = (
                    code,
                    int(chunk.positions[i]),
                    f"rows disagree on {name}: {_show(current, name)} in earlier rows, "
                    f"{_show(values[i], name)} here",
                )
                pending.parts.clear()
                return
        pending.parts.append(chunk.features[s:e])

    def _flush(self, state: FileState) -> Iterator[Example | Reject]:
        """Close the example being assembled: an ``Example``, or its reject."""
        pending, state.pending = state.pending, None
        if pending is None:
            return
        if pending.error is None and pending.n_rows == 0:
            pending.error = (EMPTY_EXAMPLE, pending.position, "example has no rows")
        if pending.error is not None:
            reject = state.reject(pending.example_id, *pending.error, n_rows=pending.n_rows)
            reject.claimed_at = pending.position if pending.example_id is not None else None
            yield reject
            return
        rows = pending.parts[0].copy() if len(pending.parts) == 1 else np.concatenate(pending.parts)
        # A row without an example_id or label is a row error, so a good example has both.
        assert pending.example_id is not None and pending.label is not None
        yield Example(
            source=state.spec.name,
            example_id=pending.example_id,
            group=pending.group,
            label=None if pending.label == -1 else int(pending.label),
            true_label=None if pending.true_label == -1 else pending.true_label,
            rows=rows,
            file=state.file,
            position=pending.position,
        )

    def _unreadable(self, state: FileState, exc: BaseException) -> Iterator[Reject]:
        """The reject of a file that cannot be read on: its open example, or the file."""
        pending, state.pending = state.pending, None
        example_id = pending.example_id if pending else None
        position = state.last_position if state.last_position is not None else None
        problem = (
            f"file is unreadable or truncated after {state.rows} rows "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
        )
        reject = state.reject(
            example_id,
            UNREADABLE_FILE,
            position,
            problem,
            n_rows=pending.n_rows if pending else 0,
            scope="example" if pending else "file",
        )
        reject.claimed_at = pending.position if pending and example_id is not None else None
        yield reject

    def check_dim(self, file_dim: int, state: FileState) -> bool:
        """Fix dim from the first file; return whether this file matches it."""
        if self.dim is None:
            self.dim = file_dim
            self.dim_origin = state.file
        state.dim_ok = file_dim == self.dim
        state.file_dim = file_dim
        return state.dim_ok


def _show(value: Any, name: str) -> str:
    """A group, label or true_label code as a message shows it."""
    if name == "group":
        return repr(value)
    return {-1: "empty", -2: "invalid"}.get(int(value), str(int(value)))
