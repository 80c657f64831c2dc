"""The ``score`` command's work once its options are parsed: load the bundle for this
machine, score the input into the output, and (with a summary) estimate the batch without
labels, adapt the output to the estimated prior and record the batch in the history.

``stages/score.py`` parses the command line into ``ScoreOptions`` and calls
``score_command``, or ``summarize_scores`` for a batch scored elsewhere (``--scores``);
what each option means is in ``ds-score --help``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsprior import hardware, monitoring, priors, runtime
from dsprior.bundle import Bundle, load_bundle, read_spec
from dsprior.external import refuse_external_bundle
from dsprior.scoring.apply import adapted_table
from dsprior.scoring.output import ScoresWriter, output_format, read_scores
from dsprior.scoring.paths import check_paths
from dsprior.scoring.report import render_summary, summary_markdown_path
from dsprior.scoring.scores_file import scores_file_summary
from dsprior.scoring.stream import ScoreSummary, input_spec, score_file
from dsprior.scoring.summary import (
    BatchRecord,
    batch_summary,
    bootstrap_settings,
    run_record,
    scores_in_output,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreOptions:
    """The score command's options, as its command line gives them."""

    bundle: Path
    input: Path | None = None
    output: Path | None = None
    scores: Path | None = None
    format: str | None = None
    delimiter: str = ","
    on_error: str = "fail"
    rejects: Path | None = None
    batch_size: int = 64
    pool_size: int | None = None
    chunk_rows: int = 8192
    precision: str = "auto"
    onednn: str = "auto"
    summary: Path | None = None
    adapt_prior: bool = False
    resamples: int | None = None
    seed: int | None = None
    history: Path | None = None
    batch_name: str | None = None
    history_duplicate: str = "skip"


def required(value: Path | None, option: str) -> Path:
    """A path this command needs (the command line refuses to run without it)."""
    if value is None:
        raise ValueError(f"{option} is required here")
    return value


def adapt_output(path: str | Path, bundle: Bundle, moved: np.ndarray) -> None:
    """Rewrite the output with probabilities at the estimated prior and their decisions."""
    table = adapted_table(bundle, read_scores(path), moved)
    with ScoresWriter(path) as writer:
        writer.write(table)


def write_summary(
    path: str | Path,
    bundle: Bundle,
    output_path: str | Path,
    record: BatchRecord,
    scoring: ScoreSummary,
    *,
    bootstrap: priors.Bootstrap,
    adapt_prior: bool = False,
) -> dict[str, Any]:
    """Estimate the scored batch without labels; write S.json and S.md (and adapt the output)."""
    scores = scores_in_output(read_scores(output_path), record, output_path=output_path)
    summary, moved = batch_summary(
        bundle, scores, record, bootstrap=bootstrap, adapt_prior=adapt_prior
    )
    if adapt_prior and moved is not None:
        adapt_output(output_path, bundle, moved)
    summary.update(run_record(bundle, scoring))
    for warning in summary.get("warnings", []):
        logger.warning("%s", warning)
    runtime.write_json(path, summary)
    runtime.write_atomic(
        summary_markdown_path(path), render_summary(runtime.finite_or_none(summary))
    )
    return summary


def load_compute_bundle(bundle_dir: Path, *, precision: str, onednn: str) -> Bundle:
    """``load_bundle`` with oneDNN set before TensorFlow's import and the model in the
    precision ``dsprior.hardware`` resolves (float32 unless this CPU has native bf16 and the
    model was trained in bf16). A bundle of external scores is refused before TensorFlow starts;
    the pooled logistic baseline needs no TensorFlow."""
    spec = read_spec(bundle_dir)
    refuse_external_bundle(bundle_dir, spec)
    if spec["model"].get("format") != "keras":  # the baseline: no TensorFlow
        return load_bundle(bundle_dir)
    hardware.start_tensorflow(precision=precision, onednn=onednn)
    bundle = load_bundle(bundle_dir)
    from dsprior import cnn

    model, _ = cnn.for_this_machine(bundle.model, precision=precision, onednn=onednn)
    return dataclasses.replace(bundle, model=model)


def check_outputs(options: ScoreOptions) -> None:
    """Refuse, before the bundle is loaded, outputs over the input or each other, an output
    extension that chooses no format, and an input that cannot be read."""
    written = {
        "--output": options.output,
        "--rejects": options.rejects,
        "--summary": options.summary,
    }
    written["--history"] = options.history
    if options.summary is not None:
        written["--summary (its .md)"] = summary_markdown_path(options.summary)
    check_paths(required(options.input, "--input"), written)
    output_format(required(options.output, "--output"))
    input_spec(
        required(options.input, "--input"), format=options.format, delimiter=options.delimiter
    )


def score_command(options: ScoreOptions) -> tuple[ScoreSummary, dict[str, Any] | None]:
    """Score the input into the output (and the summary); what was scored, and the summary."""
    check_outputs(options)
    bundle = load_compute_bundle(options.bundle, precision=options.precision, onednn=options.onednn)
    record = BatchRecord()
    summary = score_file(
        bundle,
        required(options.input, "--input"),
        required(options.output, "--output"),
        format=options.format,
        delimiter=options.delimiter,
        on_error=options.on_error,
        rejects_path=options.rejects,
        batch_size=options.batch_size,
        pool_size=options.pool_size,
        chunk_rows=options.chunk_rows,
        on_example=record.add if options.summary is not None else None,
    )
    if options.summary is None:
        return summary, None
    batch = write_summary(
        options.summary,
        bundle,
        required(options.output, "--output"),
        record,
        summary,
        bootstrap=bootstrap_settings(bundle, resamples=options.resamples, seed=options.seed),
        adapt_prior=options.adapt_prior,
    )
    record_history(options, batch, required(options.input, "--input"))
    return summary, batch


def record_history(options: ScoreOptions, batch: dict[str, Any], input_path: Path) -> None:
    """Append the batch's summary to ``--history``, when given."""
    if options.history is not None:
        monitoring.record_batch(
            options.history,
            batch,
            input_path=input_path,
            batch=options.batch_name,
            duplicate=options.history_duplicate,
        )


def summarize_scores(options: ScoreOptions) -> dict[str, Any]:
    """The label-free summary of a batch scored elsewhere (``--scores``); no model, no
    TensorFlow."""
    summary = required(options.summary, "--summary")
    scores = required(options.scores, "--scores")
    written = {
        "--summary": options.summary,
        "--summary (its .md)": summary_markdown_path(summary),
    }
    check_paths(scores, {**written, "--history": options.history}, input_option="--scores")
    batch = scores_file_summary(
        options.bundle, scores, resamples=options.resamples, seed=options.seed
    )
    for warning in batch.get("warnings", []):
        logger.warning("%s", warning)
    runtime.write_json(summary, batch)
    runtime.write_atomic(summary_markdown_path(summary), render_summary(batch))
    record_history(options, batch, scores)
    return batch
