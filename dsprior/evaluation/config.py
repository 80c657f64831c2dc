"""The ``evaluate`` section of params.yaml: its schema and the one validating loader."""

from __future__ import annotations

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


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the whole ``evaluate`` section (every key required); the options it sets."""
    settings.check_section(params, PARAMS_SCHEMA, "evaluate")
    cost, boot = params["cost"], params["bootstrap"]
    out = {
        "prior": params["prior"],
        "cost_fp": float(cost["false_positive"]),
        "cost_fn": float(cost["false_negative"]),
        "resamples": int(boot["resamples"]),
        "level": float(boot["level"]),
        "seed": int(boot["seed"]),
        "batch_size": int(params["batch_size"]),
        "calibration_bins": int(params["calibration_bins"]),
        "precision": params["precision"],
        "onednn": params["onednn"],
        "threshold_labels": params["threshold_labels"],
        "stated_label_noise": noise_shift.check_stated_noise(params["stated_label_noise"]),
    }
    priors.bayes_threshold(cost_fp=out["cost_fp"], cost_fn=out["cost_fn"])  # not both zero
    return out
