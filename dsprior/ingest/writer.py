"""How examples go into the canonical dataset: the writer of the configured sizes, one
example's fields, and a writer opened at the first example and closed in every case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from dsprior import contract
from dsprior.ingest.config import IngestConfig
from dsprior.rawio import Example, SourceSpec

# DatasetWriter.add's metadata arguments, named as the dataset's columns (n_rows it counts).
WRITTEN_COLUMNS = tuple(c for c in contract.METADATA_COLUMNS if c != contract.N_ROWS)


def add_example(writer: contract.DatasetWriter, item: Example, spec: SourceSpec) -> None:
    """Write one example with its source's name and negative rate."""
    # ingest reads with groups and labels required, so every example it keeps has both
    assert item.group is not None and item.label is not None
    writer.add(
        example_id=item.example_id,
        group=item.group,
        label=item.label,
        source=spec.name,
        negative_rate=spec.negative_rate,
        rows=item.rows,
        true_label=item.true_label,
    )


def open_writer(out_dir: Path, dim: int, config: IngestConfig) -> contract.DatasetWriter:
    """The dataset writer of ``config``'s dtype, row group and shard sizes."""
    return contract.DatasetWriter(
        out_dir,
        dim=dim,
        dtype=config.dtype,
        row_group_size=config.row_group_size,
        shard_size=config.shard_size,
    )


class LazyWriter:
    """A dataset writer opened at the first example, when the dimension is known.

    As a context manager: on success it closes the writer (completing its last shard);
    on an error it closes the open shard without completing it. No example, no writer.
    """

    def __init__(self, open_at: Callable[[int], contract.DatasetWriter]) -> None:
        self._open_at = open_at
        self.writer: contract.DatasetWriter | None = None

    def add(self, item: Example, spec: SourceSpec, *, dim: int | None) -> None:
        """Write ``item`` (of ``spec``), opening the writer for ``dim`` the first time."""
        if self.writer is None:
            assert dim is not None  # an example was read, so the reader fixed the dim
            self.writer = self._open_at(dim)
        add_example(self.writer, item, spec)

    def __enter__(self) -> LazyWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.writer is not None:
            self.writer.__exit__(exc_type, exc, tb)
