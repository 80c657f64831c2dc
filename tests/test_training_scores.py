"""The scores the curves record: windowed counts, dev_a scores, and which value is better."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsprior.training.scores import classification_scores, is_better, window_scores


def test_window_scores_are_the_ratios_of_the_counts():
    scores = window_scores({"loss": 0.5, "tp": 3.0, "fp": 1.0, "fn": 3.0})
    assert scores == {"loss": 0.5, "precision": 0.75, "recall": 0.5, "f1": pytest.approx(0.6)}
    empty = window_scores({"loss": 0.1, "tp": 0.0, "fp": 0.0, "fn": 0.0})
    assert (empty["precision"], empty["recall"], empty["f1"]) == (0.0, 0.0, 0.0)


def test_classification_scores_count_positives_above_the_threshold():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.5, 0.5, 0.1])  # 0.5 is not above 0.5, as Keras counts
    scores = classification_scores(y, p, threshold=0.5)
    assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
    weighted = classification_scores(y, np.array([0.9, 0.8, 0.2, 0.1]), [1, 3, 1, 1])
    assert weighted["precision"] == pytest.approx(0.25)  # the false positive counts 3 times
    assert math.isnan(classification_scores([0, 0], [0.2, 0.7])["average_precision"])


def test_nan_never_wins_and_loss_is_lower_is_better():
    assert is_better(0.3, None, metric="f1")
    assert not is_better(math.nan, None, metric="f1")
    assert is_better(0.2, 0.3, metric="loss") and not is_better(0.2, 0.3, metric="f1")
