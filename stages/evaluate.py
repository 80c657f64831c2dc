"""Evaluate stage: metrics at the production prior, a threshold from dev_b, test with error bars.

Scores ``dev_a``, ``dev_b`` and ``test`` once with the trained model, then hands the
predictions table to the library (``dsprior.evaluation``, whose docstring says what is
measured) and writes what it returns: ``predictions.parquet``, ``metrics.json``,
``report.md`` and one ``evaluate_plots/*.json`` file per picture. The work is
``dsprior.evaluation.run.evaluate_model``'s.

Usage::

    python -m stages.evaluate --params params.yaml --dataset data/dataset \
        --manifest data/manifest.parquet --model-dir models --reports reports
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsprior import runtime, settings
from dsprior.evaluation.run import evaluate_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--reports", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()
    evaluate_model(
        settings.load_params(args.params, "evaluate"),
        dataset=args.dataset,
        manifest=args.manifest,
        model_dir=args.model_dir,
        reports=args.reports,
    )


if __name__ == "__main__":
    runtime.run_main(main)
