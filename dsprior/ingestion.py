"""Ingest: the declared raw sources read, validated and written as the canonical dataset.

Sources are read in params order, each source's files sorted by path, rows in
file order; so the same inputs give the same dataset. ``on_error: fail`` stops
at the first bad example with a message naming file, line or row, example_id
and problem; ``on_error: quarantine`` hands each rejected example to the caller
(the stage writes it with its reason to the rejects file) and goes on. Either
way the metrics reconcile: examples read = written + rejected, per source and
per reason (``reconcile``).

``workers > 1`` reads files in parallel processes and gives the same bytes as a
serial run (``ingestion_parallel``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dsprior import contract, settings
from dsprior.rawio import (
    ON_ERROR,
    Example,
    FileTally,
    RawReader,
    Reject,
    RejectCounts,
    SourceSpec,
    file_bytes,
    max_abs_for,
    simulated,
)

log = logging.getLogger(__name__)


class _Any(settings.Spec):
    def check(self, value: Any, key: str) -> Any:
        return value


PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "on_error": settings.Choice(*ON_ERROR),
    "dtype": settings.Choice(*sorted(contract.DTYPES)),
    "row_group_size": settings.Integer(minimum=1),
    "shard_size": settings.Integer(minimum=1),
    "chunk_rows": settings.Integer(minimum=1),
    "workers": settings.Integer(minimum=1),
    "sources": settings.MapOf(_Any()),  # each source: SourceSpec.from_params, by its format
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
        settings.check_section(params, PARAMS_SCHEMA, "ingest")
        sources = params["sources"]
        on_error, dtype = params["on_error"], params["dtype"]
        sizes = {k: params[k] for k in ("row_group_size", "shard_size", "chunk_rows", "workers")}
        specs = [
            SourceSpec.from_params(name, spec, simulation=simulation)
            for name, spec in sources.items()
        ]
        return cls(sources=specs, on_error=on_error, dtype=dtype, **sizes)


def check_inputs(config: IngestConfig) -> None:
    """List every source's files, so that a missing or unrecognised input stops the run early.

    Raises ``FileNotFoundError`` or ``ValueError`` naming the source, before anything is read.
    """
    for spec in config.sources:
        simulated.list_source(spec)


@dataclass
class SourceCounts:
    """Reconciliation counters of one source.

    What was read (``examples_read``, ``rows_read``) is counted by the reader from the
    files (``rawio.FileTally``), apart from what was written or rejected, so a lost
    example shows as a difference. Rejects of a whole file (wrong header, empty,
    unreadable between examples) count in ``rejected.files``: they hold no example.
    """

    files: int = 0
    bytes_read: int = 0
    examples_read: int = 0
    rows_read: int = 0
    blank_lines: int = 0
    examples_written: int = 0
    rows_written: int = 0
    rejected: RejectCounts = field(default_factory=RejectCounts)

    def add_tally(self, tally: FileTally) -> None:
        self.examples_read += tally.examples
        self.rows_read += tally.rows
        self.blank_lines += tally.blank_lines

    @property
    def reconciled(self) -> bool:
        return (
            self.examples_read == self.examples_written + self.rejected.examples
            and self.rows_read == self.rows_written + self.rejected.rows
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes_read": self.bytes_read,
            "examples_read": self.examples_read,
            "examples_written": self.examples_written,
            "examples_rejected": self.rejected.examples,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rejected.rows,
            "blank_lines": self.blank_lines,
            "files_rejected": self.rejected.files,
            "reconciled": self.reconciled,
            "rejected_by_reason": self.rejected.reasons(),
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
        # Imported here: the parallel path builds on this module's counts and writer.
        from dsprior.ingestion_parallel import ingest_parallel

        return ingest_parallel(config, out_dir, on_reject=on_reject)
    return _ingest_serial(config, out_dir, on_reject=on_reject)


def _ingest_serial(
    config: IngestConfig, out_dir: Path, *, on_reject: Callable[[Reject], None]
) -> IngestResult:
    """``ingest_sources`` in this process: files one after the other, one writer."""
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
                        count.rejected.add(item)
                        on_reject(item)
                        if config.on_error == "fail":
                            result.failure = item
                            break
                        continue
                    if writer is None:
                        assert reader.dim is not None  # an example was read: the dim is fixed
                        writer = open_writer(out_dir, reader.dim, config)
                    add_example(writer, item, spec)
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


def add_example(writer: contract.DatasetWriter, item: Example, spec: SourceSpec) -> None:
    """Write one example with its source's name and negative rate."""
    # ingest reads with groups and labels required, so every example it keeps has both
    assert item.group is not None and item.label is not None
    writer.add(
        example_id=item.example_id,
        group=item.group,
        label=item.label,
        source=spec.name,
        negative_rate=spec.negative_rate,
        rows=item.rows,
        true_label=item.true_label,
    )


def open_writer(out_dir: Path, dim: int, config: IngestConfig) -> contract.DatasetWriter:
    """The dataset writer of ``config``'s dtype, row group and shard sizes."""
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
    rejected = RejectCounts.combined(c.rejected for c in result.counts.values())
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
        "error": result.failure.message if result.failure is not None else None,
        "on_error": config.on_error,
        "dtype": config.dtype,
        "dim": result.dim,
        **total,
        "reconciled": None if failed else reconciled,
        "rejected_by_reason": rejected.reasons(),
        "sources": sources,
    }


def failure_message(metrics: dict[str, Any], rejects: Path) -> str:
    """Why an ingest that was not stopped by a reject failed (``reconcile``'s status)."""
    return (
        _not_reconciled(metrics)
        if not metrics["reconciled"]
        else _nothing_written(metrics, rejects)
    )


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
    """The message of an ingest that wrote nothing: every example was rejected."""
    reasons = ", ".join(f"{k}: {v}" for k, v in metrics["rejected_by_reason"].items()) or "none"
    return (
        f"no valid example in any source: {metrics['examples_read']} examples read, all "
        f"rejected, and {metrics['files_rejected']} files rejected whole (by reason: {reasons}); "
        f"see {rejects}"
    )
