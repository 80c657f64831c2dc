"""The score command's output file: its columns, Parquet or CSV by extension, written
beside the target and renamed into place, and read back."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),
        # the model's raw log-odds (output unit's pre-activation, float64): rank by this
        pa.field("logit", pa.float64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),  # sigmoid(logit)
        pa.field("probability", pa.float64(), nullable=False),
        pa.field("decision", pa.int8(), nullable=False),
        pa.field("expected_cost", pa.float64(), nullable=False),
    ]
)
OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}


def output_format(path: str | Path) -> str:
    """``parquet`` or ``csv`` from the output's extension; ValueError for anything else."""
    name = Path(path).name.lower()
    for ext in sorted(OUTPUT_FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return OUTPUT_FORMATS[ext]
    raise ValueError(
        f"output {str(path)!r}: extension must be one of {sorted(OUTPUT_FORMATS)} "
        "(it chooses Parquet or CSV)"
    )


class ScoresWriter:
    """Parquet or CSV rows, written beside the target and renamed into place on success."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.rows = 0
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(self._tmp, OUTPUT_SCHEMA, compression="zstd")
            self._sink = None
        else:
            compression = "gzip" if self.path.name.lower().endswith(".gz") else None
            self._sink = pa.output_stream(str(self._tmp), compression=compression)
            self._writer = pacsv.CSVWriter(self._sink, OUTPUT_SCHEMA)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        try:
            if self.rows == 0 and self.format == "csv":
                self._writer.write_table(OUTPUT_SCHEMA.empty_table())  # the header line
            self._writer.close()
            if self._sink is not None:
                self._sink.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)  # nothing of a failed run stays beside the output
            raise

    def discard(self) -> None:
        self._writer.close()
        if self._sink is not None:
            self._sink.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ScoresWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def read_scores(path: str | Path) -> pa.Table:
    """The output's rows back, as written (Parquet or CSV)."""
    if output_format(path) == "parquet":
        return pq.read_table(path)
    options = pacsv.ConvertOptions(column_types=OUTPUT_SCHEMA)
    return pacsv.read_csv(path, convert_options=options)
