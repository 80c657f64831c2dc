"""The ``--summary`` as Markdown, for people: the same numbers as its JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsprior.formatting import MISSING, with_interval
from dsprior.formatting import number as _num

# (key in estimated_at_threshold, row label, digits) of the threshold table.
THRESHOLD_ROWS = (
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("alerts_per_1000", "alerts per 1,000", 1),
    ("expected_cost", "expected cost per 1,000", 1),
)


def _pair(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """An estimate's value and interval; no interval without a value."""
    if not entry or entry.get("value") is None:
        return MISSING
    return with_interval(entry["value"], entry.get("ci"), digits)


def _warning_lines(summary: dict[str, Any]) -> list[str]:
    return [f"- Warning: {w}" for w in summary.get("warnings", [])]


def _estimate_lines(summary: dict[str, Any]) -> list[str]:
    """The estimated prior, its cross-check, the drift verdict and the measured prior."""
    est, drift = summary["estimated_prior"], summary["drift"]
    cross, measured = est["cross_check"], summary.get("measured")
    lines = [
        f"- Estimated prior: **{_pair(est, 4)}** ({est['method']}; {est['interval']}).",
        "- Cross-check: "
        + (
            f"ACC {_pair(cross['acc'], 4)}, PACC {_pair(cross['pacc'], 4)} ({cross['rates_from']})."
            if "acc" in cross
            else f"{cross['reason']}."
        ),
        f"- Prior shift: **{'yes' if drift['prior_shift'] else 'no'}** (the interval "
        f"{'excludes' if drift['prior_shift'] else 'includes'} the bundle's prior). "
        + (
            f"Score distribution against dev_b: KS {_num(drift['score_shift_ks'])}, "
            f"p = {drift['p_value']:.3g}."
            if drift["score_shift_ks"] is not None
            else "Score-distribution test: not available (no dev_b reference in the bundle)."
        ),
    ]
    if measured:
        lines.append(
            f"- Measured prior ({measured['labelled_examples']} labelled examples): "
            f"{_num(measured['prior'], 4)}."
        )
    return lines


def _threshold_lines(summary: dict[str, Any]) -> list[str]:
    """The table of estimated (and measured) performance at the bundle's threshold."""
    at, measured = summary["estimated_at_threshold"], summary.get("measured")
    lines = [
        "",
        f"At the bundle's threshold (probability >= {at['threshold']:.4g}), decisions "
        f"{at['decisions']}:",
        "",
        "| | estimated | measured |",
        "|---|---|---|",
    ]
    for name, label, digits in THRESHOLD_ROWS:
        lines.append(
            f"| {label} | {_pair(at[name], digits)} | "
            f"{_num(measured.get(name), digits) if measured else '-'} |"
        )
    refused = (summary["estimated_prior"] or {}).get("interval_refused")
    if refused:
        lines += [
            "",
            f"No interval on the prior (EM, ACC, PACC), precision, recall or cost here: {refused}.",
        ]
    return lines


def _true_lines(summary: dict[str, Any]) -> list[str]:
    """The true-label estimate (where the bundle holds gold labels), or what the distant-label
    estimates assume and how far stated noise rates move them."""
    if "estimated_prior_true" not in summary:
        if "noise_assumption" not in summary:
            return []
        sensitivity = summary.get("noise_sensitivity")
        lines = ["", f"Against the truth: {summary['true_label_estimate']}."]
        lines.append(f"Assumption: {summary['noise_assumption']}.")
        if isinstance(sensitivity, dict):
            moves = sensitivity["distant_estimates_move_by"]
            lines.append(
                "Under the stated noise rates the distant-label estimates move by: "
                + ", ".join(f"{k} {v:+.3f}" for k, v in moves.items() if v is not None)
                + "."
            )
        elif sensitivity:
            lines.append(f"Noise sensitivity {sensitivity}.")
        return lines
    at, noise = summary["estimated_at_threshold_true"], summary["label_noise"]
    distant = at["distant_labels"]
    lines = [
        "",
        "When the true prior moves (class-conditional KB noise, rates from dev_b's gold "
        f"labels: P(distant 1 | true 1) = {_pair(noise['distant_1_given_true_1'])}, "
        f"P(distant 1 | true 0) = {_pair(noise['distant_1_given_true_0'], 5)}):",
        "",
        "| | against the truth | against distant labels |",
        "|---|---|---|",
        f"| prior | {_pair(summary['estimated_prior_true'], 4)} | {_pair(distant['prior'], 4)} |",
        f"| precision | {_pair(at['precision'])} | {_pair(distant['precision'])} |",
        f"| recall | {_pair(at['recall'])} | {_pair(distant['recall'])} |",
    ]
    return lines


def _adapt_lines(summary: dict[str, Any]) -> list[str]:
    """What ``--adapt-prior`` did, or would do, to the decisions."""
    adapt = summary["adapt_prior"]
    after = adapt["estimated_at_threshold_after"]
    return [
        "",
        (
            "With `--adapt-prior` (applied to this output): "
            if adapt["applied"]
            else "Re-deciding at the estimated prior (`--adapt-prior`) would give: "
        )
        + f"alerts per 1,000 {adapt['alerts_per_1000_before']:.1f} -> "
        f"{adapt['alerts_per_1000_after']:.1f} ({adapt['decisions_changed']} decisions "
        f"change), estimated precision {_pair(after['precision'])}, recall "
        f"{_pair(after['recall'])}, expected cost {_pair(after['expected_cost'], 1)} per 1,000.",
        "",
    ]


def render_summary(summary: dict[str, Any]) -> str:
    """The summary as Markdown, for people: the same numbers as the JSON."""
    lines = [
        "# Batch summary, without labels",
        "",
        f"- Examples: {summary['examples']}; the bundle's prior: {_num(summary['bundle_prior'], 4)}.",
    ]
    if summary.get("estimated_prior") is None:
        return "\n".join([*lines, "", *_warning_lines(summary), ""])
    lines += _estimate_lines(summary)
    lines += _threshold_lines(summary)
    lines += _true_lines(summary)
    lines += _adapt_lines(summary)
    lines += _warning_lines(summary)
    return "\n".join(lines) + "\n"


def summary_markdown_path(path: str | Path) -> Path:
    """S.md beside S.json."""
    path = Path(path)
    return (
        path.with_suffix(".md")
        if path.suffix.lower() == ".json"
        else path.with_name(path.name + ".md")
    )
