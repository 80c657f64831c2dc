"""The group bootstrap: whole groups, deterministic, vectorised equals one at a time, coverage."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dsprior import priors


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


def test_resamples_missing_a_class_keep_their_weights_and_undefined_values_are_left_out():
    """Four one-example groups: about 1 resample in 16 draws no positive, 1 in 16 no negative.

    ``weights_at_prior_rows`` leaves a resample that lacks a class unchanged (no weight made
    0 or NaN by a rescaling with nothing to balance), and ``group_bootstrap`` leaves a
    resample where a statistic is undefined (recall without positives) out of its interval.
    """
    groups = np.array(["pos_found", "pos_missed", "neg_flagged", "neg"])
    y = np.array([1, 1, 0, 0])
    predicted = np.array([1, 0, 1, 0])
    w = np.array([1.0, 1.0, 10.0, 10.0])
    prior = 0.25  # odds(1 - prior) = 3
    seen = []

    def statistic(mult):
        seen.extend(mult.copy())
        weights = priors.weights_at_prior_rows(y, w * mult, prior=prior)
        cm = priors.confusion_rows(y, predicted, weights)
        return {
            "positive_fraction": weights @ y / weights.sum(axis=1),
            "negative_weight": weights @ (1 - y),
            "recall": priors.rates(cm)["recall"],
        }

    result = priors.group_bootstrap(groups, statistic, resamples=300, level=0.8, seed=3, chunk=64)
    mult = np.array(seen)
    positives, negatives = mult[:, :2].sum(axis=1), mult[:, 2:].sum(axis=1)
    assert (positives == 0).sum() >= 5 and (negatives == 0).sum() >= 5  # both cases occur
    both = (positives > 0) & (negatives > 0)
    # by hand: moved to the prior where both classes are drawn, untouched where one is missing
    want_fraction = np.where(both, 0.25, np.where(positives == 0, 0.0, 1.0))
    want_negative = np.where(both, 3.0 * positives, 10.0 * negatives)
    np.testing.assert_allclose(result.samples["positive_fraction"], want_fraction, rtol=1e-12)
    np.testing.assert_allclose(result.samples["negative_weight"], want_negative, rtol=1e-12)
    # recall is undefined without positives: those resamples are NaN, and left out
    recall = np.full(len(mult), np.nan)
    recall[positives > 0] = mult[positives > 0, 0] / positives[positives > 0]
    np.testing.assert_array_equal(result.samples["recall"], recall)
    low, high = np.quantile(recall[positives > 0], [0.1, 0.9])
    assert result.intervals["recall"] == pytest.approx((low, high))
    assert np.isfinite(result.intervals["recall"]).all()


def test_one_resample_one_group_and_exact_percentiles():
    """resamples=1 and a single group are valid; intervals are the (1-level)/2 quantiles."""
    one = priors.group_bootstrap(
        ["a"], lambda m: {"n": m.sum(axis=1)}, resamples=1, level=0.5, seed=0
    )
    assert one.samples["n"].tolist() == [1.0] and one.intervals["n"] == (1.0, 1.0)
    assert one.level == 0.5
    x = np.random.default_rng(0).random(7)  # continuous: no two resamples tie
    result = priors.group_bootstrap(
        np.arange(7), lambda m: {"mean": m @ x / 7}, resamples=40, level=0.6, seed=2
    )
    want = np.quantile(result.samples["mean"], [0.2, 0.8])
    assert result.intervals["mean"] == (pytest.approx(want[0]), pytest.approx(want[1]))
    assert len(np.unique(result.samples["mean"])) > 30  # nearly all distinct


def test_integer_statistics_come_back_as_floats_and_all_nan_gives_nan_interval():
    """Samples are float64 whatever the statistic returns; no finite value, no interval."""
    result = priors.group_bootstrap(
        ["a", "b"],
        lambda m: {"count": m[:, 0].astype(int), "none": np.full(len(m), np.nan)},
        resamples=5,
        level=0.9,
        seed=0,
    )
    assert result.samples["count"].dtype == np.float64
    assert np.isnan(result.intervals["none"]).all() and len(result.intervals["none"]) == 2


def test_draws_do_not_depend_on_chunk_or_on_a_seed_given_as_generator():
    """chunk=1, chunk=resamples and a Generator seeded alike all give the same resamples."""

    def stat(m):
        return {"m": m[:, 0] + 10 * m[:, 1]}

    groups = ["a", "b", "c"]
    runs = [
        priors.group_bootstrap(groups, stat, resamples=9, level=0.9, seed=3, chunk=chunk)
        for chunk in (1, 4, 9)
    ]
    runs.append(
        priors.group_bootstrap(
            groups, stat, resamples=9, level=0.9, seed=np.random.default_rng(3), chunk=2
        )
    )
    for run in runs[1:]:
        np.testing.assert_array_equal(run.samples["m"], runs[0].samples["m"])
    assert len(runs[0].samples["m"]) == 9


def test_progress_bar_only_when_asked(capsys):
    """progress=True shows a transient 'bootstrap' bar in chunks on stderr; default is silent."""

    def stat(m):
        return {"n": m.sum(axis=1)}

    quiet = priors.group_bootstrap(["a", "b"], stat, resamples=4, level=0.9, seed=1, chunk=2)
    assert capsys.readouterr().err == ""
    loud = priors.group_bootstrap(
        ["a", "b"], stat, resamples=4, level=0.9, seed=1, chunk=2, progress=True
    )
    err = capsys.readouterr().err
    np.testing.assert_array_equal(loud.samples["n"], quiet.samples["n"])
    assert err.startswith("\rbootstrap: ") and "/2 " in err  # two chunks
    assert re.search(r"(chunk/s|s/chunk)", err)
    assert not err.endswith("\n")  # leave=False: the bar is cleared, not left behind


@pytest.mark.parametrize("chunk", [0, -1])
def test_a_chunk_below_one_is_refused_not_an_empty_bootstrap(chunk):
    """chunk=0 used to draw no resample at all and return (nan, nan) intervals silently."""

    def count(m):
        return {"n": m.sum(axis=1)}

    with pytest.raises(ValueError, match=re.escape(f"chunk must be >= 1, got {chunk}")):
        priors.group_bootstrap(np.arange(4), count, resamples=5, level=0.9, seed=0, chunk=chunk)
    one = priors.group_bootstrap(np.arange(4), count, resamples=5, level=0.9, seed=0, chunk=1)
    assert one.samples["n"].shape == (5,)


def test_strata_keep_each_samples_size_and_groups_whole():
    """Two samples resampled jointly: each draws its own groups, as many as it has."""
    groups = np.array(["a", "a", "b", "c", "a", "d", "d", "e"])  # "a" in both strata: two groups
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    seen = []

    def statistic(mult):
        seen.extend(mult.copy())
        return {"first": mult[:, :4].sum(axis=1)}

    priors.group_bootstrap(groups, statistic, resamples=50, level=0.9, seed=3, strata=strata)
    for mult in seen:
        assert mult[0] == mult[1] and mult[5] == mult[6]
        assert mult[0] + mult[2] + mult[3] == 3  # stratum 0: three groups, three drawn
        assert mult[4] + mult[5] + mult[7] == 3  # stratum 1: its own "a", d and e
    # the two "a" groups are drawn independently, not as one
    assert any(m[0] != m[4] for m in seen)


def test_strata_must_match_groups():
    with pytest.raises(ValueError, match=r"strata has shape \(2,\), groups \(3,\)"):
        priors.group_bootstrap(
            np.array(["a", "b", "c"]),
            lambda m: {"x": m.sum(axis=1)},
            resamples=2,
            level=0.9,
            seed=0,
            strata=np.array([0, 1]),
        )


def test_kish_count_of_equal_and_unequal_weights():
    """Equal weights count every example; two heavy thinned negatives count for less."""
    assert priors.kish_count(np.ones(7)) == pytest.approx(7.0)
    assert priors.kish_count(np.array([1.0, 1.0, 10.0, 10.0])) == pytest.approx(22**2 / 202)
    assert priors.kish_count(np.zeros(3)) == 0.0


def test_effective_count_shrinks_by_the_design_effect():
    """A rate of 0.5 whose bootstrap variance is that of 40 independent examples is worth
    40, whatever its 1,000 rows; never more than Kish's count; Kish's count where the
    bootstrap cannot tell (a rate of 0, every resample alike)."""
    assert priors.effective_count(0.5, 1000.0, 0.25 / 40) == pytest.approx(40.0)
    assert priors.effective_count(0.5, 1000.0, 1e-9) == 1000.0
    assert priors.effective_count(0.0, 30.0, 0.0) == 30.0
    assert priors.effective_count(0.5, 30.0, float("nan")) == 30.0


def test_rate_at_zero_of_five_events_is_not_one_value():
    """0 of 5: a percentile bootstrap resamples the zero and says [0, 0]; the interval here
    starts at 0 and reaches Jeffreys' upper bound, the 97.5% point of Beta(1/2, 5 + 1/2)."""
    from scipy.stats import beta

    rate, draws = priors.rate_draws(
        np.zeros(5), np.ones(5), np.arange(5), size=4000, rng=np.random.default_rng(1)
    )
    low, high = priors.draws_interval(rate, draws, level=0.95)
    assert rate == 0.0 and low == 0.0
    assert high == pytest.approx(beta.ppf(0.975, 0.5, 5.5), rel=0.1)


def test_rate_intervals_cover_at_their_stated_rate_at_small_counts():
    """A rate of 4% seen on 40 independent examples: 1 sample in 5 has no event at all, so a
    percentile bootstrap (an interval of one value there) covers at most about 80%; the
    Jeffreys interval on the effective count covers near its stated 95%."""
    rng = np.random.default_rng(23)
    truth, n, trials = 0.04, 40, 300
    covered = 0
    for _ in range(trials):
        events = (rng.random(n) < truth).astype(float)
        rate, draws = priors.rate_draws(events, np.ones(n), np.arange(n), size=400, rng=rng)
        low, high = priors.draws_interval(rate, draws, level=0.95)
        covered += low <= truth <= high
    assert 0.90 <= covered / trials <= 0.995


def test_draws_interval_holds_its_point_and_refuses_an_undefined_one():
    """The central interval of the draws, widened to hold the point; no point, no interval."""
    draws = np.linspace(0.2, 0.4, 101)
    assert priors.draws_interval(0.3, draws, level=0.5) == pytest.approx((0.25, 0.35))
    assert priors.draws_interval(0.1, draws, level=0.5) == pytest.approx((0.1, 0.35))
    assert np.isnan(priors.draws_interval(float("nan"), draws, level=0.5)).all()
