"""Training the pooled logistic baseline (``train.model: pooled_logistic``): no TensorFlow.

The kept ``train`` rows are read from the Parquet dataset one row group at a time
(``batches.BatchReader.iter_examples``) and each example is pooled as it arrives
(``pooled_logistic.pool_rows``), so memory holds ``2 * dim`` floats per training example
and one row group, never the rows themselves. The loss weights, ``beta`` and the training
prior come from ``training.weights`` exactly as for the CNN (``train.balance``,
``train.loss_weight``), so evaluate corrects both models' scores the same way.

There is one fit, so the curves the train stage declares hold one point (step 1): the
training rows as sampled, and ``dev_a`` as sampled and at the production prior.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsprior import batches, pooled_logistic
from dsprior.training import curves
from dsprior.training.params import TrainConfig, resolve_params
from dsprior.training.rows import select_rows
from dsprior.training.scores import classification_scores
from dsprior.training.weights import effective_beta, training_prior, training_weights

logger = logging.getLogger(__name__)

STEP = 1  # the one fit, as a step of the curves


def pooled_features(index: batches.DatasetIndex, example_ids: list[str]) -> np.ndarray:
    """``[n, 2 * dim]`` pooled features of ``example_ids``, in that order, streamed from Parquet."""
    reader = batches.BatchReader(index, index.positions(example_ids))
    out = np.empty((len(example_ids), 2 * index.dim), dtype=np.float64)
    for i, rows in reader.iter_examples():
        out[i] = pooled_logistic.pool_rows(rows)
    return out


def train_pooled_logistic(
    *,
    dataset_dir: str | Path,
    manifest: pd.DataFrame,
    params: dict[str, Any],
    live_dir: str | Path,
) -> tuple[pooled_logistic.PooledLogistic, dict[str, Any]]:
    """Fit the baseline on the kept train rows; return it with its ``train.json`` record,
    after writing its one-point curves and summary into ``live_dir`` (DVCLive)."""
    p = resolve_params(params)
    if p.model != "pooled_logistic":
        raise ValueError(f"train.model is {p.model!r}; this trains 'pooled_logistic'")
    train_rows, dev_rows = select_rows(manifest, "train"), select_rows(manifest, "dev_a")
    labels = train_rows["label"].to_numpy().astype(int)
    manifest_weight = train_rows["weight"].to_numpy(dtype=np.float64)
    weights = training_weights(
        labels, manifest_weight, balance=p.balance, loss_weight=p.loss_weight
    )
    index = batches.index_dataset(dataset_dir)

    started = time.perf_counter()
    pooled = pooled_features(index, train_rows["example_id"].tolist())
    pooled_at = time.perf_counter()
    model = pooled_logistic.fit_pooled_logistic(
        pooled,
        labels,
        weights,
        dim=index.dim,
        c=p.pooled_logistic["C"],
        max_iter=p.pooled_logistic["max_iter"],
    )
    seconds = time.perf_counter() - started
    # The one number that differs between runs: logged, never written into an output, so
    # that the same data and params give the same bytes.
    logger.info(
        "trained the pooled logistic model on %d examples in %.1f s (pooling %.1f s, fit %.1f s)",
        len(labels),
        seconds,
        pooled_at - started,
        seconds - (pooled_at - started),
    )

    threshold = p.threshold
    train_scores = classification_scores(labels, model.log_odds(pooled), threshold=threshold)
    dev_labels = dev_rows["label"].to_numpy().astype(int)
    dev_z = model.log_odds(pooled_features(index, dev_rows["example_id"].tolist()))
    dev = {
        "sampled": classification_scores(dev_labels, dev_z, threshold=threshold),
        "prior": classification_scores(
            dev_labels, dev_z, dev_rows["weight"].to_numpy(dtype=np.float64), threshold=threshold
        ),
    }
    write_curves(live_dir, train_scores, dev, select_metric=p.select_metric)
    record = training_record(
        p,
        train_rows,
        dim=index.dim,
        labels=labels,
        manifest_weight=manifest_weight,
        weights=weights,
    )
    record.update(best_step=STEP, best_value=dev["prior"][p.select_metric], dev_a=dev)
    return model, record


def write_curves(
    live_dir: str | Path,
    train_scores: dict[str, float],
    dev: dict[str, dict[str, float]],
    *,
    select_metric: str,
) -> None:
    """The train stage's DVCLive files, with the fit as its one step."""
    live = curves.open_live(live_dir, [])
    rows: list[tuple[int, str, float]] = [
        (STEP, f"train/{k}", v) for k, v in train_scores.items() if k != "average_precision"
    ]
    rows += [(STEP, f"dev_a/{view}/{k}", v) for view, s in dev.items() for k, v in s.items()]
    for step, name, value in rows:
        live.step = step
        live.log_metric(name, value)
    state = {"best_step": STEP, "best_value": dev["prior"][select_metric], "best_scores": dev}
    curves.write_summary(live, state, select_metric=select_metric)


def training_record(
    p: TrainConfig,
    train_rows: pd.DataFrame,
    *,
    dim: int,
    labels: np.ndarray,
    manifest_weight: np.ndarray,
    weights: np.ndarray,
) -> dict[str, Any]:
    """``train.json``: the keys evaluate and bundle read (as the CNN's record has them)."""
    rates = (
        train_rows.groupby("source")[["upstream_rate", "downsample_rate"]]
        .agg(["min", "max"])
        .to_dict(orient="index")
    )
    return {
        "model": "pooled_logistic",
        "dim": int(dim),
        "beta": effective_beta(labels, manifest_weight, weights),
        "training_prior": training_prior(labels, weights),
        "production_prior_estimate": training_prior(labels, manifest_weight),
        "params": p.as_params(),
        "sampling": {
            "balance": p.balance,
            "loss_weight": p.loss_weight if p.balance == "weighted" else None,
            "rates_by_source": {
                src: {f"{a}_{b}": v for (a, b), v in r.items()} for src, r in rates.items()
            },
            "train_examples": int(len(labels)),
            "train_positives": int(labels.sum()),
        },
        "min_rows": 1,
        "select_metric": p.select_metric,
    }
