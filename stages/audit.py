"""Audit stage: which of the usual causes of a dev/production gap does the data show?

The work is done by ``dsprior.audit``; this module reads the inputs, calls it and writes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from dsprior import audit, runtime, sampling, settings

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--report", required=True, help="Markdown report")
    parser.add_argument("--metrics", required=True, help="JSON metrics")
    args = parser.parse_args(argv)
    runtime.setup_logging()
    config = audit.check_params(settings.load_params(args.params, "audit"))  # before any reading

    manifest = sampling.read_manifest(args.manifest)
    summaries = audit.feature_summaries(args.dataset, manifest.column("example_id").to_pylist())
    report = audit.audit(manifest, summaries, config=config)
    # The metrics file keeps numbers and flags; the prose lives in the Markdown report.
    runtime.write_json(args.metrics, {k: v for k, v in report.items() if k not in audit.PROSE})
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(audit.render_markdown(report))
    log.info("%s", report["summary"])


if __name__ == "__main__":
    runtime.run_main(main)
