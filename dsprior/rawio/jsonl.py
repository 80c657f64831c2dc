"""JSON Lines files (optionally gzipped): one example per line.

Each line is ``{"example_id", "group", "label", "rows": [[...], ...]}``
(``true_label`` optional); positions are 1-based lines. A line is a whole
example: it never merges with its neighbours.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dsprior.contract import EXAMPLE_ID, GROUP, LABEL, TRUE_LABEL
from dsprior.rawio.rejects import (
    BAD_JSON,
    DIM_MISMATCH,
    EMPTY_EXAMPLE,
    MISSING_ID,
    WRONG_COLUMNS,
    Reject,
)
from dsprior.rawio.sources import SourceSpec
from dsprior.rawio.validation import CODE, Chunk, Whole, parse_label, validate_rows

if TYPE_CHECKING:
    from dsprior.rawio.reader import FileState, RawReader

_NUMBER = (int, float)


def read_jsonl(
    reader: RawReader, spec: SourceSpec, path: Path, state: FileState
) -> Iterator[Chunk | Reject]:
    """One example per non-blank line; positions are lines."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    # A UTF-8 byte order mark (Windows editors write one) is dropped, as the CSV reader does.
    # Lines end at "\n" only, as JSON Lines defines them and as the CSV reader counts them: a
    # "\r" before it is whitespace to JSON, and a bare "\r" is no line break (text mode's
    # universal newlines would split there and shift every line number after it).
    with opener(path, "rt", encoding="utf-8-sig", newline="\n") as f:
        for line_no, line in enumerate(f, start=1):
            state.last_position = line_no
            if not line.strip():
                state.blank_lines += 1
                continue
            state.examples += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield state.reject(
                    None,
                    BAD_JSON,
                    line_no,
                    f"invalid JSON ({exc.msg} at column {exc.colno})",
                )
                continue
            if not isinstance(record, dict):
                yield state.reject(
                    None,
                    BAD_JSON,
                    line_no,
                    f"expected a JSON object, got {type(record).__name__}",
                )
                continue
            yield _read_record(reader, record, line_no, state)


def _read_record(reader: RawReader, record: dict, line_no: int, state: FileState) -> Chunk | Reject:
    """One JSON object as a whole example (a ``Whole`` chunk), or its reject."""
    example_id = record.get(EXAMPLE_ID)
    example_id = None if example_id in (None, "") else str(example_id)
    rows = record.get("rows")
    state.rows += _len(rows)
    if example_id is None:
        return state.reject(None, MISSING_ID, line_no, "missing example_id", n_rows=_len(rows))
    if not isinstance(rows, list):
        return state.reject(example_id, WRONG_COLUMNS, line_no, "'rows' must be a list of rows")
    if not rows:
        reader.start_example(example_id, line_no, state)  # an empty example still claims its id
        reject = state.reject(
            example_id, EMPTY_EXAMPLE, line_no, "example has no rows ('rows' is empty)"
        )
        reject.claimed_at = line_no
        return reject
    lengths = [len(r) if isinstance(r, list) else -1 for r in rows]
    if reader.dim is None and lengths[0] > 0:
        reader.check_dim(lengths[0], state)
    state.dim_ok = True
    state.file_dim = reader.dim
    wrong = [i for i, n in enumerate(lengths) if n != reader.dim]
    group = record.get(GROUP)
    group = None if group in (None, "") else str(group)
    label_code, true_label = _label_codes(record, labels_required=reader.labels_required)
    n = len(rows)
    if wrong:
        code, problem = _width_problem(reader, lengths, wrong[0])
        codes = np.full(n, CODE[code], np.int8)
        return Whole(
            Chunk(
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
    dim = reader.dim
    assert dim is not None  # every row has the dataset's dim, so it is set
    features, non_numeric = _features(rows, dim)
    chunk = validate_rows(
        reader,
        state=state,
        ids=np.array([example_id] * n, object),
        groups=np.array([group] * n, object),
        labels=np.full(n, label_code, np.int8),
        true_labels=np.full(n, true_label, np.int8),
        features=features,
        non_numeric=non_numeric,
        positions=np.full(n, line_no, np.int64),
        raw_value=lambda i, what: record.get(what) if isinstance(what, str) else rows[i][what],
        feature_names=[f"rows[i][{j}]" for j in range(dim)],
    )
    # Each JSON line is a whole example: close it right away.
    return Whole(chunk)


def _label_codes(record: dict, *, labels_required: bool) -> tuple[int, int]:
    """The label and true_label as codes: 0/1, -1 where absent (and allowed), -2 where invalid."""
    label_raw = record.get(LABEL)
    label = parse_label(label_raw)
    # -1: absent, allowed when labels are optional (scoring); -2: invalid
    label_code = label if label is not None else -2
    if label_raw in (None, "") and not labels_required:
        label_code = -1
    tl_raw = record.get(TRUE_LABEL)
    tl = None if tl_raw is None else parse_label(tl_raw)
    true_label = -1 if tl_raw is None else (tl if tl is not None else -2)
    return label_code, true_label


def _width_problem(reader: RawReader, lengths: list[int], i: int) -> tuple[str, str]:
    """Reason and problem of an example whose row ``i`` (the first) is not ``dim`` wide."""
    got = "not a list" if lengths[i] < 0 else f"{lengths[i]} values"
    problem = f"row {i} has {got}, expected dim {reader.dim} (set by {reader.dim_origin})"
    code = WRONG_COLUMNS
    if len(set(lengths)) == 1 and lengths[0] > 0:
        # Every row agrees on another width: the example has another dimension.
        code = DIM_MISMATCH
        problem = (
            f"rows have {lengths[0]} values but {reader.dim_owner} has dim {reader.dim} "
            f"(set by {reader.dim_origin})"
        )
    return code, problem


def _features(rows: list[list[Any]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows as a float64 array (NaN where a value is not a number) and the non-numeric mask."""
    n = len(rows)
    features: np.ndarray
    non_numeric: np.ndarray
    if all(type(v) in _NUMBER for r in rows for v in r):
        features = np.array(rows, np.float64)
        non_numeric = np.zeros(features.shape, bool)
    else:
        cells = [v for r in rows for v in r]
        flags = [type(v) not in _NUMBER for v in cells]
        non_numeric = np.array(flags, bool).reshape(n, dim)
        features = np.array(
            [np.nan if f else v for v, f in zip(cells, flags, strict=True)], np.float64
        )
        features = features.reshape(n, dim)
    return features, non_numeric


def _len(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0
