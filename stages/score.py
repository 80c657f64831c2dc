"""score: new examples -> raw score, probability at the production prior, decision, expected cost.

Reads raw files in any format ingest accepts (CSV, CSV.gz, Parquet, JSON Lines;
one file or a folder), with ingest's reader and so the same validation, the
same ``on_error`` modes and the same messages; ``group`` and ``label`` columns
are optional here. Writes Parquet or CSV, chosen by the output's extension,
one row per example in input order:

- ``example_id``;
- ``score``: the model's raw sigmoid output (calibrated at the training prior);
- ``probability``: the score mapped to the production prior with the bundle's
  prior correction, exactly as evaluate maps it;
- ``decision``: 1 where ``probability >= threshold`` (the threshold evaluate
  chose on dev_b), else 0;
- ``expected_cost``: the example's expected cost under the bundle's costs,
  ``(1 - p) * c_FP`` if decided positive, else ``p * c_FN``.

Streaming: examples are read ``pool_size`` at a time (default eight batches),
sorted by length, cut into batches of ``batch_size`` and scored; each pool's
rows are written before the next is read, so memory is bounded by a pool, not by
the input. Features are rounded to the dtype the training dataset stored
(float16 by default), as ingest would have, so scores match evaluate's.

With ``--summary S.json`` the batch is also estimated without labels
(``stages.quantify``): its prior by EM with a 95% interval and an ACC/PACC
cross-check against dev_b's rates from the bundle, the threshold's expected
precision, recall, alerts per 1,000 and cost at that prior, and drift
(``prior_shift``: the interval excludes the bundle's prior; a KS test against
dev_b's probabilities). ``S.md`` beside it renders the same. Labels, where the
input has them, are measured beside the estimates. ``--adapt-prior`` rewrites the
output with probabilities and decisions at the estimated prior.

Usage::

    python -m stages.score --bundle bundle --input new_data/ --output scores.parquet
    python -m stages.score --bundle bundle --input new.csv --output s.csv --summary s.json
    ds-score --bundle bundle --input new.csv --on-error quarantine --output scores.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from dsprior import common, contract, hardware, quantify
from dsprior.batches import forward, pad_batch
from dsprior.rawio import (
    DIM_MISMATCH,
    FORMATS,
    ON_ERROR,
    Example,
    RawDataError,
    RawReader,
    Reject,
    RejectsFile,
    SourceSpec,
    list_files,
)
from stages.bundle import SPEC_FILE, Bundle, load_bundle

logger = logging.getLogger(__name__)

OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("probability", pa.float64(), nullable=False),
        pa.field("decision", pa.int8(), nullable=False),
        pa.field("expected_cost", pa.float64(), nullable=False),
    ]
)
OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}
POOL_BATCHES = 8


# ----------------------------------------------------------------------------- pure functions


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


def decide(probability: np.ndarray, *, threshold: float) -> np.ndarray:
    """1 where the probability at the prior reaches the threshold (evaluate's ``>=`` rule)."""
    return (np.asarray(probability, dtype=np.float64) >= threshold).astype(np.int8)


def expected_costs(
    probability: np.ndarray, decision: np.ndarray, *, cost_fp: float, cost_fn: float
) -> np.ndarray:
    """Each example's expected cost: ``(1-p) c_FP`` if flagged (a possible false alarm), else ``p c_FN``."""
    p = np.asarray(probability, dtype=np.float64)
    flagged = np.asarray(decision).astype(bool)
    if p.shape != flagged.shape:
        raise ValueError(f"probability and decision shapes differ: {p.shape} vs {flagged.shape}")
    if cost_fp < 0 or cost_fn < 0:
        raise ValueError(f"costs must be >= 0, got cost_fp={cost_fp}, cost_fn={cost_fn}")
    return np.where(flagged, (1.0 - p) * cost_fp, p * cost_fn)


def score_arrays(
    model,
    arrays: Sequence[np.ndarray],
    *,
    dim: int,
    batch_size: int,
    dtype: str = "float16",
    min_rows: int = 1,
) -> np.ndarray:
    """Raw scores of ``(n_rows, dim)`` arrays, in their order; batches are bucketed by length.

    Values are first rounded to ``dtype`` (what the dataset stored at training time).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if dtype not in contract.DTYPES:
        raise ValueError(f"dtype must be one of {sorted(contract.DTYPES)}, got {dtype!r}")
    call = forward(model)
    numpy_dtype = np.float16 if dtype == "float16" else np.float32
    scores = np.empty(len(arrays), dtype=np.float64)
    lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        features, lens = pad_batch(
            [arrays[i].astype(numpy_dtype, copy=False) for i in idx], dim=dim, min_rows=min_rows
        )
        scores[idx] = call(features, lens)
    return scores


def score_table(bundle: Bundle, example_ids: Sequence[str], scores: np.ndarray) -> pa.Table:
    """The output rows: id, raw score, probability at the prior, decision, expected cost."""
    probability = bundle.probability(scores)
    decision = decide(probability, threshold=bundle.threshold)
    cost = bundle.spec["cost"]
    columns = [
        pa.array(list(example_ids), pa.string()),
        pa.array(scores, pa.float64()),
        pa.array(probability, pa.float64()),
        pa.array(decision, pa.int8()),
        pa.array(
            expected_costs(
                probability,
                decision,
                cost_fp=cost["false_positive"],
                cost_fn=cost["false_negative"],
            ),
            pa.float64(),
        ),
    ]
    return pa.Table.from_arrays(columns, schema=OUTPUT_SCHEMA)


# ----------------------------------------------------------------------------- streaming


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

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


@dataclass
class ScoreSummary:
    """What one run did: examples scored and rejected (by reason), decisions, timing."""

    scored: int = 0
    rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    positives: int = 0
    expected_cost: float = 0.0
    rows: int = 0
    seconds: float = 0.0
    # Counted by the reader from the files (rawio.FileTally), apart from what was scored.
    examples_read: int = 0
    rows_read: int = 0
    rows_rejected: int = 0
    files_rejected: int = 0

    @property
    def reconciled(self) -> bool:
        return (
            self.examples_read == self.scored + self.rejected
            and self.rows_read == self.rows + self.rows_rejected
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples_read": self.examples_read,
            "examples_scored": self.scored,
            "examples_rejected": self.rejected,
            "files_rejected": self.files_rejected,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "reconciled": self.reconciled,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "decided_positive": self.positives,
            "expected_cost_total": self.expected_cost,
            "rows_scored": self.rows,
            "seconds": round(self.seconds, 3),
            "examples_per_s": round(self.scored / self.seconds, 1) if self.seconds > 0 else None,
        }


def _same_file(a: Path, b: Path) -> bool:
    """One file: the same inode where both exist (a symlink or hard link counts), else one path."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_paths(
    input_path: str | Path,
    outputs: Mapping[str, str | Path | None],
    *,
    input_option: str = "--input",
) -> None:
    """ValueError, before anything is read, if scoring would write over what it reads or writes.

    ``outputs`` maps each written path's option name (``--output``, ``--rejects``,
    ...; None: not given) to its path; ``input_path`` is ``input_option``'s. Refused:
    an output that is the input file, or any file in the input folder, or lies in
    that folder; two outputs that are one file; an output that is a folder. "The
    same file" follows symlinks and hard links where the files exist, and compares
    resolved paths where they do not yet.
    """
    source = Path(input_path)
    given = [(option, Path(path)) for option, path in outputs.items() if path is not None]
    for option, path in given:
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder; give it a file path")
    for i, (option, path) in enumerate(given):
        for other_option, other in given[:i]:
            if _same_file(path, other):
                raise ValueError(
                    f"{option} {path} and {other_option} {other} are the same file; one would "
                    f"overwrite the other: give {option} another path"
                )
    if source.is_dir():
        folder = source.resolve()
        inodes: dict[tuple[int, int], Path] | None = None
        for option, path in given:
            if path.resolve().is_relative_to(folder):
                raise ValueError(
                    f"{option} {path} is inside the {input_option} folder {source}; score would "
                    "write into the data it reads (and the next run would read it as input): "
                    f"give {option} a path outside {source}"
                )
            if path.exists():
                if inodes is None:
                    inodes = {}
                    for p in source.rglob("*"):
                        if p.is_file():
                            st = p.stat()
                            inodes.setdefault((st.st_dev, st.st_ino), p)
                st = path.stat()
                if (st.st_dev, st.st_ino) in inodes:
                    raise ValueError(
                        f"{option} {path} is the same file as {inodes[st.st_dev, st.st_ino]} in "
                        f"the {input_option} folder {source}; scoring would overwrite its input: "
                        f"give {option} another path"
                    )
    elif source.exists():
        for option, path in given:
            if _same_file(path, source):
                raise ValueError(
                    f"{option} {path} and {input_option} {source} are the same file; scoring would "
                    f"overwrite its input: give {option} another path"
                )


def input_spec(path: str | Path, *, format: str | None = None, delimiter: str = ",") -> SourceSpec:
    """The input as a raw source (labels optional); ValueError/FileNotFoundError if unusable."""
    params: dict[str, Any] = {"path": str(path), "negative_rate": 1.0, "delimiter": delimiter}
    if format is not None:
        params["format"] = format
    spec = SourceSpec.from_params("input", params)
    list_files(spec)  # a missing input or an unknown extension is an error before any work
    return spec


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
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    pool_size = pool_size or POOL_BATCHES * batch_size
    if pool_size < batch_size:
        raise ValueError(f"pool_size must be >= batch_size ({batch_size}), got {pool_size!r}")
    spec_file = bundle.path / SPEC_FILE
    reader = RawReader(
        chunk_rows=chunk_rows,
        dim=bundle.dim,
        max_abs=float(bundle.spec["max_abs"]),
        required_roles=(contract.EXAMPLE_ID,),
        dim_owner="the model bundle",
        dim_origin=str(spec_file),
        reject_empty_files=False,
    )
    summary = ScoreSummary()
    pool_ids: list[str] = []
    pool_rows: list[np.ndarray] = []
    started = time.perf_counter()

    def flush() -> None:
        if not pool_ids:
            return
        scores = score_arrays(
            bundle.model,
            pool_rows,
            dim=bundle.dim,
            batch_size=batch_size,
            dtype=bundle.spec["dtype"],
            min_rows=int(bundle.spec.get("min_rows", 1)),
        )
        table = score_table(bundle, pool_ids, scores)
        writer.write(table)
        summary.scored += table.num_rows
        summary.positives += int(np.sum(table.column("decision").to_numpy()))
        summary.expected_cost += float(np.sum(table.column("expected_cost").to_numpy()))
        summary.rows += sum(a.shape[0] for a in pool_rows)
        pool_ids.clear()
        pool_rows.clear()

    bar = tqdm(desc="score", unit="ex", mininterval=2, disable=True if progress is False else None)
    try:
        for item in reader.read_source(spec):
            bar.update()
            if isinstance(item, Reject):
                if item.scope == "file":
                    summary.files_rejected += 1
                else:
                    summary.rejected += 1
                    summary.rows_rejected += item.n_rows
                summary.rejected_by_reason[item.reason] += 1
                on_reject(item)
                if on_error == "fail" or item.reason == DIM_MISMATCH:
                    raise RawDataError(item)
                continue
            if on_example is not None:
                on_example(item)
            pool_ids.append(item.example_id)
            pool_rows.append(item.rows)
            if len(pool_ids) >= pool_size:
                flush()
        flush()
    finally:
        bar.close()
    summary.examples_read = sum(t.examples for t in reader.tallies)
    summary.rows_read = sum(t.rows for t in reader.tallies)
    if not summary.reconciled:
        raise RuntimeError(
            f"examples were lost between reading and scoring (please report this bug): read "
            f"{summary.examples_read} examples / {summary.rows_read} rows, scored "
            f"{summary.scored} / {summary.rows}, rejected {summary.rejected} / "
            f"{summary.rows_rejected}"
        )
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
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
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


# ----------------------------------------------------------------------------- summary


@dataclass
class BatchRecord:
    """What the label-free summary needs of each scored example, in output order."""

    example_ids: list[str] = field(default_factory=list)
    groups: list[str | None] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)

    def add(self, example: Example) -> None:
        self.example_ids.append(example.example_id)
        self.groups.append(example.group)
        self.labels.append(example.label)


def read_scores(path: str | Path) -> pa.Table:
    """The output's rows back, as written (Parquet or CSV)."""
    if output_format(path) == "parquet":
        return pq.read_table(path)
    options = pacsv.ConvertOptions(column_types=OUTPUT_SCHEMA)
    return pacsv.read_csv(path, convert_options=options)


def batch_summary(
    bundle: Bundle,
    scores: np.ndarray,
    record: BatchRecord,
    *,
    adapt_prior: bool = False,
    resamples: int | None = None,
    level: float | None = None,
    seed: int | None = None,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The ``--summary`` content for one scored batch (``stages.quantify.estimate_batch``),
    and the calibrated probabilities moved to the estimated prior (None when empty).

    Intervals resample the batch's groups when every example has one (its examples
    otherwise) and dev_b's groups from the bundle. Resamples, level and seed default
    to the bundle's ``evaluate.bootstrap`` params. Labels, where every example has
    one, are measured beside the estimates (on the labelled examples where only some do).
    """
    boot = (bundle.spec.get("params", {}).get("evaluate") or {}).get("bootstrap") or {}
    resamples = int(resamples if resamples is not None else boot.get("resamples", 1000))
    level = float(level if level is not None else boot.get("level", 0.95))
    seed = int(seed if seed is not None else boot.get("seed", 0))
    cost = bundle.spec["cost"]
    cost_fp, cost_fn = float(cost["false_positive"]), float(cost["false_negative"])
    threshold, prior = bundle.threshold, bundle.prior
    n = len(scores)
    if n == 0:
        empty = {
            "examples": 0,
            "bundle_prior": prior,
            "estimated_prior": None,
            "estimated_at_threshold": None,
            "drift": None,
            "warnings": ["the batch is empty: nothing to estimate"],
        }
        return empty, None
    groups = None if any(g is None for g in record.groups) else np.asarray(record.groups)
    corrected = bundle.prior_corrected(scores)
    kw = {
        "prior": prior,
        "threshold": threshold,
        "cost_fp": cost_fp,
        "cost_fn": cost_fn,
        "calibration": bundle.calibration,
        "reference": bundle.reference(),
        "groups": groups,
        "resamples": resamples,
        "level": level,
        "seed": seed,
    }
    summary = quantify.estimate_batch(corrected, **kw)
    probability = bundle.probability(scores)
    decision = decide(probability, threshold=threshold)
    estimate = summary["estimated_prior"]["value"]
    moved, adapted = quantify.adapt_to_prior(
        probability, from_prior=prior, to_prior=estimate, threshold=threshold
    )
    summary["adapt_prior"] = {
        "applied": bool(adapt_prior),
        "to_prior": estimate,
        "alerts_per_1000_before": float(1000 * decision.mean()),
        "alerts_per_1000_after": float(1000 * adapted.mean()),
        "decisions_changed": int((decision != adapted).sum()),
        "estimated_at_threshold_after": {
            k: v
            for k, v in quantify.estimate_batch(corrected, adapt=True, **kw)[
                "estimated_at_threshold"
            ].items()
            if k in ("precision", "recall", "alerts_per_1000", "expected_cost")
        },
    }
    labelled = np.array([label is not None for label in record.labels])
    if labelled.any():
        y = np.array([label for label in record.labels if label is not None], dtype=np.int8)
        measured: dict[str, Any] = {
            "labelled_examples": int(labelled.sum()),
            "prior": float(y.mean()),
            **quantify.measured_performance(
                y, decision[labelled], cost_fp=cost_fp, cost_fn=cost_fn
            ),
            "labels": "the input's label column, each example weighing 1 (a production-ratio "
            "batch)",
        }
        if adapt_prior:
            measured["after_adapt_prior"] = quantify.measured_performance(
                y, adapted[labelled], cost_fp=cost_fp, cost_fn=cost_fn
            )
        summary["measured"] = measured
    summary["examples"] = n
    summary["groups"] = "resampled whole" if groups is not None else "absent: examples resampled"
    return common.finite_or_none(summary), moved


def adapt_output(path: str | Path, bundle: Bundle, moved: np.ndarray, *, threshold: float) -> None:
    """Rewrite the output with probabilities at the estimated prior and their decisions."""
    table = read_scores(path)
    decision = decide(moved, threshold=threshold)
    cost = bundle.spec["cost"]
    columns = [
        table.column("example_id"),
        table.column("score"),
        pa.array(moved, pa.float64()),
        pa.array(decision, pa.int8()),
        pa.array(
            expected_costs(
                moved, decision, cost_fp=cost["false_positive"], cost_fn=cost["false_negative"]
            ),
            pa.float64(),
        ),
    ]
    with ScoresWriter(path) as writer:
        writer.write(pa.Table.from_arrays(columns, schema=OUTPUT_SCHEMA))


def _pair(entry: dict[str, Any] | None, digits: int = 3) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    text = f"{entry['value']:.{digits}f}"
    ci = entry.get("ci") or [None, None]
    if None not in ci:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_summary(summary: dict[str, Any]) -> str:
    """The summary as Markdown, for people: the same numbers as the JSON."""
    lines = [
        "# Batch summary, without labels",
        "",
        f"- Examples: {summary['examples']}; the bundle's prior: {_num(summary['bundle_prior'], 4)}.",
    ]
    est = summary.get("estimated_prior")
    if est is None:
        lines += ["", *(f"- Warning: {w}" for w in summary.get("warnings", [])), ""]
        return "\n".join(lines)
    cross, drift = est["cross_check"], summary["drift"]
    measured = summary.get("measured")
    lines += [
        f"- Estimated prior: **{_pair(est, 4)}** ({est['method']}; {est['interval']}).",
        "- Cross-check: "
        + (
            f"ACC {_pair(cross['acc'], 4)}, PACC {_pair(cross['pacc'], 4)} ({cross['rates_from']})."
            if "acc" in cross
            else f"{cross['reason']}."
        ),
        f"- Prior shift: **{'yes' if drift['prior_shift'] else 'no'}** (the interval "
        f"{'excludes' if drift['prior_shift'] else 'includes'} the bundle's prior). "
        + (
            f"Score distribution against dev_b: KS {_num(drift['score_shift_ks'])}, "
            f"p = {drift['p_value']:.3g}."
            if drift["score_shift_ks"] is not None
            else "Score-distribution test: not available (no dev_b reference in the bundle)."
        ),
    ]
    if measured:
        lines.append(
            f"- Measured prior ({measured['labelled_examples']} labelled examples): "
            f"{_num(measured['prior'], 4)}."
        )
    at = summary["estimated_at_threshold"]
    lines += [
        "",
        f"At the bundle's threshold (probability >= {at['threshold']:.4g}), decisions "
        f"{at['decisions']}:",
        "",
        "| | estimated | measured |",
        "|---|---|---|",
    ]
    for name, label, digits in (
        ("precision", "precision", 3),
        ("recall", "recall", 3),
        ("alerts_per_1000", "alerts per 1,000", 1),
        ("expected_cost", "expected cost per 1,000", 1),
    ):
        lines.append(
            f"| {label} | {_pair(at[name], digits)} | "
            f"{_num(measured.get(name), digits) if measured else '-'} |"
        )
    adapt = summary["adapt_prior"]
    after = adapt["estimated_at_threshold_after"]
    lines += [
        "",
        (
            "With `--adapt-prior` (applied to this output): "
            if adapt["applied"]
            else "Re-deciding at the estimated prior (`--adapt-prior`) would give: "
        )
        + f"alerts per 1,000 {adapt['alerts_per_1000_before']:.1f} -> "
        f"{adapt['alerts_per_1000_after']:.1f} ({adapt['decisions_changed']} decisions "
        f"change), estimated precision {_pair(after['precision'])}, recall "
        f"{_pair(after['recall'])}, expected cost {_pair(after['expected_cost'], 1)} per 1,000.",
        "",
    ]
    lines += [f"- Warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines) + "\n"


def summary_markdown_path(path: str | Path) -> Path:
    """S.md beside S.json."""
    path = Path(path)
    return (
        path.with_suffix(".md")
        if path.suffix.lower() == ".json"
        else path.with_name(path.name + ".md")
    )


def write_summary(
    path: str | Path,
    bundle: Bundle,
    output_path: str | Path,
    record: BatchRecord,
    scoring: ScoreSummary,
    *,
    adapt_prior: bool = False,
    resamples: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Estimate the scored batch without labels; write S.json and S.md (and adapt the output)."""
    table = read_scores(output_path)
    ids = table.column("example_id").to_pylist()
    if ids != record.example_ids:
        raise RuntimeError(
            f"the output {output_path} does not hold the examples just scored, in order "
            "(please report this bug)"
        )
    scores = table.column("score").to_numpy().astype(np.float64)
    summary, moved = batch_summary(
        bundle, scores, record, adapt_prior=adapt_prior, resamples=resamples, seed=seed
    )
    if adapt_prior and moved is not None:
        adapt_output(output_path, bundle, moved, threshold=bundle.threshold)
    summary["scoring"] = scoring.as_dict()
    summary["bundle"] = {
        "path": str(bundle.path),
        "content_hash": bundle.spec.get("content_hash"),
        "format_version": bundle.spec.get("format_version"),
    }
    for warning in summary.get("warnings", []):
        logger.warning("%s", warning)
    common.write_json(path, summary)
    markdown = summary_markdown_path(path)
    tmp = markdown.with_name(f".{markdown.name}.tmp")
    tmp.write_text(render_summary(common.finite_or_none(summary)))
    os.replace(tmp, markdown)
    return summary


# ----------------------------------------------------------------------------- command


def load_compute_bundle(bundle_dir: Path, *, precision: str, onednn: str) -> Bundle:
    """``load_bundle`` with oneDNN set before TensorFlow's import and the model in the
    precision ``stages.hardware`` resolves (float32 unless this CPU has native bf16 and the
    model was trained in bf16)."""
    hardware.apply_onednn(hardware.machine_compute(precision, onednn))
    bundle = load_bundle(bundle_dir)
    from dsprior import cnn

    compute = hardware.machine_compute(
        precision, onednn, model_precision=cnn.model_precision(bundle.model)
    )
    logger.info(
        "scoring in %s, oneDNN %s (%s)", compute.precision, compute.onednn_env, compute.reason
    )
    return dataclasses.replace(bundle, model=cnn.with_precision(bundle.model, compute.precision))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ds-score", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    parser.add_argument("--input", type=Path, required=True, help="raw file or folder")
    parser.add_argument("--format", choices=FORMATS, help="default: from each file's extension")
    parser.add_argument("--delimiter", default=",", help="CSV delimiter (default ',')")
    parser.add_argument("--on-error", choices=ON_ERROR, default="fail")
    parser.add_argument(
        "--rejects",
        type=Path,
        help="JSON Lines of rejected examples; default with quarantine: OUTPUT.rejects.jsonl",
    )
    parser.add_argument("--output", type=Path, required=True, help=".parquet, .csv or .csv.gz")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per model call")
    parser.add_argument(
        "--pool-size",
        type=int,
        help=f"examples read, length-sorted and written together (default {POOL_BATCHES} batches)",
    )
    parser.add_argument("--chunk-rows", type=int, default=8192, help="raw rows read per chunk")
    parser.add_argument(
        "--precision",
        choices=hardware.PRECISIONS,
        default="auto",
        help="auto (default): a bf16-trained model in bf16 only on a CPU with native bf16, "
        "else float32 (dsprior/hardware.py)",
    )
    parser.add_argument(
        "--onednn",
        choices=hardware.ONEDNN_SETTINGS,
        default="auto",
        help="TF_ENABLE_ONEDNN_OPTS: auto (default: on with native bf16), on or off; "
        "an exported TF_ENABLE_ONEDNN_OPTS wins",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        help="write the label-free batch summary here (JSON), and its Markdown beside it (.md)",
    )
    parser.add_argument(
        "--adapt-prior",
        action="store_true",
        help="with --summary: rewrite probabilities and decisions at the estimated prior",
    )
    parser.add_argument(
        "--resamples",
        type=int,
        help="bootstrap resamples of the summary's intervals (default: the bundle's "
        "evaluate.bootstrap.resamples)",
    )
    parser.add_argument("--seed", type=int, help="bootstrap seed (default: the bundle's)")
    args = parser.parse_args(argv)
    if args.adapt_prior and args.summary is None:
        parser.error("--adapt-prior needs --summary (the estimate it adapts to goes there)")
    if args.resamples is not None and args.resamples < 1:
        parser.error(f"--resamples must be an integer >= 1, got {args.resamples}")
    if args.rejects is None and args.on_error == "quarantine":
        args.rejects = args.output.with_name(args.output.name + ".rejects.jsonl")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.setup_logging()
    try:
        written = {"--output": args.output, "--rejects": args.rejects, "--summary": args.summary}
        if args.summary is not None:
            written["--summary (its .md)"] = summary_markdown_path(args.summary)
        check_paths(args.input, written)
        output_format(args.output)
        input_spec(args.input, format=args.format, delimiter=args.delimiter)
        bundle = load_compute_bundle(args.bundle, precision=args.precision, onednn=args.onednn)
        record = BatchRecord()
        summary = score_file(
            bundle,
            args.input,
            args.output,
            format=args.format,
            delimiter=args.delimiter,
            on_error=args.on_error,
            rejects_path=args.rejects,
            batch_size=args.batch_size,
            pool_size=args.pool_size,
            chunk_rows=args.chunk_rows,
            on_example=record.add if args.summary is not None else None,
        )
        if args.summary is not None:
            batch = write_summary(
                args.summary,
                bundle,
                args.output,
                record,
                summary,
                adapt_prior=args.adapt_prior,
                resamples=args.resamples,
                seed=args.seed,
            )
    except RawDataError as exc:
        hint = ""
        if exc.reject.reason != DIM_MISMATCH and args.on_error == "fail":
            hint = "; use --on-error quarantine to skip bad examples and go on"
        # one "ERROR: ..." line (common.setup_logging's format), no traceback
        logger.error(
            "score failed (on_error: %s): %s%s",
            args.on_error,
            common.describe_user_error(exc),
            hint,
        )
        sys.exit(1)
    except common.USER_ERRORS as exc:
        logger.error("score: %s", common.describe_user_error(exc))
        sys.exit(1)
    logger.info("wrote %s: %s", args.output, summary.as_dict())
    if args.summary is not None and batch.get("estimated_prior"):
        est = batch["estimated_prior"]
        logger.info(
            "wrote %s: estimated prior %.5f %s (bundle %.5f), prior shift %s",
            args.summary,
            est["value"],
            est["ci"],
            batch["bundle_prior"],
            batch["drift"]["prior_shift"],
        )
    if args.rejects is not None and summary.rejected:
        logger.warning("%d examples rejected; see %s", summary.rejected, args.rejects)


def cli() -> None:
    """The ``ds-score`` console script: ``main()`` with user errors as one ``ERROR:`` line."""
    common.run_main(main)


if __name__ == "__main__":
    cli()
