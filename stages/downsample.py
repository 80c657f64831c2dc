"""Downsample stage: thin negatives in the ratio-adjusted splits and weight every example.

The work is done by ``dsprior.downsampling``; this module reads the inputs, calls it and writes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from dsprior import downsampling, runtime, sampling, settings

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--split-manifest", required=True, help="manifest from the split stage")
    parser.add_argument("--out", required=True, help="manifest with weights (Parquet)")
    parser.add_argument("--metrics", required=True, help="downsample metrics (JSON)")
    args = parser.parse_args(argv)
    runtime.setup_logging()
    config = downsampling.check_params(settings.load_params(args.params, "downsample"))
    manifest = sampling.read_manifest(args.split_manifest, schema=sampling.SPLIT_MANIFEST_SCHEMA)
    out, stats = downsampling.downsample(
        manifest, seed=config.seed, ratio=config.ratio, splits=config.splits
    )
    sampling.write_table_atomic(out, args.out)
    runtime.write_json(args.metrics, stats)
    for name, entry in stats["splits"].items():
        log.info("%s: keep %.4f of negatives -> %s", name, entry["keep_probability"], entry)


if __name__ == "__main__":
    runtime.run_main(main)
