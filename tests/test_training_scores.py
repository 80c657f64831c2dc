"""The scores the curves record: windowed counts, dev_a scores, and which value is better."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logit

from dsprior.training.scores import classification_scores, is_better, window_scores


def test_window_scores_are_the_ratios_of_the_counts():
    scores = window_scores({"loss": 0.5, "tp": 3.0, "fp": 1.0, "fn": 3.0})
    assert scores == {"loss": 0.5, "precision": 0.75, "recall": 0.5, "f1": pytest.approx(0.6)}
    empty = window_scores({"loss": 0.1, "tp": 0.0, "fp": 0.0, "fn": 0.0})
    assert (empty["precision"], empty["recall"], empty["f1"]) == (0.0, 0.0, 0.0)


def test_classification_scores_count_positives_above_the_threshold():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.5, 0.5, 0.1])  # 0.5 is not above 0.5, as Keras counts
    scores = classification_scores(y, logit(p), threshold=0.5)
    assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
    weighted = classification_scores(y, logit([0.9, 0.8, 0.2, 0.1]), [1, 3, 1, 1])
    assert weighted["precision"] == pytest.approx(0.25)  # the false positive counts 3 times
    assert math.isnan(classification_scores([0, 0], logit([0.2, 0.7]))["average_precision"])


def test_classification_scores_rank_saturated_log_odds_apart():
    """Log-odds above 17 tie as float32 probabilities (all 1.0); AP and the loss must not."""
    y = np.array([1, 0, 1, 0, 0])
    z = np.array([40.0, 30.0, 20.0, -2.0, -3.0])  # a negative between two positives
    assert len(np.unique(1 / (1 + np.exp(-z.astype(np.float32))))) < len(z)  # the sigmoid ties
    scores = classification_scores(y, z)
    assert scores["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["loss"] == pytest.approx(np.mean(np.logaddexp(0, z) - y * z))
    assert scores["loss"] > 5  # the confident false positive at 30 counts in full


def test_nan_never_wins_and_loss_is_lower_is_better():
    assert is_better(0.3, None, metric="f1")
    assert not is_better(math.nan, None, metric="f1")
    assert is_better(0.2, 0.3, metric="loss") and not is_better(0.2, 0.3, metric="f1")
