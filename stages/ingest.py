"""ingest: raw files (CSV, CSV.gz, Parquet, JSON Lines) -> the canonical Parquet dataset.

Sources are read in params order, each source's files sorted by path, rows in
file order; so the same inputs give the same dataset. ``on_error: fail`` stops
at the first bad example with a message naming file, line or row, example_id
and problem; ``on_error: quarantine`` writes each rejected example with its
reason to the rejects file and goes on. Either way the metrics reconcile:
examples read = written + rejected, per source and per reason. The dataset is
written into a temporary folder and renamed into place only on success.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stages import contract
from stages.common import atomic_directory, load_params, setup_logging, write_json
from stages.rawio import (
    ON_ERROR,
    RawDataError,
    RawReader,
    Reject,
    RejectsFile,
    SourceSpec,
    list_files,
    max_abs_for,
)

log = logging.getLogger(__name__)

PARAM_KEYS = ("on_error", "dtype", "row_group_size", "shard_size", "chunk_rows", "sources")


@dataclass(frozen=True)
class IngestConfig:
    """The ``ingest`` section of params.yaml, validated."""

    sources: list[SourceSpec]
    on_error: str = "fail"
    dtype: str = "float16"
    row_group_size: int = 128
    shard_size: int = 2048
    chunk_rows: int = 8192

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> IngestConfig:
        unknown = sorted(set(params) - set(PARAM_KEYS))
        if unknown:
            raise ValueError(f"ingest: unknown keys {unknown}; allowed: {list(PARAM_KEYS)}")
        on_error = params.get("on_error", "fail")
        if on_error not in ON_ERROR:
            raise ValueError(f"ingest.on_error must be one of {ON_ERROR}, got {on_error!r}")
        dtype = params.get("dtype", "float16")
        if dtype not in contract.DTYPES:
            raise ValueError(
                f"ingest.dtype must be one of {sorted(contract.DTYPES)}, got {dtype!r}"
            )
        sizes = {
            k: params.get(k, getattr(cls, k))
            for k in ("row_group_size", "shard_size", "chunk_rows")
        }
        for key, value in sizes.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ingest.{key} must be a positive integer, got {value!r}")
        sources = params.get("sources") or {}
        if not isinstance(sources, Mapping) or not sources:
            raise ValueError("ingest.sources must map at least one source name to its settings")
        specs = [SourceSpec.from_params(name, spec) for name, spec in sources.items()]
        return cls(sources=specs, on_error=on_error, dtype=dtype, **sizes)


@dataclass
class SourceCounts:
    """Reconciliation counters of one source."""

    files: int = 0
    bytes_read: int = 0
    examples_written: int = 0
    examples_rejected: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes_read": self.bytes_read,
            "examples_read": self.examples_written + self.examples_rejected,
            "examples_written": self.examples_written,
            "examples_rejected": self.examples_rejected,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
        }


@dataclass
class IngestResult:
    """What one ingest did; ``failure`` is the reject that stopped it in fail mode."""

    counts: dict[str, SourceCounts]
    dim: int | None
    failure: Reject | None = None


def ingest_sources(
    config: IngestConfig,
    out_dir: Path,
    *,
    on_reject: Callable[[Reject], None] = lambda reject: None,
) -> IngestResult:
    """Read every source and write the valid examples into ``out_dir`` with ``DatasetWriter``.

    Each reject goes to ``on_reject``; in fail mode the first one stops the run
    and is returned as ``failure`` (the caller must then discard ``out_dir``).
    """
    reader = RawReader(chunk_rows=config.chunk_rows, max_abs=max_abs_for(config.dtype))
    counts = {spec.name: SourceCounts() for spec in config.sources}
    writer: contract.DatasetWriter | None = None
    result = IngestResult(counts=counts, dim=None)
    try:
        for spec in config.sources:
            files = list_files(spec)
            count = counts[spec.name]
            count.files = len(files)
            count.bytes_read = sum(path.stat().st_size for path, _ in files)
            progress = tqdm(desc=f"ingest {spec.name}", unit="ex", mininterval=2, leave=False)
            for path, fmt in files:
                for item in reader.read_file(spec, path, fmt):
                    progress.update()
                    if isinstance(item, Reject):
                        count.examples_rejected += 1
                        count.rows_rejected += item.n_rows
                        count.rejected_by_reason[item.reason] += 1
                        on_reject(item)
                        if config.on_error == "fail":
                            result.failure = item
                            break
                        continue
                    if writer is None:
                        writer = _open_writer(out_dir, reader.dim, config)
                    writer.add(
                        example_id=item.example_id,
                        group=item.group,
                        label=item.label,
                        source=spec.name,
                        negative_rate=spec.negative_rate,
                        rows=item.rows,
                        true_label=item.true_label,
                    )
                    count.examples_written += 1
                    count.rows_written += item.n_rows
                if result.failure is not None:
                    break
            progress.close()
            if result.failure is not None:
                break
            log.info("%s: %s", spec.name, count.as_dict())
        if result.failure is None and reader.dim is None:
            raise ValueError(
                "no readable input: cannot tell the feature dimension; check the sources"
            )
        if writer is None and result.failure is None:
            writer = _open_writer(out_dir, reader.dim, config)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())  # closes the open shard without completing it
        raise
    result.dim = reader.dim
    return result


def _open_writer(out_dir: Path, dim: int, config: IngestConfig) -> contract.DatasetWriter:
    return contract.DatasetWriter(
        out_dir,
        dim=dim,
        dtype=config.dtype,
        row_group_size=config.row_group_size,
        shard_size=config.shard_size,
    )


def reconcile(result: IngestResult, config: IngestConfig) -> dict[str, Any]:
    """The metrics: examples read = written + rejected, overall, per source and per reason."""
    sources = {name: c.as_dict() for name, c in result.counts.items()}
    by_reason: Counter = Counter()
    for c in result.counts.values():
        by_reason.update(c.rejected_by_reason)
    total = {
        key: sum(s[key] for s in sources.values())
        for key in (
            "files",
            "bytes_read",
            "examples_read",
            "examples_written",
            "examples_rejected",
            "rows_written",
            "rows_rejected",
        )
    }
    return {
        "status": "failed" if result.failure else "ok",
        "error": result.failure.message if result.failure else None,
        "on_error": config.on_error,
        "dtype": config.dtype,
        "dim": result.dim,
        **total,
        "rows_read": total["rows_written"] + total["rows_rejected"],
        "reconciled": total["examples_read"]
        == total["examples_written"] + total["examples_rejected"],
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "sources": sources,
    }


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob(contract.SHARD_GLOB)) if path.is_dir() else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder")
    parser.add_argument("--rejects", required=True, type=Path, help="rejects JSON Lines file")
    parser.add_argument("--metrics", required=True, type=Path, help="reconciliation metrics JSON")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = IngestConfig.from_params(load_params(args.params, "ingest"))
        for spec in config.sources:
            list_files(
                spec
            )  # a missing or unrecognised input is a setup error: stop before reading
    except (ValueError, FileNotFoundError) as exc:
        RejectsFile(args.rejects).close()  # always written, here empty
        write_json(args.metrics, {"status": "failed", "error": str(exc)})
        log.error("ingest: %s", exc)
        sys.exit(1)
    start = time.perf_counter()
    with RejectsFile(args.rejects) as rejects:
        try:
            with atomic_directory(args.out) as tmp:
                result = ingest_sources(config, tmp, on_reject=rejects.write)
                if result.failure is not None:
                    raise RawDataError(result.failure)
        except RawDataError:
            pass
    seconds = time.perf_counter() - start
    metrics = reconcile(result, config)
    # No timings here: metrics are compared across branches and must be deterministic.
    # Throughput is measured by benchmarks/bench_ingest.py.
    metrics["bytes_written"] = _dir_bytes(args.out) if result.failure is None else 0
    write_json(args.metrics, metrics)
    if result.failure is not None:
        log.error("ingest failed (on_error: fail): %s", result.failure.message)
        log.error(
            "set ingest.on_error: quarantine to write bad examples to %s and go on", args.rejects
        )
        sys.exit(1)
    log.info(
        "wrote %d examples (%d rejected) to %s in %.1fs",
        metrics["examples_written"],
        metrics["examples_rejected"],
        args.out,
        seconds,
    )


if __name__ == "__main__":
    main()
