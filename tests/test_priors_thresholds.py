"""Thresholds from costs: Bayes, the cost curve and the cost-minimising search."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import priors


def test_methods_example_thresholds():
    t_star = priors.bayes_threshold(cost_fp=1, cost_fn=10)
    assert t_star == pytest.approx(1 / 11)
    assert priors.invert_prior_correction(t_star, beta=0.02) == pytest.approx(0.833, abs=1e-3)


def test_cost_curve_includes_flag_nothing_and_matches_direct_computation():
    rng = np.random.default_rng(3)
    labels = (rng.random(200) < 0.2).astype(int)
    scores = rng.random(200)
    weights = rng.uniform(1, 5, 200)
    curve = priors.cost_curve(labels, scores, weights, cost_fp=1, cost_fn=7)
    assert np.isinf(curve.thresholds[0])
    assert curve.costs[0] == pytest.approx(1000 * 7 * weights[labels == 1].sum() / weights.sum())
    for i in (1, 50, len(curve.thresholds) - 1):
        pred = (scores >= curve.thresholds[i]).astype(int)
        cm = priors.confusion(labels, pred, weights)
        assert curve.costs[i] == pytest.approx(priors.expected_cost(cm, cost_fp=1, cost_fn=7))


@pytest.mark.parametrize("cost_fn", [3.0, 10.0, 50.0])
def test_threshold_search_finds_bayes_optimum_on_calibrated_scores(cost_fn):
    rng = np.random.default_rng(11)
    p = rng.beta(0.3, 8.0, 200_000)  # calibrated by construction, mostly small like production
    labels = (rng.random(len(p)) < p).astype(int)
    threshold, cost = priors.cost_minimising_threshold(labels, p, cost_fp=1, cost_fn=cost_fn)
    analytic = priors.bayes_threshold(cost_fp=1, cost_fn=cost_fn)
    assert threshold == pytest.approx(analytic, abs=0.25 * analytic)
    # the searched cost is no worse than the analytic rule's, and near it
    bayes_cm = priors.confusion(labels, (p >= analytic).astype(int))
    bayes_cost = priors.expected_cost(bayes_cm, cost_fp=1, cost_fn=cost_fn)
    assert cost <= bayes_cost + 1e-9
    assert cost == pytest.approx(bayes_cost, rel=0.02)


def test_threshold_search_edge_cases():
    labels = np.array([0, 0, 1])
    scores = np.array([0.1, 0.2, 0.9])
    t, cost = priors.cost_minimising_threshold(labels, scores, cost_fp=1, cost_fn=1)
    assert 0.2 < t < 0.9 and cost == 0
    # the positive scores lowest and misses are cheap: flag nothing, threshold above every score
    scores = np.array([0.8, 0.9, 0.1])
    t, _ = priors.cost_minimising_threshold(labels, scores, cost_fp=1, cost_fn=0.5)
    assert t > scores.max()
