"""Scoring new examples with a model bundle: what the ``score`` command does.

``apply`` turns raw scores into probabilities, decisions and expected costs;
``output`` writes and reads the output file; ``paths`` refuses outputs that would
overwrite the input; ``stream`` reads, scores and writes a raw source a pool at a
time; ``summary`` estimates the scored batch without labels, and ``report``
renders that estimate as Markdown; ``scores_file`` reads a batch scored elsewhere (any
model) for the same estimate. ``command`` (not imported here: it brings in the
monitoring history) is the ``score`` command's work, from its options to its files.
"""

from dsprior.scoring.apply import (
    adapted_table,
    expected_costs,
    output_table,
    score_arrays,
    score_table,
)
from dsprior.scoring.output import (
    OUTPUT_FORMATS,
    OUTPUT_SCHEMA,
    ScoresWriter,
    output_format,
    read_scores,
)
from dsprior.scoring.paths import check_paths
from dsprior.scoring.report import render_summary, summary_markdown_path
from dsprior.scoring.scores_file import (
    read_batch_scores,
    scores_column,
    scores_file_record,
    scores_file_summary,
)
from dsprior.scoring.stream import (
    POOL_BATCHES,
    ScorePool,
    ScoreSummary,
    accepted_examples,
    bundle_reader,
    check_on_error,
    input_spec,
    score_file,
    score_source,
)
from dsprior.scoring.summary import (
    BatchRecord,
    batch_summary,
    run_record,
    scores_in_output,
)

__all__ = [
    "OUTPUT_FORMATS",
    "OUTPUT_SCHEMA",
    "POOL_BATCHES",
    "BatchRecord",
    "ScorePool",
    "ScoreSummary",
    "ScoresWriter",
    "accepted_examples",
    "adapted_table",
    "batch_summary",
    "bundle_reader",
    "check_on_error",
    "check_paths",
    "expected_costs",
    "input_spec",
    "output_format",
    "output_table",
    "read_batch_scores",
    "read_scores",
    "render_summary",
    "run_record",
    "score_arrays",
    "score_file",
    "score_source",
    "score_table",
    "scores_column",
    "scores_file_record",
    "scores_file_summary",
    "scores_in_output",
    "summary_markdown_path",
]
