"""Monitor stage: the scoring history over time, as plots, alerts and a report in words.

``score --summary S.json --history H`` appends each scored batch to the history (JSON
Lines, ``dsprior.monitoring.history``); this stage reads it with the ``monitor`` params (a
precision floor, a prior band, how many breaching batches in a row make an alert) and
evaluate's metrics (what was shipped), and writes one plot file per picture (the prior,
precision at the threshold, alerts per 1,000, over batches), ``monitor.json`` and
``monitor.md``. With ``fail_on_alert: true`` it exits with ``EXIT_ALERT`` after writing
them while an alert is active, so that a CI job can gate on it.

Usage::

    python -m stages.monitor --params params.yaml --history monitoring/history.jsonl \
        --shipped reports/metrics.json --plots reports/monitor --metrics reports/monitor.json \
        --report reports/monitor.md
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from dsprior import monitoring, runtime, settings

logger = logging.getLogger(__name__)

EXIT_ALERT = 3  # an alert is active and monitor.fail_on_alert is true (1 is a user error)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--history", type=Path, required=True, help="the history (JSON Lines)")
    parser.add_argument(
        "--shipped", type=Path, required=True, help="evaluate's metrics.json: what was shipped"
    )
    parser.add_argument("--plots", type=Path, required=True, help="folder of the plot files")
    parser.add_argument("--metrics", type=Path, required=True, help="JSON metrics")
    parser.add_argument("--report", type=Path, required=True, help="Markdown report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()
    rules = monitoring.check_params(settings.load_params(args.params, "monitor"))
    shipped = monitoring.shipped_values(json.loads(args.shipped.read_text()))
    if not args.history.is_file():  # an absent history is a wrong path, not "no batches yet"
        raise ValueError(
            f"{args.history}: no such history file; `score --summary S.json --history "
            f"{args.history}` creates it, or create it empty"
        )
    rows = monitoring.read_history(args.history)
    metrics, plots, report = monitoring.monitor_history(rows, rules=rules, shipped=shipped)

    shutil.rmtree(args.plots, ignore_errors=True)
    for name, records in plots.items():  # one file per picture: monitor/prior.json
        runtime.write_json(args.plots / f"{name}.json", records)
    runtime.write_json(args.metrics, metrics)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report)
    for alert in metrics["alerts"]:
        if alert["active"]:
            logger.warning(
                "ALERT: %s since batch %s (%d batches); see %s",
                alert["what"],
                alert["since"],
                alert["breaches"],
                args.report,
            )
    logger.info(
        "%d batches, %d breaching, %d active alert(s)",
        metrics["batches"],
        metrics["breaching_batches"],
        metrics["active_alerts"],
    )
    if metrics["alerting"] and rules.fail_on_alert:
        logger.error("monitor: an alert is active and monitor.fail_on_alert is true")
        sys.exit(EXIT_ALERT)


if __name__ == "__main__":
    runtime.run_main(main)
