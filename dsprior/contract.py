"""The data contract: what an example is, and how the canonical dataset stores it.

An example is an ordered set of sentence rows, each a vector of ``dim`` numbers,
with an id, an entity ``group`` (the unit of leakage), a distant-supervision
``label`` and the ``source`` it came from. The canonical dataset is a folder of
Parquet shards with one row per example. Features are one binary value per
example: its ``n_rows x dim`` numbers in the dataset's ``dtype`` (little-endian,
row-major; ``dim`` and ``dtype`` are in the schema's metadata), stored without
compression. A reader fetches the metadata columns without touching them, and
reads an example's rows with one memory copy (``decode_features``): a nested
``list<fixed_size_list<float16>>`` column, the obvious layout, makes Parquet decode
repetition and definition levels for every number and was measured 15x slower to
read (random floats barely compress, so zstd only cost time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EXAMPLE_ID = "example_id"
GROUP = "group"
LABEL = "label"
SOURCE = "source"
NEGATIVE_RATE = "negative_rate"
TRUE_LABEL = "true_label"
N_ROWS = "n_rows"
FEATURES = "features"

ID_COLUMNS = (EXAMPLE_ID, GROUP, LABEL)
METADATA_COLUMNS = (EXAMPLE_ID, GROUP, LABEL, SOURCE, NEGATIVE_RATE, TRUE_LABEL, N_ROWS)

DTYPES = {"float16": pa.float16(), "float32": pa.float32()}
DEFAULT_DIM = 700
SHARD_GLOB = "part-*.parquet"


def feature_type(dim: int, dtype: str = "float16") -> pa.DataType:
    """Arrow type of the ``features`` column (checks ``dim`` and ``dtype``): binary values."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return pa.binary()


def numpy_dtype(dtype: str) -> np.dtype:
    """The little-endian numpy dtype the ``features`` bytes hold."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return np.dtype("<f2" if dtype == "float16" else "<f4")


def max_abs_for(dtype: str) -> float:
    """Largest finite magnitude ``dtype`` stores: a larger value is out of range for it."""
    return float(np.finfo(numpy_dtype(dtype)).max)


def encode_features(arrays: Sequence[np.ndarray], dtype: str) -> pa.Array:
    """One binary value per ``(n_rows, dim)`` array, in ``dtype``; one copy of the numbers."""
    target = numpy_dtype(dtype)
    data = np.concatenate([np.ascontiguousarray(a, dtype=target).reshape(-1) for a in arrays])
    sizes = np.fromiter((a.size * target.itemsize for a in arrays), np.int64, len(arrays))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    return pa.Array.from_buffers(
        pa.binary(), len(arrays), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def decode_features(
    features: pa.Array | pa.ChunkedArray, *, dim: int, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, offsets)`` of a ``features`` column: example ``i`` is ``rows[offsets[i]:offsets[i+1]]``.

    ``rows`` is a read-only ``(total_rows, dim)`` view of the column's buffer (no copy);
    ``offsets`` count rows. Slices of a column are honoured.
    """
    if isinstance(features, pa.ChunkedArray):
        features = features.combine_chunks()
    if not pa.types.is_binary(features.type):
        raise ValueError(
            f"features column has type {features.type}, expected binary: a dataset written by "
            "an older version of ingest; run the ingest stage again"
        )
    target = numpy_dtype(dtype)
    row_bytes = dim * target.itemsize
    _, offsets_buffer, data_buffer = features.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int32, count=len(features) + 1, offset=features.offset * 4
    ).astype(np.int64)
    if np.any(offsets % row_bytes):
        raise ValueError(f"features values are not whole rows of {dim} {dtype} numbers")
    start, stop = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, dtype=np.uint8, count=stop - start, offset=start)
    rows = data.view(target).reshape(-1, dim)
    return rows, (offsets - start) // row_bytes


def dataset_schema(dim: int, dtype: str = "float16") -> pa.Schema:
    """Schema of every shard of the canonical dataset."""
    return pa.schema(
        [
            pa.field(EXAMPLE_ID, pa.string(), nullable=False),
            pa.field(GROUP, pa.string(), nullable=False),
            pa.field(LABEL, pa.int8(), nullable=False),
            pa.field(SOURCE, pa.string(), nullable=False),
            pa.field(NEGATIVE_RATE, pa.float64(), nullable=False),
            pa.field(TRUE_LABEL, pa.int8(), nullable=True),
            pa.field(N_ROWS, pa.int32(), nullable=False),
            pa.field(FEATURES, feature_type(dim, dtype), nullable=False),
        ],
        metadata={b"dim": str(dim).encode(), b"dtype": dtype.encode()},
    )


def shard_paths(dataset_dir: str | Path) -> list[Path]:
    """The dataset's shards in their canonical order."""
    paths = sorted(Path(dataset_dir).glob(SHARD_GLOB))
    if not paths:
        raise FileNotFoundError(
            f"{dataset_dir}: no {SHARD_GLOB} shards; run the ingest stage first"
        )
    return paths


def dataset_dim(dataset_dir: str | Path) -> int:
    """Feature dimension recorded in the dataset's schema."""
    schema = pq.read_schema(shard_paths(dataset_dir)[0])
    return int(schema.metadata[b"dim"])


def dataset_dtype(dataset_dir: str | Path) -> str:
    """Feature dtype recorded in the dataset's schema (``float16`` or ``float32``)."""
    schema = pq.read_schema(shard_paths(dataset_dir)[0])
    return schema.metadata[b"dtype"].decode()


def read_metadata(dataset_dir: str | Path, columns: Iterable[str] = METADATA_COLUMNS) -> pa.Table:
    """All metadata columns, in dataset order, without reading any features."""
    columns = list(columns)
    if FEATURES in columns:
        raise ValueError("read_metadata never reads features; use the batch reader")
    import pyarrow.dataset as pads  # here, not at the top: it imports pandas (0.35 s)

    dataset = pads.dataset([str(p) for p in shard_paths(dataset_dir)], format="parquet")
    return dataset.to_table(columns=columns)


def writer_options(compression: str = "zstd") -> dict:
    """``pq.ParquetWriter`` options of every shard (also the benchmarks' reference writes)."""
    return {
        # zstd saved 8% on random float16 features and cost most of the read time
        "compression": {
            name: ("none" if name == FEATURES else compression)
            for name in dataset_schema(DEFAULT_DIM).names
        },
        "write_statistics": [EXAMPLE_ID, LABEL],
        # Dictionary-encoding random floats only costs time (about 4x on write).
        "use_dictionary": [EXAMPLE_ID, GROUP, SOURCE],
    }


class DatasetWriter:
    """Append examples to a folder of Parquet shards in the canonical schema.

    Examples are buffered up to ``row_group_size`` and flushed as one row group,
    so memory is bounded by a row group, not by the dataset. A new shard starts
    every ``shard_size`` examples. Write into a temporary folder (see
    ``runtime.atomic_directory``) so an interrupted run leaves nothing behind.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        dim: int,
        dtype: str = "float16",
        row_group_size: int = 256,
        shard_size: int = 4096,
        compression: str = "zstd",
    ) -> None:
        if row_group_size < 1 or shard_size < 1:
            raise ValueError(
                f"row_group_size and shard_size must be >= 1, got {row_group_size}, {shard_size}"
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.dtype = dtype
        self.numpy_dtype = np.float16 if dtype == "float16" else np.float32
        self.schema = dataset_schema(dim, dtype)
        self.row_group_size = row_group_size
        self.shard_size = shard_size
        self.compression = compression
        self.examples_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_index = -1
        self._in_shard = 0
        self._buffer: dict[str, list] = {name: [] for name in self.schema.names}

    def add(
        self,
        *,
        example_id: str,
        group: str,
        label: int,
        source: str,
        negative_rate: float,
        rows: np.ndarray,
        true_label: int | None = None,
    ) -> None:
        """Buffer one example; ``rows`` is a ``(n_rows, dim)`` array."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.dim or rows.shape[0] < 1:
            raise ValueError(
                f"example {example_id!r}: rows must have shape (n_rows >= 1, {self.dim}), "
                f"got {rows.shape}"
            )
        buf = self._buffer
        buf[EXAMPLE_ID].append(example_id)
        buf[GROUP].append(group)
        buf[LABEL].append(int(label))
        buf[SOURCE].append(source)
        buf[NEGATIVE_RATE].append(float(negative_rate))
        buf[TRUE_LABEL].append(None if true_label is None else int(true_label))
        buf[N_ROWS].append(rows.shape[0])
        buf[FEATURES].append(rows.astype(self.numpy_dtype, copy=False))
        if len(buf[EXAMPLE_ID]) >= min(self.row_group_size, self._room_in_shard()):
            self._flush()

    def _room_in_shard(self) -> int:
        """Examples the current shard still takes; a full (or no) shard means a new one."""
        if self._writer is None or self._in_shard >= self.shard_size:
            return self.shard_size
        return self.shard_size - self._in_shard

    def _features_array(self, arrays: list[np.ndarray]) -> pa.Array:
        return encode_features(arrays, self.dtype)

    def _flush(self) -> None:
        buf = self._buffer
        n = len(buf[EXAMPLE_ID])
        if n == 0:
            return
        if self._writer is None or self._in_shard >= self.shard_size:
            self._open_next_shard()
        assert self._writer is not None  # _open_next_shard opened one
        columns = [
            pa.array(buf[name], type=self.schema.field(name).type)
            if name != FEATURES
            else self._features_array(buf[FEATURES])
            for name in self.schema.names
        ]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self._in_shard += n
        self.examples_written += n
        self._buffer = {name: [] for name in self.schema.names}

    def _open_next_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._shard_index += 1
        self._in_shard = 0
        path = self.directory / f"part-{self._shard_index:05d}.parquet"
        self._writer = pq.ParquetWriter(path, self.schema, **writer_options(self.compression))

    def close(self) -> None:
        """Flush what is buffered and close the last shard (an empty dataset gets one empty shard)."""
        self._flush()
        if self._writer is None:
            self._open_next_shard()
        assert self._writer is not None  # _open_next_shard opened one
        self._writer.close()
        self._writer = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.close()
