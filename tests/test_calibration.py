"""The recalibration maps (``dsprior.calibration``): the logistic fit against scikit-learn,
Platt and isotonic repairing miscalibrated probabilities, the choice on dev_b, the records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from dsprior import calibration as cal
from dsprior import priors, quantify
from dsprior.evaluation.recalibration import fit_recalibration
from tests.factories import EVAL_BETA, EVAL_PRIOR, draw


def test_logistic_fit_matches_sklearn() -> None:
    rng = np.random.default_rng(29)
    x = rng.normal(size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(1.7 * x - 2.0)))).astype(int)
    w = np.where(y == 0, 3.0, 1.0)
    slope, intercept = cal.fit_logistic(x, y, w)
    model = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000)
    model.fit(x[:, None], y, sample_weight=w)
    assert slope == pytest.approx(model.coef_[0, 0], rel=1e-5)
    assert intercept == pytest.approx(model.intercept_[0], rel=1e-5)


def test_platt_on_dev_b_repairs_overconfident_probabilities() -> None:
    rng = np.random.default_rng(31)
    y, p = draw(rng, 20_000, prior=0.02, at=0.02)
    over = priors.shift_prior(p, from_prior=0.02, to_prior=0.06)  # 3x the odds: over-predicts
    fit = cal.fit_calibration(over, y, method="platt", fitted_on="dev_b")
    before = cal.calibration_quality(y, over)
    after = cal.calibration_quality(y, fit.apply(over))
    assert before["mean_to_rate"] > 1.2
    assert after["mean_to_rate"] == pytest.approx(1.0, abs=0.02)
    assert after["calibration_error"] < before["calibration_error"] / 3
    assert after["log_loss"] < before["log_loss"]


def test_a_dev_a_fit_at_the_training_prior_carries_through_the_prior_correction() -> None:
    """Platt on raw scores at the training prior, then the correction: one affine log-odds map."""
    rng = np.random.default_rng(37)
    beta = 0.05
    y, p_s = draw(rng, 20_000, prior=1 / 3, at=1 / 3)
    squashed = 1 / (1 + np.exp(-0.6 * cal.log_odds(p_s)))  # under-confident raw scores
    p_prior = priors.correct_prior(squashed, beta=beta)
    fit = cal.fit_calibration(
        p_prior, y, method="platt", fitted_on="dev_a", offset=float(np.log(beta))
    )
    direct = cal.fit_calibration(squashed, y, method="platt", fitted_on="dev_b")
    np.testing.assert_allclose(
        fit.apply(p_prior), priors.correct_prior(direct.apply(squashed), beta=beta), rtol=1e-9
    )
    assert fit.slope == pytest.approx(1 / 0.6, rel=0.05)


def test_choose_calibration_picks_the_lowest_dev_b_log_loss_and_records_all() -> None:
    rng = np.random.default_rng(41)
    y, p = draw(rng, 6000, prior=0.02, at=0.02)
    groups = np.arange(6000) // 2
    best, table = cal.choose_calibration(
        dev_a=None, dev_b=(p, y, np.ones(6000), groups), dev_a_offset=0.0
    )
    assert {row["method"] for row in table} == {"none", "platt", "isotonic"}
    losses = {row["method"]: row["dev_b_log_loss"] for row in table}
    assert best.method == min(losses, key=losses.get)
    over = priors.shift_prior(p, from_prior=0.02, to_prior=0.06)
    best, _ = cal.choose_calibration(
        dev_a=None, dev_b=(over, y, np.ones(6000), groups), dev_a_offset=0.0
    )
    assert best.method in ("platt", "isotonic") and best.fitted_on == "dev_b"


def test_calibration_records_are_validated() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        cal.Calibration(method="spline")
    with pytest.raises(ValueError, match="slope must be > 0"):
        cal.Calibration(method="platt", fitted_on="dev_b", slope=-1.0)
    with pytest.raises(ValueError, match=r"unknown keys \['bias'\]"):
        cal.Calibration.from_dict({"method": "none", "bias": 1})
    fit = cal.Calibration(method="platt", fitted_on="dev_b", slope=1.2, intercept=-0.3)
    assert cal.Calibration.from_dict(fit.as_dict()) == fit
    p = np.array([0.0, 0.01, 0.5, 1.0])
    np.testing.assert_array_equal(cal.IDENTITY.apply(p), p)


def test_logistic_fit_survives_saturated_scores() -> None:
    """A float32 sigmoid saturates: log-odds pile up at +-27.6 and a plain Newton step from
    the identity overshoots by orders of magnitude; the damped fit must stay finite and
    lower the loss."""
    rng = np.random.default_rng(43)
    y = (rng.random(4000) < 0.3).astype(int)
    x = np.where(y == 1, 27.6, -27.6)
    noisy = rng.random(4000) < 0.05
    x[noisy] = -x[noisy]  # a few confident mistakes
    middle = rng.random(4000) < 0.2  # and some scores that did not saturate
    x[middle] = rng.normal(size=int(middle.sum())) + np.where(y[middle] == 1, 1.0, -1.0)
    fit = cal.fit_calibration(expit_of(x), y, method="platt", fitted_on="dev_b")
    assert np.isfinite(fit.slope) and 0 < fit.slope < 1
    assert cal.weighted_log_loss(y, fit.apply(expit_of(x))) < cal.weighted_log_loss(y, expit_of(x))


def expit_of(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_isotonic_gives_a_saturated_pile_its_own_rate() -> None:
    """Raw scores saturate at 1 for most alerts; isotonic maps that pile to its observed rate,
    where a two-parameter map cannot, and CBPE precision then matches the measured one."""
    rng = np.random.default_rng(47)
    n = 40_000
    y = (rng.random(n) < 0.01).astype(int)
    x = rng.normal(size=n) + np.where(y == 1, 3.0, -3.0)
    saturated = (y == 1) & (rng.random(n) < 0.6) | (y == 0) & (rng.random(n) < 0.0005)
    x[saturated] = 27.6  # the float32 sigmoid's 1.0, clipped
    p = expit_of(x)
    iso = cal.fit_calibration(p, y, method="isotonic", fitted_on="dev_b")
    platt = cal.fit_calibration(p, y, method="platt", fitted_on="dev_b")
    pile = x == 27.6
    # the pile's value: its own rate, or pooled with its neighbours where PAV must keep order
    assert iso.apply(p)[pile][0] == pytest.approx(y[pile].mean(), abs=0.05)
    assert abs(platt.apply(p)[pile][0] - y[pile].mean()) > abs(
        iso.apply(p)[pile][0] - y[pile].mean()
    )
    decision = (p >= 0.5).astype(int)
    measured = quantify.measured_performance(y, decision, cost_fp=1, cost_fn=10)["precision"]
    for fit, tolerance in ((iso, 0.02),):
        est = quantify.expected_performance(fit.apply(p), decision, cost_fp=1, cost_fn=10)
        assert est["precision"] == pytest.approx(measured, abs=tolerance)
    assert cal.weighted_log_loss(y, iso.apply(p)) < cal.weighted_log_loss(y, platt.apply(p))
    again = cal.Calibration.from_dict(json.loads(json.dumps(iso.as_dict())))
    np.testing.assert_array_equal(again.apply(p), iso.apply(p))
    with pytest.raises(ValueError, match="knots_y must be nondecreasing"):
        cal.Calibration(method="isotonic", fitted_on="dev_b", knots_x=(0, 1), knots_y=(0.5, 0.1))


def test_cross_fitted_log_loss_scores_rows_the_fold_map_never_saw() -> None:
    """On scores that carry no information, isotonic fitted to the rows it is scored on looks
    better than it is; cross-fitted (each fold's map fitted on the other folds) it must score
    worse than in-sample, so that dev_b's choice does not fall to the overfitted map."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = 200
        p = 0.5 + 0.01 * rng.uniform(-1, 1, n)  # distinct values, all near the truth 0.5
        y = (rng.random(n) < 0.5).astype(int)  # independent of p
        w, groups = np.ones(n), np.arange(n)
        in_sample = cal.fit_calibration(p, y, w, method="isotonic", fitted_on="dev_b")
        crossed = cal.cross_fitted_log_loss(p, y, w, groups, method="isotonic")
        assert crossed > cal.weighted_log_loss(y, in_sample.apply(p), w), seed
        assert crossed > cal.weighted_log_loss(y, p, w), seed  # no better than the truth
        best, _ = cal.choose_calibration(dev_a=None, dev_b=(p, y, w, groups), dev_a_offset=0.0)
        assert best.method != "isotonic", seed


def test_dev_a_candidates_are_fitted_at_the_training_prior(predictions) -> None:
    """dev_a's temperature and Platt maps are scikit-learn's logistic fits on its raw log-odds
    with the negatives weighted to the training prior, not to the production prior."""
    training_prior = EVAL_PRIOR / (EVAL_PRIOR + (1 - EVAL_PRIOR) * EVAL_BETA)  # dev_a's thinning
    offset = float(np.log(EVAL_BETA))
    _, record = fit_recalibration(
        predictions, prior=EVAL_PRIOR, training_prior=training_prior, offset=offset
    )
    fits = {c["method"]: c for c in record["candidates"] if c["fitted_on"] == "dev_a"}
    dev_a = predictions[predictions["split"] == "dev_a"]
    y, weight = dev_a["label"].to_numpy(), dev_a["weight"].to_numpy()
    x = logit(dev_a["probability"].to_numpy())[:, None] - offset

    def sklearn_fit(at, method):
        # negatives scaled so that the weighted positive fraction is ``at``
        scale = weight[y == 1].sum() / weight[y == 0].sum() * (1 - at) / at
        w = np.where(y == 1, weight, weight * scale)
        model = LogisticRegression(
            C=np.inf, fit_intercept=method == "platt", tol=1e-12, max_iter=10_000
        ).fit(x, y, sample_weight=w)
        slope = model.coef_[0, 0]
        return slope, float(np.atleast_1d(model.intercept_)[0]) + offset * (1 - slope)

    assert set(fits) == {"temperature", "platt"}
    for method, fit in fits.items():
        slope, intercept = sklearn_fit(training_prior, method)
        assert fit["slope"] == pytest.approx(slope, rel=1e-5), method
        assert fit["intercept"] == pytest.approx(intercept, rel=1e-5, abs=1e-8), method
        # the fixture tells the two weightings apart: at the production prior the fit differs
        wrong_slope, wrong_intercept = sklearn_fit(EVAL_PRIOR, method)
        assert abs(wrong_slope - slope) + abs(wrong_intercept - intercept) > 0.3, method
