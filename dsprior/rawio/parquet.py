"""Parquet files of the long layout: one table row per row of an example.

Read with ``ParquetFile.iter_batches``, about ``chunk_rows`` rows at a time and
only the columns needed, so memory follows the batch; positions are 0-based rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from dsprior.rawio.rejects import Reject
from dsprior.rawio.sources import SourceSpec
from dsprior.rawio.validation import Chunk, resolve_columns, table_chunk

if TYPE_CHECKING:
    from dsprior.rawio.reader import FileState, RawReader


def read_parquet(
    reader: RawReader, spec: SourceSpec, path: Path, state: FileState
) -> Iterator[Chunk | Reject]:
    """Batches of about ``chunk_rows`` rows, read column by column; positions are 0-based rows."""
    state.first_position = 0
    # No pre-buffering and a buffered stream: memory follows the batch, not whole row
    # groups (pre-buffered iter_batches keeps growing over a file of many row groups).
    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    names = parquet.schema_arrow.names
    resolved = resolve_columns(reader, spec, names, state)
    if isinstance(resolved, Reject):
        yield resolved
        return
    roles, feature_idx = resolved
    needed = sorted(
        {i for i in roles.values() if i is not None} | set(feature_idx if state.dim_ok else [])
    )
    position = {j: k for k, j in enumerate(needed)}
    roles = {r: (position[i] if i is not None else None) for r, i in roles.items()}
    feature_idx = [position[j] for j in feature_idx] if state.dim_ok else []
    start = 0
    for batch in parquet.iter_batches(
        batch_size=reader.chunk_rows, columns=[names[j] for j in needed]
    ):
        positions = np.arange(start, start + batch.num_rows, dtype=np.int64)
        state.rows += batch.num_rows
        state.last_position = start
        start += batch.num_rows
        yield table_chunk(reader, batch, roles, feature_idx, positions, state)
