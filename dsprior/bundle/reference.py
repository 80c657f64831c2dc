"""reference.parquet: dev_b's labelled rows (dev_a's too when the recalibration was fitted
there), which ``score --summary`` compares a batch with.

Built from evaluate's predictions with ``quantify.reference_from_predictions``; groups
travel as integer codes, so the bootstrap can resample them whole without putting entity
names into the bundle.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Annotated, NotRequired, TypedDict

import numpy as np
import pandas as pd

from dsprior import calibration as cal
from dsprior import quantify

REFERENCE_FILE = "reference.parquet"
REFERENCE_COLUMNS = ("split", "group", "label", "weight", "fit_weight", "probability")
# optional: the gold label (null where nobody labelled the row); bundles built from
# predictions without gold labels, and older bundles, lack it
GOLD_COLUMN = "true_label"
# optional: the prior-corrected log-odds (unrounded; ``probability`` is their sigmoid);
# bundles before log-odds scores lack it and their probabilities are used instead
LOG_ODDS_COLUMN = "log_odds"


def reference_table(
    predictions: pd.DataFrame,
    *,
    prior: float,
    training_prior: float | None,
    calibration: cal.Calibration,
) -> pd.DataFrame:
    """reference.parquet's rows from evaluate's predictions; groups become integer codes.

    The codes keep which rows share an entity (the bootstrap resamples them whole)
    without putting entity names into the bundle.
    """
    ref = quantify.reference_from_predictions(
        predictions, prior=prior, training_prior=training_prior, calibration=calibration
    )
    _, codes = np.unique(ref.group, return_inverse=True)
    table = pd.DataFrame(
        {
            "split": ref.split,
            "group": codes.astype(np.int32),
            "label": ref.label.astype(np.int8),
            "weight": ref.weight,
            "fit_weight": ref.fit_weight,
            "probability": ref.probability,
            LOG_ODDS_COLUMN: ref.log_odds,
        }
    )
    if ref.true_label is not None:  # nullable: rows nobody gold-labelled stay null
        table[GOLD_COLUMN] = pd.array(
            np.where(np.isnan(ref.true_label), 0, ref.true_label).astype(np.int8), dtype="Int8"
        )
        table.loc[np.isnan(ref.true_label), GOLD_COLUMN] = pd.NA
    return table


def reference_bytes(table: pd.DataFrame) -> bytes:
    """reference.parquet as bytes (so its sha256 can go into the spec before writing)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


class ReferenceRecord(TypedDict):
    """bundle.json's ``reference``: the reference file and its counts."""

    file: Annotated[str, "reference.parquet: dev_a and dev_b rows the label-free estimates use"]
    sha256: Annotated[str, "the reference file's sha256"]
    rows: Annotated[int, "rows in the reference"]
    dev_b_rows: Annotated[int, "dev_b rows in it"]
    dev_b_positives: Annotated[int, "dev_b rows with distant label 1"]
    probability: Annotated[str, "what its probability and log_odds columns hold"]
    dev_b_gold_labelled: NotRequired[Annotated[int, "dev_b rows with a gold label"]]
    dev_b_gold_positives: NotRequired[Annotated[int, "dev_b rows with gold label 1"]]


def reference_record(table: pd.DataFrame, data: bytes) -> ReferenceRecord:
    """bundle.json's ``reference`` field: the file, its sha256 and its counts."""
    dev_b = table["split"] == "dev_b"
    record: ReferenceRecord = {
        "file": REFERENCE_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": int(len(table)),
        "dev_b_rows": int(dev_b.sum()),
        "dev_b_positives": int(table.loc[dev_b, "label"].sum()),
        "probability": "prior-corrected, before the recalibration; log_odds: the same, unrounded",
    }
    if GOLD_COLUMN in table.columns:  # how many dev_b rows carry a gold label, how many are 1
        gold = table.loc[dev_b, GOLD_COLUMN]
        record["dev_b_gold_labelled"] = int(gold.notna().sum())
        record["dev_b_gold_positives"] = int((gold == 1).sum())
    return record


def read_reference(path: str | Path) -> quantify.Reference:
    """reference.parquet back as a :class:`quantify.Reference`; ValueError naming missing columns."""
    table = pd.read_parquet(path)
    missing = sorted(set(REFERENCE_COLUMNS) - set(table.columns))
    if missing:
        raise ValueError(f"{path}: lacks columns {missing}; it needs {list(REFERENCE_COLUMNS)}")
    return quantify.Reference(
        split=table["split"].astype(str).to_numpy(),
        group=table["group"].to_numpy(),
        label=table["label"].to_numpy().astype(np.int8),
        weight=table["weight"].to_numpy(np.float64),
        fit_weight=table["fit_weight"].to_numpy(np.float64),
        probability=table["probability"].to_numpy(np.float64),
        true_label=(
            table[GOLD_COLUMN].astype("Float64").to_numpy(np.float64, na_value=np.nan)
            if GOLD_COLUMN in table.columns
            else None
        ),
        log_odds=(
            table[LOG_ODDS_COLUMN].to_numpy(np.float64)
            if LOG_ODDS_COLUMN in table.columns
            else None
        ),
    )
