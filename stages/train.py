"""Train the CNN from the Parquet dataset and the manifest, with step-level DVCLive curves.

Reads the kept ``train`` and ``dev_a`` rows of the manifest; writes
``model.keras`` and ``train.json`` (what evaluation needs: dim, beta, the
training prior, sampling rates, params) into ``--model-dir``, and DVCLive curves
into ``--live-dir``.

Curves. Every ``log_every`` steps: loss, precision, recall and F1 of the training
batches since the previous log (the Keras metrics are reset after each log, so
nothing is cumulative); in weighted mode the counts carry the training weights. Every ``eval_every`` steps and at the end of each epoch:
the same on ``dev_a`` twice, as sampled and weighted to the production prior
(``sample_weight`` = the manifest's ``weight``), plus average precision. The
model kept is the one with the best ``dev_a`` metric at the production prior
(``select_metric``); ``patience`` evaluations without improvement stop training.

Balancing. ``balance: downsample`` trains on the thinned rows with unit weights.
``balance: weighted`` (with ``downsample.ratio: null``) trains on unthinned rows
with a weighted loss: ``loss_weight: example`` uses the manifest weights (the
model then sees the production prior, beta = 1), ``loss_weight: class`` uses
scikit-learn's balanced class weights. Weights are rescaled to mean 1, which
changes the step size, not the optimum. ``beta`` in ``train.json`` is always
``(sum of training weights / sum of production weights over negatives)`` divided
by the same ratio over positives: the fraction of production negatives the model
effectively saw, to plug into ``p = beta*p_s / (beta*p_s - p_s + 1)``.

Resuming. Keras' ``BackupAndRestore`` restores the epoch, not the batch, so fit
runs in checkpoint-sized Keras "epochs" of ``checkpoint_every`` steps over an
endless stream whose data epochs are planned from ``(seed, epoch)``; a restarted
run resumes the stream at exactly the checkpointed step. The backup folder is not
a DVC output and is removed after success; a backup from different params is
discarded. The curves are kept with it: every checkpoint also writes the rows
logged since the previous one (``curves/<step>.json``, before Keras writes its
checkpoint), and a resumed run replays the rows up to its checkpoint into a fresh
DVCLive directory, because ``dvc repro`` deletes the stage's curve files before
it reruns the stage. The curves of a resumed run equal an uninterrupted run's.

Distribution (``strategy``). ``default`` runs on one device; ``mirrored`` on every
local GPU (one CPU replica when there is none); ``multi_worker`` on one process
per machine through ``MultiWorkerMirroredStrategy``, the cluster read from
``TF_CONFIG``. ``batch_size`` is the global batch, split evenly over the
replicas, so step size, steps per epoch and the curves' step axis do not depend
on the hardware. Under ``multi_worker`` the training rows are split by row group
into one input shard per replica and each worker reads only its own
(``distribute_datasets_from_function``); global batch ``k`` is batch ``k`` of every
shard, and a one-process run with ``input_shards`` equal to that replica count
sees the same global batches (used to check a multi-worker run). Only the chief
(task ``chief``, else worker 0) evaluates ``dev_a``, logs DVCLive curves, keeps
the backup and writes the model; the other workers write theirs into a temporary
folder that is deleted. ``patience`` needs ``strategy`` other than ``multi_worker``.

Reproducibility. ``keras.utils.set_random_seed`` plus TensorFlow op determinism:
on the same machine and thread count, a rerun gives identical metrics (the tests
check equality to 1e-6); across machines or TensorFlow builds expect float32
round-off differences (about 1e-4 relative after a few hundred steps).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, log_loss, precision_recall_fscore_support
from sklearn.utils.class_weight import compute_class_weight
from tqdm import tqdm

from dsprior import common, hardware

# TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import: set it from train.onednn and this
# machine (stages.hardware) before the import below.
hardware.prepare_onednn(sys.argv[1:] if __name__ == "__main__" else None, "train")
common.quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from dsprior import batches, cnn  # noqa: E402

logger = logging.getLogger(__name__)

BALANCE_MODES = ("downsample", "weighted")
LOSS_WEIGHTS = ("class", "example")
PRECISIONS = hardware.PRECISIONS  # auto | float32 | mixed_bfloat16
STRATEGIES = ("default", "mirrored", "multi_worker")
SCORE_NAMES = ("loss", "precision", "recall", "f1", "average_precision")
LOWER_IS_BETTER = {"loss"}
MANIFEST_COLUMNS = (
    "example_id",
    "label",
    "split",
    "kept",
    "weight",
    "upstream_rate",
    "downsample_rate",
    "source",
)

_POSITIVE = common.Integer(minimum=1)
PARAMS_SCHEMA: dict[str, common.Spec] = {
    "seed": common.Integer(minimum=0),
    "filter_sizes": common.ListOf(_POSITIVE, min_len=1),
    "filters": _POSITIVE,
    "dropout": common.Number(minimum=0, maximum=1, max_open=True),
    "l2": common.Number(minimum=0),
    "learning_rate": common.Number(minimum=0),  # 0 freezes the weights (a test uses it)
    "batch_size": _POSITIVE,
    "epochs": _POSITIVE,
    "log_every": _POSITIVE,
    "eval_every": _POSITIVE,
    "eval_batch_size": _POSITIVE,
    "balance": common.Choice(*BALANCE_MODES),
    "loss_weight": common.Choice(*LOSS_WEIGHTS),
    "select_metric": common.Choice(*SCORE_NAMES),
    "patience": common.Integer(minimum=1, none=True),
    "threshold": common.Number(minimum=0, maximum=1),
    "pool_size": _POSITIVE,
    "prefetch": common.Integer(minimum=0),
    "checkpoint_every": _POSITIVE,
    "precision": common.Choice(*PRECISIONS),
    "onednn": common.Choice(*hardware.ONEDNN_SETTINGS),
    "strategy": common.Choice(*STRATEGIES),
    "input_shards": common.Integer(minimum=1, none=True),
}


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``train`` section, every key checked (``PARAMS_SCHEMA``, then across keys)."""
    p = common.check_section(params, PARAMS_SCHEMA, "train")
    if p["checkpoint_every"] % p["log_every"]:
        raise ValueError(
            f"train.checkpoint_every ({p['checkpoint_every']}) must be a multiple of "
            f"train.log_every ({p['log_every']}) so that no log window straddles a restart"
        )
    if p["pool_size"] < p["batch_size"]:
        raise ValueError(
            f"train.pool_size must be >= batch_size ({p['batch_size']}), got {p['pool_size']!r}"
        )
    shards = p["input_shards"]
    if shards is not None and p["batch_size"] % shards:
        raise ValueError(
            f"train.batch_size ({p['batch_size']}) must be a multiple of "
            f"train.input_shards ({shards}): every shard contributes an equal part of a batch"
        )
    if p["strategy"] == "multi_worker" and p["patience"] is not None:
        raise ValueError(
            "train.patience must be null with strategy multi_worker: only the chief evaluates "
            f"dev_a, so the other workers cannot know when to stop (got {p['patience']!r})"
        )
    return p


# --------------------------------------------------------------------------- distribution


def resolve_compute(p: dict[str, Any]) -> hardware.Compute:
    """``train.precision`` and ``train.onednn`` resolved for this machine (``stages.hardware``).

    TensorFlow is imported already, so it answers whether a GPU is there and whether
    oneDNN is on (``prepare_onednn`` set it from the params before the import).
    """
    compute = hardware.resolve_compute(
        p["precision"],
        p["onednn"],
        hardware.read_cpu_flags(),
        bool(tf.config.list_physical_devices("GPU")),
        env_onednn=hardware.user_onednn_env(),
        imported_onednn=hardware.tensorflow_onednn(),
    )
    hardware.warn_if_emulated(compute)
    logger.info(
        "compute: %s, oneDNN %s (%s)", compute.precision, compute.onednn_env, compute.reason
    )
    return compute


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``train.strategy``.

    ``default``: one device. ``mirrored``: every local GPU, variables mirrored and
    gradients all-reduced (one CPU replica on a machine without GPUs).
    ``multi_worker``: one process per machine, the cluster read from ``TF_CONFIG``;
    ``CommunicationImplementation.AUTO`` picks NCCL between GPUs and RING on CPUs.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if not os.environ.get("TF_CONFIG"):
        raise ValueError(
            "strategy multi_worker needs TF_CONFIG (cluster and this task), e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO
    )
    patch_keras_multi_worker_logs()
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def patch_keras_multi_worker_logs() -> None:
    """Make Keras 3 ``fit`` under MultiWorkerMirroredStrategy average scalar logs.

    Keras 3.15 reduces every per-step log with ``strategy.reduce("MEAN", v, axis=0)``
    under multi-worker collectives, which fails on scalars ("Invalid reduction
    dimension 0 for input with 0 dimensions"; tensorflow/tensorflow#72388), so a
    compiled model with metrics cannot ``fit``. Scalars are averaged over replicas
    instead: the loss becomes the global-batch mean (replica batches are equal) and
    the confusion counts the mean count, whose ratios (precision, recall, F1) are the
    global ones. Applied only by ``multi_worker`` runs.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = getattr(tf_trainer.reduce_per_replica, "__wrapped__", tf_trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):

            def reduce(v):
                if getattr(v, "shape", None) is not None and v.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            return keras.tree.map_structure(reduce, values)
        return original(values, strategy, reduction)

    reduce_per_replica.__wrapped__ = original
    tf_trainer.reduce_per_replica = reduce_per_replica


def is_chief(cluster: dict[str, list[str]], task_type: str | None, task_id: int | None) -> bool:
    """Whether this task is the chief: task ``chief``, else ``worker`` 0 (TF's convention)."""
    if not cluster or task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def describe_strategy(strategy: tf.distribute.Strategy) -> dict[str, Any]:
    """Replicas, workers and whether this process is the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    workers = sum(len(cluster.get(t, [])) for t in ("chief", "worker")) or 1
    return {
        "replicas": int(strategy.num_replicas_in_sync),
        "workers": workers,
        "task_type": task_type,
        "task_id": task_id,
        "chief": is_chief(cluster, task_type, task_id),
    }


def resolve_input_shards(input_shards: int | None, *, strategy: str, replicas: int) -> int:
    """How many Parquet shards make up each global batch.

    ``multi_worker`` reads one shard per replica (each worker only its own), so
    null means ``replicas`` there and 1 otherwise. With ``default`` or
    ``mirrored``, ``input_shards: R`` reproduces an ``R``-replica multi-worker
    run's batches on one machine.
    """
    if strategy == "multi_worker":
        if input_shards not in (None, replicas):
            raise ValueError(
                f"train.input_shards must be null or {replicas} (the number of replicas) with "
                f"strategy multi_worker, got {input_shards!r}"
            )
        return replicas
    return input_shards or 1


# --------------------------------------------------------------------------- weights and priors


def training_weights(
    labels: np.ndarray, manifest_weight: np.ndarray, *, balance: str, loss_weight: str
) -> np.ndarray:
    """Per-example loss weights, rescaled to mean 1 (unit weights for ``downsample``)."""
    labels = np.asarray(labels)
    if balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {list(BALANCE_MODES)}, got {balance!r}")
    if loss_weight not in LOSS_WEIGHTS:
        raise ValueError(f"loss_weight must be one of {list(LOSS_WEIGHTS)}, got {loss_weight!r}")
    if balance == "downsample":
        weights = np.ones(len(labels))
    elif loss_weight == "example":
        weights = np.asarray(manifest_weight, dtype=np.float64)
    else:
        classes = np.array([0, 1])
        if set(np.unique(labels)) != {0, 1}:
            raise ValueError("loss_weight='class' needs both labels in the training rows")
        per_class = compute_class_weight("balanced", classes=classes, y=labels)
        weights = per_class[labels.astype(int)]
    return weights / weights.mean()


def effective_beta(
    labels: np.ndarray, manifest_weight: np.ndarray, train_weight: np.ndarray
) -> float:
    """Fraction of production negatives the model effectively saw, relative to positives.

    ``manifest_weight`` counts how many production examples a kept row stands
    for; ``train_weight`` is how much the loss counted it.
    """
    labels = np.asarray(labels).astype(bool)
    m = np.asarray(manifest_weight, dtype=np.float64)
    t = np.asarray(train_weight, dtype=np.float64)
    if labels.all() or not labels.any():
        raise ValueError("effective_beta needs both positive and negative training rows")
    neg = t[~labels].sum() / m[~labels].sum()
    pos = t[labels].sum() / m[labels].sum()
    return float(neg / pos)


def training_prior(labels: np.ndarray, train_weight: np.ndarray) -> float:
    """Positive share of the training loss: the prior the model's scores are calibrated to."""
    labels = np.asarray(labels).astype(bool)
    t = np.asarray(train_weight, dtype=np.float64)
    return float(t[labels].sum() / t.sum())


# --------------------------------------------------------------------------- scores


def classification_scores(
    y_true: np.ndarray,
    y_score: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Loss, precision, recall, F1 (positive when ``score > threshold``, as Keras counts) and AP."""
    y_true = np.asarray(y_true).astype(int)
    y_score = np.asarray(y_score, dtype=np.float64)
    both = len(np.unique(y_true)) == 2
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true,
        (y_score > threshold).astype(int),
        average="binary",
        sample_weight=sample_weight,
        zero_division=0.0,
    )
    return {
        "loss": float(
            log_loss(
                y_true, np.clip(y_score, 1e-7, 1 - 1e-7), sample_weight=sample_weight, labels=[0, 1]
            )
        ),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "average_precision": float(
            average_precision_score(y_true, y_score, sample_weight=sample_weight)
        )
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


# --------------------------------------------------------------------------- data


def select_rows(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """Kept rows of one split, in manifest (dataset) order."""
    missing = sorted(set(MANIFEST_COLUMNS) - set(manifest.columns))
    if missing:
        raise ValueError(f"manifest lacks columns {missing}; run the downsample stage")
    rows = manifest[(manifest["split"] == split) & manifest["kept"].astype(bool)].reset_index(
        drop=True
    )
    if rows.empty:
        raise ValueError(f"manifest has no kept rows in split {split!r}")
    return rows


class TrainingStream:
    """An endless, seeded stream of training batches; data epoch ``e`` is planned from ``(seed, e)``.

    With ``num_shards`` > 1 the training rows are split by row group into input
    shards (``batches.shard_examples``); each shard streams its own endless
    sequence of data epochs in batches of ``batch_size / num_shards``, and global
    batch ``k`` is made of batch ``k`` of every shard. A multi-worker run reads only
    its own shards; one process reading all shards sees the same global batches.
    """

    def __init__(
        self,
        reader: batches.BatchReader,
        labels: np.ndarray,
        weights: np.ndarray,
        *,
        batch_size: int,
        pool_size: int,
        seed: int,
        num_shards: int = 1,
    ) -> None:
        if batch_size % num_shards:
            raise ValueError(
                f"batch_size ({batch_size}) must be a multiple of num_shards ({num_shards})"
            )
        self.reader = reader
        self.labels = np.asarray(labels, dtype=np.float32)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.batch_size = batch_size
        self.pool_size = pool_size
        self.seed = seed
        self.num_shards = num_shards
        self.shard_batch = batch_size // num_shards
        self.steps_per_epoch = math.ceil(len(self.labels) / batch_size)
        self.members = [
            batches.shard_examples(reader.row_group, num_shards=num_shards, shard=s)
            for s in range(num_shards)
        ]
        self.shard_steps = [math.ceil(len(m) / self.shard_batch) for m in self.members]

    def plan(self, epoch: int, shard: int = 0) -> list[np.ndarray]:
        """Batches (indices into the training rows) of data epoch ``epoch`` of one shard."""
        key = [self.seed, epoch] if self.num_shards == 1 else [self.seed, epoch, shard]
        members = self.members[shard]
        plan = batches.plan_batches(
            self.reader.row_group[members],
            self.reader.n_rows[members],
            batch_size=self.shard_batch,
            pool_size=max(self.pool_size // self.num_shards, self.shard_batch),
            rng=np.random.default_rng(key),
        )
        return [members[b] for b in plan]

    def _shard_batches(self, shard: int, start_step: int) -> Iterator[tuple]:
        epoch, skip = divmod(start_step, self.shard_steps[shard])
        while True:
            yield from self.reader.iter_batches(self.plan(epoch, shard), start=skip)
            epoch, skip = epoch + 1, 0

    def _element(self, batch: np.ndarray, features: np.ndarray, lengths: np.ndarray) -> tuple:
        return (
            {cnn.FEATURES_INPUT: features, cnn.LENGTHS_INPUT: lengths},
            self.labels[batch],
            self.weights[batch],
        )

    def iterate(
        self, *, start_step: int, total_steps: int, shards: list[int] | None = None
    ) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
        """Global batches for steps ``start_step .. total_steps - 1``, made of ``shards``."""
        shards = list(range(self.num_shards)) if shards is None else shards
        streams = [self._shard_batches(s, start_step) for s in shards]
        for _ in range(start_step, total_steps):
            parts = [next(stream) for stream in streams]
            if len(parts) == 1:
                yield self._element(*parts[0])
                continue
            batch = np.concatenate([p[0] for p in parts])
            features, lengths = batches.pad_batch(
                [f[i, :n] for _, f, lens in parts for i, n in enumerate(lens)],
                dim=self.reader.index.dim,
                min_rows=max(f.shape[1] for _, f, _ in parts),
            )
            yield self._element(batch, features, lengths)

    def iterate_replicas(
        self, *, start_step: int, total_steps: int, shards: list[int]
    ) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
        """Per-replica batches for one worker: at each step, one batch of each of ``shards``."""
        streams = [self._shard_batches(s, start_step) for s in shards]
        for _ in range(start_step, total_steps):
            for stream in streams:
                yield self._element(*next(stream))

    def dummy_batch(self) -> tuple:
        """A one-example batch of the stream's structure (for building a model's metrics)."""
        features = np.zeros((1, self.reader.min_rows, self.reader.index.dim), dtype=np.float32)
        lengths = np.ones(1, dtype=np.int32)
        return self._element(np.zeros(1, dtype=np.int64), features, lengths)

    def _signature(self) -> tuple:
        dim = self.reader.index.dim
        return (
            {
                cnn.FEATURES_INPUT: tf.TensorSpec((None, None, dim), tf.float32),
                cnn.LENGTHS_INPUT: tf.TensorSpec((None,), tf.int32),
            },
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        )

    def dataset(self, *, start_step: int, total_steps: int, prefetch: int) -> tf.data.Dataset:
        """Global batches of all shards (``default``/``mirrored`` split them across replicas)."""
        return tf.data.Dataset.from_generator(
            lambda: self.iterate(start_step=start_step, total_steps=total_steps),
            output_signature=self._signature(),
        ).prefetch(prefetch)

    def distributed_dataset(
        self, strategy: tf.distribute.Strategy, *, start_step: int, total_steps: int, prefetch: int
    ):
        """Per-worker input: worker ``i`` of ``n`` reads only shards ``i, i + n, ...``."""
        if strategy.num_replicas_in_sync != self.num_shards:
            raise ValueError(
                f"{strategy.num_replicas_in_sync} replicas need as many input shards, "
                f"got {self.num_shards}"
            )

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            shards = list(
                range(context.input_pipeline_id, self.num_shards, context.num_input_pipelines)
            )
            logger.info(
                "input pipeline %d of %d reads shards %s (%d examples)",
                context.input_pipeline_id,
                context.num_input_pipelines,
                shards,
                sum(len(self.members[s]) for s in shards),
            )
            return tf.data.Dataset.from_generator(
                lambda: self.iterate_replicas(
                    start_step=start_step, total_steps=total_steps, shards=shards
                ),
                output_signature=self._signature(),
            ).prefetch(prefetch)

        return strategy.distribute_datasets_from_function(dataset_fn)


# --------------------------------------------------------------------------- callback


class StepCurves(keras.callbacks.Callback):
    """Windowed training curves, dev_a evaluations, best-model selection and early stopping.

    Global step = Keras epoch * ``checkpoint_every`` + batch + 1. The training
    metrics are reset after every log, so each logged value covers the window
    since the previous log. State needed after a restart (best value, patience
    counter) is saved next to the best weights at every checkpoint, and the curve
    rows logged since the previous checkpoint into ``rows_dir`` (``save_curve_rows``).
    """

    def __init__(
        self,
        *,
        live,
        evaluate_dev: Callable[[keras.Model], dict[str, dict[str, float]]] | None,
        log_every: int,
        eval_every: int,
        steps_per_epoch: int,
        checkpoint_every: int,
        total_steps: int,
        select_metric: str,
        patience: int | None,
        state_dir: Path,
        rows_dir: Path | None = None,
        start_step: int = 0,
    ) -> None:
        super().__init__()
        self.live = live
        self.rows_dir = None if rows_dir is None else Path(rows_dir)
        self._rows: list[list] = []  # [step, name, value] logged since the last checkpoint
        self._step = start_step
        self.evaluate_dev = evaluate_dev
        self.log_every = log_every
        self.eval_every = eval_every
        self.steps_per_epoch = steps_per_epoch
        self.checkpoint_every = checkpoint_every
        self.total_steps = total_steps
        self.select_metric = select_metric
        self.patience = patience
        self.state_dir = Path(state_dir)
        self.start_step = start_step
        self.state: dict[str, Any] = {
            "best_value": None,
            "best_step": None,
            "best_scores": None,
            "evals_since_best": 0,
        }
        self.best_weights: list[np.ndarray] | None = None
        state_file = self.state_dir / "state.json"
        if start_step and state_file.exists():
            self.state = json.loads(state_file.read_text())
            if self.best_weights_path.exists():
                with np.load(self.best_weights_path) as saved:
                    self.best_weights = [saved[f"w{i}"] for i in range(len(saved.files))]
        self._epoch = 0
        self._progress = None

    @property
    def best_weights_path(self) -> Path:
        return self.state_dir / "best_weights.npz"

    def restore_best(self) -> None:
        """Put the best evaluated weights back into the model."""
        if self.best_weights is None:
            raise RuntimeError("no dev_a evaluation ran, so there is no best model")
        self.model.set_weights(self.best_weights)

    def _seed_generators(self) -> list:
        # Dropout's random state is a variable that save_weights does not store.
        return [
            layer.seed_generator for layer in self.model.layers if hasattr(layer, "seed_generator")
        ]

    def on_train_begin(self, logs=None):
        for generator, value in zip(
            self._seed_generators(), self.state.get("seed_states", []), strict=False
        ):
            generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
        self._progress = tqdm(
            total=self.total_steps, initial=self.start_step, desc="train", unit="step", disable=None
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch * self.checkpoint_every + batch + 1
        self._step = step
        self._progress.update(1)
        last = step >= self.total_steps
        if step % self.log_every == 0 or last:
            for name, value in window_scores(logs).items():
                self._log(step, f"train/{name}", value)
            self.model.reset_metrics()
        evaluation_step = step % self.eval_every == 0 or step % self.steps_per_epoch == 0
        if self.evaluate_dev is not None and (evaluation_step or last):
            self._evaluate(step)  # None on non-chief workers: only the chief evaluates
        if last:
            self.model.stop_training = True

    def _log(self, step: int, name: str, value: float) -> None:
        self.live.step = step
        self.live.log_metric(name, value)
        self._rows.append([step, name, value])

    def _evaluate(self, step: int) -> None:
        scores = self.evaluate_dev(self.model)
        for view, values in scores.items():
            for name, value in values.items():
                self._log(step, f"dev_a/{view}/{name}", value)
        value = scores["prior"][self.select_metric]
        if is_better(value, self.state["best_value"], metric=self.select_metric):
            self.state.update(
                best_value=value, best_step=step, best_scores=scores, evals_since_best=0
            )
            self.best_weights = [np.array(w) for w in self.model.get_weights()]
        else:
            self.state["evals_since_best"] += 1
            if self.patience is not None and self.state["evals_since_best"] >= self.patience:
                logger.info(
                    "early stop at step %d: best %s at step %s",
                    step,
                    self.select_metric,
                    self.state["best_step"],
                )
                self.model.stop_training = True
        logger.info("step %d dev_a prior %s = %.4f", step, self.select_metric, value)

    def on_epoch_end(self, epoch, logs=None):
        # Runs just before BackupAndRestore saves the matching checkpoint (it comes later in the
        # list), so the saved rows always reach at least the step that a restart resumes from.
        if self.rows_dir is not None:
            save_curve_rows(self.rows_dir, step=self._step, rows=self._rows)
        self._rows = []
        self.state["seed_states"] = [np.asarray(g.state).tolist() for g in self._seed_generators()]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.best_weights is not None:
            tmp = self.state_dir / "best_weights.tmp.npz"
            np.savez(tmp, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            tmp.replace(self.best_weights_path)
        common.write_json(self.state_dir / "state.json", self.state)

    def on_train_end(self, logs=None):
        self._progress.close()


# --------------------------------------------------------------------------- training


def run_fingerprint(params: dict[str, Any], train_ids: list[str], dim: int) -> str:
    """Identifies a training run so that a backup from other params or data is not resumed."""
    text = json.dumps({"params": params, "dim": dim, "ids": train_ids}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def resume_step(backup_dir: Path, fingerprint: str, checkpoint_every: int) -> int:
    """Global step to resume from; 0 (after discarding a stale backup) when there is none."""
    meta = backup_dir / "keras" / "training_metadata.json"
    stamp = backup_dir / "fingerprint.txt"
    if meta.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return int(json.loads(meta.read_text())["epoch"]) * checkpoint_every
    if backup_dir.exists():
        logger.info("discarding backup %s from another run", backup_dir)
        shutil.rmtree(backup_dir)
    backup_dir.mkdir(parents=True)
    stamp.write_text(fingerprint)
    return 0


def trim_curves(live_dir: Path, *, after_step: int) -> None:
    """Drop curve rows logged after the checkpoint a resumed run restarts from."""
    for path in Path(live_dir, "plots", "metrics").rglob("*.tsv"):
        frame = pd.read_csv(path, sep="\t")
        frame[frame["step"] <= after_step].to_csv(path, sep="\t", index=False)


def save_curve_rows(rows_dir: Path, *, step: int, rows: list[list]) -> None:
    """Write the curve rows ``[step, name, value]`` logged up to checkpoint ``step`` since
    the previous checkpoint, atomically, as ``rows_dir/<step>.json`` (NaN kept as NaN)."""
    rows_dir = Path(rows_dir)
    rows_dir.mkdir(parents=True, exist_ok=True)
    path = rows_dir / f"{step:012d}.json"
    tmp = rows_dir / f".{path.name}.tmp"
    tmp.write_text(json.dumps({"step": step, "rows": rows}))
    os.replace(tmp, path)


def load_curve_rows(rows_dir: Path, *, after_step: int) -> list[list] | None:
    """The saved curve rows up to ``after_step``, in the order they were logged; None when
    the backup holds none (made before rows were saved). Saved rows past ``after_step``
    (logged by the killed run after its last complete checkpoint) are deleted."""
    rows_dir = Path(rows_dir)
    pieces = sorted(rows_dir.glob("*.json")) if rows_dir.is_dir() else []
    rows: list[list] = []
    found = False
    for path in pieces:
        piece = json.loads(path.read_text())
        if piece["step"] > after_step:
            path.unlink()
            continue
        found = True
        rows.extend(row for row in piece["rows"] if row[0] <= after_step)
    return rows if found else None


def train_model(
    *,
    dataset_dir: str | Path,
    manifest: pd.DataFrame,
    params: dict[str, Any],
    live_dir: str | Path,
    backup_dir: str | Path,
    callbacks: list | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train (or resume) and return the best model with the ``train.json`` record.

    Under ``multi_worker`` every worker calls this; only the chief writes to
    ``live_dir`` and ``backup_dir`` and evaluates ``dev_a``. The other workers write
    their curves and backups into a temporary folder deleted before returning, and
    resume from a copy of the chief's backup when ``backup_dir`` is on a shared
    file system. Their returned model holds the final weights, not the best ones.
    """
    p = resolve_params(params)
    # MultiWorkerMirroredStrategy must exist before other TensorFlow ops run.
    strategy = make_strategy(p["strategy"])
    role = describe_strategy(strategy)
    if role["chief"]:
        return _train(strategy, role, p, dataset_dir, manifest, live_dir, backup_dir, callbacks)
    scratch = Path(tempfile.mkdtemp(prefix=f"train-worker{role['task_id']}-"))
    try:
        worker_backup = scratch / "backup"
        if Path(backup_dir).exists():
            shutil.copytree(backup_dir, worker_backup)
        return _train(
            strategy, role, p, dataset_dir, manifest, scratch / "live", worker_backup, callbacks
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(
    strategy: tf.distribute.Strategy,
    role: dict[str, Any],
    p: dict[str, Any],
    dataset_dir: str | Path,
    manifest: pd.DataFrame,
    live_dir: str | Path,
    backup_dir: str | Path,
    callbacks: list | None,
) -> tuple[keras.Model, dict[str, Any]]:
    from dvclive import Live

    keras.utils.set_random_seed(p["seed"])
    tf.config.experimental.enable_op_determinism()
    compute = resolve_compute(p)
    keras.mixed_precision.set_dtype_policy(compute.precision)
    num_shards = resolve_input_shards(
        p["input_shards"], strategy=p["strategy"], replicas=role["replicas"]
    )
    if p["batch_size"] % role["replicas"]:
        raise ValueError(
            f"train.batch_size ({p['batch_size']}) is the global batch and must be a multiple "
            f"of the number of replicas ({role['replicas']})"
        )

    index = batches.index_dataset(dataset_dir)
    train_rows = select_rows(manifest, "train")
    dev_rows = select_rows(manifest, "dev_a")
    labels = train_rows["label"].to_numpy().astype(int)
    manifest_weight = train_rows["weight"].to_numpy(dtype=np.float64)
    weights = training_weights(
        labels, manifest_weight, balance=p["balance"], loss_weight=p["loss_weight"]
    )
    if p["balance"] == "weighted" and (train_rows["downsample_rate"] < 1).any():
        logger.warning("balance=weighted on thinned training rows: set downsample.ratio to null")
    min_rows = max(p["filter_sizes"])

    reader = batches.BatchReader(
        index, index.positions(train_rows["example_id"].tolist()), min_rows=min_rows
    )
    stream = TrainingStream(
        reader,
        labels,
        weights,
        batch_size=p["batch_size"],
        pool_size=p["pool_size"],
        seed=p["seed"],
        num_shards=num_shards,
    )
    total_steps = p["epochs"] * stream.steps_per_epoch
    keras_epochs = math.ceil(total_steps / p["checkpoint_every"])

    backup_dir = Path(backup_dir)
    # a backup resumes only under the same resolved precision (auto differs between machines)
    fingerprint = run_fingerprint(
        {**p, "precision": compute.precision}, train_rows["example_id"].tolist(), index.dim
    )
    start = resume_step(backup_dir, fingerprint, p["checkpoint_every"])
    rows_dir = backup_dir / "curves"
    replay = load_curve_rows(rows_dir, after_step=start) if start else []
    if start:
        logger.info("resuming from step %d of %d", start, total_steps)
    if replay is None:
        # A backup without saved rows: keep what the live folder still holds (dvc repro
        # deletes it before running the stage, so earlier rows may be missing).
        logger.warning("backup %s holds no curve rows; keeping those in %s", backup_dir, live_dir)
        trim_curves(Path(live_dir), after_step=start)

    architecture = {
        "dim": index.dim,
        "filter_sizes": p["filter_sizes"],
        "filters": p["filters"],
        "dropout": p["dropout"],
        "l2": p["l2"],
        "seed": p["seed"],
    }
    with strategy.scope():
        model = cnn.build_cnn(**architecture)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=p["learning_rate"]),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[
                keras.metrics.TruePositives(thresholds=p["threshold"], name="tp"),
                keras.metrics.FalsePositives(thresholds=p["threshold"], name="fp"),
                keras.metrics.FalseNegatives(thresholds=p["threshold"], name="fn"),
            ],
        )
    # Under a distribution strategy, dev_a is scored by a plain copy of the model: its
    # predict() runs on this process alone, with no collective op the other workers
    # would have to join.
    scorer = model if p["strategy"] == "default" else cnn.build_cnn(**architecture)

    dev_ids = dev_rows["example_id"].tolist()
    dev_labels = dev_rows["label"].to_numpy().astype(int)
    dev_weight = dev_rows["weight"].to_numpy(dtype=np.float64)

    # dev_a shares row groups with train: copied once, each evaluation reads only dev_a's rows
    dev_set = None

    def evaluate_dev(m: keras.Model) -> dict[str, dict[str, float]]:
        nonlocal dev_set
        if dev_set is None:
            dev_reader = batches.BatchReader(index, index.positions(dev_ids), min_rows=min_rows)
            dev_set = batches.CompactSet(dev_reader, backup_dir / "dev_a.npy")
        if scorer is not m:
            scorer.set_weights(m.get_weights())
        scores = batches.predict_scores(
            scorer, dataset_dir, dev_ids, batch_size=p["eval_batch_size"], compact=dev_set
        )
        return {
            "sampled": classification_scores(dev_labels, scores, threshold=p["threshold"]),
            "prior": classification_scores(
                dev_labels, scores, dev_weight, threshold=p["threshold"]
            ),
        }

    # A fresh DVCLive folder (resume=False clears it) holding exactly the rows logged up to
    # the checkpoint, replayed through DVCLive so the files are as it writes them.
    live = Live(
        str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=replay is None, report=None
    )
    for step, name, value in replay or []:
        live.step = step
        live.log_metric(name, value)
    curves = StepCurves(
        live=live,
        evaluate_dev=evaluate_dev if role["chief"] else None,
        log_every=p["log_every"],
        eval_every=p["eval_every"],
        steps_per_epoch=stream.steps_per_epoch,
        checkpoint_every=p["checkpoint_every"],
        total_steps=total_steps,
        select_metric=p["select_metric"],
        patience=p["patience"],
        state_dir=backup_dir / "best",
        rows_dir=rows_dir,
        start_step=start,
    )
    backup = keras.callbacks.BackupAndRestore(
        str(backup_dir / "keras"), save_freq="epoch", delete_checkpoint=False
    )
    if p["strategy"] == "multi_worker":
        data = stream.distributed_dataset(
            strategy, start_step=start, total_steps=total_steps, prefetch=p["prefetch"]
        )
    else:
        data = stream.dataset(start_step=start, total_steps=total_steps, prefetch=p["prefetch"])
    if p["strategy"] != "default":
        # Under a strategy, Keras 3.15's fit() builds the model from one batch it pulls off
        # the input iterator and never trains on (``_maybe_symbolic_build``), which would
        # shift the step-exact stream by a batch; it also cannot reduce dict-structured
        # per-replica input. Build from a dummy batch instead and skip that step.
        with strategy.scope():
            model._symbolic_build(data_batch=stream.dummy_batch())
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    started = time.perf_counter()
    try:
        model.fit(
            data,
            epochs=keras_epochs,
            steps_per_epoch=p["checkpoint_every"],
            callbacks=[curves, backup, *(callbacks or [])],
            shuffle=False,  # the stream shuffles, seeded per epoch
            verbose=0,
        )
    finally:
        if dev_set is not None:
            dev_set.close()
    seconds = time.perf_counter() - started
    if role["chief"]:
        curves.restore_best()

    state = curves.state
    live.summary = {
        "best_step": state["best_step"],
        f"best_{p['select_metric']}": state["best_value"],
        "dev_a": state["best_scores"],
    }
    live.step = state["best_step"] or 0
    live.make_summary()

    rates = (
        train_rows.groupby("source")[["upstream_rate", "downsample_rate"]]
        .agg(["min", "max"])
        .to_dict(orient="index")
    )
    record = {
        "dim": index.dim,
        "beta": effective_beta(labels, manifest_weight, weights),
        "training_prior": training_prior(labels, weights),
        "production_prior_estimate": training_prior(labels, manifest_weight),
        "params": p,
        "sampling": {
            "balance": p["balance"],
            "loss_weight": p["loss_weight"] if p["balance"] == "weighted" else None,
            "rates_by_source": {
                src: {f"{a}_{b}": v for (a, b), v in r.items()} for src, r in rates.items()
            },
            "train_examples": int(len(labels)),
            "train_positives": int(labels.sum()),
        },
        "distribution": {
            "strategy": p["strategy"],
            "replicas": role["replicas"],
            "workers": role["workers"],
            "input_shards": num_shards,
            "global_batch": p["batch_size"],
            "replica_batch": p["batch_size"] // role["replicas"],
            "chief": role["chief"],
        },
        "compute": {**compute.record(), "cpu_model": hardware.cpu_model()},
        "min_rows": min_rows,
        "steps": total_steps,
        "steps_per_epoch": stream.steps_per_epoch,
        "resumed_from_step": start,
        "best_step": state["best_step"],
        "select_metric": p["select_metric"],
        "best_value": state["best_value"],
    }
    logger.info(
        "trained %d steps in %.0f s (%.1f examples/s)",
        total_steps - start,
        seconds,
        (total_steps - start) * p["batch_size"] / max(seconds, 1e-9),
    )
    return model, record


# Zip entry time for every member of a saved model: the earliest a zip can hold.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_EPOCH_TEXT = "1980-01-01@00:00:00"  # the same, as Keras writes ``date_saved``


def _renumber_shared_objects(config: Any, ids: dict[int, int] | None = None) -> Any:
    """``config`` with every ``shared_object_id`` replaced by its rank of first appearance."""
    ids = {} if ids is None else ids
    if isinstance(config, list):
        return [_renumber_shared_objects(item, ids) for item in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key == "shared_object_id":
            out[key] = ids.setdefault(value, len(ids))
        else:
            out[key] = _renumber_shared_objects(value, ids)
    return out


def save_model(model: keras.Model, path: Path) -> None:
    """``model.save``, made byte-reproducible: the same weights give the same file.

    Keras stamps ``metadata.json`` with the save time (``date_saved``), the weights entry
    with the file's time, and ``config.json`` with the memory address of each shared object
    (``shared_object_id``, here the L2 regularizer every conv layer shares). The times are
    fixed to 1980-01-01 and the ids renumbered 0, 1, ... in order of appearance (loading only
    matches them within the file), so a rerun that learns the same weights leaves
    ``dvc status`` and the DVC cache unchanged.
    """
    import zipfile

    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / path.name
        model.save(raw)
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata["date_saved"] = ZIP_EPOCH_TEXT  # read by KerasFileEditor
                    data = json.dumps(metadata, sort_keys=True).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
                entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
                entry.compress_type = info.compress_type
                entry.external_attr = 0o644 << 16
                entry.create_system = 3  # Unix, also when saved on Windows
                dst.writestr(entry, data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--live-dir", required=True)
    parser.add_argument(
        "--backup-dir", default=".cache/train_backup", help="not a DVC output; removed on success"
    )
    args = parser.parse_args(argv)
    common.setup_logging()

    params = common.load_params(args.params, "train")
    resolve_params(params)  # before any reading
    manifest = pd.read_parquet(args.manifest, columns=list(MANIFEST_COLUMNS))
    model, record = train_model(
        dataset_dir=args.dataset,
        manifest=manifest,
        params=params,
        live_dir=args.live_dir,
        backup_dir=args.backup_dir,
    )
    if not record["distribution"]["chief"]:
        # TF's multi-worker guidance: every worker saves (saving may need collective
        # ops), the non-chief ones into a temporary folder that is then deleted.
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "model.keras")
        logger.info("worker done; the chief writes %s", args.model_dir)
        return
    with common.atomic_directory(args.model_dir) as tmp:
        save_model(model, tmp / "model.keras")
        common.write_json(tmp / "train.json", record)
    shutil.rmtree(args.backup_dir, ignore_errors=True)
    logger.info(
        "wrote %s (beta %.4f, best step %s)", args.model_dir, record["beta"], record["best_step"]
    )


if __name__ == "__main__":
    common.run_main(main)
