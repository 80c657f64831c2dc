"""CSV files (optionally gzipped) of the long layout: one line per row of an example.

The file is cut into blocks of whole records by ``csvrecords`` (so quoted
newlines and very long fields never straddle a block) and each block is parsed
by pyarrow; positions are physical lines. A line with the wrong number of
fields rejects its example; the first line fixes the columns (a header, or
positions when ``header: false``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from dsprior.contract import EXAMPLE_ID, GROUP, LABEL
from dsprior.rawio.csvrecords import RecordBlock, iter_record_blocks
from dsprior.rawio.rejects import WRONG_COLUMNS, Reject
from dsprior.rawio.sources import SourceSpec
from dsprior.rawio.validation import CODE, Chunk, parse_label, resolve_columns, table_chunk

if TYPE_CHECKING:
    from dsprior.rawio.reader import FileState, RawReader


def read_csv(
    reader: RawReader, spec: SourceSpec, path: Path, state: FileState
) -> Iterator[Chunk | Reject]:
    """Blocks of whole records (csvrecords) parsed by pyarrow; positions are physical lines."""
    state.first_position = 1
    roles: dict[str, int | None] | None = None
    feature_idx: list[int] | None = None
    n_cols = 0
    with pa.input_stream(str(path), compression="detect") as stream:
        blocks = iter_record_blocks(
            stream,
            delimiter=spec.delimiter,
            block_bytes=reader.csv_block_bytes,
            max_record_bytes=reader.csv_max_record_bytes,
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
                resolved = resolve_columns(reader, spec, names, state)
                if isinstance(resolved, Reject):
                    yield resolved
                    return
                roles, feature_idx = resolved
                if spec.header:
                    block = block.drop_first()
            if len(block):
                assert roles is not None and feature_idx is not None  # from the first records
                yield from _read_block(reader, spec, block, roles, feature_idx, n_cols, state)


def _read_block(
    reader: RawReader,
    spec: SourceSpec,
    block: RecordBlock,
    roles: dict[str, int | None],
    feature_idx: list[int],
    n_cols: int,
    state: FileState,
) -> Iterator[Chunk]:
    """Parse one block of whole records; a record with the wrong field count rejects its example."""
    internal = [f"c{i}" for i in range(n_cols)]
    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:  # pyarrow.csv.InvalidRow
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
    chunk = table_chunk(reader, batch[0], roles, feature_idx, lines, state) if batch else None
    cut = 0
    for index, text, actual in invalid:
        at = index - int(np.count_nonzero(bad[:index]))  # rows of the table before it
        if chunk is not None:
            yield _slice(chunk, cut, at)
        yield _invalid_row_chunk(spec, roles, int(block.lines[index]), text, actual, n_cols, state)
        cut = at
    if chunk is not None:
        yield _slice(chunk, cut, len(chunk))


def _slice(chunk: Chunk, lo: int, hi: int) -> Chunk:
    return Chunk(
        ids=chunk.ids[lo:hi],
        groups=chunk.groups[lo:hi],
        labels=chunk.labels[lo:hi],
        true_labels=chunk.true_labels[lo:hi],
        features=chunk.features[lo:hi],
        positions=chunk.positions[lo:hi],
        codes=chunk.codes[lo:hi],
        describe=lambda i: chunk.describe(lo + i),
    )


def _invalid_row_chunk(
    spec: SourceSpec,
    roles: dict[str, int | None],
    number: int,
    text: str,
    actual: int,
    expected: int,
    state: FileState,
) -> Chunk:
    """A CSV line with the wrong number of fields, as a one-row chunk that rejects its example."""
    fields = next(csv.reader([text], delimiter=spec.delimiter), [])

    def field_at(role: str) -> str | None:
        i = roles.get(role)
        return fields[i] if i is not None and i < len(fields) and fields[i] != "" else None

    label = parse_label(field_at(LABEL))
    return Chunk(
        ids=np.array([field_at(EXAMPLE_ID)], object),
        groups=np.array([field_at(GROUP)], object),
        labels=np.array([-2 if label is None else label], np.int8),
        true_labels=np.array([-1], np.int8),
        features=np.zeros((1, 0)),
        positions=np.array([number], np.int64),
        codes=np.array([CODE[WRONG_COLUMNS]], np.int8),
        describe=lambda i: f"expected {expected} columns (as in the first line), got {actual}",
    )


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    """Rows as CSV text (used by tests and examples)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
