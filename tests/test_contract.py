"""The canonical dataset: schema, shard and row-group layout, metadata-only reads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsprior.contract import (
    FEATURES,
    METADATA_COLUMNS,
    DatasetWriter,
    dataset_dim,
    dataset_dtype,
    dataset_schema,
    decode_features,
    max_abs_for,
    read_metadata,
    shard_paths,
)


def _write(path, n, *, row_group_size=2, shard_size=4, dtype="float16"):
    rng = np.random.default_rng(0)
    rows = {}
    with DatasetWriter(
        path, dim=3, dtype=dtype, row_group_size=row_group_size, shard_size=shard_size
    ) as w:
        for i in range(n):
            r = rng.standard_normal((1 + i % 4, 3))
            rows[f"e{i}"] = r
            w.add(
                example_id=f"e{i}",
                group=f"g{i // 2}",
                label=i % 2,
                source="s",
                negative_rate=0.5,
                rows=r,
                true_label=None if i == 0 else i % 2,
            )
    return rows


def test_shards_and_row_groups_have_the_requested_sizes(tmp_path):
    _write(tmp_path, 10, row_group_size=2, shard_size=4)
    shards = shard_paths(tmp_path)
    assert [p.name for p in shards] == [f"part-0000{i}.parquet" for i in range(3)]
    layout = [
        [
            pq.ParquetFile(p).metadata.row_group(g).num_rows
            for g in range(pq.ParquetFile(p).num_row_groups)
        ]
        for p in shards
    ]
    assert layout == [[2, 2], [2, 2], [2]]


def test_features_round_trip_in_order_with_their_dtype(tmp_path):
    rows = _write(tmp_path, 7, dtype="float32")
    table = pq.read_table(shard_paths(tmp_path))
    assert table.schema.equals(dataset_schema(3, "float32"), check_metadata=False)
    assert dataset_dim(tmp_path) == 3
    assert dataset_dtype(tmp_path) == "float32"
    flat, offsets = decode_features(table.column(FEATURES), dim=3, dtype="float32")
    for i in range(7):
        np.testing.assert_array_equal(
            flat[offsets[i] : offsets[i + 1]], rows[f"e{i}"].astype(np.float32)
        )
    # a slice decodes to its own examples, and the values are stored uncompressed
    sliced, sliced_offsets = decode_features(
        table.column(FEATURES).slice(2, 3), dim=3, dtype="float32"
    )
    np.testing.assert_array_equal(sliced, flat[offsets[2] : offsets[5]])
    np.testing.assert_array_equal(sliced_offsets, offsets[2:6] - offsets[2])
    column = pq.ParquetFile(shard_paths(tmp_path)[0]).metadata.row_group(0)
    codecs = {
        column.column(j).path_in_schema: column.column(j).compression
        for j in range(column.num_columns)
    }
    assert codecs[FEATURES] == "UNCOMPRESSED" and codecs["example_id"] == "ZSTD"
    with pytest.raises(ValueError, match="not whole rows of 4"):
        decode_features(table.column(FEATURES), dim=4, dtype="float32")
    with pytest.raises(ValueError, match="expected binary"):
        decode_features(pa.array([[[1.0, 2.0, 3.0]]]), dim=3, dtype="float32")
    assert table.column("n_rows").to_pylist() == [1 + i % 4 for i in range(7)]
    assert table.column("true_label").to_pylist()[:2] == [None, 1]


def test_metadata_reads_never_touch_features(tmp_path):
    _write(tmp_path, 5)
    meta = read_metadata(tmp_path)
    assert meta.column_names == list(METADATA_COLUMNS)
    assert meta.column("example_id").to_pylist() == [f"e{i}" for i in range(5)]
    with pytest.raises(ValueError, match="never reads features"):
        read_metadata(tmp_path, columns=["example_id", FEATURES])


def test_bad_shapes_and_params_are_refused(tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of"):
        dataset_schema(3, "float64")
    with DatasetWriter(tmp_path / "d", dim=3) as w:
        with pytest.raises(ValueError, match="example 'x': rows must have shape"):
            w.add(
                example_id="x",
                group="g",
                label=0,
                source="s",
                negative_rate=1,
                rows=np.zeros((0, 3)),
            )
    with pytest.raises(FileNotFoundError, match="run the ingest stage"):
        shard_paths(tmp_path / "nowhere")


def test_max_abs_is_the_largest_value_each_dtype_stores() -> None:
    assert max_abs_for("float16") == 65504.0
    assert max_abs_for("float32") == pytest.approx(3.4028235e38)
    assert np.isfinite(np.float16(max_abs_for("float16")))
    with pytest.raises(
        ValueError, match=r"dtype must be one of \['float16', 'float32'\], got 'int8'"
    ):
        max_abs_for("int8")
