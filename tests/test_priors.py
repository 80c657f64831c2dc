"""Prior correction, metrics at the production prior, thresholds and the group bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, precision_score, recall_score

from dsprior import priors

# ----------------------------------------------------------------------------- the classic example


def classic_arrays() -> tuple[np.ndarray, np.ndarray]:
    """TP 97, FN 3, FP 3, TN 197 as rows (labels, predictions)."""
    labels = np.array([1] * 100 + [0] * 200)
    predicted = np.array([1] * 97 + [0] * 3 + [1] * 3 + [0] * 197)
    return labels, predicted


def test_classic_example_precision_drops_from_097_to_039():
    labels, predicted = classic_arrays()
    cm = priors.confusion(labels, predicted)
    assert (cm.tp, cm.fn, cm.fp, cm.tn) == (97, 3, 3, 197)
    assert priors.rates(cm)["precision"] == pytest.approx(0.97)
    # negatives x50 takes 1:2 to 1:100
    weights = np.where(labels == 0, 50.0, 1.0)
    weighted = priors.confusion(labels, predicted, weights)
    assert priors.rates(weighted)["precision"] == pytest.approx(97 / (97 + 150))
    assert priors.rates(weighted)["precision"] == pytest.approx(0.393, abs=5e-4)
    assert precision_score(labels, predicted, sample_weight=weights) == pytest.approx(97 / 247)
    assert recall_score(labels, predicted, sample_weight=weights) == pytest.approx(0.97)
    # the same via rescaling to the prior 1/101
    rescaled = priors.weights_at_prior(labels, prior=1 / 101)
    np.testing.assert_allclose(rescaled[labels == 0], 50.0)
    np.testing.assert_allclose(rescaled[labels == 1], 1.0)


def test_weighted_precision_equals_siblini_calibrated_precision():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype(int)
    predicted = np.where(labels == 1, rng.random(500) < 0.8, rng.random(500) < 0.1).astype(int)
    cm = priors.confusion(labels, predicted)
    for prior in (0.5, 0.1, 0.01, 0.001):
        weights = priors.weights_at_prior(labels, prior=prior)
        weighted = precision_score(labels, predicted, sample_weight=weights)
        siblini = priors.calibrated_precision(cm.tp, cm.fp, sample_prior=labels.mean(), prior=prior)
        assert weighted == pytest.approx(siblini, rel=1e-12)
        recall = recall_score(labels, predicted)
        f1_weighted = priors.rates(priors.confusion(labels, predicted, weights))["f1"]
        assert f1_weighted == pytest.approx(priors.calibrated_f1(siblini, recall))
    # the calibrated precision changes with the prior (the test could fail)
    assert priors.calibrated_precision(
        cm.tp, cm.fp, sample_prior=labels.mean(), prior=0.01
    ) < precision_score(labels, predicted)


def test_rates_match_sklearn_on_weighted_data():
    rng = np.random.default_rng(1)
    labels = (rng.random(300) < 0.4).astype(int)
    predicted = (rng.random(300) < 0.5).astype(int)
    weights = rng.uniform(0.5, 20, 300)
    r = priors.rates(priors.confusion(labels, predicted, weights))
    assert r["precision"] == pytest.approx(
        precision_score(labels, predicted, sample_weight=weights)
    )
    assert r["recall"] == pytest.approx(recall_score(labels, predicted, sample_weight=weights))


# ----------------------------------------------------------------------------- prior correction


@pytest.mark.parametrize("beta", [0.02, 0.1, 0.5, 1.0, 3.0])
def test_correct_prior_matches_formula_and_round_trips(beta):
    p_s = np.linspace(0, 1, 101)
    expected = beta * p_s / (beta * p_s - p_s + 1)
    np.testing.assert_allclose(priors.correct_prior(p_s, beta=beta), expected)
    np.testing.assert_allclose(
        priors.invert_prior_correction(priors.correct_prior(p_s, beta=beta), beta=beta),
        p_s,
        atol=1e-12,
    )


def test_correct_prior_matches_elkan_theorem_2_and_bayes_odds():
    # Elkan: p' = b'(p - p b) / (b - p b + b' p - b b') with base rates b (train), b' (new)
    b, b_new = 1 / 3, 1 / 101
    p = np.linspace(0.01, 0.99, 50)
    elkan = b_new * (p - p * b) / (b - p * b + b_new * p - b * b_new)
    beta = priors.beta_from_priors(production_prior=b_new, training_prior=b)
    assert beta == pytest.approx(0.02)
    np.testing.assert_allclose(priors.correct_prior(p, beta=beta), elkan)
    np.testing.assert_allclose(priors.shift_prior(p, from_prior=b, to_prior=b_new), elkan)
    # posterior odds scale by beta
    np.testing.assert_allclose(
        priors.odds(priors.correct_prior(p, beta=beta)), beta * priors.odds(p)
    )


def test_methods_example_thresholds():
    t_star = priors.bayes_threshold(cost_fp=1, cost_fn=10)
    assert t_star == pytest.approx(1 / 11)
    assert priors.invert_prior_correction(t_star, beta=0.02) == pytest.approx(0.833, abs=1e-3)


def _simulate(n, prior, rng):
    labels = (rng.random(n) < prior).astype(int)
    x = rng.normal(size=(n, 2)) + labels[:, None] * np.array([1.5, 1.0])
    return x, labels


def test_corrected_thinned_model_is_as_calibrated_as_unthinned_model():
    rng = np.random.default_rng(7)
    prior, beta = 0.01, 0.02
    x, y = _simulate(150_000, prior, rng)
    x_test, y_test = _simulate(150_000, prior, rng)
    keep = (y == 1) | (rng.random(len(y)) < beta)
    full = LogisticRegression().fit(x, y)
    thinned = LogisticRegression().fit(x[keep], y[keep])
    p_full = full.predict_proba(x_test)[:, 1]
    p_raw = thinned.predict_proba(x_test)[:, 1]
    p_corrected = priors.correct_prior(p_raw, beta=beta)

    ll_full, ll_raw, ll_corr = (log_loss(y_test, p) for p in (p_full, p_raw, p_corrected))
    assert ll_corr == pytest.approx(ll_full, rel=0.03)
    assert ll_raw > 2 * ll_full  # uncorrected is badly miscalibrated at the prior
    b_full, b_corr = (brier_score_loss(y_test, p) for p in (p_full, p_corrected))
    assert b_corr == pytest.approx(b_full, rel=0.03)
    # mean predicted probability matches the observed rate, bin by bin
    table = priors.weighted_calibration(y_test, p_corrected, n_bins=5)
    np.testing.assert_allclose(table["predicted"], table["observed"], atol=0.015)
    assert p_corrected.mean() == pytest.approx(y_test.mean(), rel=0.1)


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


# ----------------------------------------------------------------------------- costs and thresholds


def test_expected_cost_and_production_terms():
    cm = priors.Confusion(tn=900.0, fp=50.0, fn=2.0, tp=48.0)
    assert priors.expected_cost(cm, cost_fp=1, cost_fn=10) == pytest.approx(1000 * 70 / 1000)
    terms = priors.production_terms(cm)
    assert terms["alerts"] == pytest.approx(98)
    assert terms["true_alerts"] == pytest.approx(48)
    assert terms["missed"] == pytest.approx(2)


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


# ----------------------------------------------------------------------------- bootstrap


def test_group_bootstrap_multiplicity_is_whole_groups_and_deterministic():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    seen = []

    def statistic(mult):
        seen.extend(mult.copy())
        return {"total": mult.sum(axis=1)}

    first = priors.group_bootstrap(groups, statistic, resamples=20, level=0.9, seed=5, chunk=7)
    assert len(seen) == 20
    for mult in seen:
        assert mult[0] == mult[1] and mult[3] == mult[4] == mult[5]
        # as many groups drawn as there are
        assert mult[0] + mult[2] + mult[3] == 3
    again = priors.group_bootstrap(
        groups, lambda m: {"total": m.sum(axis=1)}, resamples=20, level=0.9, seed=5
    )
    np.testing.assert_array_equal(first.samples["total"], again.samples["total"])


def test_vectorised_bootstrap_equals_one_resample_at_a_time():
    """The matrix statistics give exactly what a loop over resamples with sklearn gives."""
    rng = np.random.default_rng(11)
    n = 400
    groups = rng.integers(0, 90, n)
    y = (rng.random(n) < 0.3).astype(int)
    predicted = (rng.random(n) < 0.4).astype(int)
    w = rng.uniform(0.5, 3.0, n)
    prior = 0.05

    def matrix_stat(mult):
        cm = priors.confusion_rows(
            y, predicted, priors.weights_at_prior_rows(y, w * mult, prior=prior)
        )
        r = priors.rates(cm)
        return {"precision": r["precision"], "recall": r["recall"],
                "cost": priors.expected_cost(cm, cost_fp=1, cost_fn=10)}  # fmt: skip

    result = priors.group_bootstrap(groups, matrix_stat, resamples=53, level=0.9, seed=4, chunk=10)
    # the same draws, one resample at a time, through the scalar functions (sklearn's matrix)
    draw = np.random.default_rng(4)
    _, codes = np.unique(groups, return_inverse=True)
    g = codes.max() + 1
    for i in range(53):
        mult = np.bincount(draw.integers(0, g, g), minlength=g)[codes].astype(float)
        cm = priors.confusion(y, predicted, priors.weights_at_prior(y, w * mult, prior=prior))
        r = priors.rates(cm)
        np.testing.assert_allclose(result.samples["precision"][i], r["precision"], rtol=1e-12)
        np.testing.assert_allclose(result.samples["recall"][i], r["recall"], rtol=1e-12)
        np.testing.assert_allclose(
            result.samples["cost"][i], priors.expected_cost(cm, cost_fp=1, cost_fn=10), rtol=1e-12
        )
    with pytest.raises(ValueError, match="gave 1 values for 10 resamples"):
        priors.group_bootstrap(groups, lambda m: {"x": 1.0}, resamples=10, level=0.9, seed=0)


def _clustered_sample(rng, n_groups, mean_rate):
    sizes = 1 + rng.poisson(5, n_groups)
    rates = rng.beta(
        mean_rate * 2, (1 - mean_rate) * 2, n_groups
    )  # strong within-group correlation
    groups = np.repeat(np.arange(n_groups), sizes)
    labels = (rng.random(len(groups)) < rates[groups]).astype(float)
    return groups, labels


def test_group_bootstrap_coverage_near_nominal():
    rng = np.random.default_rng(2026)
    mean_rate, level, sims = 0.3, 0.9, 150
    covered_group = covered_naive = 0
    for _ in range(sims):
        groups, labels = _clustered_sample(rng, 120, mean_rate)

        def stat(mult, labels=labels):
            return {"rate": mult @ labels / mult.sum(axis=1)}

        # true value of the ratio estimator's target: E[size * rate] / E[size] = mean_rate
        group_ci = priors.group_bootstrap(groups, stat, resamples=200, level=level, seed=rng)
        naive_ci = priors.group_bootstrap(
            np.arange(len(groups)), stat, resamples=200, level=level, seed=rng
        )
        low, high = group_ci.intervals["rate"]
        covered_group += low <= mean_rate <= high
        low, high = naive_ci.intervals["rate"]
        covered_naive += low <= mean_rate <= high
    assert 0.82 <= covered_group / sims <= 0.97
    # resampling examples ignores the clustering and undercovers
    assert covered_naive / sims < covered_group / sims - 0.15
