"""``ingest_sources``: the serial path, or the parallel one when ``ingest.workers > 1``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dsprior.ingest import parallel, serial
from dsprior.ingest.config import IngestConfig
from dsprior.ingest.counts import IngestResult
from dsprior.rawio import Reject


def ingest_sources(
    config: IngestConfig,
    out_dir: Path,
    *,
    on_reject: Callable[[Reject], None] = lambda reject: None,
) -> IngestResult:
    """Read every source and write the valid examples into ``out_dir`` with ``DatasetWriter``.

    Each reject goes to ``on_reject``; in fail mode the first one stops the run
    and is returned as ``failure`` (the caller must then discard ``out_dir``).
    ``config.workers > 1`` runs ``parallel.ingest_parallel`` instead, with the same result.
    """
    if config.workers > 1:
        return parallel.ingest_parallel(config, out_dir, on_reject=on_reject)
    return serial.ingest_serial(config, out_dir, on_reject=on_reject)
