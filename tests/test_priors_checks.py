"""Bad inputs to the prior and cost functions raise with a message naming the argument."""

from __future__ import annotations

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
