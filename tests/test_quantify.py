"""Label-free estimation: EM recovers known priors, matches QuaPy, CBPE matches measured
precision, prior_shift fires for a shifted batch only.

The recalibration maps (``dsprior.calibration``) are tested in test_calibration.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsprior import calibration as cal
from dsprior import priors, quantify
from tests.factories import draw

FIXTURE = Path(__file__).parent / "fixtures" / "quapy_binary.json"


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
            p, prior=bundle_prior, threshold=0.3, cost_fp=1, cost_fn=10, resamples=100,
            seed=replicate,
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


# ----------------------------------------------------------------------------- CBPE


def test_cbpe_expected_precision_matches_measured_on_a_calibrated_simulation() -> None:
    rng = np.random.default_rng(11)
    y, p = draw(rng, 200_000, prior=0.02, at=0.02)
    decision = (p >= 0.2).astype(np.int8)
    expected = quantify.expected_performance(p, decision, cost_fp=1, cost_fn=10)
    measured = quantify.measured_performance(y, decision, cost_fp=1, cost_fn=10)
    assert expected["precision"] == pytest.approx(measured["precision"], abs=0.02)
    assert expected["recall"] == pytest.approx(measured["recall"], abs=0.02)
    assert expected["expected_cost"] == pytest.approx(measured["expected_cost"], rel=0.05)
    assert expected["alerts_per_1000"] == pytest.approx(measured["alerts_per_1000"], abs=1e-9)
    # miscalibrated (probabilities twice the odds): the estimate is off, so the test can fail
    wrong = quantify.expected_performance(
        priors.shift_prior(p, from_prior=0.02, to_prior=0.06), decision, cost_fp=1, cost_fn=10
    )
    assert abs(wrong["precision"] - measured["precision"]) > 0.05


def test_cbpe_at_the_estimated_prior_follows_a_moved_batch() -> None:
    rng = np.random.default_rng(5)
    y, p = draw(rng, 60_000, prior=0.005, at=0.02)  # the batch's prior fell to a quarter
    out = quantify.estimate_batch(
        p, prior=0.02, threshold=0.2, cost_fp=1, cost_fn=10, resamples=100, seed=2
    )
    measured = quantify.measured_performance(y, (p >= 0.2).astype(int), cost_fp=1, cost_fn=10)
    est = out["estimated_at_threshold"]["precision"]
    assert est["ci"][0] <= measured["precision"] <= est["ci"][1]
    naive = quantify.expected_performance(p, (p >= 0.2).astype(int), cost_fp=1, cost_fn=10)
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


def test_prior_shift_true_for_a_shifted_batch_and_false_for_an_unshifted_one() -> None:
    rng = np.random.default_rng(13)
    ref = reference(rng)
    kw = {"prior": 0.05, "threshold": 0.3, "cost_fp": 1, "cost_fn": 10, "resamples": 100}
    _, same = draw(rng, 8000, prior=0.05, at=0.05)
    _, moved = draw(rng, 8000, prior=0.15, at=0.05)
    calm = quantify.estimate_batch(same, reference=ref, seed=1, **kw)
    shifted = quantify.estimate_batch(moved, reference=ref, seed=1, **kw)
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
    kw = {"prior": 0.05, "threshold": 0.3, "cost_fp": 1, "cost_fn": 10, "resamples": 150}
    alone = quantify.estimate_batch(p, calibration=fit, seed=3, **kw)
    both = quantify.estimate_batch(p, calibration=fit, reference=ref, seed=3, **kw)
    width = lambda out: np.diff(out["estimated_prior"]["ci"])[0]  # noqa: E731
    assert width(both) > 1.5 * width(alone)


def test_a_tiny_batch_warns_instead_of_failing_and_old_bundles_say_not_available() -> None:
    rng = np.random.default_rng(19)
    _, p = draw(rng, 50, prior=0.02, at=0.02)
    out = quantify.estimate_batch(
        p, prior=0.02, threshold=0.3, cost_fp=1, cost_fn=10, resamples=50, seed=1
    )
    assert out["warnings"] and "too few" in out["warnings"][0]
    assert out["estimated_prior"]["cross_check"]["available"] is False
    assert out["drift"]["score_shift_ks"] is None
    json.dumps(out)  # plain JSON types


def test_estimates_are_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(23)
    _, p = draw(rng, 2000, prior=0.05, at=0.05)
    kw = {"prior": 0.05, "threshold": 0.3, "cost_fp": 1, "cost_fn": 10, "resamples": 30}
    assert quantify.estimate_batch(p, seed=4, **kw) == quantify.estimate_batch(p, seed=4, **kw)
