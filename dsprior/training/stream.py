"""The seeded, endless stream of the training rows' batches, resumable at any step (the rows:
``dsprior.training.rows``).

A checkpoint (``resume``) restores a Keras epoch, not a batch, so fit runs in
checkpoint-sized Keras "epochs" of ``checkpoint_every`` steps over an endless stream
whose data epochs are planned from ``(seed, epoch)``; a restarted run resumes the stream
at exactly the checkpointed step (``start_step``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from dsprior import batches, cnn

logger = logging.getLogger(__name__)


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
    ) -> Any:
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
