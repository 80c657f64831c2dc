"""dsprior.scoring.summary: bootstrap settings from the bundle, the empty batch, measured labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dsprior import bundle, scoring
from dsprior.priors import Bootstrap, Costs
from dsprior.scoring import summary
from dsprior.scoring.report import render_summary
from tests.factories import spec_inputs


def tiny_bundle(**evaluate_params) -> bundle.Bundle:
    """A bundle without a model: enough for what the summary reads of the spec."""
    spec = bundle.build_spec(**spec_inputs(evaluate_params=evaluate_params))
    return bundle.Bundle(Path("bundle"), spec, model=None)


def test_bootstrap_settings_default_to_the_bundles_then_to_fixed_values() -> None:
    boot = {"resamples": 30, "level": 0.8, "seed": 5}
    assert summary.bootstrap_settings(tiny_bundle(bootstrap=boot)) == Bootstrap(30, 0.8, 5)
    assert summary.bootstrap_settings(
        tiny_bundle(bootstrap=boot), resamples=7, level=0.5, seed=1
    ) == Bootstrap(7, 0.5, 1)
    assert summary.bootstrap_settings(
        tiny_bundle(bootstrap=boot), resamples=None, level=None, seed=2
    ) == Bootstrap(30, 0.8, 2)
    assert summary.bootstrap_settings(tiny_bundle()) == Bootstrap(1000, 0.95, 0)


def test_an_empty_batch_has_nothing_to_estimate() -> None:
    b = tiny_bundle()
    got, moved = scoring.batch_summary(
        b, np.array([]), scoring.BatchRecord(), bootstrap=summary.bootstrap_settings(b)
    )
    assert moved is None
    assert got == {
        "examples": 0,
        "bundle_prior": 0.01,
        "estimated_prior": None,
        "estimated_at_threshold": None,
        "drift": None,
        "warnings": ["the batch is empty: nothing to estimate"],
    }


def test_labels_are_measured_only_where_given() -> None:
    decision = np.array([1, 0, 1, 0], np.int8)
    assert (
        summary.measured_record(
            [None] * 4, decision, decision, adapt_prior=False, costs=Costs(1, 10)
        )
        is None
    )
    got = summary.measured_record(
        [1, None, 0, 0], decision, decision, adapt_prior=True, costs=Costs(1, 10)
    )
    assert got["labelled_examples"] == 3 and got["prior"] == pytest.approx(1 / 3)
    assert "after_adapt_prior" in got


def test_the_output_must_hold_the_examples_just_scored() -> None:
    record = scoring.BatchRecord(example_ids=["a", "b"], groups=[None, None], labels=[None, None])
    table = pa.table({"example_id": ["a", "b"], "logit": [-1.5, 30.0], "score": [0.2, 1.0]})
    np.testing.assert_array_equal(
        summary.scores_in_output(table, record, output_path="o.csv"), [-1.5, 30.0]
    )
    with pytest.raises(RuntimeError, match="the output o.csv does not hold the examples"):
        summary.scores_in_output(table.slice(0, 1), record, output_path="o.csv")


def _bundle_with_reference(
    tmp_path: Path, *, gold: bool, kb_holds: float = 0.9, **evaluate_params
) -> bundle.Bundle:
    """A model-less bundle whose reference.parquet holds 600 dev_b rows (gold where ``gold``).

    Probabilities are at the prior, no recalibration: the threshold 0.09 flags a true
    positive with probability 0.8 and a true negative with 0.02.
    """
    rng = np.random.default_rng(4)
    n = 600
    truth = (rng.random(n) < 0.1).astype(np.int8)
    flagged = np.where(truth == 1, rng.random(n) < 0.8, rng.random(n) < 0.02)
    distant = np.where(truth == 1, rng.random(n) < kb_holds, rng.random(n) < 0.01).astype(np.int8)
    table = pd.DataFrame(
        {
            "split": "dev_b",
            "group": np.arange(n) // 2,
            "label": distant,
            "weight": 1.0,
            "fit_weight": 1.0,
            "probability": np.where(flagged, 0.5, 0.01),
        }
    )
    if gold:
        table["true_label"] = pd.array(truth, dtype="Int8")
    data = bundle.reference_bytes(table)
    (tmp_path / "reference.parquet").write_bytes(data)
    spec = bundle.build_spec(
        **spec_inputs(
            evaluate_params={"prior": None, **evaluate_params},
            reference=bundle.reference_record(table, data),
        )
    )
    return bundle.Bundle(tmp_path, spec, model=None)


def _summarise(b: bundle.Bundle) -> dict:
    probability = np.random.default_rng(5).choice([0.99, 0.0001], size=300, p=[0.05, 0.95])
    scores = np.log(probability / (1 - probability))  # the model's log-odds
    record = scoring.BatchRecord(
        example_ids=[str(i) for i in range(300)], groups=[None] * 300, labels=[None] * 300
    )
    got, _ = scoring.batch_summary(b, scores, record, bootstrap=Bootstrap(20, 0.95, seed=1))
    return got


def test_true_label_keys_appear_where_the_bundle_holds_gold(tmp_path: Path) -> None:
    got = _summarise(_bundle_with_reference(tmp_path, gold=True))
    for key in ("estimated_prior_true", "estimated_at_threshold_true", "label_noise"):
        assert key in got
    # shaped as the distant-label keys, which stay as they were
    assert set(got["estimated_prior"]) <= set(got["estimated_prior_true"])
    assert set(got["estimated_at_threshold"]) <= set(got["estimated_at_threshold_true"])
    assert (
        got["estimated_prior"]["method"]
        == "EM (Saerens et al. 2002) on the calibrated probabilities"
    )
    noise = got["label_noise"]
    assert 0.8 < noise["distant_1_given_true_1"]["value"] <= 1
    assert "gold-labelled rows" in noise["from"]
    assert "noise_assumption" not in got
    # summary.md: the same numbers, against the truth and against distant labels
    markdown = render_summary(got)
    at = got["estimated_at_threshold_true"]
    assert "When the true prior moves" in markdown
    row = f"| precision | {at['precision']['value']:.3f} ["
    assert row in markdown and f"{at['distant_labels']['precision']['value']:.3f} [" in markdown


def test_noisy_distant_labels_refuse_the_label_shift_intervals(tmp_path: Path) -> None:
    """The KB holding 60% of dev_b's true relations (gold labels say so): the distant labels'
    mix moves with the true prior, so EM's prior and CBPE's precision, recall and cost lose
    their intervals (the values stay) and say why, and so do the ACC/PACC cross-checks; alerts
    and the true-shift estimates keep theirs. The monitor's rules then read the true-shift
    distant values."""
    from dsprior.monitoring.alerts import breaches
    from dsprior.monitoring.config import Rules
    from dsprior.monitoring.history import record_from_summary

    got = _summarise(_bundle_with_reference(tmp_path, gold=True, kb_holds=0.6))
    assert got["label_noise"]["missing_label_rate"]["ci"][0] > 0.05
    at, cross = got["estimated_at_threshold"], got["estimated_prior"]["cross_check"]
    for entry in (
        got["estimated_prior"],
        cross["acc"],
        cross["pacc"],
        at["precision"],
        at["recall"],
        at["expected_cost"],
    ):
        assert entry["ci"] == [None, None] and entry["value"] is not None
        assert (
            "noisy distant labels (missing-label rate's interval starts at"
            in entry["interval_refused"]
        )
    assert None not in at["alerts_per_1000"]["ci"]
    assert None not in got["estimated_at_threshold_true"]["distant_labels"]["precision"]["ci"]
    assert "No interval on the prior (EM, ACC, PACC), precision, recall or cost here: dev_b's" in (
        render_summary(got)
    )
    row = record_from_summary(got, batch="b", scored_at="t", input_path="x", fingerprint="f")
    rules = Rules(precision_floor=0.001, prior_low=None, prior_high=0.99, consecutive=1)
    verdict = breaches(row, rules)
    assert verdict == {"prior_high": False, "precision": False}  # decided, not None


def test_clean_distant_labels_keep_every_interval(tmp_path: Path) -> None:
    got = _summarise(_bundle_with_reference(tmp_path, gold=True, kb_holds=1.0))
    assert got["label_noise"]["missing_label_rate"]["ci"][0] <= 0.05
    assert "interval_refused" not in got["estimated_prior"]
    assert None not in got["estimated_at_threshold"]["precision"]["ci"]


def test_the_noise_refusal_rule_reads_the_lower_ends_then_the_upper_ends() -> None:
    """Noisy labels shown (a lower end above NOISE_REFUSAL), or not ruled out (an upper end
    above NOISE_UNRULED: too few gold labels), refuse; at either edge the intervals stay."""
    from dsprior.noise_shift import NOISE_REFUSAL, NOISE_UNRULED, noisy_labels_reason

    assert noisy_labels_reason([NOISE_REFUSAL, NOISE_UNRULED], [0.0, 0.1]) is None  # edges
    assert noisy_labels_reason(None, [None, None]) is None
    reason = noisy_labels_reason([0.02, 0.3], [NOISE_REFUSAL + 0.001, 0.2])
    assert reason is not None and "false-label rate's interval starts at 0.051" in reason
    assert "missing-label" not in reason and "show noisy distant labels" in reason
    unruled = noisy_labels_reason([0.0, 0.1], [0.01, NOISE_UNRULED + 0.001])
    assert unruled is not None and "too few to rule out noisy distant labels" in unruled
    assert "false-label rate's interval reaches 0.201" in unruled
    assert "missing-label" not in unruled


def test_without_gold_the_keys_are_absent_and_the_assumption_is_said(tmp_path: Path) -> None:
    got = _summarise(_bundle_with_reference(tmp_path, gold=False))
    assert "estimated_prior_true" not in got and "estimated_at_threshold_true" not in got
    assert "no true_label column" in got["true_label_estimate"]
    assert "P(x | distant label) fixed" in got["noise_assumption"]
    assert "evaluate.stated_label_noise is unset" in got["noise_sensitivity"]
    markdown = render_summary(got)
    assert "When the true prior moves" not in markdown
    assert f"Assumption: {got['noise_assumption']}." in markdown


def test_stated_noise_rates_give_the_sensitivity_without_gold(tmp_path: Path) -> None:
    stated = {"missing_label_rate": 0.1, "false_label_rate": 0.1}
    got = _summarise(_bundle_with_reference(tmp_path, gold=False, stated_label_noise=stated))
    assert "estimated_prior_true" not in got
    sensitivity = got["noise_sensitivity"]
    assert sensitivity["label_noise"]["stated"] == stated
    moves = sensitivity["distant_estimates_move_by"]
    assert f"precision {moves['precision']:+.3f}" in render_summary(got)
    at = sensitivity["estimated_at_threshold_true"]["distant_labels"]
    expected = at["precision"]["value"] - got["estimated_at_threshold"]["precision"]["value"]
    assert moves["precision"] == pytest.approx(expected)


def test_an_older_bundle_without_a_reference_says_why(tmp_path: Path) -> None:
    got = _summarise(tiny_bundle())
    assert "estimated_prior_true" not in got
    assert "no dev_b reference" in got["true_label_estimate"]
