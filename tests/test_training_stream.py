"""The training rows: kept rows of a split, in manifest order, from the manifest's columns.

The stream itself (shards, resuming mid-stream) is tested in test_distributed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dsprior import sampling
from dsprior.training.rows import USED_COLUMNS, select_rows


def manifest() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": ["a", "b", "c", "d"],
            "label": [1, 0, 0, 1],
            "source": "pool",
            "split": ["train", "train", "dev_a", "train"],
            "upstream_rate": 0.5,
            "downsample_rate": 1.0,
            "kept": [True, False, True, True],
            "weight": [1.0, 2.0, 2.0, 1.0],
        },
        index=[10, 11, 12, 13],
    )


def test_training_reads_only_columns_the_manifest_declares():
    assert set(USED_COLUMNS) <= set(sampling.MANIFEST_SCHEMA.names)


def test_kept_rows_of_a_split_in_manifest_order():
    rows = select_rows(manifest(), "train")
    assert rows["example_id"].tolist() == ["a", "d"]
    assert rows.index.tolist() == [0, 1]


def test_missing_columns_and_empty_splits_are_named():
    with pytest.raises(ValueError, match=r"manifest lacks columns \['kept', 'weight'\]"):
        select_rows(manifest().drop(columns=["weight", "kept"]), "train")
    with pytest.raises(ValueError, match="manifest has no kept rows in split 'test'"):
        select_rows(manifest(), "test")
