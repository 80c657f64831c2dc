"""Thresholds from costs: Bayes, the cost curve and the cost-minimising search."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import priors
from tests.factories import brute_force_cut


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


@pytest.mark.parametrize("seed", range(6))
def test_weighted_threshold_search_equals_brute_force_and_sits_between_scores(seed):
    """The rule score >= t flags the brute-force least-cost set; t is the midpoint of two scores."""
    rng = np.random.default_rng(seed)
    n = 12
    y = (rng.random(n) < 0.4).astype(int)
    p = np.round(rng.random(n), 2)  # ties included
    w = rng.choice([0.5, 1.0, 3.0, 8.0], n)
    cost_fp, cost_fn = 2.0, 5.0
    t, cost = priors.cost_minimising_threshold(y, p, w, cost_fp=cost_fp, cost_fn=cost_fn)
    flag, want = brute_force_cut(y, p, w, cost_fp=cost_fp, cost_fn=cost_fn)
    np.testing.assert_array_equal(p >= t, flag)
    assert cost == pytest.approx(want)
    distinct = np.unique(p)
    if flag.any() and not flag.all():
        cut = p[flag].min()
        lower = distinct[distinct < cut].max()
        assert t == (cut + lower) / 2


def test_weights_move_the_searched_threshold():
    """Heavy negatives (the production prior) push the threshold up: weights are used."""
    labels = np.array([0, 1, 1, 0])
    scores = np.array([0.1, 0.4, 0.6, 0.9])
    t, cost = priors.cost_minimising_threshold(labels, scores, cost_fp=1, cost_fn=1)
    assert t == pytest.approx(0.25) and cost == pytest.approx(1000 * 1 / 4)
    weights = np.array([10.0, 1.0, 1.0, 10.0])
    t, cost = priors.cost_minimising_threshold(labels, scores, weights, cost_fp=1, cost_fn=1)
    assert t > 0.9 and cost == pytest.approx(1000 * 2 / 22)


def test_flag_everything_puts_the_threshold_on_the_lowest_score():
    """When missing a positive costs most, t is the lowest score itself (everything flagged)."""
    labels = np.array([1, 0, 1])
    scores = np.array([0.2, 0.5, 0.9])
    t, cost = priors.cost_minimising_threshold(labels, scores, cost_fp=1, cost_fn=100)
    assert t == 0.2 and cost == pytest.approx(1000 / 3)
    # one step above the lowest: the midpoint between the two lowest scores
    labels = np.array([0, 1, 0, 1])
    scores = np.array([0.1, 0.3, 0.5, 0.9])
    t, _ = priors.cost_minimising_threshold(labels, scores, cost_fp=1, cost_fn=3)
    assert t == pytest.approx(0.2)


def test_cost_curve_confusions_by_hand_with_a_positive_scored_lowest():
    """Each cut's (tn, fp, fn, tp) and cost, first the flag-nothing rule; cost_fp=2 matters."""
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.1, 0.3, 0.6, 0.8])
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    curve = priors.cost_curve(labels, scores, weights, cost_fp=2, cost_fn=5, per=10)
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.8, 0.6, 0.3, 0.1])
    tn, fp, fn, tp = curve.confusions
    np.testing.assert_allclose(tn, [6, 2, 2, 0, 0])
    np.testing.assert_allclose(fp, [0, 4, 4, 6, 6])
    np.testing.assert_allclose(fn, [4, 4, 1, 1, 0])
    np.testing.assert_allclose(tp, [0, 0, 3, 3, 4])
    np.testing.assert_allclose(curve.costs, 10 * (2 * fp + 5 * fn) / 10)
    for i, cut in enumerate(curve.thresholds):
        cm = priors.confusion(labels, (scores >= cut).astype(int), weights)
        assert (cm.tn, cm.fp, cm.fn, cm.tp) == pytest.approx((tn[i], fp[i], fn[i], tp[i]))
        want = priors.expected_cost(cm, cost_fp=2, cost_fn=5, per=10)
        assert curve.costs[i] == pytest.approx(want)


def test_cost_curve_and_search_on_one_example():
    """A single example: flag nothing or flag it."""
    curve = priors.cost_curve([1], [0.7], cost_fp=1, cost_fn=4)
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.7])
    np.testing.assert_allclose(curve.costs, [4000, 0])
    assert priors.cost_minimising_threshold([1], [0.7], cost_fp=1, cost_fn=4) == (0.7, 0.0)
    t, cost = priors.cost_minimising_threshold([0], [0.7], cost_fp=1, cost_fn=4)
    assert t > 0.7 and cost == 0.0


def test_decisions_compare_log_odds_where_probabilities_round_together():
    """Log-odds 30 and 33 are probabilities 1e-13 apart, 38 and 40 are both exactly 1.0; a
    threshold between 30 and 33 (found by the cost search on log-odds) tells them apart, and
    its probability form reproduces the cut; between 38 and 40 no probability can, and the
    one flagging fewer is taken; a threshold of 1 or more flags nothing."""
    z = np.array([-3.0, 5.0, 30.0, 33.0, 38.0, 40.0])
    assert priors.sigmoid(38.0) == priors.sigmoid(40.0) == 1.0
    labels = np.array([0, 1, 0, 1, 1, 1])
    cut, _ = priors.cost_minimising_threshold(labels, z, cost_fp=10.0, cost_fn=1.0)
    assert 30 < cut < 33
    threshold = priors.threshold_probability(cut, z)
    np.testing.assert_array_equal(
        priors.decide_log_odds(z, threshold=threshold), (z >= cut).astype(np.int8)
    )
    unrepresentable = priors.threshold_probability(39.0, z)
    assert priors.decide_log_odds(z, threshold=unrepresentable).sum() == 0
    z = np.delete(z, 2)
    t = priors.threshold_probability(10.0, z)
    assert t == pytest.approx(priors.sigmoid(10.0))
    np.testing.assert_array_equal(priors.decide_log_odds(z, threshold=t), [0, 0, 1, 1, 1])
    assert priors.threshold_log_odds(0.5) == 0.0
    assert priors.threshold_log_odds(1.0) == np.inf
    np.testing.assert_array_equal(priors.decide_log_odds(z, threshold=1.0), np.zeros(5))
    np.testing.assert_array_equal(priors.decide_log_odds(z, threshold=0.0), np.ones(5))
    # just above the top log-odds: the probability (1.0 after rounding) must still flag nothing
    top = priors.threshold_probability(float(np.nextafter(40.0, np.inf)), z)
    assert priors.decide_log_odds(z, threshold=top).sum() == 0
