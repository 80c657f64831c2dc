"""Bad inputs to the prior and cost functions raise with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import priors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: priors.correct_prior([0.5], beta=0), "beta must be"),
        (lambda: priors.correct_prior([1.5], beta=0.1), r"score must be probabilities"),
        (lambda: priors.bayes_threshold(cost_fp=-1, cost_fn=1), "costs must be finite"),
        (lambda: priors.bayes_threshold(cost_fp=0, cost_fn=0), "both 0"),
        (lambda: priors.weights_at_prior([0, 1], prior=1.0), r"prior must be in \(0, 1\)"),
        (lambda: priors.estimate_prior([0, 2]), r"labels must be 0 or 1, got \[2\]"),
        (lambda: priors.confusion([0, 1], [0, 1], [1.0]), r"weights must have shape \(2,\)"),
        (
            lambda: priors.group_bootstrap(["a"], lambda m: {}, resamples=0, level=0.9, seed=0),
            "resamples must be >= 1, got 0",
        ),
        (
            lambda: priors.group_bootstrap(["a"], lambda m: {}, resamples=5, level=95, seed=0),
            r"level must be in \(0, 1\), got 95",
        ),
    ],
)
def test_bad_inputs_raise_with_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: priors.correct_prior([0.5], beta=np.inf),
            "beta must be a finite number > 0, got inf",
        ),
        (lambda: priors.correct_prior([-0.1], beta=0.1), "score must be probabilities in [0, 1]"),
        (lambda: priors.invert_prior_correction([1.5], beta=0.1), "probability must be in [0, 1]"),
        (lambda: priors.invert_prior_correction([-0.5], beta=0.1), "probability must be in [0, 1]"),
        (
            lambda: priors.invert_prior_correction([0.5], beta=-1),
            "beta must be a finite number > 0, got -1.0",
        ),
        (
            lambda: priors.bayes_threshold(cost_fp=np.inf, cost_fn=1),
            "costs must be finite and >= 0, got cost_fp=inf, cost_fn=1.0",
        ),
        (
            lambda: priors.bayes_threshold(cost_fp=1, cost_fn=np.nan),
            "costs must be finite and >= 0, got cost_fp=1.0, cost_fn=nan",
        ),
        (
            lambda: priors.bayes_threshold(cost_fp=1, cost_fn=-2),
            "costs must be finite and >= 0, got cost_fp=1.0, cost_fn=-2.0",
        ),
        (
            lambda: priors.bayes_threshold(cost_fp=0, cost_fn=0),
            "cost_fp and cost_fn are both 0; at least one must be > 0",
        ),
        (
            lambda: priors.beta_from_priors(production_prior=0, training_prior=0.5),
            "production_prior must be in (0, 1), got 0.0",
        ),
        (
            lambda: priors.beta_from_priors(production_prior=0.5, training_prior=1),
            "training_prior must be in (0, 1), got 1.0",
        ),
        (
            lambda: priors.shift_prior([0.5], from_prior=0.5, to_prior=1.0),
            "to_prior must be in (0, 1), got 1.0",
        ),
        (
            lambda: priors.shift_prior([0.5], from_prior=0.0, to_prior=0.5),
            "from_prior must be in (0, 1), got 0.0",
        ),
        (
            lambda: priors.calibrated_precision(1, 1, sample_prior=1.0, prior=0.5),
            "sample_prior must be in (0, 1), got 1.0",
        ),
        (
            lambda: priors.calibrated_precision(1, 1, sample_prior=0.5, prior=0.0),
            "prior must be in (0, 1), got 0.0",
        ),
        (
            lambda: priors.estimate_prior([0, 1], [0.0, 0.0]),
            "cannot estimate a prior from zero total weight",
        ),
        (
            lambda: priors.weights_at_prior_rows([0, 1], [[1.0, 1.0]], prior=0.0),
            "prior must be in (0, 1), got 0.0",
        ),
        (
            lambda: priors.confusion_rows([0, 1], [0, 1], [[1.0, 1.0, 1.0]]),
            "weights (1, 3), labels 2 and predicted 2 must describe the same examples",
        ),
        (
            lambda: priors.confusion_rows([0, 1], [0, 1, 1], [[1.0, 1.0]]),
            "weights (1, 2), labels 2 and predicted 3 must describe the same examples",
        ),
        (
            lambda: priors.cost_curve([], [], cost_fp=1, cost_fn=1),
            "cost_curve needs at least one example",
        ),
        (
            lambda: priors.expected_cost(priors.Confusion(1, 1, 1, 1), cost_fp=-1, cost_fn=1),
            "costs must be finite and >= 0, got cost_fp=-1.0, cost_fn=1.0",
        ),
        (
            lambda: priors.weighted_calibration([0, 1], [0.1, 0.9], n_bins=0),
            "n_bins must be >= 1, got 0",
        ),
        (
            lambda: priors.weighted_calibration([0, 1], [0.1, 0.9], [0.0, 0.0]),
            "weighted_calibration needs positive total weight",
        ),
        (
            lambda: priors.weighted_calibration([], []),
            "weighted_calibration needs positive total weight",
        ),
        (
            lambda: priors.group_bootstrap([], lambda m: {}, resamples=5, level=0.9, seed=0),
            "group_bootstrap needs at least one example",
        ),
        (
            lambda: priors.confusion([0, 1], [0, 1], [1.0, np.nan]),
            "weights must be finite and >= 0",
        ),
        (
            lambda: priors.confusion([0, 1], [0, 1], [1.0, -1.0]),
            "weights must be finite and >= 0",
        ),
        (
            lambda: priors.confusion([0, 1], [0, 1], [[1.0, 1.0]]),
            "weights must have shape (2,), got (1, 2)",
        ),
        (
            lambda: priors.confusion([0, 5, 3, 5, 1, -1, 7, 9, 8, 2], [0] * 10),
            "labels must be 0 or 1, got [-1, 2, 3, 5, 7]",
        ),
    ],
)
def test_bad_inputs_raise_the_exact_message(call, message):
    """Each refusal names the argument, what it allows and what it got, word for word."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_check_rate_open_and_closed_interval_boundaries():
    """Open rates refuse 0 and 1; closed rates take them and refuse what lies outside."""
    for edge in (0, 1):
        with pytest.raises(ValueError, match=r"x must be in \(0, 1\)"):
            priors.check_rate("x", edge)
        assert priors.check_rate("x", edge, closed=True) == edge
    assert priors.check_rate("x", 0.25) == 0.25
    assert isinstance(priors.check_rate("x", np.float32(0.5)), float)
    for outside in (-0.01, 1.01):
        with pytest.raises(ValueError, match=rf"x must be in \[0, 1\], got {outside!r}"):
            priors.check_rate("x", outside, closed=True)


def test_checks_pass_good_inputs_through():
    """Finite positive beta, zero costs on one side, 0/1 labels, None weights all pass."""
    assert priors.check_beta(np.float32(2)) == 2.0 and isinstance(priors.check_beta(2), float)
    assert priors.check_costs(0, 3) == (0.0, 3.0)
    assert priors.check_costs(2, 0) == (2.0, 0.0)
    labels = priors.check_binary(np.array([True, False, True]))
    assert labels.dtype == np.int8 and labels.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(priors.check_weights(None, 3), np.ones(3))
    weights = priors.check_weights([0, 2], 2)
    assert weights.dtype == np.float64 and weights.tolist() == [0.0, 2.0]
