"""score: new examples -> log-odds, probability at the production prior, decision, expected cost.

Reads raw files in any format ingest accepts (CSV, CSV.gz, Parquet, JSON Lines;
one file or a folder), with ingest's reader and so the same validation, the
same ``on_error`` modes and the same messages; ``group`` and ``label`` columns
are optional here. Writes Parquet or CSV, chosen by the output's extension,
one row per example in input order:

- ``example_id``;
- ``logit``: the model's raw log-odds (its output unit's pre-activation, float64,
  before the prior correction and recalibration): rank by this, it never ties where
  the sigmoid saturates;
- ``score``: ``sigmoid(logit)``, the raw score (calibrated at the training prior);
- ``probability``: the logit mapped to the production prior with the bundle's
  prior correction and recalibration, in log-odds, exactly as evaluate maps it;
- ``decision``: 1 where ``probability >= threshold`` (the threshold evaluate
  chose on dev_b), compared in log-odds (``threshold.logit``), else 0;
- ``expected_cost``: the example's expected cost under the bundle's costs,
  ``(1 - p) * c_FP`` if decided positive, else ``p * c_FN``.

Streaming: examples are read ``pool_size`` at a time (default eight batches),
sorted by length, cut into batches of ``batch_size`` and scored; each pool's
rows are written before the next is read, so memory is bounded by a pool, not by
the input. Features are rounded to the dtype the training dataset stored
(float16 by default), as ingest would have, so scores match evaluate's.

With ``--summary S.json`` the batch is also estimated without labels
(``dsprior.scoring.summary``, with ``dsprior.quantify``): its prior by EM with a
95% interval and an ACC/PACC cross-check against dev_b's rates from the bundle,
the threshold's expected precision, recall, alerts per 1,000 and cost at that
prior, and drift
(``prior_shift``: the interval excludes the bundle's prior; a KS test against
dev_b's probabilities). ``S.md`` beside it renders the same. Labels, where the
input has them, are measured beside the estimates. ``--adapt-prior`` rewrites the
output with probabilities and decisions at the estimated prior. ``--history H`` appends the
batch's summary to the monitoring history H (``dsprior.monitoring.history``; the ``monitor``
stage reads it), once per batch unless ``--history-duplicate`` says otherwise.

With ``--scores FILE --summary S.json`` (no ``--input``/``--output``) the batch was scored
elsewhere, by any model: the file holds ``example_id`` and the score column the bundle names
(a bundle built from external scores; for a CNN bundle, ``score``'s own ``logit``), and the
same label-free summary is written from it (``dsprior.scoring.scores_file``). A bundle built
from external scores holds no model: ``--input`` is refused for it, by name.

This module is the command's entry point only: parsing, loading the bundle in
the precision the machine resolves, and writing; the scoring itself is
``dsprior.scoring``.

Usage::

    python -m stages.score --bundle bundle --input new_data/ --output scores.parquet
    python -m stages.score --bundle bundle --input new.csv --output s.csv --summary s.json
    python -m stages.score --bundle bundle --scores my_scores.parquet --summary s.json
    ds-score --bundle bundle --input new.csv --on-error quarantine --output scores.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dsprior import hardware, monitoring, runtime
from dsprior.bundle import Bundle, load_bundle, read_spec
from dsprior.external import refuse_external_bundle
from dsprior.rawio import DIM_MISMATCH, FORMATS, ON_ERROR, RawDataError
from dsprior.scoring import (
    POOL_BATCHES,
    BatchRecord,
    ScoreSummary,
    ScoresWriter,
    adapted_table,
    batch_summary,
    check_paths,
    input_spec,
    output_format,
    read_scores,
    render_summary,
    run_record,
    score_file,
    scores_file_summary,
    scores_in_output,
    summary_markdown_path,
)

logger = logging.getLogger(__name__)


def adapt_output(path: str | Path, bundle: Bundle, moved: np.ndarray) -> None:
    """Rewrite the output with probabilities at the estimated prior and their decisions."""
    table = adapted_table(bundle, read_scores(path), moved)
    with ScoresWriter(path) as writer:
        writer.write(table)


def write_markdown(path: Path, text: str) -> None:
    """``text`` at ``path``, written beside it and renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    scores = scores_in_output(read_scores(output_path), record, output_path=output_path)
    summary, moved = batch_summary(
        bundle, scores, record, adapt_prior=adapt_prior, resamples=resamples, seed=seed
    )
    if adapt_prior and moved is not None:
        adapt_output(output_path, bundle, moved)
    summary.update(run_record(bundle, scoring))
    for warning in summary.get("warnings", []):
        logger.warning("%s", warning)
    runtime.write_json(path, summary)
    write_markdown(summary_markdown_path(path), render_summary(runtime.finite_or_none(summary)))
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
    hardware.apply_onednn(hardware.machine_compute(precision, onednn))
    runtime.quiet_tensorflow()
    bundle = load_bundle(bundle_dir)
    from dsprior import cnn

    model, _ = cnn.for_this_machine(bundle.model, precision=precision, onednn=onednn)
    return dataclasses.replace(bundle, model=model)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ds-score", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    parser.add_argument("--input", type=Path, help="raw file or folder")
    parser.add_argument(
        "--scores",
        type=Path,
        help="instead of --input/--output: a batch scored elsewhere (.parquet, .csv), for "
        "--summary",
    )
    parser.add_argument("--format", choices=FORMATS, help="default: from each file's extension")
    parser.add_argument("--delimiter", default=",", help="CSV delimiter (default ',')")
    parser.add_argument("--on-error", choices=ON_ERROR, default="fail")
    parser.add_argument(
        "--rejects",
        type=Path,
        help="JSON Lines of rejected examples; default with quarantine: OUTPUT.rejects.jsonl",
    )
    parser.add_argument("--output", type=Path, help=".parquet, .csv or .csv.gz")
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
    parser.add_argument(
        "--history",
        type=Path,
        help="with --summary: append the batch to this monitoring history (JSON Lines)",
    )
    parser.add_argument(
        "--batch-name", help="the batch's name in the history (default: INPUT_NAME@UTC_TIME)"
    )
    parser.add_argument(
        "--history-duplicate",
        choices=monitoring.DUPLICATE_MODES,
        default="skip",
        help="a batch the history already holds (same bundle, and same name or same input): "
        "skip (default), replace it, or append it again",
    )
    args = parser.parse_args(argv)
    if args.scores is not None:
        if args.input is not None or args.output is not None:
            parser.error("--scores replaces --input and --output (the batch is scored already)")
        if args.summary is None:
            parser.error("--scores needs --summary (the summary is what it computes)")
        if args.adapt_prior:
            parser.error("--adapt-prior rewrites --output, which --scores does not write")
    elif args.input is None or args.output is None:
        parser.error("the following arguments are required: --input, --output (or --scores)")
    if args.history is not None and args.summary is None:
        parser.error("--history needs --summary (the history records the summary's estimates)")
    if args.adapt_prior and args.summary is None:
        parser.error("--adapt-prior needs --summary (the estimate it adapts to goes there)")
    if args.resamples is not None and args.resamples < 1:
        parser.error(f"--resamples must be an integer >= 1, got {args.resamples}")
    if args.rejects is None and args.on_error == "quarantine" and args.output is not None:
        args.rejects = args.output.with_name(args.output.name + ".rejects.jsonl")
    return args


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the bundle is loaded, outputs over the input or each other, an output
    extension that chooses no format, and an input that cannot be read."""
    written = {"--output": args.output, "--rejects": args.rejects, "--summary": args.summary}
    written["--history"] = args.history
    if args.summary is not None:
        written["--summary (its .md)"] = summary_markdown_path(args.summary)
    check_paths(args.input, written)
    output_format(args.output)
    input_spec(args.input, format=args.format, delimiter=args.delimiter)


def record_history(args: argparse.Namespace, batch: dict[str, Any], input_path: Path) -> None:
    if args.history is not None:
        monitoring.record_batch(
            args.history,
            batch,
            input_path=input_path,
            batch=args.batch_name,
            duplicate=args.history_duplicate,
        )


def run_scores(args: argparse.Namespace) -> dict[str, Any]:
    """The label-free summary of a batch scored elsewhere (``--scores``); no model, no
    TensorFlow."""
    written = {
        "--summary": args.summary,
        "--summary (its .md)": summary_markdown_path(args.summary),
    }
    check_paths(args.scores, {**written, "--history": args.history}, input_option="--scores")
    batch = scores_file_summary(args.bundle, args.scores, resamples=args.resamples, seed=args.seed)
    for warning in batch.get("warnings", []):
        logger.warning("%s", warning)
    runtime.write_json(args.summary, batch)
    write_markdown(summary_markdown_path(args.summary), render_summary(batch))
    record_history(args, batch, args.scores)
    return batch


def run(args: argparse.Namespace) -> tuple[ScoreSummary, dict[str, Any] | None]:
    """Score the input into the output (and the summary); what was scored, and the summary."""
    check_outputs(args)
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
    if args.summary is None:
        return summary, None
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
    record_history(args, batch, args.input)
    return summary, batch


def log_results(
    args: argparse.Namespace, summary: ScoreSummary, batch: dict[str, Any] | None
) -> None:
    logger.info("wrote %s: %s", args.output, summary.as_dict())
    if batch is not None and batch.get("estimated_prior"):
        est = batch["estimated_prior"]
        logger.info(
            "wrote %s: estimated prior %.5f %s (bundle %.5f), prior shift %s",
            args.summary,
            est["value"],
            est["ci"],
            batch["bundle_prior"],
            batch["drift"]["prior_shift"],
        )
    if args.rejects is not None and summary.rejects.examples:
        logger.warning("%d examples rejected; see %s", summary.rejects.examples, args.rejects)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()
    if args.scores is not None:
        try:
            run_scores(args)  # writes the summary
        except runtime.USER_ERRORS as exc:
            logger.error("score: %s", runtime.describe_user_error(exc))
            sys.exit(1)
        logger.info("wrote %s from %s", args.summary, args.scores)
        return
    try:
        summary, batch = run(args)
    except RawDataError as exc:
        hint = ""
        if exc.reject.reason != DIM_MISMATCH and args.on_error == "fail":
            hint = "; use --on-error quarantine to skip bad examples and go on"
        # one "ERROR: ..." line (runtime.setup_logging's format), no traceback
        logger.error(
            "score failed (on_error: %s): %s%s",
            args.on_error,
            runtime.describe_user_error(exc),
            hint,
        )
        sys.exit(1)
    except runtime.USER_ERRORS as exc:
        logger.error("score: %s", runtime.describe_user_error(exc))
        sys.exit(1)
    log_results(args, summary, batch)


def cli() -> None:
    """The ``ds-score`` console script: ``main()`` with user errors as one ``ERROR:`` line."""
    runtime.run_main(main)


if __name__ == "__main__":
    cli()
