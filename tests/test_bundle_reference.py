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
