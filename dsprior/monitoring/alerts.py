"""Which batches breach a team's rules, and the alerts that follow.

The rule (chosen to alert on evidence, not on noise): a batch **breaches** a rule when its
whole interval lies past the line, not its point estimate alone:

- ``precision``: the upper end of the label-free precision interval at the threshold is
  below ``precision_floor``;
- ``prior_high`` / ``prior_low``: the lower end of the estimated prior's interval is above
  ``prior_band.high``, or its upper end below ``prior_band.low``.

A batch whose interval was not given (refused, or an empty batch) is *undecided*: it
neither counts towards an alert nor breaks a run of breaches. An **alert** fires at the
batch where ``consecutive`` breaches of one rule follow each other (undecided batches
between them skipped), is dated from the first of them, and lasts until a batch meets the
rule again; it is *active* when the history's last decided batch still breaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsprior.monitoring.config import Rules

RULES = ("prior_high", "prior_low", "precision")
RULE_WORDS = {
    "prior_high": "prior above the band",
    "prior_low": "prior below the band",
    "precision": "precision below the floor",
}


def _ci(node: Any) -> list[float | None]:
    ci = (node or {}).get("ci") or [None, None]
    return [ci[0], ci[1]]


def _distant(row: dict[str, Any]) -> tuple[Any, Any]:
    """The distant-label prior and precision a record estimates: the label-shift ones, or,
    where those are refused (dev_b's gold labels show noisy distant labels, or the interval
    was one value), the same quantities under the true-prior shift; with neither, the rules
    that need them are undecided."""
    prior = row.get("estimated_prior")
    precision = (row.get("estimated_at_threshold") or {}).get("precision")
    if (prior or {}).get("interval_refused"):
        prior = ((row.get("estimated_prior_true") or {}).get("cross_check") or {}).get(
            "distant_prior_implied"
        )
    if (precision or {}).get("interval_refused"):
        true_at = row.get("estimated_at_threshold_true") or {}
        precision = (true_at.get("distant_labels") or {}).get("precision")
    return prior, precision


def breaches(row: dict[str, Any], rules: Rules) -> dict[str, bool | None]:
    """Each active rule's verdict on one record: True (breach), False, None (undecided)."""
    prior_entry, precision_entry = _distant(row)
    low, high = _ci(prior_entry)
    precision = _ci(precision_entry)
    verdict: dict[str, bool | None] = {}
    if rules.prior_high is not None:
        verdict["prior_high"] = None if low is None else bool(low > rules.prior_high)
    if rules.prior_low is not None:
        verdict["prior_low"] = None if high is None else bool(high < rules.prior_low)
    if rules.precision_floor is not None:
        verdict["precision"] = (
            None if precision[1] is None else bool(precision[1] < rules.precision_floor)
        )
    return verdict


@dataclass
class Alert:
    """``consecutive`` or more breaches of one rule in a row, by batch name."""

    rule: str
    since: str  # the first breach of the run
    fired_at: str  # the breach that made it ``consecutive``
    last: str  # the run's last breach
    breaches: int
    active: bool = False
    batches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "what": RULE_WORDS[self.rule],
            "since": self.since,
            "fired_at": self.fired_at,
            "last": self.last,
            "breaches": self.breaches,
            "active": self.active,
        }


def find_alerts(
    names: list[str], verdicts: list[dict[str, bool | None]], *, consecutive: int
) -> list[Alert]:
    """The alerts of a history (``names`` and ``breaches`` per batch, in order), oldest first."""
    alerts: list[Alert] = []
    for rule in RULES:
        run: list[str] = []

        def close(active: bool, run: list[str] = run, rule: str = rule) -> None:
            if len(run) >= consecutive:
                alerts.append(
                    Alert(
                        rule=rule,
                        since=run[0],
                        fired_at=run[consecutive - 1],
                        last=run[-1],
                        breaches=len(run),
                        active=active,
                        batches=list(run),
                    )
                )
            run.clear()

        seen = False
        for name, verdict in zip(names, verdicts, strict=True):
            state = verdict.get(rule)
            if rule not in verdict:
                break
            seen = True
            if state is True:
                run.append(name)
            elif state is False:
                close(False)
        if seen:
            close(True)
    order = {name: i for i, name in enumerate(names)}
    return sorted(alerts, key=lambda a: (order[a.since], RULES.index(a.rule)))
