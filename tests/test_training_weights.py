"""Balancing: loss weights per mode, and the beta and training prior they imply."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior.training.weights import effective_beta, training_prior, training_weights


def test_beta_reflects_balancing_mode():
    labels = np.array([1, 1, 0, 0, 0, 0])
    weight = np.array([1.0, 1.0, 20.0, 20.0, 40.0, 40.0])
    down = training_weights(labels, weight, balance="downsample", loss_weight="example")
    assert effective_beta(labels, weight, down) == pytest.approx(4 / 120)
    example = training_weights(labels, weight, balance="weighted", loss_weight="example")
    assert effective_beta(labels, weight, example) == pytest.approx(1.0)
    assert example.mean() == pytest.approx(1.0)
    balanced = training_weights(labels, weight, balance="weighted", loss_weight="class")
    # balanced class weights give negatives half the weight of positives here (4 vs 2 rows)
    assert effective_beta(labels, weight, balanced) == pytest.approx(0.5 * 4 / 120)
    assert training_prior(labels, balanced) == pytest.approx(0.5)
