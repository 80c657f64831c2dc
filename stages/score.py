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

This module is the command's entry point only: parsing and reporting; the work
(loading the bundle in the precision the machine resolves, scoring, the summary)
is ``dsprior.scoring.command``'s (``score_command``, ``summarize_scores``).

Usage::

    python -m stages.score --bundle bundle --input new_data/ --output scores.parquet
    python -m stages.score --bundle bundle --input new.csv --output s.csv --summary s.json
    python -m stages.score --bundle bundle --scores my_scores.parquet --summary s.json
    ds-score --bundle bundle --input new.csv --on-error quarantine --output scores.csv
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from dsprior import hardware, monitoring, runtime
from dsprior.rawio import DIM_MISMATCH, FORMATS, ON_ERROR, RawDataError
from dsprior.scoring import POOL_BATCHES, ScoreSummary
from dsprior.scoring.command import ScoreOptions, score_command, summarize_scores

logger = logging.getLogger(__name__)


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
    if args.rejects is not None and summary.rejected.examples:
        logger.warning("%d examples rejected; see %s", summary.rejected.examples, args.rejects)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()
    options = ScoreOptions(**vars(args))
    if args.scores is not None:
        try:
            summarize_scores(options)
        except runtime.USER_ERRORS as exc:
            logger.error("score: %s", runtime.describe_user_error(exc))
            sys.exit(1)
        logger.info("wrote %s from %s", args.summary, args.scores)
        return
    try:
        summary, batch = score_command(options)
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
