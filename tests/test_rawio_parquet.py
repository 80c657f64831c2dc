"""rawio.parquet: examples cut by batches and row groups come out whole; positions are rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsprior.rawio import Example, RawReader, SourceSpec
from tests.rawfiles import DIM, long_rows, make_examples, write_parquet


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 10_000])
def test_examples_across_batches_are_whole_and_positions_are_rows(
    tmp_path: Path, chunk_rows: int
) -> None:
    examples = make_examples(9)
    path = write_parquet(tmp_path / "raw.parquet", long_rows(examples))  # row groups of 5
    spec = SourceSpec.from_params("s", {"path": str(path), "negative_rate": 1.0})
    reader = RawReader(chunk_rows=chunk_rows, max_abs=65504.0)
    items = list(reader.read_source(spec))
    assert all(isinstance(i, Example) for i in items)
    assert [i.example_id for i in items] == [ex["example_id"] for ex in examples]
    first_rows = np.cumsum([0] + [len(ex["rows"]) for ex in examples])[:-1]
    assert [i.position for i in items] == first_rows.tolist()  # 0-based row of the first row
    for item, ex in zip(items, examples, strict=True):
        assert item.rows.shape == (len(ex["rows"]), DIM) and item.rows.dtype == np.float64
        np.testing.assert_array_equal(item.rows, ex["rows"])
        assert (item.group, item.label, item.true_label) == (
            ex["group"],
            ex["label"],
            ex["true_label"],
        )
    tally = reader.tallies[-1]
    assert (tally.rows, tally.examples, tally.complete) == (
        sum(len(ex["rows"]) for ex in examples),
        9,
        True,
    )


def test_only_the_declared_columns_are_features(tmp_path: Path) -> None:
    rows = [[*r, "note"] for r in long_rows(make_examples(3))]
    names = ["example_id", "group", "label", "true_label"] + [f"f{j}" for j in range(DIM)]
    path = write_parquet(tmp_path / "raw.parquet", rows, names=[*names, "comment"])
    features = [f"f{j}" for j in range(DIM)]
    spec = SourceSpec.from_params(
        "s", {"path": str(path), "negative_rate": 1.0, "features": features}
    )
    items = list(RawReader(max_abs=65504.0).read_source(spec))
    assert [i.rows.shape[1] for i in items] == [DIM] * 3
