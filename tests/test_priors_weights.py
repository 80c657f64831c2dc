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


def test_small_weights_still_move_to_the_prior():
    """Class totals below 1 are real weight: they move, and the prior is estimated from them."""
    labels = np.array([1, 0, 0])
    weights = np.array([0.5, 0.25, 0.25])
    assert priors.estimate_prior(labels, weights) == pytest.approx(0.5)
    assert priors.estimate_prior(labels[:1], weights[:1]) == 1.0
    assert priors.estimate_prior([0, 1, 1, 1]) == 0.75
    moved = priors.weights_at_prior(labels, weights, prior=0.2)
    np.testing.assert_allclose(moved, [0.5, 1.0, 1.0])
    moved = priors.weights_at_prior(np.array([1, 0]), np.array([2.0, 0.5]), prior=0.5)
    np.testing.assert_allclose(moved, [2.0, 2.0])


def test_warning_names_the_prior(caplog):
    """The warning says which prior could not be reached."""
    with caplog.at_level("WARNING", logger="dsprior.priors.weights"):
        priors.weights_at_prior(np.array([0, 0]), np.array([1.0, 1.0]), prior=0.125)
    assert caplog.messages == ["cannot move to prior 0.125: one class has zero weight"]


def test_weights_at_prior_rows_equals_weights_at_prior_per_row():
    """Row by row the same as weights_at_prior, integer and fractional weights included."""
    labels = np.array([1, 0, 0, 1])
    rows = np.array([[1, 2, 3, 4], [0, 1, 1, 0], [2, 0, 0, 1]])
    moved = priors.weights_at_prior_rows(labels, rows, prior=0.2)
    assert moved.dtype == np.float64
    for row, want in zip(moved, rows, strict=True):
        np.testing.assert_allclose(row, priors.weights_at_prior(labels, want, prior=0.2))
    small = priors.weights_at_prior_rows(labels, [0.5, 0.25, 0.25, 0.5], prior=0.5)
    np.testing.assert_allclose(small, [[0.5, 0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(priors.weights_at_prior_rows(labels, rows, prior=None), rows)
