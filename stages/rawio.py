"""Streaming readers for the raw files users bring: CSV (optionally gzipped), Parquet, JSON Lines.

CSV and Parquet use the "long" layout: one line per sentence row, with the id
columns (``example_id``, ``group``, ``label``, optionally ``true_label``) and
``dim`` feature columns. JSON Lines holds one example per line:
``{"example_id", "group", "label", "rows": [[...], ...]}`` (``true_label`` optional).

Reading streams: CSV through ``pyarrow.csv.open_csv`` and Parquet through
``ParquetFile.iter_batches``, about ``chunk_rows`` rows at a time, so peak memory
is bounded by a chunk (plus one example), not by the input.

Rows of one example must be **contiguous** within a file; they keep their order.
An ``example_id`` that reappears after other examples is rejected: within a
file as non-contiguous rows, across files (or sources) as a duplicate. Only the
reappearance is rejected; the first occurrence stands.

``RawReader.read_source`` yields validated ``Example`` objects and ``Reject``
records (reason code + message naming file, line or row, example_id and
problem) in file order, so that ingest, and later a scoring command, can decide
whether to stop or quarantine.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stages import common
from stages.contract import EXAMPLE_ID, GROUP, LABEL, TRUE_LABEL
from stages.csvrecords import UnclosedRecordError, iter_record_blocks

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "jsonl", "simulated")
SIMULATED = "simulated"  # drawn by the built-in simulator (stages/simulator.py), no raw files
ON_ERROR = ("fail", "quarantine")  # stop at the first rejected example, or write it aside and go on
EXTENSIONS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".tsv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
}
ROLES = (EXAMPLE_ID, GROUP, LABEL, TRUE_LABEL)
REQUIRED_ROLES = (EXAMPLE_ID, GROUP, LABEL)
SOURCE_KEYS = ("path", "format", "negative_rate", "header", "columns", "features", "delimiter")


class _Column(common.Spec):
    """A column: its name (a non-empty string) or its 0-based position (an integer)."""

    def check(self, value: Any, key: str) -> Any:
        if isinstance(value, bool) or not (
            (isinstance(value, str) and value) or (isinstance(value, int) and value >= 0)
        ):
            raise ValueError(f"{key} must be a column name or a 0-based position, got {value!r}")
        return value


# One declared source (ingest.sources.<name>); the documented optional keys may be left out.
SOURCE_SCHEMA: dict[str, common.Spec] = {
    "path": common.Text(),
    "format": common.Optional(common.Choice(*FORMATS)),
    "negative_rate": common.Number(minimum=0, maximum=1, min_open=True),
    "header": common.Optional(common.Flag()),
    "columns": common.Optional(common.MapOf(_Column(), keys=ROLES, min_len=0)),
    "features": common.Optional(common.ListOf(_Column(), min_len=1, none=True)),
    "delimiter": common.Optional(common.Text()),
}

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
# Row-level codes as small integers, for vectorised checks (0 = row is fine).
_ROW_CODES = (None, DIM_MISMATCH, MISSING_ID, MISSING_GROUP, BAD_LABEL, NON_NUMERIC, NON_FINITE,
              OUT_OF_RANGE, WRONG_COLUMNS)  # fmt: skip
_NUMBER = (int, float)
_CODE = {name: i for i, name in enumerate(_ROW_CODES) if name}


class RawDataError(ValueError):
    """Raised by callers that stop at the first rejected example; carries the ``Reject``."""

    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.message)
        self.reject = reject


@dataclass(frozen=True)
class SourceSpec:
    """One raw source as declared under ``ingest.sources`` in params.yaml."""

    name: str
    path: Path
    negative_rate: float
    format: str | None = None
    header: bool = True
    columns: Mapping[str, str | int] = field(default_factory=dict)
    features: Sequence[str | int] | None = None
    delimiter: str = ","
    # format: simulated only: the ``generate`` params section the simulator draws from
    simulation: Mapping[str, Any] | None = None

    @classmethod
    def from_params(
        cls, name: str, params: Mapping[str, Any], *, simulation: Mapping[str, Any] | None = None
    ) -> SourceSpec:
        """Validate one source's params; raise ValueError naming the bad key or value.

        A ``format: simulated`` source is drawn by the simulator from ``simulation`` (the
        ``generate`` section), which must declare a source of the same name and rate.
        """
        key = f"ingest.sources.{name}"
        if params.get("format") == SIMULATED:
            return cls._simulated(name, params, simulation)
        common.check_section(params, SOURCE_SCHEMA, key)
        rate = float(params["negative_rate"])
        fmt = params.get("format")
        header = params.get("header", True)
        columns = dict(params.get("columns") or {})
        if not header:
            missing = [r for r in REQUIRED_ROLES if r not in columns]
            if missing or not all(isinstance(v, int) for v in columns.values()):
                raise ValueError(
                    f"{key}.columns: with header: false, columns must map {REQUIRED_ROLES} "
                    f"(and optionally {TRUE_LABEL!r}) to 0-based positions, got {columns!r}"
                )
        features = params.get("features")
        delimiter = params.get("delimiter", ",")
        if len(delimiter) != 1:
            raise ValueError(f"{key}.delimiter must be one character, got {delimiter!r}")
        if fmt in (None, "csv") and not header and features is not None:
            if not all(isinstance(f, int) for f in features):
                raise ValueError(
                    f"{key}.features: with header: false, features are 0-based positions, "
                    f"got {features!r}"
                )
        return cls(name, Path(params["path"]), rate, fmt, header, columns, features, delimiter)

    @classmethod
    def _simulated(
        cls, name: str, params: Mapping[str, Any], simulation: Mapping[str, Any] | None
    ) -> SourceSpec:
        key = f"ingest.sources.{name}"
        schema = {k: v for k, v in SOURCE_SCHEMA.items() if k in ("path", "negative_rate")}
        common.check_section(params, {**schema, "format": common.Choice(SIMULATED)}, key)
        drawn = (simulation or {}).get("sources") or {}
        if name not in drawn:
            raise ValueError(
                f"{key}: format: simulated, but generate.sources has no source {name!r} "
                f"(it has {sorted(drawn)}); the simulator draws only the sources it declares"
            )
        rate = params["negative_rate"]
        if rate != drawn[name]["negative_rate"]:
            raise ValueError(
                f"{key}.negative_rate is {rate!r} but the simulator thins this source with "
                f"generate.sources.{name}.negative_rate = {drawn[name]['negative_rate']!r}; "
                "make them equal"
            )
        return cls(name, Path(params["path"]), float(rate), SIMULATED, simulation=simulation)


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


def infer_format(path: Path) -> str | None:
    """Format implied by a file name's extension, or None when it implies none."""
    name = path.name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return EXTENSIONS[ext]
    return None


def list_files(spec: SourceSpec) -> list[tuple[Path, str]]:
    """The source's files with their formats, sorted by path; a folder is searched recursively.

    Hidden files are ignored; a file whose format is neither given nor implied
    by its extension is an error, so nothing is skipped silently. (A simulated
    source has no files: ``stages.simulated.list_parts``.)
    """
    if spec.format == SIMULATED:
        raise ValueError(
            f"source {spec.name!r} is simulated: list its parts with stages.simulated.list_parts"
        )
    if spec.path.is_file():
        candidates = [spec.path]
    elif spec.path.is_dir():
        candidates = sorted(
            p
            for p in spec.path.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(spec.path).parts)
        )
    else:
        raise FileNotFoundError(f"source {spec.name!r}: {spec.path} does not exist")
    files = []
    for p in candidates:
        fmt = spec.format or infer_format(p)
        if fmt is None:
            raise ValueError(
                f"source {spec.name!r}: cannot infer the format of {p}; set format to one of "
                f"{FORMATS} or use an extension among {sorted(EXTENSIONS)}"
            )
        files.append((p, fmt))
    if not files:
        raise FileNotFoundError(f"source {spec.name!r}: no files under {spec.path}")
    return files


def file_bytes(path: Path, fmt: str) -> int:
    """Size of a listed file (0 for a simulated part, which is not a file)."""
    return 0 if fmt == SIMULATED else path.stat().st_size


def _parse_label(value: Any) -> int | None:
    """0 or 1 from a number, a boolean, or its text (``"1"``, ``"1.0"``, ``"true"``); else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number in (0.0, 1.0) else None


_BOOL_TEXT = {"true": 1, "false": 0}


def _column_to_float(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Values as float64 (NaN where unusable) and a mask of missing or non-numeric cells."""
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), np.ones(len(arr), bool)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            values = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = pc.cast(arr, pa.string())
            return _column_to_float(values)
        bad = values.is_null().to_numpy(zero_copy_only=False)
        return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False), bad
    try:
        values = pc.cast(arr, pa.float64())
        bad = values.is_null().to_numpy(zero_copy_only=False)
        return values.fill_null(np.nan).to_numpy(zero_copy_only=False), bad
    except pa.ArrowInvalid:
        pass
    out = np.full(len(arr), np.nan)
    bad = np.zeros(len(arr), bool)
    for i, text in enumerate(arr.to_pylist()):
        try:
            out[i] = float(text)
        except (TypeError, ValueError):
            bad[i] = True
    return out, bad


def _is_number_type(dtype: pa.DataType) -> bool:
    return pa.types.is_floating(dtype) or pa.types.is_integer(dtype)


def _ids_to_numpy(arr: pa.Array) -> np.ndarray:
    """Ids or groups as an object array of str, None where missing or empty."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    out = arr.to_numpy(zero_copy_only=False).astype(object)
    # Missing or empty, found by pyarrow on the column (not by Python on each cell).
    blank = pc.fill_null(pc.equal(arr, ""), True).to_numpy(zero_copy_only=False)
    out[blank] = None
    return out


def _is_none(values: np.ndarray) -> np.ndarray:
    """Mask of None entries in an object array."""
    # One comparison loop in C: str == None is False, None == None is True.
    return np.equal(values, None).astype(bool, copy=False)


def _labels_to_codes(arr: pa.Array | None, n: int, *, optional: bool) -> np.ndarray:
    """Labels as int8: 0/1, -1 where missing (allowed when ``optional``), -2 where invalid."""
    if arr is None:
        return np.full(n, -1, np.int8)
    values, bad = _column_to_float(arr)
    codes = np.full(n, -2, np.int8)
    codes[values == 0.0] = 0
    codes[values == 1.0] = 1
    missing = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        missing = missing | pc.equal(arr, "").fill_null(True).to_numpy(zero_copy_only=False)
        text = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
        for word, code in _BOOL_TEXT.items():
            codes[pc.equal(text, word).fill_null(False).to_numpy(zero_copy_only=False)] = code
    codes[missing] = -1 if optional else -2
    return codes


class _Chunk:
    """A validated block of long-layout rows: vectorised per-row checks, messages on demand."""

    def __init__(
        self,
        *,
        ids: np.ndarray,
        groups: np.ndarray,
        labels: np.ndarray,
        true_labels: np.ndarray,
        features: np.ndarray,
        positions: np.ndarray,
        codes: np.ndarray,
        describe,
    ) -> None:
        self.ids, self.groups, self.labels, self.true_labels = ids, groups, labels, true_labels
        self.features, self.positions, self.codes = features, positions, codes
        self._describe = describe

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self, i: int) -> str:
        return self._describe(i)


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
        # Readers of formats that are not files, by name: fn(reader, spec, path, state)
        # yielding chunks, as stages.simulated.read_part does for format: simulated.
        self._formats = dict(formats or {})
        # CSV bytes cut per block: about chunk_rows / 6 lines of 700 numbers (a longer record
        # makes its block longer); per-block costs stay small, memory well under a chunk.
        self._csv_block_bytes = csv_block_bytes or chunk_rows * 1024
        self._csv_max_record_bytes = csv_max_record_bytes  # an unclosed quote stops here
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

    # ----------------------------------------------------------------- public API
    def read_source(self, spec: SourceSpec) -> Iterator[Example | Reject]:
        """Every example and reject of one source, files sorted by path, rows in file order."""
        for path, fmt in list_files(spec):
            yield from self.read_file(spec, path, fmt)

    def read_file(self, spec: SourceSpec, path: Path, fmt: str) -> Iterator[Example | Reject]:
        """Every example and reject of one file; an unreadable file ends in an ``unreadable_file`` reject."""
        self._files.append((spec.name, str(path)))
        kind = "row" if fmt in ("parquet", SIMULATED) else "line"
        tally = FileTally(source=spec.name, file=str(path))
        self.tallies.append(tally)
        state = _FileState(
            spec=spec, file=str(path), file_index=len(self._files) - 1, kind=kind, tally=tally
        )
        for item in self._read_items(spec, path, fmt, state):
            tally.items += 1
            yield item
        tally.rows, tally.examples = state.rows, state.examples
        tally.blank_lines = state.blank_lines
        if tally.items == 0:
            what = "0 bytes" if file_bytes(path, fmt) == 0 else "no data rows"
            reject = self._reject(
                state, None, EMPTY_FILE, None, f"file holds no example ({what})", scope="file"
            )
            if self.reject_empty_files:
                yield reject
            else:
                log.warning("%s", reject.message)
        tally.complete = True

    def _read_items(
        self, spec: SourceSpec, path: Path, fmt: str, state: _FileState
    ) -> Iterator[Example | Reject]:
        if fmt != SIMULATED and path.stat().st_size == 0:
            return
        readers = {"csv": self._csv_chunks, "parquet": self._parquet_chunks, "jsonl": self._jsonl}
        for name, read in self._formats.items():
            readers[name] = lambda spec, path, state, read=read: read(self, spec, path, state)
        if fmt not in readers:
            raise ValueError(f"{path}: no reader for format {fmt!r} (known: {sorted(readers)})")
        reader = readers[fmt]
        try:
            for item in reader(spec, path, state):
                if isinstance(item, _Whole):
                    yield from self._flush(state)
                    yield from self._consume(item, state)
                    yield from self._flush(state)
                elif isinstance(item, _Chunk):
                    yield from self._consume(item, state)
                else:
                    yield from self._flush(state)
                    yield item
        except (
            OSError, EOFError, zlib.error, pa.ArrowException, UnicodeDecodeError,
            UnclosedRecordError,
        ) as exc:  # fmt: skip
            yield from self._unreadable(state, exc)
            return
        yield from self._flush(state)

    # ----------------------------------------------------------------- grouping
    def _consume(self, chunk: _Chunk, state: _FileState) -> Iterator[Example | Reject]:
        n = len(chunk)
        if n == 0:
            return
        self.rows_read += n
        ids = chunk.ids
        missing = _is_none(ids)
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
                if not isinstance(chunk, _Whole):  # JSON Lines count their lines instead
                    state.examples += 1
                yield from self._flush(state)
                pending = state.pending = self._start(example_id, int(chunk.positions[s]), state)
            self._extend(pending, chunk, s, e)

    def _start(self, example_id: str | None, position: int, state: _FileState) -> _Pending:
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

    def _extend(self, pending: _Pending, chunk: _Chunk, s: int, e: int) -> None:
        pending.n_rows += e - s
        if pending.error is not None:
            return
        codes = chunk.codes[s:e]
        bad = np.flatnonzero(codes)
        if bad.size:
            i = s + int(bad[0])
            pending.error = (_ROW_CODES[codes[bad[0]]], int(chunk.positions[i]), chunk.describe(i))
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

    def _flush(self, state: _FileState) -> Iterator[Example | Reject]:
        pending, state.pending = state.pending, None
        if pending is None:
            return
        if pending.error is None and pending.n_rows == 0:
            pending.error = (EMPTY_EXAMPLE, pending.position, "example has no rows")
        if pending.error is not None:
            reject = self._reject(state, pending.example_id, *pending.error, n_rows=pending.n_rows)
            reject.claimed_at = pending.position if pending.example_id is not None else None
            yield reject
            return
        rows = pending.parts[0].copy() if len(pending.parts) == 1 else np.concatenate(pending.parts)
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

    def _reject(
        self, state, example_id, reason, position, problem, *, n_rows=0, scope="example"
    ) -> Reject:
        reject = make_reject(
            source=state.spec.name,
            file=state.file,
            position_kind=state.kind,
            example_id=example_id,
            reason=reason,
            position=position,
            problem=problem,
            n_rows=n_rows,
        )
        reject.scope = scope
        return reject

    def _unreadable(self, state: _FileState, exc: BaseException) -> Iterator[Reject]:
        pending, state.pending = state.pending, None
        example_id = pending.example_id if pending else None
        position = state.last_position if state.last_position is not None else None
        problem = (
            f"file is unreadable or truncated after {state.rows} rows "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
        )
        reject = self._reject(
            state,
            example_id,
            UNREADABLE_FILE,
            position,
            problem,
            n_rows=pending.n_rows if pending else 0,
            scope="example" if pending else "file",
        )
        reject.claimed_at = pending.position if example_id is not None else None
        yield reject

    def _check_dim(self, file_dim: int, state: _FileState) -> bool:
        """Fix dim from the first file; return whether this file matches it."""
        if self.dim is None:
            self.dim = file_dim
            self.dim_origin = state.file
        state.dim_ok = file_dim == self.dim
        state.file_dim = file_dim
        return state.dim_ok

    # ----------------------------------------------------------------- row validation
    def _validate(
        self,
        *,
        state: _FileState,
        ids: np.ndarray,
        groups: np.ndarray,
        labels: np.ndarray,
        true_labels: np.ndarray,
        features: np.ndarray,
        non_numeric: np.ndarray,
        positions: np.ndarray,
        raw_value,
        feature_names: Sequence[str],
    ) -> _Chunk:
        n = len(ids)
        codes = np.zeros(n, np.int8)
        # Each row's largest and smallest value, two reductions with no temporary the size
        # of the chunk: NaN propagates into both, +inf shows in the largest, -inf in the
        # smallest, so a row is finite exactly when both are. Compared in float64, as the
        # values are (a float32 chunk holds the same numbers).
        if features.shape[1]:
            high = features.max(axis=1).astype(np.float64)
            low = features.min(axis=1).astype(np.float64)
        else:
            high = low = np.zeros(n)
        row_finite = np.isfinite(high) & np.isfinite(low)
        has_non_numeric = non_numeric.any(axis=1)
        checks = [
            (OUT_OF_RANGE, row_finite & ((high > self.max_abs) | (low < -self.max_abs)))
            if self.max_abs is not None
            else None,
            (NON_FINITE, ~row_finite & ~has_non_numeric),
            (NON_NUMERIC, has_non_numeric),
            (BAD_LABEL, (labels == -2) | (true_labels == -2)),
            (MISSING_GROUP, _is_none(groups) if self.groups_required else np.zeros(n, bool)),
            (MISSING_ID, _is_none(ids)),
            (DIM_MISMATCH, np.full(n, not state.dim_ok)),
        ]
        # Later checks overwrite earlier ones: the most basic problem of a row is reported.
        for check in checks:
            if check is not None:
                codes[check[1]] = _CODE[check[0]]

        def describe(i: int) -> str:
            code = _ROW_CODES[codes[i]]
            if code == DIM_MISMATCH:
                return (
                    f"file has {state.file_dim} feature columns but {self.dim_owner} has dim "
                    f"{self.dim} (set by {self.dim_origin})"
                )
            if code == MISSING_ID:
                return "missing example_id"
            if code == MISSING_GROUP:
                return "missing group"
            if code == BAD_LABEL:
                if labels[i] == -2:
                    return f"label must be 0 or 1, got {raw_value(i, LABEL)!r}"
                return f"true_label must be 0, 1 or empty, got {raw_value(i, TRUE_LABEL)!r}"
            if code == NON_NUMERIC:
                j = int(np.flatnonzero(non_numeric[i])[0])
                return (
                    f"non-numeric value {raw_value(i, j)!r} in feature column {feature_names[j]!r}"
                )
            if code == NON_FINITE:
                j = int(np.flatnonzero(~np.isfinite(features[i]))[0])
                return f"non-finite value {float(features[i, j])!r} in feature column {feature_names[j]!r}"
            j = int(np.flatnonzero(np.abs(features[i]) > self.max_abs)[0])
            return (
                f"value {float(features[i, j])!r} in feature column {feature_names[j]!r} exceeds "
                f"{self.max_abs:g} (the output dtype's range)"
            )

        return _Chunk(
            ids=ids,
            groups=groups,
            labels=labels,
            true_labels=true_labels,
            features=features,
            positions=positions,
            codes=codes,
            describe=describe,
        )

    def _table_chunk(self, batch: pa.RecordBatch, roles: dict[str, int | None], feature_idx: list[int],
                     positions: np.ndarray, state: _FileState) -> _Chunk:  # fmt: skip
        """Validate a batch of long-layout rows whose columns are located by index."""
        n = batch.num_rows
        col = batch.column
        numeric = all(_is_number_type(col(j).type) for j in feature_idx)
        if state.dim_ok and numeric:
            # Fast path: one row-major copy of all feature columns. float32 columns stay
            # float32 (every float32 is exact in float64, so the checks, the messages and
            # the output dtype's rounding are the same); this saves a float64 copy of the
            # chunk and the page faults of allocating it (about half of the time ingest
            # spent beyond reading the file). Anything else becomes float64, as before.
            selected = batch.select(feature_idx)
            features = np.asarray(selected.to_tensor(null_to_nan=True))
            if features.dtype != np.float32:
                features = features.astype(np.float64)
            non_numeric = np.zeros((n, len(feature_idx)), bool)
            for k, j in enumerate(feature_idx):
                if col(j).null_count:
                    non_numeric[:, k] = col(j).is_null().to_numpy(zero_copy_only=False)
        elif state.dim_ok:
            features = np.empty((n, len(feature_idx)), np.float64)
            non_numeric = np.zeros((n, len(feature_idx)), bool)
            for k, j in enumerate(feature_idx):
                features[:, k], non_numeric[:, k] = _column_to_float(col(j))
        else:
            features = np.zeros((n, 0))
            non_numeric = np.zeros((n, 0), bool)
        tl = roles.get(TRUE_LABEL)
        label_col, group_col = roles.get(LABEL), roles.get(GROUP)

        def raw_value(i: int, what: str | int) -> Any:
            j = feature_idx[what] if isinstance(what, int) else roles[what]
            return col(j)[i].as_py()

        return self._validate(
            state=state,
            ids=_ids_to_numpy(col(roles[EXAMPLE_ID])),
            groups=_ids_to_numpy(col(group_col)) if group_col is not None else np.full(n, None),
            labels=_labels_to_codes(
                col(label_col) if label_col is not None else None,
                n,
                optional=not self.labels_required,
            ),
            true_labels=_labels_to_codes(col(tl) if tl is not None else None, n, optional=True),
            features=features,
            non_numeric=non_numeric,
            positions=positions,
            raw_value=raw_value,
            feature_names=state.feature_names,
        )

    # ----------------------------------------------------------------- formats
    def _resolve_columns(
        self, spec: SourceSpec, names: list[str], state: _FileState
    ) -> tuple[dict, list[int]] | Reject:
        """Column positions of each role and of the features, from names or 0-based positions."""
        roles: dict[str, int | None] = {}
        for role in ROLES:
            wanted = spec.columns.get(role, role if spec.header else None)
            if wanted is None:
                roles[role] = None
                continue
            if isinstance(wanted, int) and not spec.header:
                ok = wanted < len(names)
                index = wanted
            else:
                ok = wanted in names
                index = names.index(wanted) if ok else None
            if not ok:
                optional = role == TRUE_LABEL or role not in self.required_roles
                if optional and role not in spec.columns:
                    roles[role] = None
                    continue
                return self._reject(
                    state, None, WRONG_COLUMNS, state.first_position,
                    f"no column {wanted!r} for {role} (file has {len(names)} columns: {names[:8]}...)",
                    scope="file",
                )  # fmt: skip
            roles[role] = index
        used = {i for i in roles.values() if i is not None}
        if spec.features is None:
            feature_idx = [i for i in range(len(names)) if i not in used]
        else:
            feature_idx = []
            for f in spec.features:
                if isinstance(f, int) and not spec.header and f < len(names):
                    feature_idx.append(f)
                elif isinstance(f, str) and f in names:
                    feature_idx.append(names.index(f))
                else:
                    return self._reject(
                        state, None, WRONG_COLUMNS, state.first_position,
                        f"no feature column {f!r}", scope="file",
                    )  # fmt: skip
        if not feature_idx:
            return self._reject(
                state, None, WRONG_COLUMNS, state.first_position, "no feature columns",
                scope="file",
            )  # fmt: skip
        return roles, feature_idx

    def _parquet_chunks(
        self, spec: SourceSpec, path: Path, state: _FileState
    ) -> Iterator[_Chunk | Reject]:
        state.first_position = 0
        # No pre-buffering and a buffered stream: memory follows the batch, not whole row
        # groups (pre-buffered iter_batches keeps growing over a file of many row groups).
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        names = parquet.schema_arrow.names
        resolved = self._resolve_columns(spec, names, state)
        if isinstance(resolved, Reject):
            yield resolved
            return
        roles, feature_idx = resolved
        self._check_dim(len(feature_idx), state)
        needed = sorted(
            {i for i in roles.values() if i is not None} | set(feature_idx if state.dim_ok else [])
        )
        position = {j: k for k, j in enumerate(needed)}
        roles = {r: (position[i] if i is not None else None) for r, i in roles.items()}
        state.feature_names = [names[j] for j in feature_idx]
        feature_idx = [position[j] for j in feature_idx] if state.dim_ok else []
        start = 0
        for batch in parquet.iter_batches(
            batch_size=self.chunk_rows, columns=[names[j] for j in needed]
        ):
            positions = np.arange(start, start + batch.num_rows, dtype=np.int64)
            state.rows += batch.num_rows
            state.last_position = start
            start += batch.num_rows
            yield self._table_chunk(batch, roles, feature_idx, positions, state)

    def _csv_chunks(
        self, spec: SourceSpec, path: Path, state: _FileState
    ) -> Iterator[_Chunk | Reject]:
        """Blocks of whole records (csvrecords) parsed by pyarrow; positions are physical lines."""
        state.first_position = 1
        roles = feature_idx = None
        n_cols = 0
        with pa.input_stream(str(path), compression="detect") as stream:
            blocks = iter_record_blocks(
                stream,
                delimiter=spec.delimiter,
                block_bytes=self._csv_block_bytes,
                max_record_bytes=self._csv_max_record_bytes,
            )
            for block in blocks:
                state.blank_lines += block.blank_lines
                if roles is None and len(block):
                    first = next(
                        csv.reader([block.record(0).decode("utf-8")], delimiter=spec.delimiter)
                    )
                    n_cols = len(first)
                    state.first_position = int(block.lines[0])
                    names = first if spec.header else [str(i) for i in range(n_cols)]
                    resolved = self._resolve_columns(spec, names, state)
                    if isinstance(resolved, Reject):
                        yield resolved
                        return
                    roles, feature_idx = resolved
                    self._check_dim(len(feature_idx), state)
                    state.feature_names = [names[j] for j in feature_idx]
                    if spec.header:
                        block = block.drop_first()
                if len(block):
                    yield from self._csv_block(spec, block, roles, feature_idx, n_cols, state)

    def _csv_block(self, spec, block, roles, feature_idx, n_cols, state) -> Iterator[_Chunk]:
        """Parse one block of whole records; a record with the wrong field count rejects its example."""
        internal = [f"c{i}" for i in range(n_cols)]
        invalid: list[tuple[int, str, int]] = []

        def on_invalid(row) -> str:
            invalid.append((int(row.number) - 1, row.text, int(row.actual_columns)))
            return "skip"

        table = pacsv.read_csv(
            pa.py_buffer(block.data),
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=len(block.data) + 1, column_names=internal
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=spec.delimiter,
                invalid_row_handler=on_invalid,
                newlines_in_values=block.quoted,  # slower; only where a quote could hold one
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in internal},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        if table.num_rows + len(invalid) != len(block):
            raise pa.ArrowInvalid(
                f"CSV quoting could not be read consistently between lines "
                f"{int(block.lines[0])} and {int(block.lines[-1])}"
            )
        state.rows += len(block)
        state.last_position = int(block.lines[-1])
        bad = np.zeros(len(block), bool)
        bad[[i for i, _, _ in invalid]] = True
        lines = block.lines[~bad]
        batch = table.combine_chunks().to_batches()
        chunk = self._table_chunk(batch[0], roles, feature_idx, lines, state) if batch else None
        cut = 0
        for index, text, actual in invalid:
            at = index - int(np.count_nonzero(bad[:index]))  # rows of the table before it
            if chunk is not None:
                yield self._slice(chunk, cut, at)
            yield self._invalid_row_chunk(
                spec, roles, int(block.lines[index]), text, actual, n_cols, state
            )
            cut = at
        if chunk is not None:
            yield self._slice(chunk, cut, len(chunk))

    @staticmethod
    def _slice(chunk: _Chunk, lo: int, hi: int) -> _Chunk:
        return _Chunk(
            ids=chunk.ids[lo:hi],
            groups=chunk.groups[lo:hi],
            labels=chunk.labels[lo:hi],
            true_labels=chunk.true_labels[lo:hi],
            features=chunk.features[lo:hi],
            positions=chunk.positions[lo:hi],
            codes=chunk.codes[lo:hi],
            describe=lambda i, d=chunk.describe, lo=lo: d(lo + i),
        )

    def _invalid_row_chunk(self, spec, roles, number, text, actual, expected, state) -> _Chunk:
        """A CSV line with the wrong number of fields, as a one-row chunk that rejects its example."""
        fields = next(csv.reader([text], delimiter=spec.delimiter), [])

        def field_at(role: str) -> str | None:
            i = roles.get(role)
            return fields[i] if i is not None and i < len(fields) and fields[i] != "" else None

        label = _parse_label(field_at(LABEL))
        return _Chunk(
            ids=np.array([field_at(EXAMPLE_ID)], object),
            groups=np.array([field_at(GROUP)], object),
            labels=np.array([-2 if label is None else label], np.int8),
            true_labels=np.array([-1], np.int8),
            features=np.zeros((1, 0)),
            positions=np.array([number], np.int64),
            codes=np.array([_CODE[WRONG_COLUMNS]], np.int8),
            describe=lambda i: f"expected {expected} columns (as in the first line), got {actual}",
        )

    def _jsonl(self, spec: SourceSpec, path: Path, state: _FileState) -> Iterator[_Chunk | Reject]:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                state.last_position = line_no
                if not line.strip():
                    state.blank_lines += 1
                    continue
                state.examples += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield self._reject(
                        state,
                        None,
                        BAD_JSON,
                        line_no,
                        f"invalid JSON ({exc.msg} at column {exc.colno})",
                    )
                    continue
                if not isinstance(record, dict):
                    yield self._reject(
                        state,
                        None,
                        BAD_JSON,
                        line_no,
                        f"expected a JSON object, got {type(record).__name__}",
                    )
                    continue
                yield self._jsonl_record(record, line_no, state)

    def _jsonl_record(self, record: dict, line_no: int, state: _FileState) -> _Chunk | Reject:
        example_id = record.get(EXAMPLE_ID)
        example_id = None if example_id in (None, "") else str(example_id)
        rows = record.get("rows")
        state.rows += _len(rows)
        if example_id is None:
            return self._reject(
                state, None, MISSING_ID, line_no, "missing example_id", n_rows=_len(rows)
            )
        if not isinstance(rows, list):
            return self._reject(
                state, example_id, WRONG_COLUMNS, line_no, "'rows' must be a list of rows"
            )
        if not rows:
            self._start(example_id, line_no, state)  # an empty example still claims its id
            reject = self._reject(
                state, example_id, EMPTY_EXAMPLE, line_no, "example has no rows ('rows' is empty)"
            )
            reject.claimed_at = line_no
            return reject
        lengths = [len(r) if isinstance(r, list) else -1 for r in rows]
        if self.dim is None and lengths[0] > 0:
            self._check_dim(lengths[0], state)
        state.dim_ok = True
        state.file_dim = self.dim
        wrong = [i for i, n in enumerate(lengths) if n != self.dim]
        group = record.get(GROUP)
        group = None if group in (None, "") else str(group)
        label_raw = record.get(LABEL)
        label = _parse_label(label_raw)
        # -1: absent, allowed when labels are optional (scoring); -2: invalid
        label_code = label if label is not None else -2
        if label_raw in (None, "") and not self.labels_required:
            label_code = -1
        tl_raw = record.get(TRUE_LABEL)
        true_label = (
            -1
            if tl_raw is None
            else (_parse_label(tl_raw) if _parse_label(tl_raw) is not None else -2)
        )
        n = len(rows)
        if wrong:
            i = wrong[0]
            got = "not a list" if lengths[i] < 0 else f"{lengths[i]} values"
            problem = f"row {i} has {got}, expected dim {self.dim} (set by {self.dim_origin})"
            code = WRONG_COLUMNS
            if len(set(lengths)) == 1 and lengths[0] > 0:
                # Every row agrees on another width: the example has another dimension.
                code = DIM_MISMATCH
                problem = (
                    f"rows have {lengths[0]} values but {self.dim_owner} has dim {self.dim} "
                    f"(set by {self.dim_origin})"
                )
            codes = np.full(n, _CODE[code], np.int8)
            return _Whole(
                _Chunk(
                    ids=np.array([example_id] * n, object),
                    groups=np.array([group] * n, object),
                    labels=np.full(n, label_code, np.int8),
                    true_labels=np.full(n, true_label, np.int8),
                    features=np.zeros((n, 0)),
                    positions=np.full(n, line_no, np.int64),
                    codes=codes,
                    describe=lambda i: problem,
                )
            )
        if all(type(v) in _NUMBER for r in rows for v in r):
            features = np.array(rows, np.float64)
            non_numeric = np.zeros(features.shape, bool)
        else:
            cells = [v for r in rows for v in r]
            flags = [type(v) not in _NUMBER for v in cells]
            non_numeric = np.array(flags, bool).reshape(n, self.dim)
            features = np.array(
                [np.nan if f else v for v, f in zip(cells, flags, strict=True)], np.float64
            )
            features = features.reshape(n, self.dim)
        chunk = self._validate(
            state=state,
            ids=np.array([example_id] * n, object),
            groups=np.array([group] * n, object),
            labels=np.full(n, label_code, np.int8),
            true_labels=np.full(n, true_label, np.int8),
            features=features,
            non_numeric=non_numeric,
            positions=np.full(n, line_no, np.int64),
            raw_value=lambda i, what: record.get(what) if isinstance(what, str) else rows[i][what],
            feature_names=[f"rows[i][{j}]" for j in range(self.dim)],
        )
        # Each JSON line is a whole example: close it right away.
        return _Whole(chunk)


class _Whole(_Chunk):
    """A chunk that is a complete example (JSON Lines): it never merges with a neighbour."""

    def __init__(self, chunk: _Chunk) -> None:
        self.__dict__.update(chunk.__dict__)


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
class _FileState:
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


def _len(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _show(value: Any, name: str) -> str:
    if name == "group":
        return repr(value)
    return {-1: "empty", -2: "invalid"}.get(int(value), str(int(value)))


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    """Rows as CSV text (used by tests and examples)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


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


def max_abs_for(dtype: str) -> float:
    """Largest finite magnitude of an output dtype."""
    return float(np.finfo({"float16": np.float16, "float32": np.float32}[dtype]).max)


__all__ = [
    "Example",
    "FORMATS",
    "ON_ERROR",
    "REASONS",
    "RawDataError",
    "RawReader",
    "Reject",
    "RejectsFile",
    "SourceSpec",
    "duplicate_problem",
    "infer_format",
    "list_files",
    "make_reject",
    "max_abs_for",
]
