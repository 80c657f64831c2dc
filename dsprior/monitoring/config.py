"""The ``monitor`` section of params.yaml: its schema and the one validating loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dsprior import settings

_PRIOR = {"minimum": 0, "maximum": 1, "min_open": True, "max_open": True, "none": True}
PARAMS_SCHEMA: dict[str, settings.Spec] = {
    # null: no precision rule
    "precision_floor": settings.Number(minimum=0, maximum=1, min_open=True, none=True),
    # either bound null: no rule on that side
    "prior_band": settings.Section(
        {"low": settings.Number(**_PRIOR), "high": settings.Number(**_PRIOR)}
    ),
    "consecutive": settings.Integer(minimum=1),
    "fail_on_alert": settings.Flag(),
}


@dataclass(frozen=True)
class Rules:
    """What a team alerts on: a batch breaches a rule when its whole interval is past it."""

    precision_floor: float | None
    prior_low: float | None
    prior_high: float | None
    consecutive: int
    fail_on_alert: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision_floor": self.precision_floor,
            "prior_band": {"low": self.prior_low, "high": self.prior_high},
            "consecutive": self.consecutive,
            "fail_on_alert": self.fail_on_alert,
        }


def check_params(params: dict[str, Any]) -> Rules:
    """Validate the whole ``monitor`` section (every key required); the rules it sets."""
    settings.check_section(params, PARAMS_SCHEMA, "monitor")
    band = params["prior_band"]
    low, high = band["low"], band["high"]
    if low is not None and high is not None and not low < high:
        raise ValueError(
            f"monitor.prior_band.low must be below monitor.prior_band.high, got low {low!r} "
            f"and high {high!r}"
        )
    return Rules(
        precision_floor=params["precision_floor"],
        prior_low=low,
        prior_high=high,
        consecutive=int(params["consecutive"]),
        fail_on_alert=bool(params["fail_on_alert"]),
    )
