"""Label-free estimation: EM recovers known priors, matches QuaPy, CBPE matches measured
precision, prior_shift fires for a shifted batch only.

The recalibration maps (``dsprior.calibration``) are tested in test_calibration.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, ks_2samp

from dsprior import calibration as cal
from dsprior import priors, quantify
from tests.factories import EVAL_PRIOR, draw

FIXTURE = Path(__file__).parent / "fixtures" / "quapy_binary.json"
COSTS = priors.Costs(false_positive=1, false_negative=10)


def boot(resamples: int, *, seed: int = 0, level: float = 0.95) -> priors.Bootstrap:
    return priors.Bootstrap(resamples=resamples, level=level, seed=seed)


def sld_iterations(p: np.ndarray, prior: float, steps: int = 20000) -> float:
    """Saerens et al.'s EM written out: move posteriors to the estimate, average, repeat."""
    pi = prior
    for _ in range(steps):
        pi = float(np.mean(priors.shift_prior(p, from_prior=prior, to_prior=pi)))
    return pi


# ----------------------------------------------------------------------------- EM, ACC, PACC


@pytest.mark.parametrize("true_prior", [1 / 30, 1 / 101, 1 / 251])
def test_em_recovers_a_known_prior_within_its_interval(true_prior: float) -> None:
    """Over 20 replicate batches: small error, the 95% interval covers the truth, and
    prior_shift fires exactly where the interval excludes the bundle's prior."""
    rng = np.random.default_rng(7)
    bundle_prior = 0.01
    covered, errors, shifted = 0, [], []
    for replicate in range(20):
        _, p = draw(rng, 20_000, prior=true_prior, at=bundle_prior)
        out = quantify.estimate_batch(
            p, prior=bundle_prior, threshold=0.3, costs=COSTS, bootstrap=boot(100, seed=replicate),
        )  # fmt: skip
        est = out["estimated_prior"]
        low, high = est["ci"]
        covered += low <= true_prior <= high
        errors.append(abs(est["value"] - true_prior) / true_prior)
        assert out["drift"]["prior_shift"] is (not (low <= bundle_prior <= high))
        shifted.append(out["drift"]["prior_shift"])
    assert covered >= 17, covered
    assert np.mean(errors) < 0.15, np.mean(errors)
    # the batch's prior moved (except at 1:100): prior_shift says so
    assert (
        np.mean(shifted) >= 0.9
        if abs(true_prior - bundle_prior) > 0.005
        else np.mean(shifted) <= 0.2
    )


def test_em_is_the_fixed_point_of_the_sld_iterations() -> None:
    rng = np.random.default_rng(3)
    _, p = draw(rng, 3000, prior=0.05, at=0.1)
    assert quantify.em_prior(p, prior=0.1) == pytest.approx(sld_iterations(p, 0.1), rel=1e-6)


def test_em_acc_and_pacc_match_quapys_recorded_outputs() -> None:
    record = json.loads(FIXTURE.read_text())
    prior, threshold = record["reference_prior"], record["threshold"]
    ref_y = np.asarray(record["reference"]["labels"])
    ref_p = np.asarray(record["reference"]["probability"])
    rates = quantify.reference_rates(ref_y, ref_p, threshold=threshold)
    for batch in record["batches"]:
        p = np.asarray(batch["probability"])
        expected = batch["quapy"]
        assert quantify.em_prior(p, prior=prior) == pytest.approx(expected["emq"], rel=1e-6)
        acc = quantify.adjusted_count(
            (p >= threshold).astype(int), tpr=rates["tpr"], fpr=rates["fpr"]
        )
        assert acc == pytest.approx(expected["acc"], abs=1e-12)
        pacc = quantify.probabilistic_adjusted_count(
            p, mean_positive=rates["mean_positive"], mean_negative=rates["mean_negative"]
        )
        assert pacc == pytest.approx(expected["pacc"], abs=1e-12)


def test_adjusted_counts_clip_and_refuse_useless_rates() -> None:
    assert quantify.adjusted_count(np.zeros(10, int), tpr=0.8, fpr=0.1) == 0.0
    assert quantify.adjusted_count(np.ones(10, int), tpr=0.8, fpr=0.1) == 1.0
    assert np.isnan(quantify.adjusted_count(np.ones(10, int), tpr=0.1, fpr=0.1))
    assert np.isnan(
        quantify.probabilistic_adjusted_count(np.full(3, 0.2), mean_positive=0.1, mean_negative=0.2)
    )
    with pytest.raises(ValueError, match="probability must be finite probabilities"):
        quantify.em_prior(np.array([0.2, 1.5]), prior=0.1)
    with pytest.raises(ValueError, match=r"prior must be in \(0, 1\)"):
        quantify.em_prior(np.array([0.2]), prior=0.0)


def test_pacc_is_clipped_to_the_unit_interval() -> None:
    """A batch more confident than dev_b's positives (negatives) has PACC exactly 1 (0), never
    beyond, alone and through estimate_batch's point and resamples (whose one value refuses
    the interval)."""
    rng = np.random.default_rng(59)
    ref = reference(rng)
    rates = quantify.reference_rates(ref.label, ref.probability, threshold=0.3)
    assert 1e-4 < rates["mean_negative"] < rates["mean_positive"] < 1 - 1e-4  # room both sides
    means = {k: rates[k] for k in ("mean_positive", "mean_negative")}
    for value, expected in ((1 - 1e-4, 1.0), (1e-4, 0.0)):
        batch = np.full(50, value)
        assert quantify.probabilistic_adjusted_count(batch, **means) == expected
        out = quantify.estimate_batch(
            batch, prior=0.05, threshold=0.3, costs=COSTS, reference=ref,
            bootstrap=boot(20, seed=1),
        )  # fmt: skip
        pacc = out["estimated_prior"]["cross_check"]["pacc"]
        # every resample clipped to the same bound: one value, so no interval, and why
        assert pacc["value"] == expected and pacc["ci"] == [None, None], pacc
        assert pacc["interval_refused"].startswith(f"every resample gave {expected:.4g}:")


# ----------------------------------------------------------------------------- CBPE


def test_cbpe_expected_precision_matches_measured_on_a_calibrated_simulation() -> None:
    rng = np.random.default_rng(11)
    y, p = draw(rng, 200_000, prior=0.02, at=0.02)
    decision = (p >= 0.2).astype(np.int8)
    expected = quantify.expected_performance(p, decision, costs=COSTS)
    measured = quantify.measured_performance(y, decision, costs=COSTS)
    assert expected["precision"] == pytest.approx(measured["precision"], abs=0.02)
    assert expected["recall"] == pytest.approx(measured["recall"], abs=0.02)
    assert expected["expected_cost"] == pytest.approx(measured["expected_cost"], rel=0.05)
    assert expected["alerts_per_1000"] == pytest.approx(measured["alerts_per_1000"], abs=1e-9)
    # miscalibrated (probabilities twice the odds): the estimate is off, so the test can fail
    wrong = quantify.expected_performance(
        priors.shift_prior(p, from_prior=0.02, to_prior=0.06), decision, costs=COSTS
    )
    assert abs(wrong["precision"] - measured["precision"]) > 0.05


def test_cbpe_at_the_estimated_prior_follows_a_moved_batch() -> None:
    rng = np.random.default_rng(5)
    y, p = draw(rng, 60_000, prior=0.005, at=0.02)  # the batch's prior fell to a quarter
    out = quantify.estimate_batch(
        p, prior=0.02, threshold=0.2, costs=COSTS, bootstrap=boot(100, seed=2)
    )
    measured = quantify.measured_performance(y, (p >= 0.2).astype(int), costs=COSTS)
    est = out["estimated_at_threshold"]["precision"]
    assert est["ci"][0] <= measured["precision"] <= est["ci"][1]
    naive = quantify.expected_performance(p, (p >= 0.2).astype(int), costs=COSTS)
    assert naive["precision"] > est["ci"][1]  # at the bundle's prior it over-promises


# ----------------------------------------------------------------------------- the batch


def reference(rng: np.random.Generator, n: int = 4000, prior: float = 0.05) -> quantify.Reference:
    y, p = draw(rng, n, prior=prior, at=prior)
    groups = np.array([f"r{i // 3}" for i in range(n)])
    return quantify.Reference(
        split=np.full(n, "dev_b"),
        group=groups,
        label=y,
        weight=np.ones(n),
        fit_weight=np.ones(n),
        probability=p,
    )


def test_reference_from_predictions_reads_the_prior_corrected_column() -> None:
    """dev_b's rows (and dev_a's for a dev_a fit) from a predictions frame, before recalibration."""
    frame = pd.DataFrame(
        {
            "split": ["dev_a", "dev_b", "test", "dev_b", "dev_a"],
            "group": ["a", "b", "c", "d", "e"],
            "label": [1, 0, 1, 1, 0],
            "weight": [1.0, 2.0, 1.0, 1.0, 4.0],
            "probability_prior_corrected": [0.6, 0.1, 0.7, 0.8, 0.2],
            "probability": [0.5, 0.2, 0.6, 0.7, 0.3],
        }
    )
    kw = {"prior": 0.3, "training_prior": None}
    ref = quantify.reference_from_predictions(frame, calibration=cal.IDENTITY, **kw)
    assert ref.split.tolist() == ["dev_b", "dev_b"] and ref.group.tolist() == ["b", "d"]
    np.testing.assert_array_equal(ref.probability, [0.1, 0.8])
    dev_a_fit = cal.Calibration(method="platt", fitted_on="dev_a")
    ref = quantify.reference_from_predictions(frame, calibration=dev_a_fit, **kw)
    assert ref.split.tolist() == ["dev_a", "dev_b", "dev_b", "dev_a"]
    np.testing.assert_array_equal(ref.fit_weight[ref.split == "dev_a"], [1.0, 1.0])
    # predictions from before the recalibration have only ``probability``
    old = frame.drop(columns="probability_prior_corrected")
    ref = quantify.reference_from_predictions(old, calibration=cal.IDENTITY, **kw)
    np.testing.assert_array_equal(ref.probability, [0.2, 0.7])


def test_reference_fit_weights_repeat_each_fit_at_its_own_prior(predictions) -> None:
    """The weights the bootstrap refits a dev_a map with put dev_a's positive fraction at the
    training prior, dev_b's at the production prior, keeping the manifest weights within a class."""
    training_prior = 0.3
    dev_a_fit = cal.Calibration(method="platt", fitted_on="dev_a")
    ref = quantify.reference_from_predictions(
        predictions, prior=EVAL_PRIOR, training_prior=training_prior, calibration=dev_a_fit
    )
    for split, at in (("dev_a", training_prior), ("dev_b", EVAL_PRIOR)):
        rows = ref.split == split
        y, fw, weight = ref.label[rows], ref.fit_weight[rows], ref.weight[rows]
        assert (y == 0).any() and (y == 1).any()
        assert fw[y == 1].sum() / fw.sum() == pytest.approx(at, rel=1e-12), split
        for label in (0, 1):  # one factor per class: the manifest's relative weights kept
            ratio = fw[y == label] / weight[y == label]
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)


def test_prior_shift_true_for_a_shifted_batch_and_false_for_an_unshifted_one() -> None:
    rng = np.random.default_rng(13)
    ref = reference(rng)
    kw = {"prior": 0.05, "threshold": 0.3, "costs": COSTS, "bootstrap": boot(100, seed=1)}
    _, same = draw(rng, 8000, prior=0.05, at=0.05)
    _, moved = draw(rng, 8000, prior=0.15, at=0.05)
    calm = quantify.estimate_batch(same, reference=ref, **kw)
    shifted = quantify.estimate_batch(moved, reference=ref, **kw)
    assert calm["drift"]["prior_shift"] is False and shifted["drift"]["prior_shift"] is True
    assert shifted["drift"]["p_value"] < 1e-6 < calm["drift"]["p_value"]
    for out, truth in ((calm, 0.05), (shifted, 0.15)):
        for name in ("acc", "pacc"):
            low, high = out["estimated_prior"]["cross_check"][name]["ci"]
            assert low <= truth <= high, (name, truth, low, high)
    assert set(shifted["estimated_at_threshold"]) >= {
        "precision", "recall", "alerts_per_1000", "expected_cost"
    }  # fmt: skip


def test_the_reference_uncertainty_widens_the_interval() -> None:
    rng = np.random.default_rng(17)
    ref = reference(rng, n=600)  # few positives: a Platt fit on it is uncertain
    fit = cal.fit_calibration(ref.probability, ref.label, method="platt", fitted_on="dev_b")
    _, p = draw(rng, 20_000, prior=0.05, at=0.05)
    kw = {"prior": 0.05, "threshold": 0.3, "costs": COSTS, "bootstrap": boot(150, seed=3)}
    alone = quantify.estimate_batch(p, calibration=fit, **kw)
    both = quantify.estimate_batch(p, calibration=fit, reference=ref, **kw)
    width = lambda out: np.diff(out["estimated_prior"]["ci"])[0]  # noqa: E731
    assert width(both) > 1.5 * width(alone)


def test_a_tiny_batch_warns_instead_of_failing_and_old_bundles_say_not_available() -> None:
    rng = np.random.default_rng(19)
    _, p = draw(rng, 50, prior=0.02, at=0.02)
    out = quantify.estimate_batch(
        p, prior=0.02, threshold=0.3, costs=COSTS, bootstrap=boot(50, seed=1)
    )
    assert out["warnings"] and "too few" in out["warnings"][0]
    assert out["estimated_prior"]["cross_check"]["available"] is False
    assert out["drift"]["score_shift_ks"] is None
    json.dumps(out)  # plain JSON types


def test_estimates_are_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(23)
    _, p = draw(rng, 2000, prior=0.05, at=0.05)
    kw = {"prior": 0.05, "threshold": 0.3, "costs": COSTS, "bootstrap": boot(30, seed=4)}
    assert quantify.estimate_batch(p, **kw) == quantify.estimate_batch(p, **kw)


def test_acc_and_pacc_take_dev_b_rates_after_the_recalibration() -> None:
    """dev_b's rates are read on the same recalibrated scale as the batch: a batch that is a
    copy of dev_b gets ACC = PACC = dev_b's positive fraction exactly, and one drawn at a known
    prior is found near it, with a map that moves p across the threshold."""
    rng = np.random.default_rng(53)
    n = 3000
    y, p = draw(rng, n, prior=0.1, at=0.1)
    over = priors.shift_prior(p, from_prior=0.1, to_prior=0.4)  # overconfident at the prior
    ref = quantify.Reference(
        split=np.full(n, "dev_b"),
        group=np.array([f"r{i // 3}" for i in range(n)]),
        label=y,
        weight=np.ones(n),
        fit_weight=np.ones(n),
        probability=over,
    )
    fit = cal.fit_calibration(over, y, method="platt", fitted_on="dev_b")
    assert ((over >= 0.3) != (fit.apply(over) >= 0.3)).sum() > 50  # the map matters here
    kw = {"prior": 0.1, "threshold": 0.3, "costs": COSTS, "bootstrap": boot(20, seed=1)}
    copy = quantify.estimate_batch(over, calibration=fit, reference=ref, **kw)
    cross = copy["estimated_prior"]["cross_check"]
    for name in ("acc", "pacc"):
        assert cross[name]["value"] == pytest.approx(y.mean(), rel=1e-9), name
    batch_y, batch_p = draw(rng, 8000, prior=0.25, at=0.1)
    moved = priors.shift_prior(batch_p, from_prior=0.1, to_prior=0.4)  # the same miscalibration
    cross = quantify.estimate_batch(moved, calibration=fit, reference=ref, **kw)["estimated_prior"][
        "cross_check"
    ]
    for name in ("acc", "pacc"):
        assert cross[name]["value"] == pytest.approx(batch_y.mean(), abs=0.01), name


@pytest.mark.parametrize(("level", "resamples"), [(0.95, 1000), (0.5, 400)])
def test_the_prior_interval_is_the_bootstrap_percentiles(level: float, resamples: int) -> None:
    """With confident probabilities EM's estimate is the fraction of high rows, so resampling
    the batch makes it Binomial(n, k/n) / n: the interval ends are that law's (1 -+ level) / 2
    quantiles, up to the Monte Carlo error of ``resamples`` draws (sd about 1.4 rows at the
    97.5% quantile with 1000 draws, 1.1 rows at the 75% with 400)."""
    n, k = 1000, 500
    p = np.where(np.arange(n) < k, 1 - 1e-9, 1e-9)
    out = quantify.estimate_batch(
        p, prior=0.1, threshold=0.5, costs=COSTS, bootstrap=boot(resamples, seed=7, level=level)
    )
    low, high = out["estimated_prior"]["ci"]
    alpha = (1 - level) / 2
    assert low * n == pytest.approx(binom.ppf(alpha, n, k / n), abs=4.5)
    assert high * n == pytest.approx(binom.ppf(1 - alpha, n, k / n), abs=4.5)


def test_the_prior_interval_has_equal_tails() -> None:
    """Relabelling the classes (p -> 1 - p, prior -> 1 - prior) sends EM's estimate to 1 minus
    it on every resample (the same seed draws the same resamples), so an equal-tailed interval
    [q(a), q(1 - a)] must become [1 - q(1 - a), 1 - q(a)], exactly; an interval whose upper
    end sits at another quantile than 1 - a (a 95% interval made 92.5%) does not."""
    rng = np.random.default_rng(61)
    _, p = draw(rng, 300, prior=0.3, at=0.2)
    kw = {"threshold": 0.5, "costs": COSTS, "bootstrap": boot(200, seed=5)}
    low, high = quantify.estimate_batch(p, prior=0.2, **kw)["estimated_prior"]["ci"]
    mirrored = quantify.estimate_batch(1 - p, prior=0.8, **kw)["estimated_prior"]["ci"]
    assert high - low > 0.05  # a real spread of resamples
    assert mirrored == pytest.approx([1 - high, 1 - low], abs=1e-9)


def test_the_95_percent_prior_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    """100 batches drawn at a known prior (0.3) with probabilities calibrated at the bundle's
    (0.1): the 95% interval covers 0.3 in 86 to 99 of them. With 60 resamples a percentile
    interval runs a little short (800 replicates gave 0.93), and the count is Binomial(100,
    0.93), sd 2.6: 86 is 2.7 sd below; all 100 (chance 0.93^100 < 0.001) means too wide."""
    truth, bundle_prior = 0.3, 0.1
    rng = np.random.default_rng(2029)
    covered = 0
    for replicate in range(100):
        _, p = draw(rng, 200, prior=truth, at=bundle_prior)
        out = quantify.estimate_batch(
            p, prior=bundle_prior, threshold=0.5, costs=COSTS, bootstrap=boot(60, seed=replicate),
        )  # fmt: skip
        low, high = out["estimated_prior"]["ci"]
        covered += low <= truth <= high
    assert 86 <= covered <= 99, covered


def test_precision_and_recall_intervals_hold_the_batchs_realised_values_with_a_weak_model() -> None:
    """With a weak model (posteriors far from 0 and 1) a batch's realised precision and recall
    move with which examples happen to be positive, not only with the estimate: CBPE's
    expectation alone covered recall in about half the batches (60 replicates: 0.50). Each
    resample measures against labels drawn from the probabilities, so the 95% intervals
    hold the realised values in 86 to 99 of 100 batches (Binomial(100, 0.95): 86 is 4 sd
    below, all 100 has chance 0.006)."""
    bundle_prior, truth, mu = 0.05, 0.1, 0.75
    rng = np.random.default_rng(2030)
    covered = {"precision": 0, "recall": 0, "expected_cost": 0}
    for replicate in range(100):
        y = (rng.random(1500) < truth).astype(np.int8)
        x = np.where(y == 1, mu, -mu) + rng.normal(size=len(y))
        p = 1 / (1 + np.exp(-(2 * mu * x + np.log(bundle_prior / (1 - bundle_prior)))))
        out = quantify.estimate_batch(
            p, prior=bundle_prior, threshold=0.15, costs=COSTS, bootstrap=boot(80, seed=replicate),
        )  # fmt: skip
        measured = quantify.measured_performance(y, (p >= 0.15).astype(np.int8), costs=COSTS)
        for name in covered:
            low, high = out["estimated_at_threshold"][name]["ci"]
            covered[name] += low <= measured[name] <= high
    assert all(86 <= c <= 99 for c in covered.values()), covered


def test_the_estimate_takes_log_odds_beyond_where_probabilities_round_to_one() -> None:
    """A batch whose alerts sit at prior-corrected log-odds of 30 to 60: in float64 all of them
    are probability 1 (clipped to the same log-odds), so a temperature map gives them one
    value. Passed as log-odds they stay apart, and every estimate is the one computed by
    hand from the calibrated log-odds."""
    rng = np.random.default_rng(17)
    z = np.r_[rng.uniform(30, 60, 60), rng.normal(-8, 2, 4000)]
    temperature = cal.Calibration(method="temperature", fitted_on="dev_b", slope=0.2,
                                  intercept=-4.0)  # fmt: skip
    kw = {"prior": 0.02, "threshold": 0.5, "costs": COSTS, "bootstrap": boot(20, seed=3),
          "calibration": temperature}  # fmt: skip
    by_log_odds = quantify.estimate_batch(log_odds=z, **kw)
    p = temperature.probability(z)
    assert len(np.unique(p[:60])) == 60  # calibrated, the top keeps its ranking
    em = quantify.em_prior(p, prior=0.02)
    assert by_log_odds["estimated_prior"]["value"] == pytest.approx(em, rel=1e-9)
    moved = priors.shift_prior(p, from_prior=0.02, to_prior=em)
    expected = quantify.expected_performance(moved, (p >= 0.5).astype(np.int8), costs=COSTS)
    at = by_log_odds["estimated_at_threshold"]
    assert at["precision"]["value"] == pytest.approx(expected["precision"], rel=1e-9)
    by_probability = quantify.estimate_batch(1 / (1 + np.exp(-z)), **kw)
    assert by_probability["estimated_prior"]["value"] != pytest.approx(em, rel=1e-3)
    for both_or_neither in ({"probability": p, "log_odds": z}, {}):
        with pytest.raises(ValueError) as error:
            quantify.estimate_batch(**both_or_neither, **kw)
        assert str(error.value) == "estimate_batch needs the batch's log_odds or its probability"
    with pytest.raises(ValueError, match="log_odds must be finite"):
        quantify.estimate_batch(log_odds=np.r_[z, np.inf], **kw)


# ----------------------------------------------------------------------------- edges, by hand


def test_inputs_are_refused_with_messages_that_name_the_problem() -> None:
    """Every refusal is a ValueError whose message says what was wrong."""
    bad = [
        (lambda: quantify.em_prior(np.full((2, 2), 0.5), prior=0.1), "probability must be one-dimensional, got shape (2, 2)"),
        (lambda: quantify.em_prior(np.array([0.2, np.nan]), prior=0.1), "probability must be finite probabilities in [0, 1]"),
        (lambda: quantify.em_prior(np.array([0.2, -0.1]), prior=0.1), "probability must be finite probabilities in [0, 1]"),
        (lambda: quantify.em_prior(np.zeros(0), prior=0.1), "em_prior needs at least one example with positive weight"),
        (lambda: quantify.em_prior(np.full(2, 0.5), prior=0.1, weights=np.zeros(2)), "em_prior needs at least one example with positive weight"),
        (lambda: quantify.adjusted_count(np.ones(2, int), tpr=0.8, fpr=0.1, weights=np.zeros(2)), "adjusted_count needs at least one example with positive weight"),
        (lambda: quantify.probabilistic_adjusted_count(np.full(2, 0.5), mean_positive=0.8, mean_negative=0.1, weights=np.zeros(2)), "probabilistic_adjusted_count needs positive total weight"),
        (lambda: quantify.expected_performance(np.full(3, 0.5), np.ones(2, int), costs=priors.Costs(1, 1)), "probability and decision shapes differ: (3,) vs (2,)"),
        (lambda: quantify.estimate_batch(np.zeros(0), **KW), "estimate_batch needs at least one example"),
        (lambda: quantify.estimate_batch(np.full(3, 0.5), **{**KW, "bootstrap": boot(0, seed=1)}), "resamples must be >= 1, got 0"),
        (lambda: quantify.estimate_batch(np.full(3, 0.5), **{**KW, "bootstrap": boot(30, seed=1, level=1.0)}), "level must be in (0, 1), got 1.0"),
        (lambda: quantify.estimate_batch(np.full(3, 0.5), **{**KW, "prior": 0.0}), "prior must be in (0, 1), got 0.0"),
    ]  # fmt: skip
    for call, message in bad:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message
    columns = {k: np.zeros(2) for k in ("group", "label", "weight", "fit_weight", "probability")}
    with pytest.raises(ValueError, match="^reference column label has 3 rows, not 2$"):
        quantify.Reference(split=np.full(2, "dev_b"), **{**columns, "label": np.zeros(3)})
    with pytest.raises(ValueError, match="^the reference has no dev_b rows$"):
        quantify.Reference(split=np.full(2, "dev_a"), **columns)


KW = {"prior": 0.1, "threshold": 0.5, "costs": COSTS, "bootstrap": boot(30, seed=1)}


def test_probabilities_of_exactly_0_and_1_are_accepted() -> None:
    """The ends of [0, 1] are probabilities: PACC of [0, 1] with means 0 and 1 is 1/2."""
    assert quantify.probabilistic_adjusted_count(
        np.array([0.0, 1.0]), mean_positive=1.0, mean_negative=0.0
    ) == pytest.approx(0.5)


def test_weighted_counts_match_hand_worked_numbers() -> None:
    """ACC, PACC, dev_b's rates and CBPE on four weighted rows, worked out by hand."""
    w = np.array([3.0, 1.0, 2.0, 0.0])
    # ACC: weighted flagged fraction 3/6 = 0.5; (0.5 - 0.1) / (0.9 - 0.1) = 0.5
    d = np.array([1, 0, 0, 1])
    assert quantify.adjusted_count(d, tpr=0.9, fpr=0.1, weights=w) == pytest.approx(0.5)
    # PACC: weighted mean p = (3 * .6 + .2 + 2 * .3) / 6 = 2.6 / 6; means 0.8 and 0.2
    p = np.array([0.6, 0.2, 0.3, 0.9])
    pacc = quantify.probabilistic_adjusted_count(p, mean_positive=0.8, mean_negative=0.2, weights=w)
    assert pacc == pytest.approx((2.6 / 6 - 0.2) / 0.6)
    # equal class means: nothing to adjust with
    assert np.isnan(quantify.probabilistic_adjusted_count(p, mean_positive=0.3, mean_negative=0.3))
    # rates: p at the threshold is flagged; positives rows 0, 2 (weights 3, 2), negatives 1, 3
    y = np.array([1, 0, 1, 0])
    rates = quantify.reference_rates(y, np.array([0.3, 0.3, 0.2, 0.1]), threshold=0.3,
                                     weights=np.array([3.0, 1.0, 2.0, 1.0]))  # fmt: skip
    assert rates == pytest.approx(
        {"tpr": 3 / 5, "fpr": 1 / 2, "mean_positive": 1.3 / 5, "mean_negative": 0.4 / 2}
    )
    # CBPE: TP = .9, FP = .1, FN = .2 + 2 * .6 = 1.4, TN = .8 + 2 * .4 = 1.6; total 4
    perf = quantify.expected_performance(
        np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0]), costs=COSTS,
        weights=np.array([1.0, 1.0, 2.0]),
    )  # fmt: skip
    assert perf == pytest.approx(
        {"precision": 0.9, "recall": 0.9 / 2.3, "alerts_per_1000": 250.0,
         "expected_cost": 1000 * (0.1 + 14.0) / 4}
    )  # fmt: skip
    per_100 = quantify.expected_performance(
        np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0]), costs=COSTS,
        weights=np.array([1.0, 1.0, 2.0]), per=100,
    )  # fmt: skip
    assert per_100["alerts_per_1000"] == pytest.approx(25.0)
    assert per_100["expected_cost"] == pytest.approx(100 * 14.1 / 4)


def test_reference_rates_of_a_one_class_reference_are_not_available() -> None:
    """Without both classes there are no rates: all four are NaN."""
    for y in (np.zeros(3, int), np.ones(3, int)):
        rates = quantify.reference_rates(y, np.array([0.1, 0.5, 0.9]), threshold=0.5)
        assert set(rates) == {"tpr", "fpr", "mean_positive", "mean_negative"}
        assert all(np.isnan(v) for v in rates.values()), rates


def test_one_example_batch_has_no_interval_and_says_why() -> None:
    """A batch of one example resamples to itself: every estimate's resamples give its point,
    one value, so no interval is printed (a known count, alerts per 1,000, keeps its own).
    EM puts its prior at 1 (a positive-looking example) or 0, and the estimates at that
    prior stay finite."""
    for p, em in ((0.9, 1.0), (0.01, 0.0)):
        out = quantify.estimate_batch(np.array([p]), **KW)
        assert out["examples"] == 1 and out["bundle_prior"] == 0.1
        est = out["estimated_prior"]
        assert est["value"] == em and est["ci"] == [None, None]
        assert est["interval_refused"] == quantify.collapsed_reason(em)
        assert out["drift"]["prior_shift"] is None  # no interval, no verdict
        at = out["estimated_at_threshold"]
        assert at["threshold"] == 0.5 and at["decisions"] == "at the bundle's prior"
        for name in ("recall", "alerts_per_1000", "expected_cost"):
            assert np.isfinite(at[name]["value"]), name
        assert at["alerts_per_1000"]["ci"] == [at["alerts_per_1000"]["value"]] * 2
        assert at["expected_cost"]["ci"] == [None, None]
        # labels drawn from a sure probability: every resample gives one value; with no
        # alert (em 0) precision is undefined and recall is never drawn (undefined)
        names = ["recall"] if not em else []
        names += ["the prior (EM)"] + (["precision", "recall"] if em else []) + ["expected_cost"]
        assert out["warnings"][0] == (
            f"the batch holds about {em:.1f} positives by the estimate (fewer than 10): too few "
            "to estimate its prior or precision well; the intervals are wide"
        )
        assert [w.split(":")[0] for w in out["warnings"][1:]] == [
            f"no 95% interval for {name}" for name in names
        ]
    # nothing flagged: precision is undefined on every resample, so its interval is absent
    low = quantify.estimate_batch(np.array([0.01]), **KW)["estimated_at_threshold"]["precision"]
    assert np.isnan(low["value"]) and low["ci"] == [None, None]


def test_an_interval_undefined_in_too_many_resamples_is_refused_with_the_reason() -> None:
    """A batch with about two positives: in many resamples no positive is drawn, so recall is
    undefined there. Its interval is then not printed (the defined draws alone would be a
    biased interval), and a warning says why; below one tail's share it is printed."""
    rng = np.random.default_rng(5)
    y = np.zeros(400, dtype=np.int8)
    p = np.r_[np.full(2, 0.7), np.full(398, 0.001)]
    out = quantify.estimate_batch(p, prior=0.01, threshold=0.5, costs=COSTS,
                                  bootstrap=boot(200), rng=rng)  # fmt: skip
    share = 0.3**2 * 0.999**398  # no positive drawn: 0.3^2 for the alerts, 0.999^398 the rest
    assert share > 0.025
    assert out["estimated_at_threshold"]["recall"]["ci"] == [None, None]
    assert any(w.startswith("no 95% interval for recall:") for w in out["warnings"])
    assert out["estimated_at_threshold"]["precision"]["ci"][0] is not None  # 2 alerts: defined
    assert len(y) == len(p)
    values = np.r_[np.full(98, 0.5), np.nan, np.nan]  # 2% undefined: under a 2.5% tail
    assert quantify._interval(values, 0.95) == [0.5, 0.5]
    assert quantify._interval(np.r_[values, np.nan], 0.95) == [None, None]  # 3%: over


def test_the_warning_starts_below_ten_expected_positives() -> None:
    """Ten sure positives (EM's estimate exactly 1) make 10 expected positives: no warning;
    nine do."""
    sure = 1 - 1e-9

    def few(n: int) -> list[str]:
        warnings = quantify.estimate_batch(np.full(n, sure), **KW)["warnings"]
        return [w for w in warnings if w.startswith("the batch holds about")]

    assert few(10) == []
    assert "about 9.0 positives" in few(9)[0]


def test_the_summary_says_how_its_intervals_and_cross_checks_were_made() -> None:
    """The words beside the numbers: the interval's level, resamples and what was resampled,
    the decisions' prior, and why ACC/PACC and KS are absent without a reference."""
    rng = np.random.default_rng(67)
    _, p = draw(rng, 40, prior=0.1, at=0.1)
    plain = quantify.estimate_batch(p, **KW)
    assert plain["estimated_prior"]["method"] == quantify.EM_METHOD
    assert plain["estimated_prior"]["interval"] == (
        "95% percentile bootstrap, 30 resamples of the batch's examples"
    )
    assert plain["estimated_prior"]["cross_check"] == {
        "available": False,
        "reason": "not available: the bundle stores no dev_b reference (built before format 2)",
    }
    assert plain["drift"] == {
        "prior_shift": plain["drift"]["prior_shift"], "score_shift_ks": None, "p_value": None,
        "against": None,
    }  # fmt: skip
    assert plain["calibration"] == cal.IDENTITY.as_dict()
    ref = reference(rng, n=300)
    full = quantify.estimate_batch(
        p,
        **{**KW, "bootstrap": boot(30, seed=1, level=0.5)},
        groups=np.arange(40) // 2,
        reference=ref,
        adapt=True,
    )
    assert full["estimated_prior"]["interval"] == (
        "50% percentile bootstrap, 30 resamples of the batch's groups and of dev_b's groups "
        "(the recalibration refitted on each)"
    )
    assert full["estimated_prior"]["cross_check"]["rates_from"] == "dev_b, as stored in the bundle"
    assert full["estimated_at_threshold"]["decisions"] == "re-made at the estimated prior"
    assert full["estimated_at_threshold"]["interval"] == (
        "holds the batch's realised value: each resample measures the whole batch against "
        "labels drawn from that resample's probabilities"
    )
    assert full["drift"]["against"] == (
        "dev_b's probabilities (prior-corrected, before recalibration)"
    )


def one_group_reference(rng: np.random.Generator, n: int = 300) -> quantify.Reference:
    """dev_b in a single group, so a group resample always draws it whole: it cannot vary."""
    ref = reference(rng, n=n)
    return quantify.Reference(**{**ref.__dict__, "group": np.full(n, "all")})


def test_intervals_resample_the_batch_by_group_and_the_reference_with_it() -> None:
    """A batch in one group with a reference in one group never varies: every interval of the
    prior would be its point (one value: refused), and precision and cost vary by the labels drawn alone (the realised
    values of a batch are uncertain even where its prior is known). Resampled by example,
    the batch alone widens every interval, ACC's and PACC's too."""
    rng = np.random.default_rng(71)
    ref = one_group_reference(rng)
    _, p = draw(rng, 200, prior=0.3, at=0.1)
    fixed = quantify.estimate_batch(p, **KW, reference=ref, groups=np.full(200, "g"))
    by_example = quantify.estimate_batch(p, **KW, reference=ref)
    for out in (fixed, by_example):
        est = out["estimated_prior"]
        pairs = [est, est["cross_check"]["acc"], est["cross_check"]["pacc"]]
        drawn = [out["estimated_at_threshold"][k] for k in ("precision", "expected_cost")]
        for pair in pairs + drawn:
            low, high = pair["ci"]
            if out is fixed and pair in pairs:  # one value: refused, the point kept
                assert low is None and high is None, pair
                assert pair["interval_refused"] == quantify.collapsed_reason(pair["value"])
            else:
                assert high - low > 0.01 * abs(pair["value"]), pair


def test_ks_compares_the_batch_with_dev_b_only() -> None:
    """The drift test is scipy's two-sample KS of the batch against dev_b's probabilities, even
    when the reference also holds the dev_a rows a calibration was fitted on."""
    rng = np.random.default_rng(73)
    ref = reference(rng, n=300)
    _, dev_a = draw(rng, 300, prior=0.5, at=0.5)  # far from dev_b: it would change the test
    both = quantify.Reference(
        split=np.r_[np.full(300, "dev_a"), ref.split],
        group=np.r_[ref.group, ref.group],
        label=np.r_[ref.label, ref.label],
        weight=np.ones(600),
        fit_weight=np.ones(600),
        probability=np.r_[dev_a, ref.probability],
    )
    _, p = draw(rng, 200, prior=0.1, at=0.05)
    drift = quantify.estimate_batch(p, **KW, reference=both)["drift"]
    expected = ks_2samp(p, ref.probability)
    assert drift["score_shift_ks"] == pytest.approx(expected.statistic, rel=1e-12)
    assert drift["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_a_generator_draws_as_its_integer_seed_does() -> None:
    """``rng`` draws instead of the bootstrap's seed: ``default_rng(4)`` gives what seed 4 gives."""
    _, p = draw(np.random.default_rng(79), 100, prior=0.2, at=0.1)
    kw = {**KW, "bootstrap": boot(30, seed=4)}
    assert quantify.estimate_batch(p, **kw, rng=np.random.default_rng(4)) == (
        quantify.estimate_batch(p, **kw)
    )
    one_resample = quantify.estimate_batch(p, **{**kw, "bootstrap": boot(1, seed=4)})
    assert one_resample["estimated_prior"]["ci"] == [None, None]  # one resample: one value
    assert one_resample["estimated_prior"]["interval_refused"].startswith("every resample gave")


def test_adapt_to_prior_decides_at_the_threshold_and_clamps_the_prior() -> None:
    """At an unchanged prior the probabilities stay put and p equal to the threshold is flagged;
    a prior of exactly 0 or 1 (EM's ends) moves every probability to that end, finitely."""
    p = np.array([0.3, 0.2, 0.7])
    moved, decision = quantify.adapt_to_prior(p, from_prior=0.2, to_prior=0.2, threshold=0.3)
    np.testing.assert_allclose(moved, p, rtol=1e-12)
    assert decision.tolist() == [1, 0, 1]
    for end in (0.0, 1.0):
        moved, decision = quantify.adapt_to_prior(p, from_prior=0.2, to_prior=end, threshold=0.3)
        np.testing.assert_allclose(moved, end, atol=1e-7)
        assert decision.tolist() == [int(end)] * 3
    moved, _ = quantify.adapt_to_prior(p, from_prior=0.2, to_prior=0.5, threshold=0.3)
    np.testing.assert_allclose(moved, priors.shift_prior(p, from_prior=0.2, to_prior=0.5))


def test_em_weights_count_as_repeated_rows_and_certain_rows_are_allowed() -> None:
    """A weight of 2 is the row twice; a weight of 0 is the row absent. Probabilities of
    exactly 0 and 1 (certain rows) still give SLD's fixed point, not NaN."""
    p = np.array([0.6, 0.05, 0.2, 0.9])
    weighted = quantify.em_prior(p, prior=0.2, weights=np.array([2.0, 1.0, 0.0, 1.0]))
    repeated = quantify.em_prior(np.array([0.6, 0.6, 0.05, 0.9]), prior=0.2)
    assert 0 < weighted < 1 and weighted == pytest.approx(repeated, rel=1e-9)
    certain = np.array([1.0, 0.0, 0.0, 0.3, 0.1])
    em = quantify.em_prior(certain, prior=0.2)
    assert 0 < em < 1 and em == pytest.approx(sld_iterations(certain, 0.2, 2000), rel=1e-6)


@pytest.mark.parametrize("adapt", [False, True])
def test_estimates_at_the_threshold_are_cbpe_at_the_em_prior(adapt: bool) -> None:
    """The point estimates at the threshold are CBPE on the batch's (recalibrated) probabilities
    moved to EM's prior, judging the decisions at the bundle's prior, or re-made there."""
    rng = np.random.default_rng(83)
    y, p = draw(rng, 400, prior=0.2, at=0.05)
    fit = cal.fit_calibration(p, y, method="platt", fitted_on="dev_b")  # a non-identity map
    out = quantify.estimate_batch(p, **{**KW, "prior": 0.05, "threshold": 0.3},
                                  calibration=fit, adapt=adapt)  # fmt: skip
    q = fit.apply(p)
    em = quantify.em_prior(q, prior=0.05)
    assert out["estimated_prior"]["value"] == pytest.approx(em, rel=1e-12)
    moved = priors.shift_prior(q, from_prior=0.05, to_prior=em)
    decision = ((moved if adapt else q) >= 0.3).astype(int)
    assert (decision != (q >= 0.3)).any() == adapt  # re-deciding at the estimate changes some
    expected = quantify.expected_performance(moved, decision, costs=COSTS)
    at = out["estimated_at_threshold"]
    assert {k: at[k]["value"] for k in expected} == pytest.approx(expected, rel=1e-12)


def test_a_total_weight_of_one_or_a_single_positive_is_enough() -> None:
    """One example (total weight 1) gives ACC and PACC; a reference with a single positive
    (weight 1) gives rates; measured performance uses the weights it is given."""
    assert quantify.adjusted_count(np.array([1]), tpr=0.9, fpr=0.1) == 1.0
    assert quantify.probabilistic_adjusted_count(
        np.array([0.5]), mean_positive=0.9, mean_negative=0.1
    ) == pytest.approx(0.5)
    for y in (np.array([1, 0, 0]), np.array([0, 1, 1])):  # one positive, then one negative
        rates = quantify.reference_rates(y, np.array([0.8, 0.2, 0.6]), threshold=0.5)
        assert not any(np.isnan(v) for v in rates.values()), rates
    measured = quantify.measured_performance(
        np.array([1, 0, 1]), np.array([1, 1, 0]), costs=COSTS,
        weights=np.array([1.0, 3.0, 1.0]),
    )  # fmt: skip
    assert measured["precision"] == pytest.approx(1 / 4)
    assert measured["expected_cost"] == pytest.approx(1000 * (3 + 10) / 5)


def test_a_probability_at_the_threshold_is_flagged_everywhere() -> None:
    """p equal to the threshold is an alert: in the alerts counted at the bundle's prior, in
    ACC's flagged fraction, and after re-deciding at EM's prior (here equal to the bundle's, so
    that nothing moves); adapted decisions are integers."""
    rng = np.random.default_rng(89)
    ref = reference(rng, n=300)
    p = np.array([0.5, 0.5, 0.2, 0.9, 0.1])
    out = quantify.estimate_batch(p, **KW, reference=ref)
    assert out["estimated_at_threshold"]["alerts_per_1000"]["value"] == pytest.approx(600.0)
    rates = quantify.reference_rates(ref.label, ref.probability, threshold=0.5)
    acc = quantify.adjusted_count(p >= 0.5, tpr=rates["tpr"], fpr=rates["fpr"])
    assert out["estimated_prior"]["cross_check"]["acc"]["value"] == pytest.approx(acc, rel=1e-12)
    # every p at or below the prior: EM's estimate is 0, clamped to 1e-9, which is the prior
    tiny = np.array([1e-9, 1e-10, 1e-10])
    kw = {**KW, "prior": 1e-9, "threshold": 1e-9, "adapt": True}
    at = quantify.estimate_batch(tiny, **kw)["estimated_at_threshold"]
    assert at["alerts_per_1000"]["value"] == pytest.approx(1000 / 3)
    _, decision = quantify.adapt_to_prior(p, from_prior=0.1, to_prior=0.1, threshold=0.5)
    assert decision.dtype == np.int8


def test_acc_and_pacc_weigh_dev_b_by_its_manifest_weights_and_resample_it() -> None:
    """dev_b's rates are weighted by its manifest weights (heavier negatives move them), and a
    batch that cannot vary (one group) still gets ACC/PACC intervals from dev_b's resampling."""
    rng = np.random.default_rng(97)
    ref = reference(rng, n=600)
    weight = np.where(ref.label == 0, 1.0 + (ref.probability > 0.2) * 4.0, 1.0)
    heavy = quantify.Reference(**{**ref.__dict__, "weight": weight})
    _, p = draw(rng, 200, prior=0.2, at=0.05)
    out = quantify.estimate_batch(p, **{**KW, "prior": 0.05}, reference=heavy,
                                  groups=np.full(200, "g"))  # fmt: skip
    rates = quantify.reference_rates(ref.label, ref.probability, threshold=0.5, weights=weight)
    cross = out["estimated_prior"]["cross_check"]
    acc = quantify.adjusted_count(p >= 0.5, tpr=rates["tpr"], fpr=rates["fpr"])
    pacc = quantify.probabilistic_adjusted_count(
        p, mean_positive=rates["mean_positive"], mean_negative=rates["mean_negative"]
    )
    assert cross["acc"]["value"] == pytest.approx(acc, rel=1e-12)
    assert cross["pacc"]["value"] == pytest.approx(pacc, rel=1e-12)
    for name in ("acc", "pacc"):
        low, high = cross[name]["ci"]
        assert high - low > 0.005, (name, low, high)


def test_reference_fit_weights_keep_uneven_manifest_weights_within_a_class() -> None:
    """dev_a's fit weights at the training prior keep the manifest's 1:3 within each class, and
    the stored weights are floats whatever the input's type."""
    frame = pd.DataFrame(
        {
            "split": ["dev_a"] * 4 + ["dev_b"] * 2,
            "group": list("abcdef"),
            "label": [1, 1, 0, 0, 1, 0],
            "weight": [1, 3, 1, 3, 1, 1],
            "probability": [0.6, 0.7, 0.2, 0.1, 0.8, 0.3],
        }
    )
    dev_a_fit = cal.Calibration(method="platt", fitted_on="dev_a")
    ref = quantify.reference_from_predictions(
        frame, prior=0.3, training_prior=0.25, calibration=dev_a_fit
    )
    fw = ref.fit_weight[:4]
    assert fw[1] / fw[0] == pytest.approx(3) and fw[3] / fw[2] == pytest.approx(3)
    assert fw[:2].sum() / fw.sum() == pytest.approx(0.25)
    ints = quantify.reference_from_rows(
        *(frame[c].to_numpy() for c in ("split", "group", "label", "weight", "probability")),
        prior=0.3, training_prior=0.25, calibration=dev_a_fit,
    )  # fmt: skip
    assert ints.weight.dtype == np.float64


def test_an_interval_of_one_value_is_refused_but_a_known_count_keeps_its_own() -> None:
    """Every example at probability 1e-6 and every one an alert: each resample's prior is 0
    and its drawn labels all 0, so EM's, precision's and cost's intervals would be one
    value, which no finite batch supports (the coverage benchmark's never held the truth).
    They are refused with the reason, in the entry and the warnings; alerts per 1,000 are
    the batch's own count, known exactly, and keep their one-value interval."""
    b = priors.Bootstrap(resamples=100, level=0.95, seed=3)
    out = quantify.estimate_batch(
        np.full(400, 1e-6), prior=0.01, threshold=1e-7, costs=COSTS, bootstrap=b
    )
    at = out["estimated_at_threshold"]
    for entry in (out["estimated_prior"], at["precision"], at["expected_cost"]):
        assert entry["ci"] == [None, None]
        assert entry["interval_refused"].startswith("every resample gave ")
    assert out["estimated_prior"]["value"] == 0.0  # the point estimate stays
    assert out["drift"]["prior_shift"] is None  # no interval: no verdict
    assert at["alerts_per_1000"]["ci"] == [1000.0, 1000.0]
    assert "interval_refused" not in at["alerts_per_1000"]
    assert any(w.startswith("no 95% interval for the prior (EM): every") for w in out["warnings"])
    assert quantify.collapsed_reason(0.0) == (
        "every resample gave 0: the probabilities left nothing to draw (the batch's alerts, or "
        "its positives by the estimate, all at 0 or 1), which no finite batch supports"
    )
    assert quantify._collapsed(
        {"em": [0.1, 0.1], "alerts_per_1000": [3.0, 3.0], "recall": [None, None],
         "precision": [0.2, 0.3]}
    ) == {"em": 0.1}  # fmt: skip
    normal = quantify.estimate_batch(
        draw(np.random.default_rng(67), 40, prior=0.1, at=0.1)[1], **KW
    )
    assert "interval_refused" not in json.dumps(normal)


def test_the_prior_shift_verdict_counts_the_intervals_ends_as_inside() -> None:
    """``drift.prior_shift``: the bundle's prior outside EM's interval; at either end it is
    inside, and without an interval there is no verdict."""
    assert quantify.outside([0.01, 0.02], 0.01) is False
    assert quantify.outside([0.01, 0.02], 0.02) is False
    assert quantify.outside([0.01, 0.02], 0.0099) is True
    assert quantify.outside([0.01, 0.02], 0.0201) is True
    assert quantify.outside([None, None], 0.01) is None
    assert quantify.outside([0.01, None], 0.01) is None  # half an interval: none either
    assert quantify.outside([None, 0.02], 0.01) is None


def test_acc_reads_dev_b_decisions_on_log_odds_as_the_batch_does() -> None:
    """ACC's dev_b rates come from the same rule as the batch's alerts, decided on log-odds:
    a dev_b positive at log-odds just below the threshold's (its probability rounds to the
    threshold itself) is not flagged, as it would not be in the batch. Decided on the
    rounded probability instead, it would count as flagged and move tpr from 1/2 to 1."""
    just_below = -1e-17  # sigmoid rounds it to exactly 0.5, the threshold
    assert 1 / (1 + np.exp(-just_below)) == 0.5
    z_ref = np.r_[np.full(50, just_below), np.full(50, 5.0), np.full(400, -5.0)]
    label = np.r_[np.ones(100, np.int8), np.zeros(400, np.int8)]
    ref = quantify.Reference(
        split=np.full(500, "dev_b"), group=np.arange(500).astype(str), label=label,
        weight=np.ones(500), fit_weight=np.ones(500), probability=1 / (1 + np.exp(-z_ref)),
        log_odds=z_ref,
    )  # fmt: skip
    batch = np.r_[np.full(30, 5.0), np.full(170, -5.0)]  # 15% flagged
    out = quantify.estimate_batch(log_odds=batch, **KW, reference=ref)
    fpr = 1 / (1 + np.exp(5.0)) >= 0.5  # no dev_b negative flagged
    assert not fpr
    # tpr 1/2, fpr 0: ACC = 0.15 / 0.5 = 0.3 (tpr 1 would give 0.15)
    assert out["estimated_prior"]["cross_check"]["acc"]["value"] == pytest.approx(0.3)
