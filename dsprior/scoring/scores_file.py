"""``score --scores FILE --summary``: a batch scored by any model, estimated without labels.

A team whose model runs outside the pipeline (a bundle built from external scores,
``dsprior.external``) scores its production batches itself; this reads that file and hands
its log-odds to the same label-free summary ``score --summary`` writes for the CNN
(``summary.batch_summary``). The file has ``example_id`` and the score column the bundle
names (``model.column``, in ``model.scale``); for a CNN bundle, ``score``'s own output
(``logit``) serves. ``group`` and ``label`` columns, where present, are used as ``score``
uses them: groups are resampled whole, labels are measured beside the estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dsprior import external, runtime
from dsprior.bundle import HASH_KEY, Bundle, load_bundle_spec
from dsprior.scoring.summary import BatchRecord, batch_summary, bootstrap_settings


def scores_column(spec: Mapping[str, Any]) -> tuple[str, str]:
    """The score column a batch file holds for this bundle, and its scale: the bundle's
    external scores' own (``model.column``, ``model.scale``), else ``score``'s ``logit``."""
    if external.is_external_spec(spec):
        return spec["model"]["column"], spec["model"]["scale"]
    return "logit", "log_odds"


def _labels(values: list[Any], path: str | Path) -> list[int | None]:
    out: list[int | None] = []
    for row, value in enumerate(values, start=1):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
        elif value in (0, 1) and not isinstance(value, bool):
            out.append(int(value))
        else:
            raise ValueError(f"{path}: row {row}: label must be 0, 1 or empty, got {value!r}")
    return out


def read_batch_scores(path: str | Path, bundle: Bundle) -> tuple[np.ndarray, BatchRecord]:
    """A batch's log-odds (as the bundle's model would give them) and its ids, groups and
    labels, from a scores file; ValueError naming the file for a missing column, duplicate
    ids, non-finite scores or probabilities outside [0, 1] (``external.check_values``)."""
    column, scale = scores_column(bundle.spec)
    table = external.read_scores_table(path, column=column)
    external.check_values(table, path=path, scale=scale)
    n = len(table)
    groups = table["group"].tolist() if "group" in table else [None] * n
    labels: list[int | None] = (
        _labels(table["label"].tolist(), path) if "label" in table else [None] * n
    )
    record = BatchRecord(
        example_ids=table[external.ID].tolist(),
        groups=[None if g is None else str(g) for g in groups],
        labels=labels,
    )
    return external.to_log_odds(table["score"].to_numpy(), scale=scale), record


def scores_file_record(bundle: Bundle, path: str | Path, examples: int) -> dict[str, Any]:
    """The summary's ``scoring`` and ``bundle`` keys for a batch read from a scores file."""
    column, scale = scores_column(bundle.spec)
    return {
        "scoring": {
            "scores_file": str(path),
            "column": column,
            "scale": scale,
            "examples_scored": int(examples),
        },
        "bundle": {
            "path": str(bundle.path),
            "content_hash": bundle.spec.get(HASH_KEY),
            "format_version": bundle.spec.get("format_version"),
        },
    }


def scores_file_summary(
    bundle_dir: str | Path,
    path: str | Path,
    *,
    resamples: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The ``--summary`` content for a batch scored elsewhere: the bundle read without a model
    (no TensorFlow), the file's scores checked, then ``batch_summary`` as for the CNN."""
    bundle = load_bundle_spec(bundle_dir)
    logits, record = read_batch_scores(path, bundle)
    bootstrap = bootstrap_settings(bundle, resamples=resamples, seed=seed)
    summary, _ = batch_summary(bundle, logits, record, bootstrap=bootstrap)
    summary.update(scores_file_record(bundle, path, len(logits)))
    return runtime.finite_or_none(summary)
