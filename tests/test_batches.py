"""The streaming reader: bucketing, epoch plans, row-group reads and predict_scores order."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import batches, contract
from dsprior.runtime import atomic_directory

DIM = 8


def write_dataset(path, lengths, *, row_group_size=4, shard_size=10, seed=0):
    """Rows of example i are filled with i + row/100 so a batch can be checked exactly."""
    rng = np.random.default_rng(seed)
    with (
        atomic_directory(path) as tmp,
        contract.DatasetWriter(
            tmp, dim=DIM, dtype="float32", row_group_size=row_group_size, shard_size=shard_size
        ) as writer,
    ):
        for i, n in enumerate(lengths):
            rows = i + np.arange(n)[:, None] / 100 + np.zeros((n, DIM))
            writer.add(
                example_id=f"ex{i:03d}",
                group=f"g{i // 3}",
                label=int(rng.random() < 0.3),
                source="pool",
                negative_rate=1.0,
                rows=rows,
            )
    return path


@pytest.fixture
def lengths():
    return np.random.default_rng(1).integers(1, 30, size=37)


@pytest.fixture
def dataset(tmp_path, lengths):
    return write_dataset(tmp_path / "dataset", lengths)


def test_index_maps_every_example_to_its_row(dataset, lengths):
    index = batches.index_dataset(dataset)
    assert index.dim == DIM
    assert len(index.shards) == 4  # 37 examples, 10 per shard
    np.testing.assert_array_equal(index.n_rows, lengths)
    reader = batches.BatchReader(index, np.arange(len(lengths)))
    plan = [np.array([i]) for i in range(len(lengths))]
    for batch, features, lens in reader.iter_batches(plan):
        i = int(batch[0])
        assert lens[0] == lengths[i]
        np.testing.assert_allclose(features[0, :, 0], i + np.arange(lengths[i]) / 100, atol=1e-6)


def test_positions_reject_unknown_ids(dataset):
    index = batches.index_dataset(dataset)
    with pytest.raises(ValueError, match="not in the dataset.*nope"):
        index.positions(["ex000", "nope"])


def test_plan_covers_each_example_once_and_buckets_lengths(lengths):
    row_group = np.arange(len(lengths)) // 4
    rng = np.random.default_rng(3)
    plan = batches.plan_batches(row_group, lengths, batch_size=5, pool_size=40, rng=rng)
    flat = np.concatenate(plan)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert sorted(len(b) for b in plan) == [len(lengths) % 5] + [5] * (len(plan) - 1)
    # one pool holds the whole data: each batch is a contiguous run of sorted lengths
    padded = sum(len(b) * lengths[b].max() for b in plan)
    random_batches = np.array_split(np.random.default_rng(0).permutation(len(lengths)), len(plan))
    padded_random = sum(len(b) * lengths[b].max() for b in random_batches)
    assert padded < padded_random
    spans = [lengths[b].max() - lengths[b].min() for b in plan]
    assert max(spans) <= np.ptp(lengths) / 2


def test_plan_differs_by_epoch_seed_and_repeats_with_same_seed(lengths):
    row_group = np.arange(len(lengths)) // 4

    def plan(seed):
        p = batches.plan_batches(
            row_group, lengths, batch_size=5, pool_size=10, rng=np.random.default_rng(seed)
        )
        return [b.tolist() for b in p]

    assert plan(1) == plan(1)
    assert plan(1) != plan(2)


def test_plan_validates_options(lengths):
    with pytest.raises(ValueError, match="pool_size must be >= batch_size"):
        batches.plan_batches(np.zeros(3), np.ones(3), batch_size=5, pool_size=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        batches.plan_batches(np.zeros(3), np.ones(3), batch_size=0, pool_size=2)


def test_reader_reads_each_row_group_once_and_pads_to_min_rows(dataset, lengths):
    index = batches.index_dataset(dataset)
    selected = np.arange(0, len(lengths), 2)
    reader = batches.BatchReader(index, selected, min_rows=12)
    plan = batches.plan_batches(
        reader.row_group, reader.n_rows, batch_size=3, pool_size=6, rng=np.random.default_rng(0)
    )
    seen = []
    for batch, features, lens in reader.iter_batches(plan):
        assert features.shape[1] == max(12, lens.max())
        assert features.dtype == np.float32
        for row, i in enumerate(batch):
            n = lengths[selected[i]]
            assert lens[row] == n
            assert np.all(features[row, n:] == 0)
            np.testing.assert_allclose(
                features[row, :n, 0], selected[i] + np.arange(n) / 100, atol=1e-6
            )
        seen.extend(batch.tolist())
    assert sorted(seen) == list(range(len(selected)))
    assert reader.row_groups_read == len(np.unique(index.row_group[selected]))


def test_reader_can_start_mid_plan(dataset, lengths):
    index = batches.index_dataset(dataset)
    reader = batches.BatchReader(index, np.arange(len(lengths)))
    plan = batches.plan_batches(reader.row_group, reader.n_rows, batch_size=4, pool_size=8)
    full = [b.tolist() for b, _, _ in reader.iter_batches(plan)]
    tail = [(b.tolist(), f) for b, f, _ in reader.iter_batches(plan, start=3)]
    assert [b for b, _ in tail] == full[3:]


def mean_model(dim: int = DIM):
    """A real Keras model whose score is the mean of the first column over an example's real rows."""
    import keras
    from keras import ops

    features = keras.Input(shape=(None, dim), name="features")
    lengths = keras.Input(shape=(), name="lengths", dtype="int32")

    class FirstColumnMean(keras.layers.Layer):
        def call(self, inputs):
            f, n = inputs
            mask = ops.expand_dims(ops.arange(ops.shape(f)[1]), 0) < ops.expand_dims(n, 1)
            total = ops.sum(ops.where(mask, f[:, :, 0], 0.0), axis=1)
            return ops.expand_dims(total / ops.cast(n, f.dtype), 1)

    out = FirstColumnMean()([features, lengths])
    return keras.Model({"features": features, "lengths": lengths}, out)


def test_predict_scores_follow_requested_order(dataset, lengths):
    ids = [f"ex{i:03d}" for i in (30, 2, 17, 5, 36, 0, 11)]
    scores = batches.predict_scores(mean_model(), dataset, ids, batch_size=3)
    expected = [i + (lengths[i] - 1) / 200 for i in (30, 2, 17, 5, 36, 0, 11)]
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def assert_same_batches(first, second, plan) -> None:
    """Both sources give the plan's batches alike: indices, padded rows and lengths."""
    for (b1, f1, n1), (b2, f2, n2) in zip(
        first.iter_batches(plan), second.iter_batches(plan), strict=True
    ):
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(n1, n2)


def test_compact_set_scores_equal_streamed_scores(dataset, lengths, tmp_path):
    """dev_a's local copy gives the scores of the streamed Parquet read, in the order asked for."""
    index = batches.index_dataset(dataset)
    ids = [f"ex{i:03d}" for i in (30, 2, 17, 5, 36, 0, 11, 12, 13)]
    reader = batches.BatchReader(index, index.positions(ids), min_rows=3)
    compact = batches.CompactSet(reader, tmp_path / "dev.npy")
    assert len(compact) == len(ids)
    assert np.load(tmp_path / "dev.npy", mmap_mode="r").shape == (
        lengths[[30, 2, 17, 5, 36, 0, 11, 12, 13]].sum(),
        DIM,
    )
    model = mean_model()
    streamed = batches.predict_scores(model, dataset, ids, batch_size=4, min_rows=3, index=index)
    local = batches.predict_scores(model, dataset, ids, batch_size=4, compact=compact)
    np.testing.assert_array_equal(local, streamed)
    expected = [i + (lengths[i] - 1) / 200 for i in (30, 2, 17, 5, 36, 0, 11, 12, 13)]
    np.testing.assert_allclose(local, expected, rtol=1e-5)
    # the same batches from both: the copy holds each example's exact rows
    plan = batches.plan_batches(reader.row_group, reader.n_rows, batch_size=4, pool_size=8)
    assert_same_batches(reader, compact, plan)
    with pytest.raises(ValueError, match="holds 9 examples"):
        batches.predict_scores(model, dataset, ids[:3], batch_size=4, compact=compact)
    compact.close()
    assert not (tmp_path / "dev.npy").exists()


def test_a_subset_of_a_compact_set_is_the_copy_of_its_examples(dataset, tmp_path):
    """dev_a's sample takes its rows from dev_a's copy: the same batches and scores as a copy
    read from Parquet for the sample alone, and closing it leaves dev_a's file."""
    index = batches.index_dataset(dataset)
    ids = [f"ex{i:03d}" for i in (30, 2, 17, 5, 36, 0, 11, 12, 13)]
    whole = batches.CompactSet(
        batches.BatchReader(index, index.positions(ids), min_rows=3), tmp_path / "dev.npy"
    )
    members = np.array([4, 0, 7, 2])
    sample_ids = [ids[i] for i in members]
    reader = batches.BatchReader(index, index.positions(sample_ids), min_rows=3)
    alone = batches.CompactSet(reader, tmp_path / "alone.npy")
    part = whole.subset(members)
    assert len(part) == 4
    np.testing.assert_array_equal(part.n_rows, alone.n_rows)
    np.testing.assert_array_equal(part.row_group, alone.row_group)
    plan = batches.plan_batches(part.row_group, part.n_rows, batch_size=3, pool_size=6)
    assert_same_batches(alone, part, plan)
    model = mean_model()
    np.testing.assert_array_equal(
        batches.predict_scores(model, dataset, sample_ids, batch_size=3, compact=part),
        batches.predict_scores(model, dataset, sample_ids, batch_size=3, compact=alone),
    )
    part.close()
    assert (tmp_path / "dev.npy").exists()  # the subset's close leaves dev_a's copy
    with pytest.raises(ValueError, match=r"subset positions must lie in \[0, 9\)"):
        whole.subset(np.array([0, 9]))
    whole.close()
    assert not (tmp_path / "dev.npy").exists()


def test_forward_is_traced_once_for_every_batch_shape(dataset):
    """No batch or row count retraces the scoring function."""
    model = mean_model()
    call = batches.forward(model)
    assert batches.forward(model) is call
    for n, rows in [(1, 3), (4, 17), (7, 2), (2, 40)]:
        x = np.ones((n, rows, DIM), dtype=np.float32)
        np.testing.assert_allclose(call(x, np.full(n, rows, np.int32)), np.ones(n))
    assert call.traced.experimental_get_tracing_count() == 1


def test_score_batches_raises_the_readers_error():
    """A failure while reading reaches the caller; the thread does not hang or swallow it."""

    def failing():
        yield np.array([0]), np.ones((1, 2, DIM), np.float32), np.array([2], np.int32)
        raise OSError("row group 3 is truncated")

    with pytest.raises(OSError, match="row group 3 is truncated"):
        batches.score_batches(mean_model(), failing(), 5, dim=DIM)


def test_scores_are_float64_log_odds_where_the_sigmoid_saturates():
    """A CNN whose logits all exceed 17: its float32 sigmoid output ties them all at exactly 1,
    while the scores (the output unit's pre-activation, in float64) stay distinct, equal the
    layer's own arithmetic, and follow weights set after the first call."""
    from dsprior import cnn

    model = cnn.build_cnn(dim=DIM, filter_sizes=(2, 3), filters=4, seed=5)
    layer = model.get_layer(cnn.OUTPUT_LAYER)
    kernel, bias = layer.get_weights()
    layer.set_weights([np.abs(kernel) * 50.0, bias + 20.0])
    rng = np.random.default_rng(7)
    features = np.abs(rng.normal(size=(6, 5, DIM))).astype(np.float32)
    lengths = np.array([5, 4, 3, 5, 2, 4], dtype=np.int32)
    sigmoid = np.asarray(model({"features": features, "lengths": lengths})).reshape(-1)
    assert sigmoid.dtype == np.float32 and np.all(sigmoid == 1.0)  # saturated: one tie
    logits = batches.forward(model)(features, lengths)
    assert logits.dtype == np.float64
    assert logits.min() > 17 and len(np.unique(logits)) == len(logits)
    pooled = batches.logit_parts(model)[0]({"features": features, "lengths": lengths})
    want = np.asarray(pooled, np.float64) @ layer.get_weights()[0].astype(np.float64)
    np.testing.assert_allclose(logits, want.reshape(-1) + 20.0 + bias[0], rtol=1e-12)
    layer.set_weights([np.abs(kernel) * 50.0, bias + 25.0])  # a scorer whose weights move on
    np.testing.assert_allclose(batches.forward(model)(features, lengths), logits + 5.0, rtol=1e-12)
