"""The manifest rows training reads: the kept rows of one split. No TensorFlow here, so the
CNN's stream and the pooled logistic baseline share it."""

from __future__ import annotations

import pandas as pd

from dsprior import sampling

__all__ = ["USED_COLUMNS", "select_rows"]

# The manifest columns training reads; sampling.MANIFEST_SCHEMA declares them with the rest.
USED_COLUMNS = (
    "example_id",
    "label",
    "source",
    sampling.SPLIT,
    sampling.UPSTREAM_RATE,
    sampling.DOWNSAMPLE_RATE,
    sampling.KEPT,
    sampling.WEIGHT,
)


def select_rows(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """Kept rows of one split, in manifest (dataset) order."""
    missing = sorted(set(USED_COLUMNS) - set(manifest.columns))
    if missing:
        raise ValueError(f"manifest lacks columns {missing}; run the downsample stage")
    rows = manifest[(manifest["split"] == split) & manifest["kept"].astype(bool)].reset_index(
        drop=True
    )
    if rows.empty:
        raise ValueError(f"manifest has no kept rows in split {split!r}")
    return rows
