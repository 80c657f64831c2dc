"""The ingest writer: opened at the first example, closed complete on success, left
incomplete (and so never mistaken for a dataset) on an error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsprior import contract
from dsprior.ingest.writer import LazyWriter
from dsprior.rawio import Example, SourceSpec

DIM = 3
SPEC = SourceSpec.from_params("s", {"path": "unused", "negative_rate": 0.5})


def example(example_id: str) -> Example:
    rows = np.arange(2 * DIM, dtype=np.float64).reshape(2, DIM)
    return Example("s", example_id, "g", 1, None, rows, "f.csv", 1)


def open_at(folder: Path):
    return lambda dim: contract.DatasetWriter(folder, dim=dim, row_group_size=8, shard_size=8)


def test_examples_are_written_with_their_source_and_the_writer_opens_once(tmp_path: Path) -> None:
    opened: list[int] = []

    def counting(dim: int) -> contract.DatasetWriter:
        opened.append(dim)
        return open_at(tmp_path)(dim)

    with LazyWriter(counting) as writer:
        writer.add(example("a"), SPEC, dim=DIM)
        writer.add(example("b"), SPEC, dim=DIM)
    assert opened == [DIM]
    meta = contract.read_metadata(tmp_path).to_pylist()
    assert [(m["example_id"], m["source"], m["negative_rate"]) for m in meta] == [
        ("a", "s", 0.5),
        ("b", "s", 0.5),
    ]


def test_no_example_opens_no_writer(tmp_path: Path) -> None:
    with LazyWriter(open_at(tmp_path / "out")):
        pass
    assert not (tmp_path / "out").exists()


def test_an_error_leaves_the_buffered_examples_unwritten(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), LazyWriter(open_at(tmp_path)) as writer:
        writer.add(example("a"), SPEC, dim=DIM)
        raise KeyboardInterrupt
    assert not list(tmp_path.glob(contract.SHARD_GLOB))  # nothing flushed: no shard at all
