"""dsprior.bundle.reference: reference.parquet holds dev_b as evaluate saw it, groups as codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsprior import bundle
from dsprior import calibration as cal

# ``pipeline`` (conftest) at each of PIPELINE_PRIORS: evaluate's estimate, or the model's own.
pytestmark = pytest.mark.every_prior


def test_reference_holds_dev_b_as_evaluate_saw_it(pipeline: dict[str, Path]) -> None:
    loaded = bundle.load_bundle(pipeline["bundle"])
    ref = loaded.reference()
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    dev_b = predictions[predictions["split"] == "dev_b"]
    rows = ref.split == "dev_b"
    assert rows.sum() == len(dev_b) == loaded.spec["reference"]["dev_b_rows"]
    np.testing.assert_array_equal(ref.label[rows], dev_b["label"])
    np.testing.assert_allclose(ref.probability[rows], dev_b["probability_prior_corrected"])
    # groups travel as codes: the same partition of rows, no entity names
    assert ref.group.dtype.kind == "i"
    assert len(np.unique(ref.group[rows])) == dev_b["group"].nunique()


def test_the_record_counts_what_the_bytes_hold(pipeline: dict[str, Path]) -> None:
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    table = bundle.reference_table(
        predictions, prior=0.1, training_prior=None, calibration=cal.IDENTITY
    )
    data = bundle.reference_bytes(table)
    record = bundle.reference_record(table, data)
    dev_b = predictions["split"] == "dev_b"
    assert record["file"] == "reference.parquet" and record["rows"] == len(table)
    assert record["dev_b_rows"] == int(dev_b.sum())
    assert record["dev_b_positives"] == int(predictions.loc[dev_b, "label"].sum())
    assert bundle.reference_bytes(table) == data  # the bytes are the sha256's, every time


def test_a_reference_without_a_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reference.parquet"
    pd.DataFrame({"split": ["dev_b"], "label": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"reference.parquet: lacks columns \['fit_weight'"):
        bundle.read_reference(path)


def _predictions(gold: bool) -> pd.DataFrame:
    """Six rows by hand: dev_b's four, a dev_a and a test row that the reference leaves out."""
    frame = pd.DataFrame(
        {
            "split": ["dev_b", "dev_b", "dev_a", "dev_b", "test", "dev_b"],
            "group": ["g1", "g1", "g2", "g3", "g4", "g5"],
            "label": [1, 0, 1, 0, 1, 1],
            "weight": [1.0] * 6,
            "probability": [0.9, 0.2, 0.8, 0.1, 0.7, 0.6],
        }
    )
    if gold:  # the fourth dev_b row nobody gold-labelled
        frame["true_label"] = pd.array([1, 1, 1, None, 0, 0], dtype="Int8")
    return frame


def test_gold_labels_travel_with_dev_b_and_unlabelled_rows_stay_null(tmp_path: Path) -> None:
    table = bundle.reference_table(
        _predictions(gold=True), prior=0.1, training_prior=None, calibration=cal.IDENTITY
    )
    data = bundle.reference_bytes(table)
    (tmp_path / "reference.parquet").write_bytes(data)
    ref = bundle.read_reference(tmp_path / "reference.parquet")
    np.testing.assert_array_equal(ref.true_label, [1.0, 1.0, np.nan, 0.0])
    record = bundle.reference_record(table, data)
    assert record["dev_b_gold_labelled"] == 3 and record["dev_b_gold_positives"] == 2


def test_a_reference_without_gold_reads_as_none_and_counts_none(tmp_path: Path) -> None:
    table = bundle.reference_table(
        _predictions(gold=False), prior=0.1, training_prior=None, calibration=cal.IDENTITY
    )
    assert "true_label" not in table.columns
    data = bundle.reference_bytes(table)
    (tmp_path / "reference.parquet").write_bytes(data)
    assert bundle.read_reference(tmp_path / "reference.parquet").true_label is None
    assert "dev_b_gold_labelled" not in bundle.reference_record(table, data)


def test_the_reference_keeps_log_odds_a_probability_cannot_hold(tmp_path: Path) -> None:
    """Prior-corrected log-odds of 40 and 60 are both a probability of 1 in float64: the
    reference stores the log-odds beside it and reads them back unrounded. A reference
    written before the column (probabilities only) reads with their log-odds instead."""
    frame = _predictions(gold=False)
    z = np.array([60.0, -2.0, 35.0, -4.0, 1.0, 40.0])
    frame["logit_prior_corrected"] = z
    frame["probability"] = 1 / (1 + np.exp(-z))
    table = bundle.reference_table(frame, prior=0.1, training_prior=None, calibration=cal.IDENTITY)
    (tmp_path / "reference.parquet").write_bytes(bundle.reference_bytes(table))
    ref = bundle.read_reference(tmp_path / "reference.parquet")
    np.testing.assert_array_equal(ref.log_odds, [60.0, -2.0, -4.0, 40.0])  # dev_b's rows
    assert ref.probability[0] == ref.probability[3] == 1.0  # what a probability keeps
    table.drop(columns="log_odds").to_parquet(tmp_path / "old.parquet")
    old = bundle.read_reference(tmp_path / "old.parquet")
    np.testing.assert_allclose(old.log_odds, cal.log_odds(old.probability))
    assert old.log_odds[0] == old.log_odds[3]  # the older bundle's tie, as it was
