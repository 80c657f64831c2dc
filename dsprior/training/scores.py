"""What the curves record: loss, precision, recall, F1 and average precision, of a window
of training batches (from Keras' confusion counts) or of ``dev_a`` (scored by the model
being trained, as sampled and weighted to the production prior, from its log-odds)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from dsprior import batches
from dsprior.calibration import log_loss_of_log_odds
from dsprior.training.devsample import (
    INTERVAL_SCORES,
    RESAMPLES,
    DevSample,
    bootstrap_counts,
    bootstrap_scores,
    percentile_interval,
)

LOWER_IS_BETTER = {"loss"}


def classification_scores(
    y_true: np.ndarray,
    log_odds: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Loss, precision, recall, F1 (positive when ``probability > threshold``, as Keras counts)
    and AP, from the model's log-odds.

    The loss is the log loss computed from the log-odds (no clipping of a saturated
    probability); AP ranks by the log-odds, so a float32 sigmoid's ties at 1 do not
    become one block of the precision-recall curve.
    """
    y_true = np.asarray(y_true).astype(int)
    z = np.asarray(log_odds, dtype=np.float64)
    both = len(np.unique(y_true)) == 2
    flagged = (z > logit(threshold)).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, flagged, average="binary", sample_weight=sample_weight, zero_division=0.0
    )
    return {
        "loss": log_loss_of_log_odds(y_true, z, sample_weight),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "average_precision": float(average_precision_score(y_true, z, sample_weight=sample_weight))
        if both
        else math.nan,
    }


def window_scores(logs: dict[str, float]) -> dict[str, float]:
    """Loss, precision, recall and F1 from the (windowed) confusion counts Keras accumulated."""
    tp, fp, fn = (float(logs[k]) for k in ("tp", "fp", "fn"))
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"loss": float(logs["loss"]), "precision": precision, "recall": recall, "f1": f1}


def is_better(value: float, best: float | None, *, metric: str) -> bool:
    """Whether ``value`` beats ``best`` for ``metric`` (NaN never does)."""
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


class DevScorer:
    """Scores ``dev_a`` with a model: as sampled, and at the production prior (``sample_weight``
    = the manifest's ``weight``). With ``sample`` (``devsample.draw_dev_sample``; ``rows``
    are then its rows), each example also weighs what it stands for, and the
    production-prior loss, precision, recall and F1 get their bootstrap interval
    (``<score>_low``, ``<score>_high``; ``devsample.INTERVAL_SCORES``).

    ``dev_a`` shares row groups with train: its rows are copied once, at the first
    evaluation, into ``copy_path`` (a ``batches.CompactSet``), so each evaluation reads only
    them; a sample's scorer takes its rows from that copy instead (``within``, the scorer of
    all of dev_a; no ``copy_path`` of its own), so Parquet is read once. Under a distribution
    strategy ``scorer`` is a plain copy of the model being trained: its predict() runs on
    this process alone, with no collective op the other workers would have to join.
    ``close()`` removes the copy.
    """

    def __init__(
        self,
        rows: pd.DataFrame,
        *,
        index: batches.DatasetIndex,
        dataset_dir: str | Path,
        scorer: Any,
        min_rows: int,
        batch_size: int,
        threshold: float,
        copy_path: Path | None = None,
        sample: DevSample | None = None,
        seed: int = 0,
        within: DevScorer | None = None,
    ) -> None:
        if (copy_path is None) == (within is None):
            raise ValueError("DevScorer takes a copy_path for its own copy or a within, not both")
        self.ids = rows["example_id"].tolist()
        # a sample's rows come from the copy of all of dev_a (``within``): read once
        self.within = within
        self._members: np.ndarray | None = None
        if within is not None:
            where = {example_id: i for i, example_id in enumerate(within.ids)}
            missing = [example_id for example_id in self.ids if example_id not in where]
            if missing:
                raise ValueError(
                    f"{len(missing)} of the {len(self.ids)} examples are not among the "
                    f"{len(within.ids)} they were drawn from, e.g. {missing[0]!r}"
                )
            self._members = np.array([where[example_id] for example_id in self.ids], np.int64)
        self.labels = rows["label"].to_numpy().astype(int)
        self.weight = rows["weight"].to_numpy(dtype=np.float64)
        # A sample of dev_a (``devsample``): each example weighed by what it stands for, and
        # the bootstrap draws of its interval, the same at every evaluation.
        self.expansion: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        if sample is not None:
            self.expansion = sample.expansion
            self.weight = self.weight * sample.expansion
            self.counts = bootstrap_counts(sample.strata, resamples=RESAMPLES, seed=seed)
        self.index = index
        self.dataset_dir = dataset_dir
        self.scorer = scorer
        self.min_rows = min_rows
        self.batch_size = batch_size
        self.threshold = threshold
        self.copy_path = copy_path
        self._compact: batches.CompactSet | None = None
        self.copy_seconds = 0.0  # reading the rows from Parquet into the copy (in the log)

    def __call__(self, model: Any) -> dict[str, dict[str, float]]:
        """``{"sampled": scores, "prior": scores}`` of ``model``'s current weights on dev_a,
        from its log-odds (``batches.predict_scores``)."""
        compact = self.compact()
        if self.scorer is not model:
            self.scorer.set_weights(model.get_weights())
        scores = batches.predict_scores(
            self.scorer,
            self.dataset_dir,
            self.ids,
            batch_size=self.batch_size,
            compact=compact,
        )
        prior = classification_scores(self.labels, scores, self.weight, threshold=self.threshold)
        if self.counts is not None:
            draws = bootstrap_scores(
                self.labels, scores, self.weight, self.counts, threshold=self.threshold
            )
            for name in INTERVAL_SCORES:
                prior[f"{name}_low"], prior[f"{name}_high"] = percentile_interval(draws[name])
        return {
            "sampled": classification_scores(
                self.labels, scores, self.expansion, threshold=self.threshold
            ),
            "prior": prior,
        }

    def compact(self) -> batches.CompactSet:
        """The examples' rows, copied from Parquet at the first call (a sample's: taken from
        its ``within``'s copy, which this makes if it is not made yet)."""
        if self._compact is None:
            if self.within is not None:
                assert self._members is not None  # set with within
                self._compact = self.within.compact().subset(self._members)
            else:
                assert self.copy_path is not None  # set without within
                started = time.perf_counter()
                reader = batches.BatchReader(
                    self.index, self.index.positions(self.ids), min_rows=self.min_rows
                )
                self._compact = batches.CompactSet(reader, self.copy_path)
                self.copy_seconds = time.perf_counter() - started
        return self._compact

    def close(self) -> None:
        """Release the local copy of dev_a, if an evaluation made one."""
        if self._compact is not None:
            self._compact.close()
