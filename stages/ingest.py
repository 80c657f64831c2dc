"""ingest: raw files (CSV, CSV.gz, Parquet, JSON Lines) -> the canonical Parquet dataset.

Sources are read in params order, each source's files sorted by path, rows in
file order; so the same inputs give the same dataset. ``on_error: fail`` stops
at the first bad example with a message naming file, line or row, example_id
and problem; ``on_error: quarantine`` writes each rejected example with its
reason to the rejects file and goes on. Either way the metrics reconcile:
examples read = written + rejected, per source and per reason. The dataset is
written into a temporary folder and renamed into place only on success.

``workers > 1`` reads files in parallel processes and gives the same bytes as a
serial run (see ``ingest_parallel``).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from dsprior import common, contract, simulated, simulator
from dsprior.common import atomic_directory, load_params, run_main, setup_logging, write_json
from dsprior.rawio import (
    DUPLICATE_ID,
    EMPTY_EXAMPLE,
    ON_ERROR,
    UNREADABLE_FILE,
    Example,
    FileTally,
    RawReader,
    Reject,
    RejectsFile,
    SourceSpec,
    duplicate_problem,
    file_bytes,
    make_reject,
    max_abs_for,
)

log = logging.getLogger(__name__)


class _Any(common.Spec):
    def check(self, value: Any, key: str) -> Any:
        return value


PARAMS_SCHEMA: dict[str, common.Spec] = {
    "on_error": common.Choice(*ON_ERROR),
    "dtype": common.Choice(*sorted(contract.DTYPES)),
    "row_group_size": common.Integer(minimum=1),
    "shard_size": common.Integer(minimum=1),
    "chunk_rows": common.Integer(minimum=1),
    "workers": common.Integer(minimum=1),
    "sources": common.MapOf(_Any()),  # each source: SourceSpec.from_params, by its format
}


@dataclass(frozen=True)
class IngestConfig:
    """The ``ingest`` section of params.yaml, validated."""

    sources: list[SourceSpec]
    on_error: str
    dtype: str
    row_group_size: int
    shard_size: int
    chunk_rows: int
    workers: int

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], *, simulation: Mapping[str, Any] | None = None
    ) -> IngestConfig:
        """Validate the section; ``simulation`` is the ``generate`` section (simulated sources)."""
        common.check_section(params, PARAMS_SCHEMA, "ingest")
        sources = params["sources"]
        on_error, dtype = params["on_error"], params["dtype"]
        sizes = {k: params[k] for k in ("row_group_size", "shard_size", "chunk_rows", "workers")}
        specs = [
            SourceSpec.from_params(name, spec, simulation=simulation)
            for name, spec in sources.items()
        ]
        return cls(sources=specs, on_error=on_error, dtype=dtype, **sizes)


@dataclass
class SourceCounts:
    """Reconciliation counters of one source.

    What was read (``examples_read``, ``rows_read``) is counted by the reader from the
    files (``rawio.FileTally``), apart from what was written or rejected, so a lost
    example shows as a difference. Rejects of a whole file (wrong header, empty,
    unreadable between examples) are ``files_rejected``: they hold no example.
    """

    files: int = 0
    bytes_read: int = 0
    examples_read: int = 0
    rows_read: int = 0
    blank_lines: int = 0
    examples_written: int = 0
    examples_rejected: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    files_rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)

    def add_tally(self, tally: FileTally) -> None:
        self.examples_read += tally.examples
        self.rows_read += tally.rows
        self.blank_lines += tally.blank_lines

    def add_reject(self, reject: Reject) -> None:
        if reject.scope == "file":
            self.files_rejected += 1
        else:
            self.examples_rejected += 1
            self.rows_rejected += reject.n_rows
        self.rejected_by_reason[reject.reason] += 1

    @property
    def reconciled(self) -> bool:
        return (
            self.examples_read == self.examples_written + self.examples_rejected
            and self.rows_read == self.rows_written + self.rows_rejected
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes_read": self.bytes_read,
            "examples_read": self.examples_read,
            "examples_written": self.examples_written,
            "examples_rejected": self.examples_rejected,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "blank_lines": self.blank_lines,
            "files_rejected": self.files_rejected,
            "reconciled": self.reconciled,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
        }


@dataclass
class IngestResult:
    """What one ingest did; ``failure`` is the reject that stopped it in fail mode."""

    counts: dict[str, SourceCounts]
    dim: int | None
    failure: Reject | None = None
    written: int = 0  # examples written, all sources


def ingest_sources(
    config: IngestConfig,
    out_dir: Path,
    *,
    on_reject: Callable[[Reject], None] = lambda reject: None,
) -> IngestResult:
    """Read every source and write the valid examples into ``out_dir`` with ``DatasetWriter``.

    Each reject goes to ``on_reject``; in fail mode the first one stops the run
    and is returned as ``failure`` (the caller must then discard ``out_dir``).
    ``config.workers > 1`` runs ``ingest_parallel`` instead, with the same result.
    """
    if config.workers > 1:
        return ingest_parallel(config, out_dir, on_reject=on_reject)
    reader = RawReader(
        chunk_rows=config.chunk_rows,
        max_abs=max_abs_for(config.dtype),
        formats=simulated.READERS,
    )
    counts = {spec.name: SourceCounts() for spec in config.sources}
    writer: contract.DatasetWriter | None = None
    result = IngestResult(counts=counts, dim=None)
    try:
        for spec in config.sources:
            files = simulated.list_source(spec)
            count = counts[spec.name]
            count.files = len(files)
            count.bytes_read = sum(file_bytes(path, fmt) for path, fmt in files)
            progress = tqdm(desc=f"ingest {spec.name}", unit="ex", mininterval=2, leave=False)
            for path, fmt in files:
                for item in reader.read_file(spec, path, fmt):
                    progress.update()
                    if isinstance(item, Reject):
                        count.add_reject(item)
                        on_reject(item)
                        if config.on_error == "fail":
                            result.failure = item
                            break
                        continue
                    if writer is None:
                        writer = _open_writer(out_dir, reader.dim, config)
                    _add(writer, item, spec)
                    count.examples_written += 1
                    count.rows_written += item.n_rows
                    result.written += 1
                count.add_tally(reader.tallies[-1])
                if result.failure is not None:
                    break
            progress.close()
            if result.failure is not None:
                break
            log.info("%s: %s", spec.name, count.as_dict())
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())  # closes the open shard without completing it
        raise
    result.dim = reader.dim
    return result


# ----------------------------------------------------------------------------- parallel ingest
# Phase 1: one task per raw file reads and validates it with its own RawReader and spills
# the valid examples (already in the output dtype) to an uncompressed temporary Parquet
# file, returning only light metadata. The parent then replays the items in file order,
# exactly as the serial loop would see them: it redoes the cross-file duplicate check with
# one global table of claimed ids, applies on_error, counts and writes rejects. Phase 2:
# the kept examples are cut into the same shards as a serial run (every shard_size kept
# examples, in order) and each shard is written by a task with its own DatasetWriter.
# A shard's bytes depend only on its examples, so the dataset is byte-identical.

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
    tally: FileTally | None = None


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
    writer: contract.DatasetWriter | None = None
    try:
        for item in reader.read_file(task.spec, task.path, task.fmt):
            dim_known.append(reader.dim is not None)
            if isinstance(item, Reject):
                items.append(item)
                if task.stop_at_reject:
                    break
                continue
            if writer is None:
                writer = contract.DatasetWriter(
                    task.spill,
                    dim=reader.dim,
                    dtype=task.dtype,
                    row_group_size=_SPILL_ROW_GROUP,
                    shard_size=1 << 62,
                    compression="none",
                )
            _add(writer, item, task.spec)
            items.append((item.example_id, item.n_rows, item.position))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())
        raise
    return _FileItems(items=items, dim_known=dim_known, dim=reader.dim, tally=reader.tallies[-1])


def _add(writer: contract.DatasetWriter, item: Example, spec: SourceSpec) -> None:
    writer.add(
        example_id=item.example_id,
        group=item.group,
        label=item.label,
        source=spec.name,
        negative_rate=spec.negative_rate,
        rows=item.rows,
        true_label=item.true_label,
    )


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
    with contract.DatasetWriter(
        tmp,
        dim=dim,
        dtype=config.dtype,
        row_group_size=config.row_group_size,
        shard_size=config.shard_size,
    ) as writer:
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
                example_id=meta[contract.EXAMPLE_ID][i],
                group=meta[contract.GROUP][i],
                label=meta[contract.LABEL][i],
                source=meta[contract.SOURCE][i],
                negative_rate=meta[contract.NEGATIVE_RATE][i],
                rows=flat[offsets[i] : offsets[i + 1]],
                true_label=meta[contract.TRUE_LABEL][i],
            )


def ingest_parallel(
    config: IngestConfig,
    out_dir: Path,
    *,
    on_reject: Callable[[Reject], None] = lambda reject: None,
) -> IngestResult:
    """``ingest_sources`` with files read and shards written by ``config.workers`` processes.

    Same dataset bytes, metrics and rejects as the serial run. Memory per process is
    bounded as in the serial run; the parent holds the claimed ids (as the serial run
    does) and one small item list per file; the spill needs about the uncompressed size
    of the dataset on disk, inside ``out_dir``, until the shards are written.
    """
    if config.workers < 2:
        raise ValueError(f"ingest_parallel needs workers >= 2, got {config.workers!r}")
    max_abs = max_abs_for(config.dtype)
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
    with ProcessPoolExecutor(max_workers=config.workers, mp_context=context) as pool:
        futures = [pool.submit(_read_file_task, task) for task in tasks]
        try:
            position = 0
            for spec, paths in listed:
                count = counts[spec.name]
                count.files = len(paths)
                count.bytes_read = sum(file_bytes(path, fmt) for path, fmt in paths)
                for _ in paths:
                    task = tasks[position]
                    done = futures[position].result()
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
            count.examples_written += 1
            count.rows_written += n_rows
            result.written += 1
            continue
        count.add_reject(reject)
        on_reject(reject)
        if config.on_error == "fail":
            result.failure = reject
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
    shards: list[tuple] = []
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


def _open_writer(out_dir: Path, dim: int, config: IngestConfig) -> contract.DatasetWriter:
    return contract.DatasetWriter(
        out_dir,
        dim=dim,
        dtype=config.dtype,
        row_group_size=config.row_group_size,
        shard_size=config.shard_size,
    )


def reconcile(result: IngestResult, config: IngestConfig) -> dict[str, Any]:
    """The metrics: read (counted from the files) = written + rejected, per source and reason.

    After a fail-mode stop only part of the input was read and nothing was written:
    ``examples_written`` is 0, ``examples_valid_before_stop`` says how many passed before
    the bad one, and ``reconciled`` is null (the reader stopped inside a file).
    """
    sources = {name: c.as_dict() for name, c in result.counts.items()}
    by_reason: Counter = Counter()
    for c in result.counts.values():
        by_reason.update(c.rejected_by_reason)
    keys = ("files", "bytes_read", "examples_read", "examples_written", "examples_rejected",
            "rows_read", "rows_written", "rows_rejected", "blank_lines", "files_rejected")  # fmt: skip
    total = {key: sum(s[key] for s in sources.values()) for key in keys}
    reconciled = all(c.reconciled for c in result.counts.values())
    failed = result.failure is not None
    if failed:
        total["examples_valid_before_stop"] = total["examples_written"]
        total["examples_written"] = total["rows_written"] = 0
        for s in sources.values():
            s["examples_written"] = s["rows_written"] = 0
            s["reconciled"] = None
    return {
        "status": "failed" if failed or result.written == 0 or not reconciled else "ok",
        "error": result.failure.message if failed else None,
        "on_error": config.on_error,
        "dtype": config.dtype,
        "dim": result.dim,
        **total,
        "reconciled": None if failed else reconciled,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "sources": sources,
    }


def _not_reconciled(metrics: dict[str, Any]) -> str:
    """The message of an ingest whose counts do not add up (a bug: something was lost)."""
    parts = [
        f"{name}: read {s['examples_read']} examples / {s['rows_read']} rows, wrote "
        f"{s['examples_written']} / {s['rows_written']}, rejected {s['examples_rejected']} / "
        f"{s['rows_rejected']}"
        for name, s in metrics["sources"].items()
        if not s["reconciled"]
    ]
    return "examples were lost between reading and writing (please report this bug): " + (
        "; ".join(parts)
    )


def _nothing_written(metrics: dict[str, Any], rejects: Path) -> str:
    reasons = ", ".join(f"{k}: {v}" for k, v in metrics["rejected_by_reason"].items()) or "none"
    return (
        f"no valid example in any source: {metrics['examples_read']} examples read, all "
        f"rejected, and {metrics['files_rejected']} files rejected whole (by reason: {reasons}); "
        f"see {rejects}"
    )


class _Stop(Exception):
    """Leave the dataset folder as it was: the run failed."""


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob(contract.SHARD_GLOB)) if path.is_dir() else 0


def simulation_params(params_path: str | Path) -> dict[str, Any] | None:
    """The ``generate`` section (checked) when some source is ``format: simulated``, else None."""
    sources = load_params(params_path, "ingest").get("sources") or {}
    if not any(isinstance(s, Mapping) and s.get("format") == "simulated" for s in sources.values()):
        return None
    params = load_params(params_path, "generate")
    simulator.check_params(params)
    return params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder")
    parser.add_argument("--rejects", required=True, type=Path, help="rejects JSON Lines file")
    parser.add_argument("--metrics", required=True, type=Path, help="reconciliation metrics JSON")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = IngestConfig.from_params(
            load_params(args.params, "ingest"), simulation=simulation_params(args.params)
        )
        for spec in config.sources:
            simulated.list_source(
                spec
            )  # a missing or unrecognised input is a setup error: stop before reading
    except (ValueError, FileNotFoundError) as exc:
        RejectsFile(args.rejects).close()  # always written, here empty
        write_json(args.metrics, {"status": "failed", "error": str(exc)})
        log.error("%s", exc)
        sys.exit(1)
    start = time.perf_counter()
    with RejectsFile(args.rejects) as rejects:
        try:
            with atomic_directory(args.out) as tmp:
                result = ingest_sources(config, tmp, on_reject=rejects.write)
                metrics = reconcile(result, config)
                if metrics["status"] != "ok":  # the previous dataset, if any, stays
                    raise _Stop
        except _Stop:
            pass
    seconds = time.perf_counter() - start
    # No timings here: metrics are compared across branches and must be deterministic.
    # Throughput is measured by benchmarks/bench_ingest.py.
    metrics["bytes_written"] = _dir_bytes(args.out) if metrics["status"] == "ok" else 0
    if result.failure is not None:
        write_json(args.metrics, metrics)
        log.error(
            "ingest failed (on_error: fail): %s (set ingest.on_error: quarantine to write bad "
            "examples to %s and go on)",
            result.failure.message,
            args.rejects,
        )
        sys.exit(1)
    if metrics["status"] != "ok":
        message = (
            _not_reconciled(metrics) if not metrics["reconciled"]
            else _nothing_written(metrics, args.rejects)
        )  # fmt: skip
        metrics["error"] = message
        write_json(args.metrics, metrics)
        log.error("ingest failed: %s", message)
        sys.exit(1)
    write_json(args.metrics, metrics)
    log.info(
        "wrote %d examples (%d rejected) to %s in %.1fs",
        metrics["examples_written"],
        metrics["examples_rejected"],
        args.out,
        seconds,
    )


if __name__ == "__main__":
    run_main(main)
