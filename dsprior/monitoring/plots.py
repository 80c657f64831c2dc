"""The monitor's ``dvc plots`` pictures: one file per picture, its series in a ``series`` column.

Each row is one batch of one series: ``batch`` (its label, in history order, ``order``
0, 1, ...), ``value``, and ``low``/``high`` (the 95% interval; null for a line without
one). The reference lines (the bundle's prior, the prior band, the shipped value, the
floor) are series with the same value at every batch, so one template
(``.dvc/plots/monitor.json``) draws every picture. With no batch yet, each picture holds
its reference lines at a single ``NO_BATCHES`` position, so that a fresh repository
shows what its batches will be compared with.
"""

from __future__ import annotations

from typing import Any

from dsprior.monitoring.config import Rules

NO_BATCHES = "no batches scored yet"
ESTIMATED = "estimated without labels ({}, 95% interval)"
ESTIMATED_TRUE = "estimated on the true labels ({}, 95% interval)"
MEASURED = "measured with the batch's labels"
SHIPPED = "shipped: evaluate's test at the chosen threshold"
PICTURES = ("prior", "precision", "alerts")


def _row(order: int, batch: str, series: str, value: Any, ci: Any = None) -> dict[str, Any]:
    low, high = ci if ci else (None, None)
    return {
        "order": order,
        "batch": batch,
        "series": series,
        "value": value,
        "low": low,
        "high": high,
    }


def _pair(node: Any) -> tuple[Any, Any]:
    node = node or {}
    return node.get("value"), node.get("ci")


def _estimates(
    order: int, batch: str, row: dict[str, Any], key: str, name: str | None, method: str
) -> list[dict[str, Any]]:
    """The estimate (and its true-label twin) of one quantity of one record."""
    out = []
    for suffix, words in (("", ESTIMATED), ("_true", ESTIMATED_TRUE)):
        node = row.get(key + suffix)
        value, ci = _pair(node if name is None else (node or {}).get(name))
        if value is not None:
            out.append(_row(order, batch, words.format(method), value, ci))
    return out


def monitor_records(
    rows: list[dict[str, Any]],
    labels: list[str],
    *,
    rules: Rules,
    shipped: dict[str, float | None],
) -> dict[str, list[dict[str, Any]]]:
    """The three pictures' rows: the prior, precision at the threshold, alerts per 1,000.

    ``shipped``: what evaluate measured when the bundle was made (``prior``,
    ``precision``, ``alerts_per_1000``, from metrics.json), drawn as lines.
    """
    prior: list[dict[str, Any]] = []
    precision: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    positions = list(enumerate(labels)) or [(0, NO_BATCHES)]
    for order, batch in positions:
        row = rows[order] if rows else {}
        measured = row.get("measured") or {}
        prior += _estimates(order, batch, row, "estimated_prior", None, "EM")
        precision += _estimates(order, batch, row, "estimated_at_threshold", "precision", "CBPE")
        alerts += _estimates(order, batch, row, "estimated_at_threshold", "alerts_per_1000", "CBPE")
        for records, name in (
            (prior, "prior"),
            (precision, "precision"),
            (alerts, "alerts_per_1000"),
        ):
            if measured.get(name) is not None:
                records.append(_row(order, batch, MEASURED, measured[name]))
        bundle_prior = row.get("bundle_prior", shipped.get("prior"))
        if bundle_prior is not None:
            prior.append(_row(order, batch, "the bundle's prior", bundle_prior))
        if rules.prior_high is not None:
            prior.append(
                _row(order, batch, "prior band: high (monitor.prior_band)", rules.prior_high)
            )
        if rules.prior_low is not None:
            prior.append(
                _row(order, batch, "prior band: low (monitor.prior_band)", rules.prior_low)
            )
        if shipped.get("precision") is not None:
            precision.append(_row(order, batch, SHIPPED, shipped["precision"]))
        if rules.precision_floor is not None:
            precision.append(
                _row(order, batch, "floor (monitor.precision_floor)", rules.precision_floor)
            )
        if shipped.get("alerts_per_1000") is not None:
            alerts.append(_row(order, batch, SHIPPED, shipped["alerts_per_1000"]))
    return {"prior": prior, "precision": precision, "alerts": alerts}


def shipped_values(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What evaluate measured on test at the chosen threshold, at the production prior."""
    test = (metrics.get("test") or {}).get("prior") or {}
    return {
        "prior": metrics.get("prior"),
        "threshold": metrics.get("threshold"),
        "precision": test.get("precision"),
        "recall": test.get("recall"),
        "alerts_per_1000": test.get("alerts_per_1000"),
    }
