"""metrics.json's declared shape: every key the evaluate stage writes, with what it means.

``Metrics`` is the record; the code that reads it (the report, the plots, the bundle) takes
a ``Metrics``, so mypy checks each key it reads, and ``tests/test_evaluation_record.py``
checks that every key the pipeline writes is declared here (``dsprior.records``). A key
added, renamed or removed is changed here first. The label-free batch entries have the
shape of ``score --summary``'s estimate (``BatchEstimate``), declared here for both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NotRequired, TypedDict

from dsprior import runtime
from dsprior.calibration import CalibrationRecord
from dsprior.hardware import ComputeRecord
from dsprior.modeldir import ExternalScoresRecord
from dsprior.quantify import BatchEstimate, Estimate, Interval

# ---------------------------------------------------------------- a rule in one view


class ConfusionRecord(TypedDict):
    tp: Annotated[float, "true positives (weighted in the prior view)"]
    fp: Annotated[float, "false positives"]
    fn: Annotated[float, "false negatives"]
    tn: Annotated[float, "true negatives"]


class ViewMetrics(TypedDict):
    """One rule on one split in one view: ``sample`` counts examples as they are, ``prior``
    weights them to the production prior (``dsprior.evaluation.measures``)."""

    precision: Annotated[float | None, "precision of the rule; null where undefined"]
    recall: Annotated[float | None, "recall of the rule"]
    f1: Annotated[float | None, "F1 of the rule"]
    lr_plus: Annotated[float | None, "positive likelihood ratio; null without false positives"]
    expected_cost: Annotated[float | None, "expected cost per 1,000 examples at the costs"]
    confusion: Annotated[ConfusionRecord, "the confusion counts"]
    confusion_per_1000: Annotated[ConfusionRecord | None, "the same per 1,000 examples"]
    positives_per_1000: Annotated[float, "label-1 examples per 1,000"]
    true_alerts_per_1000: Annotated[float, "true positives per 1,000"]
    false_alerts_per_1000: Annotated[float, "false positives per 1,000"]
    missed_per_1000: Annotated[float, "false negatives per 1,000"]
    alerts_per_1000: Annotated[float, "decisions 1 per 1,000"]
    examples: NotRequired[Annotated[int, "examples in the split (view metrics only)"]]
    positives: NotRequired[Annotated[int, "label-1 examples in the split"]]
    positive_fraction: NotRequired[Annotated[float | None, "weighted share of label 1"]]
    average_precision: NotRequired[Annotated[float | None, "threshold-free: average precision"]]
    roc_auc: NotRequired[Annotated[float | None, "threshold-free: ROC AUC"]]
    log_loss: NotRequired[Annotated[float | None, "log loss of the view's probability"]]
    brier: NotRequired[Annotated[float | None, "Brier score of the view's probability"]]
    probability_scored: NotRequired[
        Annotated[str, "which column the scores came from: score (sample) or probability"]
    ]
    precision_ci: NotRequired[Annotated[Interval, "interval of precision (bootstrap.method)"]]
    recall_ci: NotRequired[Annotated[Interval, "interval of recall (bootstrap.method)"]]
    f1_ci: NotRequired[Annotated[Interval, "interval of F1 (bootstrap.method)"]]
    expected_cost_ci: NotRequired[Annotated[Interval, "interval of the cost (bootstrap.method)"]]
    interval_refused: NotRequired[
        Annotated[
            str,
            "in place of the four intervals: why there are none (fewer positives than "
            "evaluate.bootstrap.min_positives, or a prior estimated from fewer than "
            "evaluate.bootstrap.min_prior_positives)",
        ]
    ]


class ShippedRule(TypedDict):
    """The rule the classic team shipped: raw score >= 0.5."""

    sample: Annotated[ViewMetrics, "as sampled"]
    prior: Annotated[ViewMetrics, "at the prior"]


class GoldEntry(TypedDict):
    """A split's metrics against gold labels, on its gold-labelled rows only."""

    gold_examples: Annotated[int, "rows with a gold label"]
    split_examples: Annotated[int, "rows in the split"]
    labelled_fraction: Annotated[float, "gold_examples / split_examples"]
    sample: Annotated[ViewMetrics, "the chosen rule against gold, as sampled"]
    prior: Annotated[ViewMetrics, "the chosen rule against gold, at the gold prior"]
    shipped: Annotated[ShippedRule, "the shipped rule against gold"]


class LabelNoiseCounts(TypedDict):
    both_positive: Annotated[float, "distant 1 and gold 1 (unweighted)"]
    false_labels: Annotated[float, "distant 1, gold 0"]
    missing_labels: Annotated[float, "distant 0, gold 1"]
    both_negative: Annotated[float, "distant 0 and gold 0"]


class LabelNoise(TypedDict):
    """How the distant labels err where both labels exist."""

    false_label_rate: Annotated[float | None, "P(gold 0 | distant 1)"]
    missing_label_rate: Annotated[float | None, "P(distant 0 | gold 1)"]
    false_label_rate_ci: Annotated[Interval, "its interval (how: interval)"]
    missing_label_rate_ci: Annotated[Interval, "its interval (how: interval)"]
    both_labelled: Annotated[int, "rows with both labels"]
    counts: Annotated[LabelNoiseCounts, "the unweighted counts"]
    weights: Annotated[str, "the weights the rates use"]
    interval: Annotated[str, "how the intervals were made"]


class CalibrationQualityBase(TypedDict):
    """Calibration of the probabilities at the prior (``calibration.calibration_quality``)."""

    mean_probability: Annotated[float, "weighted mean probability"]
    label_rate: Annotated[float, "weighted label-1 rate"]
    mean_to_rate: Annotated[float | None, "mean_probability / label_rate"]
    calibration_error: Annotated[float | None, "weighted expected calibration error"]
    log_loss: Annotated[float | None, "weighted log loss"]


class CalibrationQuality(CalibrationQualityBase):
    before_recalibration: NotRequired[
        Annotated[CalibrationQualityBase, "the same on the prior-corrected values, before it"]
    ]


class SplitEntry(TypedDict):
    """One split (dev_a, dev_b or test)."""

    sample: Annotated[ViewMetrics, "the chosen threshold, as sampled"]
    prior: Annotated[ViewMetrics, "the chosen threshold, at the production prior"]
    prior_at_bayes_threshold: Annotated[ViewMetrics, "the Bayes threshold, at the prior"]
    shipped: Annotated[ShippedRule, "the shipped rule (raw score >= 0.5)"]
    gold: NotRequired[Annotated[GoldEntry, "against gold labels (splits that have them)"]]
    label_noise: NotRequired[Annotated[LabelNoise, "distant against gold labels"]]
    calibration_at_prior: Annotated[CalibrationQuality, "calibration at the prior"]


# ---------------------------------------------------------------- the head


class CostEntry(TypedDict):
    false_positive: Annotated[float, "evaluate.cost.false_positive"]
    false_negative: Annotated[float, "evaluate.cost.false_negative"]
    unit: Annotated[str, "what the expected costs are per"]


class ThresholdByLabels(TypedDict):
    distant: Annotated[float, "dev_b's cost-minimising threshold against distant labels"]
    gold: NotRequired[Annotated[float | None, "the same against gold; null: too few gold"]]


class PriorUncertainty(TypedDict):
    """Per labels: whether the intervals at that prior carry its sampling uncertainty."""

    distant: Annotated[
        bool, "true: the prior was estimated from the production rows, and drawn from them"
    ]
    gold: Annotated[bool, "the same for the gold-label prior; false: taken as known"]


class BootstrapEntry(TypedDict):
    resamples: Annotated[int, "evaluate.bootstrap.resamples: draws per interval"]
    level: Annotated[float, "evaluate.bootstrap.level"]
    seed: Annotated[int, "evaluate.bootstrap.seed"]
    unit: Annotated[str, "what the design effect resamples: group"]
    min_positives: NotRequired[
        Annotated[int, "evaluate.bootstrap.min_positives: fewer in a split, no interval"]
    ]
    min_prior_positives: NotRequired[
        Annotated[
            int,
            "evaluate.bootstrap.min_prior_positives: fewer in the rows an estimated prior came "
            "from, no interval at it",
        ]
    ]
    method: NotRequired[
        Annotated[
            str,
            "how the intervals are made: Jeffreys on each rate's effective count (the group "
            "bootstrap's design effect); absent before this method (a group bootstrap)",
        ]
    ]
    prior_uncertainty: NotRequired[
        Annotated[PriorUncertainty, "which priors' sampling uncertainty the intervals carry"]
    ]


class TiedScores(TypedDict):
    column: Annotated[str, "the predictions column compared: logit (or score)"]
    examples: Annotated[int, "examples in the split"]
    distinct: Annotated[int, "distinct values among them"]
    tied_share: Annotated[float | None, "share of examples that tie with another"]
    positives: Annotated[int, "label-1 examples"]
    positives_tied_share: Annotated[float | None, "share of positives that tie"]


class ClassicExample(TypedDict):
    precision_sampled: Annotated[float, "TP 97, FP 3 at 1:2: precision as sampled"]
    precision_projected: Annotated[float, "the same rule with negatives x50"]
    precision_siblini: Annotated[float, "Siblini et al.'s calibrated precision, the same"]
    recall: Annotated[float, "recall (unchanged by the prior)"]


class CalibrationCandidate(TypedDict):
    method: Annotated[str, "identity, platt or isotonic"]
    fitted_on: Annotated[str | None, "the split it was fitted on"]
    slope: Annotated[float, "Platt slope"]
    intercept: Annotated[float, "Platt intercept"]
    knots: Annotated[int, "isotonic knots"]
    dev_b_log_loss: Annotated[float | None, "its log loss on dev_b at the prior"]
    scored_on: Annotated[str, "how dev_b was scored (cross-fitted where fitted on it)"]


class CalibrationChoice(TypedDict):
    """The recalibration after the prior correction (``recalibration.fit_recalibration``)."""

    chosen: Annotated[CalibrationRecord, "the recalibration applied"]
    chosen_by: Annotated[str, "the rule that chose it"]
    candidates: Annotated[list[CalibrationCandidate], "each candidate and its dev_b log loss"]
    applies_to: Annotated[str, "what it maps"]
    training_prior: Annotated[float | None, "the prior the training weights describe"]


class SensitivityRow(TypedDict):
    factor: Annotated[float, "the prior as a multiple of the estimate"]
    prior: Annotated[float, "that prior"]
    precision: Annotated[float | None, "test's precision at it"]
    recall: Annotated[float | None, "test's recall at it"]
    alerts_per_1000: Annotated[float, "alerts per 1,000 at it"]
    expected_cost: Annotated[float | None, "expected cost per 1,000 at it"]


class PriorSensitivity(TypedDict):
    split: Annotated[str, "the split measured: test"]
    rule: Annotated[str, "the rule, which stays as shipped"]
    rows: Annotated[list[SensitivityRow], "one row a prior"]


class ExternalEvaluate(TypedDict):
    external_scores: Annotated[ExternalScoresRecord, "the scores read instead of scoring here"]


class BaselineEvaluate(TypedDict):
    model: Annotated[str, "pooled_logistic: the baseline, scored without TensorFlow"]
    framework: Annotated[str, "what scored it: numpy"]


class Compute(TypedDict):
    train: Annotated[ComputeRecord | None, "what trained the model (train.json)"]
    evaluate: Annotated[ComputeRecord | ExternalEvaluate | BaselineEvaluate, "what scored it here"]


# ---------------------------------------------------------------- label-free estimates


class Measured(TypedDict):
    prior: Annotated[float, "the batch's prior by its labels"]
    precision: Annotated[float | None, "precision by its labels"]
    recall: Annotated[float | None, "recall by its labels"]
    alerts_per_1000: Annotated[float, "alerts per 1,000"]
    expected_cost: Annotated[float | None, "expected cost per 1,000"]


class LabelFreeBatch(BatchEstimate):
    """A batch of evaluate's label-free check: the estimate beside what the labels say."""

    measured: Annotated[Measured, "what the hidden labels measure"]
    in_sample: Annotated[bool, "whether the batch is dev_b, the reference itself"]


# ---------------------------------------------------------------- the true-label estimate
# (``noise_shift.estimate_true_shift``): metrics.json's and score --summary's


class TruePriorCrossCheck(TypedDict):
    distant_prior_implied: Annotated[Estimate, "the distant-label prior the estimate implies"]
    note: Annotated[str, "how to compare it"]


class TruePriorEstimate(TypedDict):
    value: Annotated[float | None, "the batch's true-label prior"]
    ci: Annotated[Interval, "its interval"]
    interval_refused: NotRequired[
        Annotated[str, "why ci is null: the adjusted count is undefined, or at one bound"]
    ]
    method: Annotated[str, "the estimator"]
    interval: Annotated[str, "how the interval was made"]
    cross_check: Annotated[TruePriorCrossCheck, "against the distant-label estimate"]


class DistantAtThreshold(TypedDict):
    prior: Annotated[Estimate, "the prior distant labels would measure"]
    precision: Annotated[Estimate, "the precision distant labels would measure"]
    recall: Annotated[Estimate, "the recall distant labels would measure"]


class TrueAtThreshold(TypedDict):
    threshold: Annotated[float, "the bundle's threshold"]
    decisions: Annotated[str, "at which prior the decisions are made"]
    interval: Annotated[str, "what the intervals hold"]
    labels: Annotated[str, "which labels each value is against"]
    precision: Annotated[Estimate, "precision against the truth"]
    recall: Annotated[Estimate, "recall against the truth"]
    alerts_per_1000: Annotated[Estimate, "alerts per 1,000"]
    expected_cost: Annotated[Estimate, "expected cost per 1,000 against the truth"]
    distant_labels: Annotated[DistantAtThreshold, "what distant labels would measure"]


# The functional form: one key, "from", is a Python keyword.
TrueLabelNoise = TypedDict(
    "TrueLabelNoise",
    {
        "distant_1_given_true_1": Annotated[Estimate, "a: P(distant 1 | true 1)"],
        "distant_1_given_true_0": Annotated[Estimate, "b: P(distant 1 | true 0)"],
        "missing_label_rate": Annotated[Estimate, "1 - a"],
        "false_label_rate": Annotated[Estimate, "P(true 0 | distant 1)"],
        "decision_tpr_true": Annotated[Estimate, "the rule's recall against the truth on dev_b"],
        "decision_fpr_true": Annotated[Estimate, "the rule's false-positive rate against it"],
        "from": Annotated[str, "where the rates come from"],
        "stated": Annotated[
            dict[str, float] | None, "the stated rates used instead of gold, if any"
        ],
    },
)


class TrueShift(TypedDict):
    """What ``estimate_true_shift`` returns."""

    estimated_prior_true: Annotated[TruePriorEstimate, "the true-label prior"]
    estimated_at_threshold_true: Annotated[TrueAtThreshold, "performance against the truth"]
    label_noise: Annotated[TrueLabelNoise, "the distant labels' noise, from dev_b"]


class TrueMeasured(TypedDict):
    gold_examples: Annotated[int, "gold-labelled examples in the batch"]
    prior_true: Annotated[float | None, "the prior by gold"]
    precision_true: Annotated[float | None, "precision against gold"]
    recall_true: Annotated[float | None, "recall against gold"]
    prior_distant: Annotated[float | None, "the prior by distant labels"]
    precision_distant: Annotated[float | None, "precision against distant labels"]
    recall_distant: Annotated[float | None, "recall against distant labels"]


class TrueShiftBatch(TrueShift):
    """A batch of evaluate's true-label check (``noise_shift.estimate_true_shift``)."""

    examples: Annotated[int, "examples in the batch"]
    measured: Annotated[TrueMeasured, "what gold and distant labels measure"]
    in_sample: Annotated[bool, "whether the batch is dev_b, where the rates come from"]


class IntervalCheck(TypedDict):
    checks: Annotated[int, "batches where the interval could be checked"]
    held: Annotated[int, "of which it held the measured value"]
    missed: Annotated[list[str], "the batches where it did not"]
    not_checked: Annotated[list[str], "the batches where it could not be checked"]


class IntervalChecks(TypedDict):
    batches: Annotated[str, "which batches were checked"]
    level: Annotated[float, "the intervals' level"]
    intervals: Annotated[dict[str, IntervalCheck], "per interval (named in words)"]


# ---------------------------------------------------------------- metrics.json


class Metrics(TypedDict):
    """metrics.json."""

    prior: Annotated[float, "the production prior the metrics are at"]
    prior_source: Annotated[str, "where the prior came from"]
    prior_estimated: Annotated[float | None, "the prior estimated from production-ratio rows"]
    prior_of_model: Annotated[float | None, "the prior the model's corrected outputs are at"]
    beta: Annotated[float, "train's beta"]
    cost: Annotated[CostEntry, "the costs"]
    threshold: Annotated[float, "the chosen threshold on the probability at the prior"]
    threshold_logit: Annotated[float | None, "the same in log-odds"]
    threshold_score: Annotated[float, "the raw model score that reaches it"]
    threshold_source: Annotated[str, "how it was chosen"]
    threshold_labels: Annotated[str, "evaluate.threshold_labels: distant or gold"]
    threshold_by_labels: Annotated[ThresholdByLabels, "dev_b's threshold against each labels"]
    bayes_threshold: Annotated[float, "c_FP / (c_FP + c_FN)"]
    bayes_threshold_score: Annotated[float, "the raw model score that reaches it"]
    gold_prior: NotRequired[Annotated[float | None, "the gold-label production prior"]]
    gold_prior_source: NotRequired[Annotated[str | None, "where it came from"]]
    dev_a: Annotated[SplitEntry, "the projection: dev_a weighted to the prior"]
    dev_b: Annotated[SplitEntry, "where the threshold is chosen"]
    test: Annotated[SplitEntry, "the measurement reported"]
    tied_scores: Annotated[dict[str, TiedScores], "per split: how many scores tie"]
    bootstrap: Annotated[BootstrapEntry, "how the intervals were resampled"]
    classic_example: Annotated[ClassicExample, "the worked example of the README"]
    calibration: Annotated[CalibrationChoice, "the recalibration"]
    compute: Annotated[Compute, "what trained and what scored the model"]
    prior_sensitivity: Annotated[PriorSensitivity, "test's metrics across plausible priors"]
    label_free: Annotated[dict[str, LabelFreeBatch], "per batch: the label-free estimate"]
    label_free_true_shift: NotRequired[
        Annotated[dict[str, TrueShiftBatch], "per batch: the true-label estimate (gold on dev_b)"]
    ]
    label_free_checks: Annotated[IntervalChecks, "how often each label-free interval held"]


def write_metrics(path: str | Path, metrics: Metrics) -> None:
    """Write metrics.json (NaN as null, keys sorted: the same bytes for the same metrics)."""
    runtime.write_json(path, metrics)


def read_metrics(path: str | Path) -> Metrics:
    """metrics.json as evaluate wrote it."""
    metrics: Metrics = json.loads(Path(path).read_text())
    return metrics
