"""The score summary's declared shape (``score --summary S.json``), key by key.

The estimate itself is ``dsprior.quantify.BatchEstimate`` (evaluate's label-free batches have
it too) and the true-label keys ``dsprior.evaluation.record.TrueShift``; this adds what scoring
knows: the adapted decisions, the batch's own labels, and the run. ``tests/test_score.py``
checks that every key a summary holds is declared here (``dsprior.records``).
"""

from __future__ import annotations

from typing import Annotated, NotRequired, TypedDict

from dsprior import calibration as cal
from dsprior import quantify
from dsprior.evaluation import record as evaluation


class Performance(TypedDict):
    precision: Annotated[float | None, "precision against the labels"]
    recall: Annotated[float | None, "recall against the labels"]
    alerts_per_1000: Annotated[float, "decisions 1 per 1,000"]
    expected_cost: Annotated[float | None, "expected cost per 1,000 at the bundle's costs"]


class MeasuredLabels(Performance):
    """The input's own labels measured beside the estimates, on its labelled examples."""

    labelled_examples: Annotated[int, "examples with a label"]
    prior: Annotated[float, "their label-1 share"]
    labels: Annotated[str, "which labels and weights"]
    after_adapt_prior: NotRequired[
        Annotated[Performance, "the same for the decisions re-made at the estimated prior"]
    ]


class AdaptPrior(TypedDict):
    """What re-deciding at the estimated prior changes (``--adapt-prior`` applies it)."""

    applied: Annotated[bool, "whether the output was rewritten at the estimated prior"]
    to_prior: Annotated[float | None, "the estimated prior"]
    alerts_per_1000_before: Annotated[float, "alerts per 1,000 at the bundle's prior"]
    alerts_per_1000_after: Annotated[float, "alerts per 1,000 at the estimated prior"]
    decisions_changed: Annotated[int, "decisions that flip"]
    estimated_at_threshold_after: Annotated[
        dict[str, quantify.Estimate], "the estimates for the re-made decisions"
    ]


class NoiseSensitivity(evaluation.TrueShift):
    distant_estimates_move_by: Annotated[
        dict[str, float | None], "how far the stated-noise distant values lie from EM/CBPE's"
    ]


class ScoringRun(TypedDict):
    """What the run read, scored and rejected (``scoring.stream.ScoreSummary``)."""

    examples_read: Annotated[int, "examples read from the input"]
    examples_scored: Annotated[int, "of which scored"]
    examples_rejected: Annotated[int, "of which rejected"]
    files_rejected: Annotated[int, "input files rejected whole"]
    rows_read: Annotated[int, "rows read"]
    rows_rejected: Annotated[int, "rows in rejected examples"]
    reconciled: Annotated[bool | None, "whether read = scored + rejected"]
    rejected_by_reason: Annotated[dict[str, int], "rejects per reason"]
    decided_positive: Annotated[int, "examples decided 1"]
    expected_cost_total: Annotated[float, "expected cost summed over the batch"]
    rows_scored: Annotated[int, "rows scored"]
    seconds: Annotated[float, "time taken"]
    examples_per_s: Annotated[float | None, "throughput"]


class ScoresFileRun(TypedDict):
    """What ``score --scores`` read: a batch scored elsewhere (``scoring.scores_file``)."""

    scores_file: Annotated[str, "the batch's scores file"]
    column: Annotated[str, "its score column"]
    scale: Annotated[str, "log_odds or probability"]
    examples_scored: Annotated[int, "examples in it"]


class BundleRef(TypedDict):
    path: Annotated[str, "the bundle folder"]
    content_hash: Annotated[str | None, "its bundle.json content hash"]
    format_version: Annotated[int | None, "its format version"]


class ScoreSummaryRecord(TypedDict):
    """S.json of ``score --summary S.json``. An empty batch holds nulls for the estimates."""

    examples: Annotated[int, "examples in the batch"]
    bundle_prior: Annotated[float, "the prior the bundle's threshold was chosen at"]
    estimated_prior: Annotated[quantify.PriorEstimate | None, "the batch's prior by EM"]
    estimated_at_threshold: Annotated[
        quantify.AtThreshold | None, "the threshold's performance on it, estimated"
    ]
    drift: Annotated[quantify.Drift | None, "has the batch moved from dev_b"]
    calibration: NotRequired[Annotated[cal.CalibrationRecord, "the recalibration used"]]
    warnings: Annotated[list[str], "what makes the estimate weak"]
    adapt_prior: NotRequired[Annotated[AdaptPrior, "re-deciding at the estimated prior"]]
    estimated_prior_true: NotRequired[
        Annotated[evaluation.TruePriorEstimate, "the true-label prior (gold on dev_b)"]
    ]
    estimated_at_threshold_true: NotRequired[
        Annotated[evaluation.TrueAtThreshold, "performance against the truth"]
    ]
    label_noise: NotRequired[Annotated[evaluation.TrueLabelNoise, "the distant labels' noise"]]
    true_label_estimate: NotRequired[Annotated[str, "why there is no true-label estimate"]]
    noise_assumption: NotRequired[Annotated[str, "what the distant-label estimates assume"]]
    noise_sensitivity: NotRequired[
        Annotated[NoiseSensitivity | str, "the estimate under stated noise rates, or why not"]
    ]
    measured: NotRequired[Annotated[MeasuredLabels, "the input's labels, where it has them"]]
    groups: NotRequired[Annotated[str, "whether the input's groups were resampled whole"]]
    scoring: Annotated[ScoringRun | ScoresFileRun, "the scoring run, or the scores file read"]
    bundle: Annotated[BundleRef, "the bundle used"]
