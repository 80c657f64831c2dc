"""Streaming a raw source through a bundle: read a pool of examples, score it, write it,
and count what was read, scored and rejected.

Examples are read ``pool_size`` at a time (default ``POOL_BATCHES`` batches), sorted by
length, cut into batches and scored; each pool's rows are written before the next is
read, so memory is bounded by a pool, not by the input. The raw files are read with
ingest's reader, so with its validation, its ``on_error`` modes and its messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from dsprior import contract
from dsprior.bundle import SPEC_FILE, Bundle
from dsprior.rawio import (
    DIM_MISMATCH,
    ON_ERROR,
    Example,
    FileTally,
    RawDataError,
    RawReader,
    Reconciliation,
    Reject,
    RejectsFile,
    SourceSpec,
    list_files,
    lost_message,
)
from dsprior.scoring.apply import score_arrays, score_table
from dsprior.scoring.output import ScoresWriter, output_format
from dsprior.scoring.paths import check_paths

POOL_BATCHES = 8


@dataclass
class ScoreSummary(Reconciliation):
    """What one run did: examples read, scored (kept) and rejected (by reason), as ingest
    counts them (``rawio.Reconciliation``); decisions; timing."""

    positives: int = 0
    expected_cost: float = 0.0
    seconds: float = 0.0

    def count_scored(self, table: pa.Table, *, rows: int) -> None:
        """One pool's output rows, written; ``rows`` raw rows went into them."""
        self.keep(examples=table.num_rows, rows=rows)
        self.positives += int(np.sum(table.column("decision").to_numpy()))
        self.expected_cost += float(np.sum(table.column("expected_cost").to_numpy()))

    def count_read(self, tallies: Iterable[FileTally]) -> None:
        """What the reader counted in the files (its ``rawio.FileTally`` records)."""
        for tally in tallies:
            self.add_tally(tally)

    def check_reconciled(self) -> None:
        """RuntimeError unless every example and row read was scored or rejected."""
        if not self.reconciled:
            raise RuntimeError(lost_message("scoring", [self.account("scored")]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples_read": self.examples_read,
            "examples_scored": self.examples_kept,
            "examples_rejected": self.rejected.examples,
            "files_rejected": self.rejected.files,
            "rows_read": self.rows_read,
            "rows_rejected": self.rejected.rows,
            "reconciled": self.reconciled,
            "rejected_by_reason": self.rejected.reasons(),
            "decided_positive": self.positives,
            "expected_cost_total": self.expected_cost,
            "rows_scored": self.rows_kept,
            "seconds": round(self.seconds, 3),
            "examples_per_s": (
                round(self.examples_kept / self.seconds, 1) if self.seconds > 0 else None
            ),
        }


def input_spec(path: str | Path, *, format: str | None = None, delimiter: str = ",") -> SourceSpec:
    """The input as a raw source (labels optional); ValueError/FileNotFoundError if unusable."""
    params: dict[str, Any] = {"path": str(path), "negative_rate": 1.0, "delimiter": delimiter}
    if format is not None:
        params["format"] = format
    spec = SourceSpec.from_params("input", params)
    list_files(spec)  # a missing input or an unknown extension is an error before any work
    return spec


def bundle_reader(bundle: Bundle, *, chunk_rows: int) -> RawReader:
    """Ingest's reader, checking examples against the bundle's dimension and value range."""
    return RawReader(
        chunk_rows=chunk_rows,
        dim=bundle.dim,
        max_abs=float(bundle.spec["max_abs"]),
        required_roles=(contract.EXAMPLE_ID,),
        dim_owner="the model bundle",
        dim_origin=str(bundle.path / SPEC_FILE),
        reject_empty_files=False,
    )


def accepted_examples(
    items: Iterable[Example | Reject],
    summary: ScoreSummary,
    *,
    on_error: str,
    on_reject: Callable[[Reject], None],
    tick: Callable[[], object] = lambda: None,
) -> Iterator[Example]:
    """The reader's valid examples; each reject is counted, handed to ``on_reject``, and
    raised as ``RawDataError`` in ``fail`` mode or when its dimension differs (always)."""
    for item in items:
        tick()
        if isinstance(item, Reject):
            summary.rejected.add(item)
            on_reject(item)
            if on_error == "fail" or item.reason == DIM_MISMATCH:
                raise RawDataError(item)
            continue
        yield item


class ScorePool:
    """Examples waiting to be scored together; ``flush`` scores, writes and counts them."""

    def __init__(
        self, bundle: Bundle, writer: ScoresWriter, summary: ScoreSummary, *, batch_size: int
    ) -> None:
        self.bundle, self.writer, self.summary = bundle, writer, summary
        self.batch_size = batch_size
        self.ids: list[str] = []
        self.rows: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, example: Example) -> None:
        self.ids.append(example.example_id)
        self.rows.append(example.rows)

    def flush(self) -> None:
        if not self.ids:
            return
        scores = score_arrays(
            self.bundle.model,
            self.rows,
            dim=self.bundle.dim,
            batch_size=self.batch_size,
            dtype=self.bundle.spec["dtype"],
            min_rows=int(self.bundle.spec.get("min_rows", 1)),
        )
        table = score_table(self.bundle, self.ids, scores)
        self.writer.write(table)
        self.summary.count_scored(table, rows=sum(a.shape[0] for a in self.rows))
        self.ids.clear()
        self.rows.clear()


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def score_source(
    bundle: Bundle,
    spec: SourceSpec,
    writer: ScoresWriter,
    *,
    on_error: str = "fail",
    on_reject: Callable[[Reject], None] = lambda reject: None,
    batch_size: int = 64,
    pool_size: int | None = None,
    chunk_rows: int = 8192,
    progress: bool | None = None,
    on_example: Callable[[Example], None] | None = None,
) -> ScoreSummary:
    """Score every example of ``spec`` into ``writer``, a pool at a time.

    Each valid example goes to ``on_example`` (if given) as it is read, in output
    order; each reject goes to ``on_reject``. In ``fail`` mode the first one raises
    ``RawDataError`` with ingest's message; in ``quarantine`` mode it is skipped.
    A file whose feature dimension differs from the bundle's always raises: the
    bundle cannot score it.
    """
    check_on_error(on_error)
    pool_size = pool_size or POOL_BATCHES * batch_size
    if pool_size < batch_size:
        raise ValueError(f"pool_size must be >= batch_size ({batch_size}), got {pool_size!r}")
    reader = bundle_reader(bundle, chunk_rows=chunk_rows)
    summary = ScoreSummary()
    pool = ScorePool(bundle, writer, summary, batch_size=batch_size)
    started = time.perf_counter()
    bar = tqdm(desc="score", unit="ex", mininterval=2, disable=True if progress is False else None)
    try:
        examples = accepted_examples(
            reader.read_source(spec),
            summary,
            on_error=on_error,
            on_reject=on_reject,
            tick=bar.update,
        )
        for example in examples:
            if on_example is not None:
                on_example(example)
            pool.add(example)
            if len(pool) >= pool_size:
                pool.flush()
        pool.flush()
    finally:
        bar.close()
    summary.count_read(reader.tallies)
    summary.check_reconciled()
    summary.seconds = time.perf_counter() - started
    return summary


def score_file(
    bundle: Bundle,
    input_path: str | Path,
    output_path: str | Path,
    *,
    format: str | None = None,
    delimiter: str = ",",
    on_error: str = "fail",
    rejects_path: str | Path | None = None,
    batch_size: int = 64,
    pool_size: int | None = None,
    chunk_rows: int = 8192,
    progress: bool | None = None,
    on_example: Callable[[Example], None] | None = None,
) -> ScoreSummary:
    """Score ``input_path`` into ``output_path`` (Parquet or CSV by extension), atomically.

    Rejects go to ``rejects_path`` (JSON Lines, as ingest writes them) when given.
    On failure nothing is left at ``output_path``. ValueError before any reading if
    the output or the rejects would overwrite the input or each other (``check_paths``).
    """
    check_on_error(on_error)
    outputs = {"output_path": output_path, "rejects_path": rejects_path}
    check_paths(input_path, outputs, input_option="input_path")
    output_format(output_path)
    spec = input_spec(input_path, format=format, delimiter=delimiter)
    rejects = RejectsFile(Path(rejects_path)) if rejects_path is not None else None
    try:
        with ScoresWriter(output_path) as writer:
            return score_source(
                bundle,
                spec,
                writer,
                on_error=on_error,
                on_reject=rejects.write if rejects else (lambda reject: None),
                batch_size=batch_size,
                pool_size=pool_size,
                chunk_rows=chunk_rows,
                progress=progress,
                on_example=on_example,
            )
    finally:
        if rejects is not None:
            rejects.close()
