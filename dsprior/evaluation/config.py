"""The ``evaluate`` section of params.yaml: its schema, the one validating loader, and the
typed config it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsprior import hardware, noise_shift, priors, settings

THRESHOLD_LABELS = ("distant", "gold")

_UNIT = {"minimum": 0, "maximum": 1, "min_open": True, "max_open": True}
PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "prior": settings.Number(**_UNIT, none=True),
    "cost": settings.Section(
        {"false_positive": settings.Number(minimum=0), "false_negative": settings.Number(minimum=0)}
    ),
    "bootstrap": settings.Section(
        {
            "resamples": settings.Integer(minimum=1),
            "level": settings.Number(**_UNIT),
            "seed": settings.Integer(minimum=0),
            "min_positives": settings.Integer(minimum=0),
            "min_prior_positives": settings.Integer(minimum=0),
        }
    ),
    "calibration_bins": settings.Integer(minimum=1),
    "batch_size": settings.Integer(minimum=1),
    "precision": settings.Choice(*hardware.PRECISIONS),  # scoring precision (dsprior.hardware)
    "onednn": settings.Choice(*hardware.ONEDNN_SETTINGS),
    "threshold_labels": settings.Choice(*THRESHOLD_LABELS),  # choose dev_b's threshold on these
    # noise rates a team states for the true-prior sensitivity (dsprior.noise_shift); null: unset
    "stated_label_noise": settings.Section(
        {
            k: settings.Number(minimum=0, maximum=1, max_open=True, none=True)
            for k in noise_shift.STATED_KEYS
        }
    ),
}


@dataclass(frozen=True)
class EvaluateConfig:
    """The checked ``evaluate`` section, nested as params.yaml nests it (``cost``,
    ``bootstrap``), with ``precision`` and ``onednn`` together as ``compute``."""

    prior: float | None  # None: estimated from the production-ratio rows
    cost: priors.Costs
    bootstrap: priors.Bootstrap
    calibration_bins: int
    batch_size: int
    compute: hardware.ComputeParams
    threshold_labels: str  # distant | gold: the labels dev_b's threshold is chosen on
    stated_label_noise: dict[str, float] | None  # noise_shift.check_stated_noise; None: unset


def check_params(params: Mapping[str, Any] | None) -> EvaluateConfig:
    """Validate the whole ``evaluate`` section (every key required); the config it sets."""
    settings.check_section(params, PARAMS_SCHEMA, "evaluate")
    assert params is not None  # check_section refuses a missing section's keys
    cost, boot = params["cost"], params["bootstrap"]
    config = EvaluateConfig(
        prior=params["prior"],
        cost=priors.Costs(float(cost["false_positive"]), float(cost["false_negative"])),
        bootstrap=priors.Bootstrap(
            int(boot["resamples"]),
            float(boot["level"]),
            int(boot["seed"]),
            int(boot["min_positives"]),
            int(boot["min_prior_positives"]),
        ),
        batch_size=int(params["batch_size"]),
        calibration_bins=int(params["calibration_bins"]),
        compute=hardware.ComputeParams(params["precision"], params["onednn"]),
        threshold_labels=params["threshold_labels"],
        stated_label_noise=noise_shift.check_stated_noise(params["stated_label_noise"]),
    )
    priors.bayes_threshold(
        cost_fp=config.cost.false_positive, cost_fn=config.cost.false_negative
    )  # not both zero
    return config
