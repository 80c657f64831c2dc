"""Where training runs: tf.distribute strategies, precision and oneDNN, and the Keras
workarounds distribution needs (kept here, so that a Keras upgrade touches one file).

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

Keras workarounds (Keras 3.15): ``patch_keras_multi_worker_logs`` (scalar logs under
multi-worker collectives) and ``build_outside_fit`` (fit's own build consumes a batch).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import keras
import tensorflow as tf

from dsprior import hardware
from dsprior.training.params import STRATEGIES

logger = logging.getLogger(__name__)


def resolve_compute(params: hardware.ComputeParams) -> hardware.Compute:
    """``train.precision`` and ``train.onednn`` resolved for this machine (``dsprior.hardware``).

    TensorFlow is imported already, so it answers whether a GPU is there and whether
    oneDNN is on (the entry point set it from the params before the import).
    """
    compute = hardware.resolve_compute(
        params.precision,
        params.onednn,
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

    reduce_per_replica.__wrapped__ = original  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_per_replica


def build_outside_fit(
    model: keras.Model, strategy: tf.distribute.Strategy, dummy_batch: tuple
) -> None:
    """Build ``model`` from ``dummy_batch`` and stop ``fit`` from building it again.

    Under a strategy, Keras 3.15's fit() builds the model from one batch it pulls off
    the input iterator and never trains on (``_maybe_symbolic_build``), which would
    shift the step-exact stream by a batch; it also cannot reduce dict-structured
    per-replica input. Build from a dummy batch instead and skip that step.
    """
    with strategy.scope():
        model._symbolic_build(data_batch=dummy_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


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


def check_global_batch(batch_size: int, *, replicas: int) -> None:
    """Refuse a global batch that the replicas cannot split evenly."""
    if batch_size % replicas:
        raise ValueError(
            f"train.batch_size ({batch_size}) is the global batch and must be a multiple "
            f"of the number of replicas ({replicas})"
        )


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
