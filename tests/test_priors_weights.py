"""Weights rescaled to a production prior, and the prior estimated from weights."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import priors


def test_weights_at_prior_and_estimate_prior():
    labels = np.array([1, 1, 0, 0, 0, 0])
    weights = np.array([1.0, 1.0, 20.0, 20.0, 40.0, 40.0])
    assert priors.estimate_prior(labels, weights) == pytest.approx(2 / 122)
    moved = priors.weights_at_prior(labels, weights, prior=0.1)
    assert priors.estimate_prior(labels, moved) == pytest.approx(0.1)
    # relative weights among negatives survive
    assert moved[4] / moved[2] == pytest.approx(2.0)
    assert priors.weights_at_prior(labels, weights, prior=None) is not weights
    np.testing.assert_array_equal(priors.weights_at_prior(labels, weights, prior=None), weights)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]], ids=["no-positive", "no-negative"])
def test_weights_without_one_class_are_left_unchanged_with_a_warning(labels, caplog):
    weights = np.array([1.0, 20.0, 40.0])
    with caplog.at_level("WARNING", logger="dsprior.priors.weights"):
        moved = priors.weights_at_prior(np.array(labels), weights, prior=0.1)
    np.testing.assert_array_equal(moved, weights)
    assert "one class has zero weight" in caplog.text
