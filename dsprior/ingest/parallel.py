"""Parallel ingest (``ingest.workers > 1``): the serial run's dataset bytes, metrics and rejects.

Phase 1: one task per raw file reads and validates it with its own RawReader and spills
the valid examples (already in the output dtype) to an uncompressed temporary Parquet
file, returning only light metadata. The parent then replays the items in file order,
exactly as the serial loop would see them: it redoes the cross-file duplicate check with
one global table of claimed ids, applies on_error, counts and writes rejects. Phase 2:
the kept examples are cut into the same shards as a serial run (every shard_size kept
examples, in order) and each shard is written by a task with its own DatasetWriter.
A shard's bytes depend only on its examples, so the dataset is byte-identical.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from dsprior import contract
from dsprior.ingest.config import IngestConfig
from dsprior.ingest.counts import IngestResult, SourceCounts
from dsprior.ingest.writer import WRITTEN_COLUMNS, LazyWriter, open_writer
from dsprior.rawio import (
    DUPLICATE_ID,
    EMPTY_EXAMPLE,
    UNREADABLE_FILE,
    FileTally,
    RawReader,
    Reject,
    SourceSpec,
    duplicate_problem,
    make_reject,
    simulated,
)

log = logging.getLogger(__name__)

_SPILL = ".spill"
_SPILL_ROW_GROUP = 32


@dataclass(frozen=True)
class _FileTask:
    index: int
    spec: SourceSpec
    path: Path
    fmt: str
    dim: int | None
    dim_origin: str | None
    chunk_rows: int
    max_abs: float
    dtype: str
    stop_at_reject: bool
    spill: Path


@dataclass
class _FileItems:
    """What a file task returns: per item, example metadata or a reject, and whether dim was known."""

    # (example_id, n_rows, position) for an example, or a Reject
    items: list[tuple[str, int, int] | Reject]
    dim_known: list[bool]
    dim: int | None
    tally: FileTally


def _read_file_task(task: _FileTask) -> _FileItems:
    reader = RawReader(
        chunk_rows=task.chunk_rows,
        max_abs=task.max_abs,
        dim=task.dim,
        dim_origin=task.dim_origin,
        formats=simulated.READERS,
    )
    items: list[tuple[str, int, int] | Reject] = []
    dim_known: list[bool] = []

    def open_spill(dim: int) -> contract.DatasetWriter:
        return contract.DatasetWriter(
            task.spill,
            dim=dim,
            dtype=task.dtype,
            row_group_size=_SPILL_ROW_GROUP,
            shard_size=1 << 62,
            compression="none",
        )

    with LazyWriter(open_spill) as writer:
        for item in reader.read_file(task.spec, task.path, task.fmt):
            dim_known.append(reader.dim is not None)
            if isinstance(item, Reject):
                items.append(item)
                if task.stop_at_reject:
                    break
                continue
            writer.add(item, task.spec, dim=reader.dim)
            items.append((item.example_id, item.n_rows, item.position))
    return _FileItems(items=items, dim_known=dim_known, dim=reader.dim, tally=reader.tallies[-1])


def _probe_dim(
    files: list[tuple[SourceSpec, Path, str]], reader: RawReader
) -> tuple[int | None, str | None, int]:
    """The dim a serial run fixes, the file that fixes it and that file's index (len if none).

    Reads files in order only until the dimension is known (usually one chunk of the first file).
    """
    for index, (spec, path, fmt) in enumerate(files):
        items = reader.read_file(spec, path, fmt)
        for _ in items:
            if reader.dim is not None:
                break
        items.close()
        if reader.dim is not None:
            return reader.dim, reader.dim_origin, index
    return None, None, len(files)


def _write_shard_task(args: tuple) -> None:
    """Write one output shard from spilled examples: [(spill file, [indices])...] in order."""
    out_path, segments, dim, config = args
    tmp = out_path.parent / f".{out_path.name}.d"
    with open_writer(tmp, dim, config) as writer:
        for spill, indices in segments:
            _copy_examples(writer, spill, indices)
    os.replace(tmp / "part-00000.parquet", out_path)
    shutil.rmtree(tmp)


def _copy_examples(writer: contract.DatasetWriter, spill: Path, indices: np.ndarray) -> None:
    parquet = pq.ParquetFile(spill)
    groups = indices // _SPILL_ROW_GROUP
    for group in np.unique(groups):
        table = parquet.read_row_group(int(group))
        flat, offsets = contract.decode_features(
            table.column(contract.FEATURES), dim=writer.dim, dtype=writer.dtype
        )
        meta = table.drop_columns([contract.FEATURES]).to_pydict()
        for i in (indices[groups == group] - group * _SPILL_ROW_GROUP).tolist():
            writer.add(
                rows=flat[offsets[i] : offsets[i + 1]], **{c: meta[c][i] for c in WRITTEN_COLUMNS}
            )


def ingest_parallel(
    config: IngestConfig,
    out_dir: Path,
    *,
    on_reject: Callable[[Reject], None] = lambda reject: None,
) -> IngestResult:
    """``run.ingest_sources`` with files read and shards written by ``config.workers`` processes.

    Same dataset bytes, metrics and rejects as the serial run. Memory per process is
    bounded as in the serial run; the parent holds the claimed ids (as the serial run
    does) and one small item list per file; the spill needs about the uncompressed size
    of the dataset on disk, inside ``out_dir``, until the shards are written.
    """
    if config.workers < 2:
        raise ValueError(f"ingest_parallel needs workers >= 2, got {config.workers!r}")
    max_abs = contract.max_abs_for(config.dtype)
    listed = [(spec, simulated.list_source(spec)) for spec in config.sources]
    files = [(spec, path, fmt) for spec, paths in listed for path, fmt in paths]
    dim, dim_origin, dim_file = _probe_dim(
        files, RawReader(chunk_rows=config.chunk_rows, max_abs=max_abs, formats=simulated.READERS)
    )
    spill_root = out_dir / _SPILL
    tasks = [
        _FileTask(
            index=i,
            spec=spec,
            path=path,
            fmt=fmt,
            dim=dim if i > dim_file else None,
            dim_origin=dim_origin if i > dim_file else None,
            chunk_rows=config.chunk_rows,
            max_abs=max_abs,
            dtype=config.dtype,
            stop_at_reject=config.on_error == "fail",
            spill=spill_root / f"{i:06d}",
        )
        for i, (spec, path, fmt) in enumerate(files)
    ]
    counts = {spec.name: SourceCounts() for spec in config.sources}
    result = IngestResult(counts=counts, dim=None)
    seen: dict[str, int] = {}
    kept: list[np.ndarray] = []  # per file: spill indices of the examples written
    context = multiprocessing.get_context("spawn")  # no forked pyarrow thread pools
    # the simulated sources' tables the parent drew while listing: the workers adopt them
    with ProcessPoolExecutor(
        max_workers=config.workers,
        mp_context=context,
        initializer=simulated.adopt_tables,
        initargs=(simulated.drawn_tables(),),
    ) as pool:
        futures: list[Future[_FileItems] | None] = [
            pool.submit(_read_file_task, task) for task in tasks
        ]
        try:
            position = 0
            for spec, paths in listed:
                count = counts[spec.name]
                count.add_files(paths)
                for _ in paths:
                    task = tasks[position]
                    future = futures[position]
                    assert future is not None  # each is read once, in order
                    done = future.result()
                    futures[position] = None  # its items are replayed now: free them
                    position += 1
                    kept.append(_replay(task, done, files, seen, count, result, config, on_reject))
                    if result.failure is not None:
                        break
                if result.failure is not None:
                    break
                log.info("%s: %s", spec.name, count.as_dict())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(spill_root, ignore_errors=True)
            raise
        if result.failure is not None or result.written == 0:
            pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(spill_root, ignore_errors=True)
            return result
        assert dim is not None  # an example was written, so a file fixed the dim
        result.dim = dim
        shards = _plan_shards(tasks, kept, out_dir, dim, config)
        list(tqdm(pool.map(_write_shard_task, shards), total=len(shards), desc="write shards",
                  unit="shard", mininterval=2, leave=False))  # fmt: skip
    shutil.rmtree(spill_root, ignore_errors=True)
    return result


def _replay(
    task: _FileTask,
    done: _FileItems,
    files: list[tuple[SourceSpec, Path, str]],
    seen: dict[str, int],
    count: SourceCounts,
    result: IngestResult,
    config: IngestConfig,
    on_reject: Callable[[Reject], None],
) -> np.ndarray:
    """Replay one file's items in order as the serial loop would; return kept spill indices."""
    kind = "line" if task.fmt in ("csv", "jsonl") else "row"
    count.add_tally(done.tally)
    kept: list[int] = []
    spilled = -1
    for item, dim_known in zip(done.items, done.dim_known, strict=True):
        if isinstance(item, Reject):
            reject, example_id, claimed_at = item, item.example_id, item.claimed_at
        else:
            spilled += 1
            reject, (example_id, n_rows, claimed_at) = None, item
        if claimed_at is not None and example_id is not None:
            first = seen.get(example_id)
            if first is None:
                seen[example_id] = task.index
            elif first != task.index and (reject is None or reject.reason not in _KEEP_REASON):
                # Read alone, the file could not know the id came earlier: serial rejects it here.
                first_spec, first_path, _ = files[first]
                reject = make_reject(
                    source=task.spec.name,
                    file=str(task.path),
                    position_kind=kind,
                    example_id=example_id,
                    reason=DUPLICATE_ID,
                    position=claimed_at,
                    problem=duplicate_problem(str(first_path), first_spec.name),
                    n_rows=n_rows if reject is None else reject.n_rows,
                )
        if reject is None:
            kept.append(spilled)
            result.count_written(count, n_rows)
            continue
        if result.count_reject(count, reject, on_reject=on_reject, stop=config.on_error == "fail"):
            result.dim = done.dim if dim_known else None
            break
    return np.asarray(kept, dtype=np.int64)


# Rejects that a serial run reports as such even when the example_id is a duplicate.
_KEEP_REASON = (UNREADABLE_FILE, EMPTY_EXAMPLE)


def _plan_shards(
    tasks: list[_FileTask], kept: list[np.ndarray], out_dir: Path, dim: int, config: IngestConfig
) -> list[tuple]:
    """Cut the kept examples, in file order, into shards of ``shard_size`` as a serial run does."""
    segments: list[tuple[Path, np.ndarray]] = [
        (tasks[i].spill / "part-00000.parquet", indices)
        for i, indices in enumerate(kept)
        if len(indices)
    ]
    shards: list[list[tuple[Path, np.ndarray]]] = []
    current: list[tuple[Path, np.ndarray]] = []
    room = config.shard_size
    for spill, indices in segments:
        while len(indices):
            take, indices = indices[:room], indices[room:]
            current.append((spill, take))
            room -= len(take)
            if room == 0:
                shards.append(current)
                current, room = [], config.shard_size
    if current or not shards:
        shards.append(current)  # an empty dataset still gets one (empty) shard
    return [(out_dir / f"part-{k:05d}.parquet", segs, dim, config) for k, segs in enumerate(shards)]
