"""dsprior.scoring.summary: bootstrap settings from the bundle, the empty batch, measured labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dsprior import bundle, scoring
from dsprior.scoring import summary
from tests.factories import spec_inputs


def tiny_bundle(**evaluate_params) -> bundle.Bundle:
    """A bundle without a model: enough for what the summary reads of the spec."""
    spec = bundle.build_spec(**spec_inputs(evaluate_params=evaluate_params))
    return bundle.Bundle(Path("bundle"), spec, model=None)


def test_bootstrap_settings_default_to_the_bundles_then_to_fixed_values() -> None:
    boot = {"resamples": 30, "level": 0.8, "seed": 5}
    assert summary.bootstrap_settings(
        tiny_bundle(bootstrap=boot), resamples=None, level=None, seed=None
    ) == (30, 0.8, 5)
    assert summary.bootstrap_settings(
        tiny_bundle(bootstrap=boot), resamples=7, level=0.5, seed=1
    ) == (7, 0.5, 1)
    assert summary.bootstrap_settings(tiny_bundle(), resamples=None, level=None, seed=None) == (
        1000,
        0.95,
        0,
    )


def test_an_empty_batch_has_nothing_to_estimate() -> None:
    got, moved = scoring.batch_summary(tiny_bundle(), np.array([]), scoring.BatchRecord())
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
            [None] * 4, decision, decision, adapt_prior=False, cost_fp=1, cost_fn=10
        )
        is None
    )
    got = summary.measured_record(
        [1, None, 0, 0], decision, decision, adapt_prior=True, cost_fp=1, cost_fn=10
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
