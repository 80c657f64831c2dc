"""Prior and cost math: measuring a classifier at the production prior.

Pure functions on arrays, no files, no network; one module per concept, each name
importable from here. ``docs/methods.md`` has the formulas and their sources.
Everything scikit-learn already ships (metrics with ``sample_weight``, confusion
matrices at every threshold) is used, not rewritten; what is here is what it lacks:

- the prior correction of Dal Pozzolo et al. (2015) / Elkan (2001, Theorem 2),
  its inverse, and its log-odds form (a shift of the model's logit);
- rescaling per-example weights to a chosen production prior, and estimating
  that prior from weights;
- Siblini et al.'s (2020) calibrated precision, used to cross-check the
  weighted route;
- expected cost per 1,000 production examples, the cost-minimising threshold
  and the Bayes threshold ``c_FP / (c_FP + c_FN)`` (Elkan 2001, eq. 2);
- a weighted calibration table (``sklearn.calibration.calibration_curve`` takes
  no ``sample_weight``);
- group-level bootstrap confidence intervals.
"""

from __future__ import annotations

from dsprior.priors.bootstrap import (
    BOOTSTRAP_CHUNK,
    Bootstrap,
    BootstrapResult,
    draws_interval,
    effective_count,
    group_bootstrap,
    jeffreys_draws,
    kish_count,
    rate_draws,
    rates_draws,
)
from dsprior.priors.checks import (
    check_beta,
    check_binary,
    check_costs,
    check_finite_vector,
    check_rate,
    check_weights,
)
from dsprior.priors.confusion import (
    PER_EXAMPLES,
    Confusion,
    Costs,
    calibrated_f1,
    calibrated_precision,
    confusion,
    confusion_rows,
    expected_cost,
    production_terms,
    rates,
)
from dsprior.priors.correction import (
    beta_from_priors,
    correct_prior,
    invert_prior_correction,
    log_odds_at_prior,
    odds,
    prior_offset,
    prior_shift,
    probability_at_prior,
    shift_prior,
    sigmoid,
)
from dsprior.priors.reliability import weighted_calibration
from dsprior.priors.thresholds import (
    CostCurve,
    bayes_threshold,
    cost_curve,
    cost_minimising_threshold,
    decide_log_odds,
    threshold_log_odds,
    threshold_probability,
)
from dsprior.priors.weights import estimate_prior, weights_at_prior, weights_at_prior_rows

__all__ = [
    "BOOTSTRAP_CHUNK",
    "Bootstrap",
    "BootstrapResult",
    "Confusion",
    "Costs",
    "CostCurve",
    "PER_EXAMPLES",
    "bayes_threshold",
    "beta_from_priors",
    "calibrated_f1",
    "calibrated_precision",
    "check_beta",
    "check_binary",
    "check_costs",
    "check_finite_vector",
    "check_rate",
    "check_weights",
    "confusion",
    "confusion_rows",
    "correct_prior",
    "cost_curve",
    "cost_minimising_threshold",
    "decide_log_odds",
    "estimate_prior",
    "expected_cost",
    "group_bootstrap",
    "draws_interval",
    "effective_count",
    "jeffreys_draws",
    "kish_count",
    "rate_draws",
    "rates_draws",
    "invert_prior_correction",
    "log_odds_at_prior",
    "odds",
    "prior_offset",
    "prior_shift",
    "probability_at_prior",
    "production_terms",
    "rates",
    "shift_prior",
    "sigmoid",
    "threshold_log_odds",
    "threshold_probability",
    "weighted_calibration",
    "weights_at_prior",
    "weights_at_prior_rows",
]
