"""The training run: ``train_model`` trains (or resumes) the CNN and returns the best model
with its ``train.json`` record.

Reproducibility. ``keras.utils.set_random_seed`` plus TensorFlow op determinism:
on the same machine and thread count, a rerun gives identical metrics (the tests
check equality to 1e-6); across machines or TensorFlow builds expect float32
round-off differences (about 1e-4 relative after a few hundred steps).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from dsprior import batches, cnn, hardware, modeldir
from dsprior.training import curves, resume, strategy
from dsprior.training.callback import Checkpointer, CurveSchedule, StepCurves
from dsprior.training.devsample import DevSample, draw_dev_sample
from dsprior.training.params import TrainConfig
from dsprior.training.rows import select_rows
from dsprior.training.scores import DevScorer
from dsprior.training.stream import TrainingStream
from dsprior.training.weights import effective_beta, training_prior, training_weights

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRows:
    """The kept ``train`` and ``dev_a`` rows, with the training labels and weights."""

    train: pd.DataFrame
    dev: pd.DataFrame
    labels: np.ndarray  # int, per training row
    manifest_weight: np.ndarray  # production examples each training row stands for
    weights: np.ndarray  # the loss weight of each training row, mean 1


def train_model(
    *,
    dataset_dir: str | Path,
    manifest: pd.DataFrame,
    config: TrainConfig,
    live_dir: str | Path,
    backup_dir: str | Path,
    callbacks: list | None = None,
) -> tuple[keras.Model, modeldir.TrainRecord]:
    """Train (or resume) and return the best model with the ``train.json`` record.

    Under ``multi_worker`` every worker calls this; only the chief writes to
    ``live_dir`` and ``backup_dir`` and evaluates ``dev_a``. The other workers write
    their curves and backups into a temporary folder deleted before returning, and
    resume from a copy of the chief's backup when ``backup_dir`` is on a shared
    file system. Their returned model holds the final weights, not the best ones.
    """
    # MultiWorkerMirroredStrategy must exist before other TensorFlow ops run.
    dist = strategy.make_strategy(config.strategy)
    role = strategy.describe_strategy(dist)
    if role["chief"]:
        return _train(dist, role, config, dataset_dir, manifest, live_dir, backup_dir, callbacks)
    scratch = Path(tempfile.mkdtemp(prefix=f"train-worker{role['task_id']}-"))
    try:
        worker_backup = scratch / "backup"
        if Path(backup_dir).exists():
            shutil.copytree(backup_dir, worker_backup)
        return _train(
            dist, role, config, dataset_dir, manifest, scratch / "live", worker_backup, callbacks
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(
    dist: tf.distribute.Strategy,
    role: dict[str, Any],
    p: TrainConfig,
    dataset_dir: str | Path,
    manifest: pd.DataFrame,
    live_dir: str | Path,
    backup_dir: str | Path,
    callbacks: list | None,
) -> tuple[keras.Model, modeldir.TrainRecord]:
    compute = configure_run(p)
    num_shards = strategy.resolve_input_shards(
        p.input_shards, strategy=p.strategy, replicas=role["replicas"]
    )
    strategy.check_global_batch(p.batch_size, replicas=role["replicas"])

    index = batches.index_dataset(dataset_dir)
    rows = training_rows(manifest, p)
    min_rows = max(p.filter_sizes)
    stream = training_stream(index, rows, p, min_rows=min_rows, num_shards=num_shards)
    total_steps = p.epochs * stream.steps_per_epoch

    backup_dir = Path(backup_dir)
    # a backup resumes only under the same resolved precision (auto differs between machines)
    fingerprint = resume.run_fingerprint(
        {**p.as_params(), "precision": compute.precision},
        rows.train["example_id"].tolist(),
        index.dim,
    )
    checkpoint = resume.latest_checkpoint(backup_dir, fingerprint)
    start, replay = resume_curves(backup_dir, Path(live_dir), checkpoint, total_steps)

    architecture = model_architecture(p, dim=index.dim)
    model = compile_model(dist, architecture, p)
    # Under a distribution strategy, dev_a is scored by a plain copy of the model.
    scorer = model if p.strategy == "default" else cnn.build_cnn(**architecture)

    def dev_scorer(sample: DevSample | None = None, within: DevScorer | None = None) -> DevScorer:
        return DevScorer(
            rows.dev if sample is None else sample.rows,
            index=index,
            dataset_dir=dataset_dir,
            scorer=scorer,
            min_rows=min_rows,
            batch_size=p.eval_batch_size,
            threshold=p.threshold,
            copy_path=None if within is not None else backup_dir / "dev_a.npy",
            sample=sample,
            seed=p.seed,
            within=within,
        )

    dev = dev_scorer()
    sample = (
        None if p.eval_sample is None else draw_dev_sample(rows.dev, p.eval_sample, seed=p.seed)
    )
    # the sample's rows are taken from dev_a's copy: dev_a is read from Parquet once
    dev_sample = None if sample is None else dev_scorer(sample, within=dev)
    live = curves.open_live(live_dir, replay)
    step_curves = StepCurves(
        live=live,
        evaluate_dev=dev if role["chief"] else None,
        evaluate_sample=dev_sample if role["chief"] else None,
        schedule=CurveSchedule.from_config(
            p, steps_per_epoch=stream.steps_per_epoch, total_steps=total_steps, start_step=start
        ),
        rows_dir=backup_dir / "curves",
        resume_from=None if checkpoint is None else checkpoint.path,
    )
    backup = Checkpointer(backup_dir, curves=step_curves, resume_from=checkpoint)
    data = input_data(stream, dist, p, start_step=start, total_steps=total_steps)
    if p.strategy != "default":
        strategy.build_outside_fit(model, dist, stream.dummy_batch())
    try:
        seconds = fit(
            model,
            data,
            p,
            total_steps=total_steps,
            initial_epoch=initial_epoch(checkpoint, p, total_steps),
            callbacks=[step_curves, backup, *(callbacks or [])],
        )
    finally:
        dev.close()
        if dev_sample is not None:
            dev_sample.close()
    if role["chief"]:
        step_curves.restore_best()
    curves.write_summary(live, step_curves.state, select_metric=p.select_metric)

    record = training_record(
        p,
        rows,
        dim=index.dim,
        role=role,
        num_shards=num_shards,
        compute=compute,
        min_rows=min_rows,
        total_steps=total_steps,
        steps_per_epoch=stream.steps_per_epoch,
        start=start,
        state=step_curves.state,
        sample=sample,
    )
    logger.info(
        "trained %d steps in %.1f s (%.1f examples/s)",
        total_steps - start,
        seconds,
        (total_steps - start) * p.batch_size / max(seconds, 1e-9),
    )
    return model, record


def configure_run(p: TrainConfig) -> hardware.Compute:
    """Seed everything, make TensorFlow's ops deterministic, and set the precision policy."""
    keras.utils.set_random_seed(p.seed)
    tf.config.experimental.enable_op_determinism()
    compute = strategy.resolve_compute(p.compute)
    keras.mixed_precision.set_dtype_policy(compute.precision)
    return compute


def training_rows(manifest: pd.DataFrame, p: TrainConfig) -> TrainingRows:
    """The rows train and dev_a use, with the loss weights ``train.balance`` asks for."""
    train_rows = select_rows(manifest, "train")
    dev_rows = select_rows(manifest, "dev_a")
    labels = train_rows["label"].to_numpy().astype(int)
    manifest_weight = train_rows["weight"].to_numpy(dtype=np.float64)
    weights = training_weights(
        labels, manifest_weight, balance=p.balance, loss_weight=p.loss_weight
    )
    if p.balance == "weighted" and (train_rows["downsample_rate"] < 1).any():
        logger.warning("balance=weighted on thinned training rows: set downsample.ratio to null")
    return TrainingRows(train_rows, dev_rows, labels, manifest_weight, weights)


def training_stream(
    index: batches.DatasetIndex,
    rows: TrainingRows,
    p: TrainConfig,
    *,
    min_rows: int,
    num_shards: int,
) -> TrainingStream:
    """The seeded stream of the training rows' batches, read from the dataset."""
    reader = batches.BatchReader(
        index, index.positions(rows.train["example_id"].tolist()), min_rows=min_rows
    )
    return TrainingStream(
        reader,
        rows.labels,
        rows.weights,
        batch_size=p.batch_size,
        pool_size=p.pool_size,
        seed=p.seed,
        num_shards=num_shards,
    )


def resume_curves(
    backup_dir: Path, live_dir: Path, checkpoint: resume.Checkpoint | None, total_steps: int
) -> tuple[int, list[list] | None]:
    """The step to resume from and the curve rows to replay up to it (None: keep the folder's)."""
    start = 0 if checkpoint is None else checkpoint.step
    replay = curves.load_curve_rows(backup_dir / "curves", after_step=start) if start else []
    if start:
        logger.info("resuming from step %d of %d", start, total_steps)
    if replay is None:
        # A backup without saved rows: keep what the live folder still holds (dvc repro
        # deletes it before running the stage, so earlier rows may be missing).
        logger.warning("backup %s holds no curve rows; keeping those in %s", backup_dir, live_dir)
        curves.trim_curves(live_dir, after_step=start)
    return start, replay


def model_architecture(p: TrainConfig, *, dim: int) -> dict[str, Any]:
    """The keyword arguments of ``cnn.build_cnn`` for these params."""
    return {
        "dim": dim,
        "filter_sizes": list(p.filter_sizes),
        "filters": p.filters,
        "dropout": p.dropout,
        "l2": p.l2,
        "seed": p.seed,
    }


def compile_model(
    dist: tf.distribute.Strategy, architecture: dict[str, Any], p: TrainConfig
) -> keras.Model:
    """The CNN under ``dist``, compiled with Adam, binary cross-entropy and confusion counts."""
    with dist.scope():
        model = cnn.build_cnn(**architecture)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=p.learning_rate),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[
                keras.metrics.TruePositives(thresholds=p.threshold, name="tp"),
                keras.metrics.FalsePositives(thresholds=p.threshold, name="fp"),
                keras.metrics.FalseNegatives(thresholds=p.threshold, name="fn"),
            ],
        )
    return model


def input_data(
    stream: TrainingStream,
    dist: tf.distribute.Strategy,
    p: TrainConfig,
    *,
    start_step: int,
    total_steps: int,
) -> Any:
    """The stream as fit's input: per worker under ``multi_worker``, else global batches."""
    if p.strategy == "multi_worker":
        return stream.distributed_dataset(
            dist, start_step=start_step, total_steps=total_steps, prefetch=p.prefetch
        )
    return stream.dataset(start_step=start_step, total_steps=total_steps, prefetch=p.prefetch)


def keras_epochs(p: TrainConfig, total_steps: int) -> int:
    """Keras epochs of ``checkpoint_every`` steps: a checkpoint after each."""
    return math.ceil(total_steps / p.checkpoint_every)


def initial_epoch(checkpoint: resume.Checkpoint | None, p: TrainConfig, total_steps: int) -> int:
    """The Keras epoch ``fit`` starts at: the checkpoint's, or past the last one when the
    checkpointed run had already stopped (its last step, or an early stop)."""
    if checkpoint is None:
        return 0
    return keras_epochs(p, total_steps) if checkpoint.stopped else checkpoint.epoch


def fit(
    model: keras.Model,
    data: Any,
    p: TrainConfig,
    *,
    total_steps: int,
    initial_epoch: int,
    callbacks: list,
) -> float:
    """Run Keras' fit in checkpoint-sized epochs up to ``total_steps`` from ``initial_epoch``;
    the seconds it took."""
    started = time.perf_counter()
    model.fit(
        data,
        epochs=keras_epochs(p, total_steps),
        initial_epoch=initial_epoch,
        steps_per_epoch=p.checkpoint_every,
        callbacks=callbacks,
        shuffle=False,  # the stream shuffles, seeded per epoch
        verbose=0,
    )
    return time.perf_counter() - started


def training_record(
    p: TrainConfig,
    rows: TrainingRows,
    *,
    dim: int,
    role: dict[str, Any],
    num_shards: int,
    compute: hardware.Compute,
    min_rows: int,
    total_steps: int,
    steps_per_epoch: int,
    start: int,
    state: dict[str, Any],
    sample: DevSample | None = None,
) -> modeldir.TrainRecord:
    """``train.json``: what evaluation needs (dim, beta, priors, params) and how it trained."""
    rates = (
        rows.train.groupby("source")[["upstream_rate", "downsample_rate"]]
        .agg(["min", "max"])
        .to_dict(orient="index")
    )
    labels = rows.labels
    evaluations = state.get("evaluations", {})
    return {
        "dim": dim,
        "beta": effective_beta(labels, rows.manifest_weight, rows.weights),
        "training_prior": training_prior(labels, rows.weights),
        "production_prior_estimate": training_prior(labels, rows.manifest_weight),
        "params": p.as_params(),
        "sampling": {
            "balance": p.balance,
            "loss_weight": p.loss_weight if p.balance == "weighted" else None,
            "rates_by_source": {
                src: {
                    "upstream_rate_min": r[("upstream_rate", "min")],
                    "upstream_rate_max": r[("upstream_rate", "max")],
                    "downsample_rate_min": r[("downsample_rate", "min")],
                    "downsample_rate_max": r[("downsample_rate", "max")],
                }
                for src, r in rates.items()
            },
            "train_examples": int(len(labels)),
            "train_positives": int(labels.sum()),
        },
        "distribution": {
            "strategy": p.strategy,
            "replicas": role["replicas"],
            "workers": role["workers"],
            "input_shards": num_shards,
            "global_batch": p.batch_size,
            "replica_batch": p.batch_size // role["replicas"],
            "chief": role["chief"],
        },
        "compute": {**compute.record(), "cpu_model": hardware.cpu_model()},
        "min_rows": min_rows,
        "steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": start,
        "best_step": state["best_step"],
        "select_metric": p.select_metric,
        "best_value": state["best_value"],
        "dev_a_evaluations": {
            "examples": int(len(rows.dev)),
            "sample_examples": None if sample is None else int(len(sample.rows)),
            "sample": int(evaluations.get("sample", 0)),
            "whole": int(evaluations.get("whole", 0)),
        },
    }
