"""Split stage: assign every example to train, dev_a, dev_b or test, by entity group.

The work is done by ``dsprior.splitting``; this module reads the inputs, calls it and writes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from dsprior import contract, runtime, sampling, settings, splitting

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True, help="canonical dataset folder")
    parser.add_argument("--out", required=True, help="split manifest (Parquet)")
    parser.add_argument("--metrics", required=True, help="split metrics (JSON)")
    args = parser.parse_args(argv)
    runtime.setup_logging()
    config = splitting.check_params(settings.load_params(args.params, "split"))
    metadata = contract.read_metadata(args.dataset)
    splitting.check_feeds(metadata.column(contract.SOURCE).unique().to_pylist(), config.feeds)
    manifest, stats = splitting.assign_splits(
        metadata,
        seed=config.seed,
        feeds=config.feeds,
        by=config.by,
        assign=config.assign,
        priority=config.priority,
    )
    splitting.check_splits_filled(stats, config.feeds)
    sampling.write_table_atomic(manifest, args.out)
    runtime.write_json(args.metrics, stats)
    log.info(
        "read %d, assigned %d, moved %d, dropped %s; per split %s",
        stats["read"],
        stats["assigned"],
        stats["moved"],
        stats["dropped"],
        {k: v["examples"] for k, v in stats["splits"].items()},
    )


if __name__ == "__main__":
    runtime.run_main(main)
