"""ingest: raw files (CSV, CSV.gz, Parquet, JSON Lines) -> the canonical Parquet dataset.

Sources are read in params order, each source's files sorted by path, rows in
file order; so the same inputs give the same dataset. ``on_error: fail`` stops
at the first bad example with a message naming file, line or row, example_id
and problem; ``on_error: quarantine`` writes each rejected example with its
reason to the rejects file and goes on. Either way the metrics reconcile:
examples read = written + rejected, per source and per reason. The dataset is
written into a temporary folder and renamed into place only on success.

``workers > 1`` reads files in parallel processes and gives the same bytes as a
serial run (see ``dsprior.ingest.parallel``). The work is ``dsprior.ingest``'s.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dsprior import contract, simulator
from dsprior.ingest import (
    IngestConfig,
    check_inputs,
    failure_message,
    ingest_sources,
    reconcile,
)
from dsprior.rawio import RejectsFile
from dsprior.runtime import atomic_directory, run_main, setup_logging, write_json
from dsprior.settings import load_params

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Leave the dataset folder as it was: the run failed."""


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob(contract.SHARD_GLOB)) if path.is_dir() else 0


def simulation_params(params_path: str | Path) -> dict[str, Any] | None:
    """The ``generate`` section (checked) when some source is ``format: simulated``, else None."""
    sources = load_params(params_path, "ingest").get("sources") or {}
    if not any(isinstance(s, Mapping) and s.get("format") == "simulated" for s in sources.values()):
        return None
    params = load_params(params_path, "generate")
    simulator.check_params(params)
    return params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder")
    parser.add_argument("--rejects", required=True, type=Path, help="rejects JSON Lines file")
    parser.add_argument("--metrics", required=True, type=Path, help="reconciliation metrics JSON")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = IngestConfig.from_params(
            load_params(args.params, "ingest"), simulation=simulation_params(args.params)
        )
        check_inputs(config)  # a missing or unrecognised input is a setup error: stop first
    except (ValueError, FileNotFoundError) as exc:
        RejectsFile(args.rejects).close()  # always written, here empty
        write_json(args.metrics, {"status": "failed", "error": str(exc)})
        log.error("%s", exc)
        sys.exit(1)
    start = time.perf_counter()
    with RejectsFile(args.rejects) as rejects:
        try:
            with atomic_directory(args.out) as tmp:
                result = ingest_sources(config, tmp, on_reject=rejects.write)
                metrics = reconcile(result, config)
                if metrics["status"] != "ok":  # the previous dataset, if any, stays
                    raise _Stop
        except _Stop:
            pass
    seconds = time.perf_counter() - start
    # No timings here: metrics are compared across branches and must be deterministic.
    # Throughput is measured by benchmarks/bench_ingest.py.
    metrics["bytes_written"] = _dir_bytes(args.out) if metrics["status"] == "ok" else 0
    if result.failure is not None:
        write_json(args.metrics, metrics)
        log.error(
            "ingest failed (on_error: fail): %s (set ingest.on_error: quarantine to write bad "
            "examples to %s and go on)",
            result.failure.message,
            args.rejects,
        )
        sys.exit(1)
    if metrics["status"] != "ok":
        message = failure_message(result, metrics, args.rejects)
        metrics["error"] = message
        write_json(args.metrics, metrics)
        log.error("ingest failed: %s", message)
        sys.exit(1)
    write_json(args.metrics, metrics)
    log.info(
        "wrote %d examples (%d rejected) to %s in %.1fs",
        metrics["examples_written"],
        metrics["examples_rejected"],
        args.out,
        seconds,
    )


if __name__ == "__main__":
    run_main(main)
