"""What the monitor stage says: its metrics (``monitor.json``) and its report in plain words.

``monitor_history`` reads the whole history once (linear in its length) and returns the
metrics, the plot rows and the Markdown: every batch's verdict on every rule, the alerts
(``dsprior.monitoring.alerts``) with since when and what to do.
"""

from __future__ import annotations

from typing import Any

from dsprior.formatting import number, with_interval
from dsprior.monitoring.alerts import RULE_WORDS, breaches, find_alerts
from dsprior.monitoring.config import Rules
from dsprior.monitoring.history import batch_labels
from dsprior.monitoring.plots import monitor_records

WHAT_TO_DO = {
    "prior_high": (
        "more positives than the bundle was set for: its probabilities are too low and its "
        "precision at the threshold higher than shipped, recall unchanged, alerts up. "
        "Re-estimate the prior: score with `--adapt-prior` (decisions at the batch's estimated "
        "prior), or set `evaluate.prior` to the new prior and rerun the pipeline so the "
        "threshold is chosen there. If it lasts, draw a labelled sample at the new prior "
        "and retrain."
    ),
    "prior_low": (
        "fewer positives than the bundle was set for: precision at the threshold falls with "
        "the prior. Re-estimate the prior with `--adapt-prior` (or `evaluate.prior` and a "
        "rerun); if it lasts, relabel a sample to confirm, then retrain at the new prior."
    ),
    "precision": (
        "the label-free precision is below the floor. Relabel a random sample of the flagged "
        "examples of these batches (a few hundred) to measure it; if the prior moved too, "
        "re-estimate it first (`--adapt-prior`), which may be enough; if the measured "
        "precision confirms it at the bundle's prior, the scores themselves moved: retrain."
    ),
}


def _fmt(value: Any, digits: int = 3) -> str:
    return number(value, digits, style="g")


def _with_ci(node: Any, digits: int = 3) -> str:
    node = node or {}
    return with_interval(node.get("value"), node.get("ci"), digits, style="g")


def _batch_row(label: str, row: dict[str, Any], verdict: dict[str, bool | None]) -> dict[str, Any]:
    at = row.get("estimated_at_threshold") or {}
    return {
        "batch": label,
        "scored_at": row.get("scored_at"),
        "examples": row.get("examples"),
        "bundle": (row.get("bundle") or {}).get("content_hash"),
        "prior": row.get("estimated_prior"),
        "precision": at.get("precision"),
        "alerts_per_1000": at.get("alerts_per_1000"),
        "measured": row.get("measured"),
        "breaches": [rule for rule, state in verdict.items() if state],
        "undecided": [rule for rule, state in verdict.items() if state is None],
    }


def monitor_history(
    rows: list[dict[str, Any]], *, rules: Rules, shipped: dict[str, float | None]
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], str]:
    """(metrics, plot rows by picture, Markdown report) of a history's records."""
    labels = batch_labels(rows)
    verdicts = [breaches(row, rules) for row in rows]
    alerts = find_alerts(labels, verdicts, consecutive=rules.consecutive)
    batches = [
        _batch_row(label, row, v) for label, row, v in zip(labels, rows, verdicts, strict=True)
    ]
    active = [a for a in alerts if a.active]
    metrics = {
        "batches": len(rows),
        "rules": rules.as_dict(),
        "shipped": shipped,
        "breaching_batches": sum(1 for b in batches if b["breaches"]),
        "alerts": [a.as_dict() for a in alerts],
        "active_alerts": len(active),
        "alerting": bool(active),
        "latest": batches[-1] if batches else None,
        "batch_verdicts": [
            {"batch": b["batch"], "breaches": b["breaches"], "undecided": b["undecided"]}
            for b in batches
        ],
    }
    plots = monitor_records(rows, labels, rules=rules, shipped=shipped)
    return metrics, plots, render_report(metrics, batches, alerts_detail=alerts)


def _rules_text(rules: dict[str, Any]) -> list[str]:
    band = rules["prior_band"]
    lines = []
    if rules["precision_floor"] is not None:
        lines.append(
            f"- precision at the threshold below **{rules['precision_floor']:g}**: the whole "
            "95% interval of the label-free estimate below the floor"
        )
    if band["low"] is not None or band["high"] is not None:
        lines.append(
            f"- prior outside **[{_fmt(band['low'])}, {_fmt(band['high'])}]**: the whole 95% "
            "interval of the estimated prior outside the band"
        )
    lines.append(
        f"- an alert after **{rules['consecutive']}** breaching batches in a row (a batch "
        "without an interval neither counts nor breaks the run)"
    )
    return lines


def render_report(
    metrics: dict[str, Any], batches: list[dict[str, Any]], *, alerts_detail: list[Any]
) -> str:
    """The monitor's Markdown: the verdict first, then the alerts, then every batch."""
    n = metrics["batches"]
    lines = ["# Production monitoring", ""]
    if not n:
        lines += [
            "No batches yet: the history is empty. Score a batch with `python -m stages.score "
            '... --summary S.json --history <history>` (docs/production.md, "Monitoring over time"), then '
            "`dvc repro monitor`.",
            "",
        ]
    else:
        first, last = batches[0], batches[-1]
        state = (
            f"**{metrics['active_alerts']} alert(s) active.**"
            if metrics["alerting"]
            else "**No alert is active.**"
        )
        lines += [
            f"{state} {n} batches, from `{first['batch']}` to `{last['batch']}`; "
            f"{metrics['breaching_batches']} breached a rule.",
            "",
        ]
    lines += ["Rules (params.yaml `monitor`):", "", *_rules_text(metrics["rules"]), ""]
    if n:
        lines += ["## Alerts", ""]
        if not alerts_detail:
            lines += ["None: no rule was breached in enough batches in a row.", ""]
        by_label = {b["batch"]: b for b in batches}
        for alert in alerts_detail:
            head = "ACTIVE" if alert.active else "ended"
            until = "" if alert.active else f", last breach `{alert.last}`"
            latest = by_label[alert.last]
            value = latest["precision"] if alert.rule == "precision" else latest["prior"]
            lines += [
                f"- **{head}: {RULE_WORDS[alert.rule]}** since `{alert.since}` (fired at "
                f"`{alert.fired_at}`, {alert.breaches} breaching batches{until}); at "
                f"`{alert.last}` the estimate was {_with_ci(value)}.",
                f"  What to do: {WHAT_TO_DO[alert.rule]}",
            ]
        lines += [""]
        shipped = metrics["shipped"]
        lines += [
            "## Batches",
            "",
            f"Shipped (evaluate's test at the chosen threshold): prior {_fmt(shipped.get('prior'))}, "
            f"precision {_fmt(shipped.get('precision'))}, alerts per 1,000 "
            f"{_fmt(shipped.get('alerts_per_1000'))}. Estimates are without labels, with their "
            "95% intervals; measured values only where the batch had labels.",
            "",
            "| batch | examples | prior | precision | alerts per 1,000 | measured prior / precision "
            "| breaches |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in batches:
            m = b["measured"] or {}
            measured = f"{_fmt(m.get('prior'))} / {_fmt(m.get('precision'))}" if m else ""
            breached = ", ".join(RULE_WORDS[r] for r in b["breaches"]) or "none"
            if b["undecided"]:
                breached += " (no interval: " + ", ".join(b["undecided"]) + ")"
            lines.append(
                f"| {b['batch']} | {b['examples']} | {_with_ci(b['prior'])} | "
                f"{_with_ci(b['precision'])} | {_with_ci(b['alerts_per_1000'])} | {measured} | "
                f"{breached} |"
            )
        lines.append("")
    return "\n".join(lines)
