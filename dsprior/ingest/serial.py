"""Ingest in this process: files one after the other, one writer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from dsprior import contract
from dsprior.ingest.config import IngestConfig
from dsprior.ingest.counts import IngestResult, SourceCounts
from dsprior.ingest.writer import LazyWriter, open_writer
from dsprior.rawio import RawReader, Reject, simulated

log = logging.getLogger(__name__)


def ingest_serial(
    config: IngestConfig, out_dir: Path, *, on_reject: Callable[[Reject], None]
) -> IngestResult:
    """``ingest_sources`` in this process: files one after the other, one writer."""
    reader = RawReader(
        chunk_rows=config.chunk_rows,
        max_abs=contract.max_abs_for(config.dtype),
        formats=simulated.READERS,
    )
    counts = {spec.name: SourceCounts() for spec in config.sources}
    result = IngestResult(counts=counts, dim=None)
    with LazyWriter(lambda dim: open_writer(out_dir, dim, config)) as writer:
        for spec in config.sources:
            files = simulated.list_source(spec)
            count = counts[spec.name]
            count.add_files(files)
            progress = tqdm(desc=f"ingest {spec.name}", unit="ex", mininterval=2, leave=False)
            for path, fmt in files:
                for item in reader.read_file(spec, path, fmt):
                    progress.update()
                    if isinstance(item, Reject):
                        stop = config.on_error == "fail"
                        if result.count_reject(count, item, on_reject=on_reject, stop=stop):
                            break
                        continue
                    writer.add(item, spec, dim=reader.dim)
                    result.count_written(count, item.n_rows)
                count.add_tally(reader.tallies[-1])
                if result.failure is not None:
                    break
            progress.close()
            if result.failure is not None:
                break
            log.info("%s: %s", spec.name, count.as_dict())
    result.dim = reader.dim
    return result
