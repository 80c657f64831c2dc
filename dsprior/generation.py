"""The simulator's sources written as raw files, in a format users bring (``stages.generate``).

The default pipeline therefore goes through the real ingest path. Each source
becomes a folder of long-layout files (one line per sentence row: id columns,
then ``f0 .. f{dim-1}``) in Parquet, CSV(.gz) or JSON Lines (one example a line).
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from dsprior.runtime import atomic_directory, write_json
from dsprior.simulator import (
    RAW_FORMATS,
    ExampleTable,
    Population,
    SimulatorConfig,
    check_params,
    draw_sources,
    iter_examples,
    part_bounds,
    sources_from_params,
)

log = logging.getLogger(__name__)

FORMATS = RAW_FORMATS
CHUNK_EXAMPLES = 256


ID_COLUMNS = ("example_id", "group", "label", "true_label")


def long_table(table: ExampleTable, indices: list[int], rows: list[np.ndarray]) -> pa.Table:
    """Examples as a long table: one line per sentence row, id columns then features."""
    counts = np.array([r.shape[0] for r in rows])
    columns: dict[str, Any] = {
        "example_id": np.repeat(table.example_id[indices], counts),
        "group": np.repeat(table.group[indices], counts),
        "label": np.repeat(table.label[indices], counts),
        "true_label": np.repeat(table.true_label[indices], counts),
    }
    arrays = [pa.array(v) for v in columns.values()]
    # One transposing copy makes every feature column contiguous, so each pa.array wraps
    # its memory; a column sliced from the row-major rows is strided and was copied value
    # by value (about 30x slower).
    by_column = np.concatenate(rows).T.copy()
    arrays += [pa.array(column) for column in by_column]
    names = [*columns, *(f"f{j}" for j in range(by_column.shape[0]))]
    return pa.Table.from_arrays(arrays, names=names)


def parquet_options() -> dict[str, Any]:
    """``pq.ParquetWriter`` options of the raw Parquet files.

    Dictionary encoding and zstd only for the id columns. Tried on 700 random float32
    columns, the default dictionary encoding gave up on each column after its first
    page and cost 5x the time of writing them plain (and left the file larger), and zstd
    saved 9 % for 40 % more time to write and time to decompress on every read. No
    statistics on the features, which nothing reads.
    """
    return {
        "compression": {name: "zstd" for name in ID_COLUMNS},
        "use_dictionary": ["example_id", "group"],
        "write_statistics": list(ID_COLUMNS),
    }


class _RawWriter:
    """Append chunks of long-layout rows to one raw file of the chosen format."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        self._stream: Any = None  # a text file, or a (gzip) binary one under the CSV writer
        self._raw: IO[bytes] | None = None

    def write(self, table: ExampleTable, indices: list[int], rows: list[np.ndarray]) -> None:
        if self.fmt == "jsonl":
            if self._stream is None:
                self._stream = open(self.path, "w")
            for i, r in zip(indices, rows, strict=True):
                record = {
                    "example_id": table.example_id[i],
                    "group": table.group[i],
                    "label": int(table.label[i]),
                    "true_label": int(table.true_label[i]),
                    "rows": np.round(r.astype(np.float64), 5).tolist(),
                }
                self._stream.write(json.dumps(record) + "\n")
            return
        long = long_table(table, indices, rows)
        if self.fmt == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, long.schema, **parquet_options())
            self._parquet.write_table(long)
        else:
            if self._csv is None:
                self._raw = open(self.path, "wb")
                # mtime=0 keeps the gzip header, and so the file, byte-identical across runs.
                self._stream = (
                    gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
                    if self.fmt == "csv.gz"
                    else self._raw
                )
                self._csv = pacsv.CSVWriter(self._stream, long.schema)
            self._csv.write_table(long)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
        if self._stream is not None:
            self._stream.close()
        if self._raw is not None and self._raw is not self._stream:
            self._raw.close()


def write_source(
    table: ExampleTable,
    config: SimulatorConfig,
    directory: Path,
    *,
    fmt: str,
    files: int,
    seed: int,
    source_index: int,
) -> list[str]:
    """Write one source's examples into ``files`` raw files; return their names."""
    if fmt not in FORMATS:
        raise ValueError(f"generate.format must be one of {FORMATS}, got {fmt!r}")
    directory.mkdir(parents=True, exist_ok=True)
    bounds = part_bounds(len(table), files)
    names = []
    progress = tqdm(total=len(table), desc=f"generate {directory.name}", unit="ex", mininterval=2)
    examples = iter_examples(table, config, seed=seed, source_index=source_index)
    for part, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        name = f"part-{part:03d}.{fmt}"
        writer = _RawWriter(directory / name, fmt)
        indices: list[int] = []
        rows: list[np.ndarray] = []
        for _ in range(lo, hi):
            i, r = next(examples)
            indices.append(i)
            rows.append(r)
            if len(indices) == CHUNK_EXAMPLES:
                writer.write(table, indices, rows)
                progress.update(len(indices))
                indices, rows = [], []
        if indices:
            writer.write(table, indices, rows)
            progress.update(len(indices))
        writer.close()
        if hi > lo:
            names.append(name)
        else:
            (directory / name).unlink(missing_ok=True)
    progress.close()
    return names


def summarize(table: ExampleTable, spec: Population) -> dict[str, Any]:
    """What was drawn, for the record next to the raw files."""
    n = len(table)
    return {
        "examples": n,
        "population": spec.examples,
        "negative_rate": spec.negative_rate,
        "groups": int(len(np.unique(table.group))),
        "labelled_positive": int(table.label.sum()),
        "true_positive": int(table.true_label.sum()),
        "rows": int(table.n_rows.sum()),
    }


def generate(params: dict[str, Any], out: Path) -> dict[str, Any]:
    """Draw every source and write its raw files under ``out/<source>/``."""
    config = check_params(params)
    seed = int(params["seed"])
    fmt = params["format"]
    shared = float(params["shared_groups"])
    summary: dict[str, Any] = {"seed": seed, "format": fmt, "dim": config.dim, "sources": {}}
    specs = sources_from_params(params)
    tables = draw_sources(config, specs, seed=seed, shared_fraction=shared)
    with atomic_directory(out) as tmp:
        for source_index, spec in enumerate(specs):
            name, table = spec.name, tables[spec.name]
            files = write_source(
                table,
                config,
                tmp / name,
                fmt=fmt,
                files=int(params["files_per_source"]),
                seed=seed,
                source_index=source_index,
            )
            summary["sources"][name] = {**summarize(table, spec), "files": files}
            log.info("%s: %s", name, summary["sources"][name])
        write_json(tmp / "simulation.json", summary)
    return summary
