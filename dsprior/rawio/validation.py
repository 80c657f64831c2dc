"""Row validation: raw columns and labels converted, each row of a block checked.

A format reader turns its rows into columns (ids, groups, labels, features) and
``validate_rows`` gives each row a code: 0 when the row is fine, else the most
basic problem it has (a ``rejects`` reason). The result is a ``Chunk``, whose
messages are written only for the rows the reader rejects. ``table_chunk`` does
both for a pyarrow batch of the long layout (CSV, Parquet); ``resolve_columns``
finds that layout's columns by name or position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dsprior.contract import EXAMPLE_ID, GROUP, LABEL, TRUE_LABEL
from dsprior.rawio.rejects import (
    BAD_LABEL,
    DIM_MISMATCH,
    MISSING_GROUP,
    MISSING_ID,
    NON_FINITE,
    NON_NUMERIC,
    OUT_OF_RANGE,
    WRONG_COLUMNS,
    Reject,
)
from dsprior.rawio.sources import ROLES, SourceSpec

if TYPE_CHECKING:
    from dsprior.rawio.reader import FileState, RawReader

# Row-level codes as small integers, for vectorised checks (0 = row is fine).
ROW_CODES = (None, DIM_MISMATCH, MISSING_ID, MISSING_GROUP, BAD_LABEL, NON_NUMERIC, NON_FINITE,
             OUT_OF_RANGE, WRONG_COLUMNS)  # fmt: skip
CODE = {name: i for i, name in enumerate(ROW_CODES) if name}


def parse_label(value: Any) -> int | None:
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


def is_none(values: np.ndarray) -> np.ndarray:
    """Mask of None entries in an object array."""
    # One comparison loop in C: str == None is False, None == None is True.
    return np.equal(values, np.array(None, dtype=object)).astype(bool, copy=False)


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


class Chunk:
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
        describe: Callable[[int], str],
    ) -> None:
        self.ids, self.groups, self.labels, self.true_labels = ids, groups, labels, true_labels
        self.features, self.positions, self.codes = features, positions, codes
        self._describe = describe

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self, i: int) -> str:
        return self._describe(i)


class Whole(Chunk):
    """A chunk that is a complete example (JSON Lines): it never merges with a neighbour."""

    def __init__(self, chunk: Chunk) -> None:
        self.__dict__.update(chunk.__dict__)


def validate_rows(
    reader: RawReader,
    *,
    state: FileState,
    ids: np.ndarray,
    groups: np.ndarray,
    labels: np.ndarray,
    true_labels: np.ndarray,
    features: np.ndarray,
    non_numeric: np.ndarray,
    positions: np.ndarray,
    raw_value: Callable[[int, Any], Any],
    feature_names: Sequence[str],
) -> Chunk:
    """Check each row of a block; the codes say what is wrong, ``describe`` says it in words."""
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
        (OUT_OF_RANGE, row_finite & ((high > reader.max_abs) | (low < -reader.max_abs)))
        if reader.max_abs is not None
        else None,
        (NON_FINITE, ~row_finite & ~has_non_numeric),
        (NON_NUMERIC, has_non_numeric),
        (BAD_LABEL, (labels == -2) | (true_labels == -2)),
        (MISSING_GROUP, is_none(groups) if reader.groups_required else np.zeros(n, bool)),
        (MISSING_ID, is_none(ids)),
        (DIM_MISMATCH, np.full(n, not state.dim_ok)),
    ]
    # Later checks overwrite earlier ones: the most basic problem of a row is reported.
    for check in checks:
        if check is not None:
            codes[check[1]] = CODE[check[0]]

    def describe(i: int) -> str:
        code = ROW_CODES[codes[i]]
        if code == DIM_MISMATCH:
            return (
                f"file has {state.file_dim} feature columns but {reader.dim_owner} has dim "
                f"{reader.dim} (set by {reader.dim_origin})"
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
            return f"non-numeric value {raw_value(i, j)!r} in feature column {feature_names[j]!r}"
        if code == NON_FINITE:
            j = int(np.flatnonzero(~np.isfinite(features[i]))[0])
            return (
                f"non-finite value {float(features[i, j])!r} in feature column {feature_names[j]!r}"
            )
        j = int(np.flatnonzero(np.abs(features[i]) > reader.max_abs)[0])
        return (
            f"value {float(features[i, j])!r} in feature column {feature_names[j]!r} exceeds "
            f"{reader.max_abs:g} (the output dtype's range)"
        )

    return Chunk(
        ids=ids,
        groups=groups,
        labels=labels,
        true_labels=true_labels,
        features=features,
        positions=positions,
        codes=codes,
        describe=describe,
    )


def table_chunk(
    reader: RawReader,
    batch: pa.RecordBatch,
    roles: dict[str, int | None],
    feature_idx: list[int],
    positions: np.ndarray,
    state: FileState,
) -> Chunk:
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

    return validate_rows(
        reader,
        state=state,
        ids=_ids_to_numpy(col(roles[EXAMPLE_ID])),
        groups=_ids_to_numpy(col(group_col)) if group_col is not None else np.full(n, None),
        labels=_labels_to_codes(
            col(label_col) if label_col is not None else None,
            n,
            optional=not reader.labels_required,
        ),
        true_labels=_labels_to_codes(col(tl) if tl is not None else None, n, optional=True),
        features=features,
        non_numeric=non_numeric,
        positions=positions,
        raw_value=raw_value,
        feature_names=state.feature_names or [],  # resolve_columns sets them
    )


def resolve_columns(
    reader: RawReader, spec: SourceSpec, names: list[str], state: FileState
) -> tuple[dict[str, int | None], list[int]] | Reject:
    """Column positions of each role and of the features, from names or 0-based positions.

    A file whose columns are found has its feature count checked against the dimension
    (``reader.check_dim``) and its feature names kept in ``state``; else a file reject.
    """
    required_roles = reader.required_roles
    roles: dict[str, int | None] = {}
    for role in ROLES:
        wanted = spec.columns.get(role, role if spec.header else None)
        if wanted is None:
            roles[role] = None
            continue
        index: int | None
        if isinstance(wanted, int) and not spec.header:
            ok = wanted < len(names)
            index = wanted
        else:
            ok = wanted in names
            index = names.index(str(wanted)) if ok else None  # found, so a name
        if not ok:
            optional = role == TRUE_LABEL or role not in required_roles
            if optional and role not in spec.columns:
                roles[role] = None
                continue
            return state.reject(
                None, WRONG_COLUMNS, state.first_position,
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
                return state.reject(
                    None, WRONG_COLUMNS, state.first_position,
                    f"no feature column {f!r}", scope="file",
                )  # fmt: skip
    if not feature_idx:
        return state.reject(
            None, WRONG_COLUMNS, state.first_position, "no feature columns",
            scope="file",
        )  # fmt: skip
    reader.check_dim(len(feature_idx), state)
    state.feature_names = [names[j] for j in feature_idx]
    return roles, feature_idx
