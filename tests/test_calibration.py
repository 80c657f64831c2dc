"""The recalibration maps (``dsprior.calibration``): the logistic fit against scikit-learn,
Platt and isotonic repairing miscalibrated probabilities, the choice on dev_b, the records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

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
        dev_a=None, dev_b=(cal.log_odds(p), y, np.ones(6000), groups), dev_a_offset=0.0
    )
    assert {row["method"] for row in table} == {"none", "platt", "isotonic"}
    losses = {row["method"]: row["dev_b_log_loss"] for row in table}
    assert best.method == min(losses, key=losses.get)
    over = priors.shift_prior(p, from_prior=0.02, to_prior=0.06)
    best, _ = cal.choose_calibration(
        dev_a=None, dev_b=(cal.log_odds(over), y, np.ones(6000), groups), dev_a_offset=0.0
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
    measured = quantify.measured_performance(y, decision, costs=priors.Costs(1, 10))["precision"]
    for fit, tolerance in ((iso, 0.02),):
        est = quantify.expected_performance(fit.apply(p), decision, costs=priors.Costs(1, 10))
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
        crossed = cal.cross_fitted_log_loss(cal.log_odds(p), y, w, groups, method="isotonic")
        assert crossed > cal.weighted_log_loss(y, in_sample.apply(p), w), seed
        assert crossed > cal.weighted_log_loss(y, p, w), seed  # no better than the truth
        best, _ = cal.choose_calibration(
            dev_a=None, dev_b=(cal.log_odds(p), y, w, groups), dev_a_offset=0.0
        )
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


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"method": "isotonic"},
            "isotonic calibration needs knots_x and knots_y of one length >= 1, got 0 and 0",
        ),
        (
            {"method": "isotonic", "knots_x": (0, 1), "knots_y": (0.5,)},
            "isotonic calibration needs knots_x and knots_y of one length >= 1, got 2 and 1",
        ),
        (
            {"method": "isotonic", "knots_x": (1, 0), "knots_y": (0.2, 0.4)},
            "calibration knots_x must be finite and nondecreasing",
        ),
        (
            {"method": "isotonic", "knots_x": (0, np.inf), "knots_y": (0.2, 0.4)},
            "calibration knots_x must be finite and nondecreasing",
        ),
        (
            {"method": "isotonic", "knots_x": (0, 1), "knots_y": (-0.1, 0.4)},
            "calibration knots_y must be nondecreasing probabilities",
        ),
        (
            {"method": "isotonic", "knots_x": (0, 1), "knots_y": (0.2, 1.1)},
            "calibration knots_y must be nondecreasing probabilities",
        ),
        (
            {"method": "platt", "knots_x": (0.0,)},
            "calibration knots are for method isotonic, not 'platt'",
        ),
        (
            {"method": "none", "knots_y": (0.5,)},
            "calibration knots are for method isotonic, not 'none'",
        ),
        (
            {"method": "spline"},
            "calibration method must be one of ('none', 'temperature', 'platt', 'isotonic'), got 'spline'",
        ),
        (
            {"fitted_on": "test"},
            "calibration fitted_on must be one of ('dev_a', 'dev_b') or null, got 'test'",
        ),
        ({"slope": np.nan}, "calibration slope must be finite, got nan"),
        ({"intercept": np.inf}, "calibration intercept must be finite, got inf"),
        ({"offset": -np.inf}, "calibration offset must be finite, got -inf"),
        ({"slope": 0.0}, "calibration slope must be > 0 (a monotone map), got 0.0"),
    ],
)
def test_calibration_records_refuse_each_bad_field_by_name(fields, message) -> None:
    """Every field is checked, and the message names the field and the value it got."""
    with pytest.raises(ValueError) as raised:
        cal.Calibration(**fields)
    assert str(raised.value) == message


def test_calibration_records_accept_the_edges_of_each_rule() -> None:
    """Flat steps, knots at 0 and 1, one knot, no fit split and a tiny slope are all valid."""
    flat = cal.Calibration(
        method="isotonic", fitted_on="dev_b", knots_x=np.array([-1, -1, 2]), knots_y=(0, 0, 1)
    )
    assert flat.knots_x == (-1.0, -1.0, 2.0) and all(type(v) is float for v in flat.knots_x)
    assert flat.knots_y == (0.0, 0.0, 1.0) and all(type(v) is float for v in flat.knots_y)
    assert flat.as_dict()["knots_x"] == [-1.0, -1.0, 2.0]
    one = cal.Calibration(method="isotonic", knots_x=(0.0,), knots_y=(0.3,))
    np.testing.assert_allclose(one.apply(np.array([0.01, 0.99])), [0.3, 0.3])
    for fitted_on in (None, "dev_a", "dev_b"):
        assert cal.Calibration(method="platt", fitted_on=fitted_on, slope=1e-300).slope == 1e-300
    assert cal.Calibration.from_dict({}) == cal.IDENTITY


def test_is_identity_only_for_slope_one_intercept_zero_and_not_isotonic() -> None:
    """A Platt record at (1, 0) is the identity; any other slope or intercept, or a step
    map, is not, and applying the identity returns a copy that equals the input."""
    assert cal.IDENTITY.is_identity
    assert cal.Calibration(method="platt", fitted_on="dev_b", offset=2.0).is_identity
    assert not cal.Calibration(method="platt", slope=1.5).is_identity
    assert not cal.Calibration(method="platt", intercept=0.1).is_identity
    assert not cal.Calibration(method="isotonic", knots_x=(0.0,), knots_y=(0.5,)).is_identity
    for out in (cal.IDENTITY.apply([0, 1]), cal.IDENTITY.invert([0, 1])):
        assert out.dtype == np.float64  # integer input still gives probabilities
    p = np.array([0.0, 0.2, 1.0])
    for out in (cal.IDENTITY.apply(p), cal.IDENTITY.invert(p)):
        np.testing.assert_array_equal(out, p)
        out[0] = 0.5
        assert p[0] == 0.0


def test_affine_map_and_its_inverse_by_hand() -> None:
    """slope 2, intercept log 3: p = 1/2 (log-odds 0) goes to 3/4; 1/3 (log-odds -log 2) to
    3/7; ``invert`` takes them back."""
    fit = cal.Calibration(method="platt", fitted_on="dev_b", slope=2.0, intercept=np.log(3.0))
    np.testing.assert_allclose(fit.apply([0.5, 1 / 3]), [0.75, 3 / 7], rtol=1e-12)
    np.testing.assert_allclose(fit.invert([0.75, 3 / 7]), [0.5, 1 / 3], rtol=1e-12)
    assert float(fit.invert(0.75)) == pytest.approx(0.5, rel=1e-12)
    # saturated inputs are clipped to EPS before the map, never sent to +-inf
    np.testing.assert_allclose(
        fit.apply([0.0, 1.0]),
        [
            1 / (1 + 1 / 3 * ((1 - cal.EPS) / cal.EPS) ** 2),
            1 / (1 + ((cal.EPS / (1 - cal.EPS)) ** 2) / 3),
        ],
        rtol=1e-9,
    )


def test_isotonic_inverse_is_the_lowest_input_that_reaches_the_probability() -> None:
    """Knots (-1, 0.1), (0, 0.4), (2, 0.4): 0.4 is first reached at log-odds 0, anything in
    (0.1, 0.4] too; at or below 0.1 the first knot; above 0.4 the last one."""
    step = cal.Calibration(
        method="isotonic", fitted_on="dev_b", knots_x=(-1, 0, 2), knots_y=(0.1, 0.4, 0.4)
    )
    got = step.invert(np.array([0.05, 0.1, 0.25, 0.4, 0.9]))
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.array([-1, -1, 0, 0, 2.0]))))
    np.testing.assert_allclose(step.apply(got[1:4]), [0.1, 0.4, 0.4])
    # between knots the map interpolates linearly in log-odds, as IsotonicRegression does
    assert float(step.apply(1 / (1 + np.exp(0.5)))) == pytest.approx(0.25)


def test_log_odds_clip_saturated_scores_at_eps() -> None:
    """0 and 1 (float64 or a float32 sigmoid's) become logit(EPS) and logit(1 - EPS)."""
    edge = np.log(cal.EPS / (1 - cal.EPS))
    for dtype in (np.float64, np.float32):
        got = cal.log_odds(np.array([0.0, 0.5, 1.0], dtype=dtype))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, [edge, 0.0, -edge], rtol=1e-6)
    np.testing.assert_allclose(cal.log_odds([0.2]), [np.log(0.25)], rtol=1e-12)


BOTH_CLASSES = "a calibration fit needs positive weight in both classes"


def test_logistic_fit_refuses_mismatched_or_one_class_data() -> None:
    """Shapes must agree, and each class needs positive weight (zero weight is none)."""
    with pytest.raises(ValueError, match=r"x and labels shapes differ: \(3,\) vs \(4,\)"):
        cal.fit_logistic(np.zeros(3), np.array([0, 1, 0, 1]))
    for y, w in (([1, 1, 1], None), ([0, 0, 0], None), ([0, 1, 0], [1.0, 0.0, 1.0])):
        with pytest.raises(ValueError, match=f"^{BOTH_CLASSES}$"):
            cal.fit_logistic(np.array([-1.0, 0.0, 1.0]), np.array(y), w)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_logistic_fit_is_the_optimum_whatever_the_weights_scale(fit_intercept) -> None:
    """The maximum-likelihood fit does not change when all weights are scaled by 1e-4 or
    1e4 (tiny weights make a tiny Hessian), and equals scikit-learn's, intercept 0 when
    none is fitted."""
    x = np.array([-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    y = np.array([0, 0, 1, 0, 0, 1, 0, 1, 1, 1])
    w = np.array([1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 2.0, 1.0, 1.0])
    model = LogisticRegression(C=np.inf, fit_intercept=fit_intercept, tol=1e-12, max_iter=10_000)
    model.fit(x[:, None], y, sample_weight=w)
    want = (model.coef_[0, 0], float(np.atleast_1d(model.intercept_)[0]))
    for scale in (1e-4, 1.0, 1e4):
        slope, intercept = cal.fit_logistic(x, y, w * scale, fit_intercept=fit_intercept)
        assert slope == pytest.approx(want[0], rel=1e-6), scale
        assert intercept == pytest.approx(want[1], rel=1e-6, abs=1e-9), scale
        if not fit_intercept:
            assert intercept == 0.0
    assert cal.fit_logistic(x, y) == pytest.approx(cal.fit_logistic(x, y, np.ones(10)))


def test_fit_calibration_refuses_unknown_methods_and_decreasing_maps() -> None:
    """An unknown method is named; probabilities that fall as the rate rises give slope < 0,
    which no monotone recalibration can be, and the fit says so."""
    p, y = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), np.array([1, 1, 0, 1, 0, 0])
    with pytest.raises(ValueError, match=r"method must be one of .*, got 'spline'"):
        cal.fit_calibration(p, y, method="spline", fitted_on="dev_b")
    assert cal.fit_calibration(p, y, method="none", fitted_on="dev_b") is cal.IDENTITY
    with pytest.raises(ValueError, match=r"the platt fit on dev_b has slope -0\.\d+ <= 0"):
        cal.fit_calibration(p, y, method="platt", fitted_on="dev_b")


def test_temperature_fit_keeps_the_offset_out_of_the_slope() -> None:
    """Temperature on ``logit(p) - c``: slope a, intercept c (1 - a), the record keeps c, and
    ``refit`` on the same rows gives the same record."""
    rng = np.random.default_rng(53)
    y, p = draw(rng, 3000, prior=0.2, at=0.2)
    c = np.log(0.1)
    fit = cal.fit_calibration(p, y, method="temperature", fitted_on="dev_a", offset=c)
    slope, intercept = cal.fit_logistic(cal.log_odds(p) - c, y, fit_intercept=False)
    assert intercept == 0.0
    assert (fit.method, fit.fitted_on, fit.offset) == ("temperature", "dev_a", c)
    assert fit.slope == slope
    assert fit.intercept == pytest.approx(c * (1 - slope), rel=1e-12)
    assert cal.refit(fit, p, y) == fit
    assert cal.refit(cal.IDENTITY, p, y) is cal.IDENTITY


def test_isotonic_bound_counts_the_weighted_rows_only() -> None:
    """Four separable rows with weight (two more with none): the steps are kept in
    [0.5 / 4, 1 - 0.5 / 4], not 1 / 12 from all six rows; the knots are the log-odds."""
    p = np.array([0.1, 0.2, 0.6, 0.7, 0.3, 0.8])
    y = np.array([0, 0, 1, 1, 1, 0])
    w = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    iso = cal.fit_calibration(p, y, w, method="isotonic", fitted_on="dev_b")
    assert iso.fitted_on == "dev_b"
    assert min(iso.knots_y) == 0.125 and max(iso.knots_y) == 0.875
    log_odds = np.log(p / (1 - p))
    assert all(np.isclose(k, log_odds, rtol=1e-12).any() for k in iso.knots_x)
    np.testing.assert_allclose(iso.apply(p[[0, 3]]), [0.125, 0.875])
    # each class needs positive weight, however little; zero weight or no row is none
    for y_, w_ in (
        (y, np.array([1.0, 1, 0, 0, 0, 1])),
        (np.ones(6, int), np.ones(6)),
        (np.zeros(6, int), np.ones(6)),
    ):
        with pytest.raises(ValueError, match=f"^{BOTH_CLASSES}$"):
            cal.fit_calibration(p, y_, w_, method="isotonic", fitted_on="dev_b")
    one_each = cal.fit_calibration(
        p[:2], np.array([0, 1]), np.array([1.0, 1.0]), method="isotonic", fitted_on="dev_b"
    )
    assert one_each.knots_y == (0.25, 0.75)
    light = cal.fit_calibration(
        p[:2], np.array([0, 1]), np.array([0.5, 0.5]), method="isotonic", fitted_on="dev_b"
    )
    assert light.knots_y == (0.25, 0.75)


def test_logistic_fit_works_in_float64_whatever_the_input_dtype() -> None:
    """A network's float32 log-odds are fitted as float64: the same fit to the last bit."""
    rng = np.random.default_rng(73)
    x = rng.normal(size=500).astype(np.float32)
    y = (rng.random(500) < 1 / (1 + np.exp(-x))).astype(int)
    assert cal.fit_logistic(x, y) == cal.fit_logistic(x.astype(np.float64), y)


def test_weighted_log_loss_clips_like_log_odds_by_hand() -> None:
    """A confident miss costs -log(EPS), not infinity; weights average the rows."""
    got = cal.weighted_log_loss(np.array([1, 0]), np.array([0.0, 0.5]), np.array([1.0, 3.0]))
    assert got == pytest.approx((-np.log(cal.EPS) + 3 * np.log(2)) / 4, rel=1e-9)
    assert cal.weighted_log_loss(np.array([0, 1]), np.array([0.0, 1.0])) == pytest.approx(
        -np.log(1 - cal.EPS), abs=1e-15
    )
    # a float32 sigmoid's 1.0 is clipped at 1 - EPS in float64, not at float32's precision
    saturated = cal.weighted_log_loss(np.array([0]), np.array([1.0], dtype=np.float32))
    assert saturated == pytest.approx(-np.log(cal.EPS), rel=1e-6)


def test_calibration_quality_by_hand() -> None:
    """Twenty rows in ten equal-weight bins of two: the ECE is the mean over bins of
    |mean probability - rate| (0.17 here); mean over rate is the weighted ratio."""
    p = np.repeat(np.arange(10) / 10 + 0.05, 2)
    y = np.array([0, 0] + [1, 0] * 8 + [1, 1])
    q = cal.calibration_quality(y, p)
    assert q["calibration_error"] == pytest.approx(0.17)
    assert q["log_loss"] == pytest.approx(log_loss(y, p))
    weighted = cal.calibration_quality(
        np.array([1, 0, 0, 0]), np.array([0.6, 0.2, 0.2, 0.2]), np.array([1.0, 1.0, 1.0, 2.0])
    )
    assert weighted["mean_probability"] == pytest.approx(0.28)
    assert weighted["label_rate"] == pytest.approx(0.2)
    assert weighted["mean_to_rate"] == pytest.approx(1.4)
    # four rows in four bins: sum of weight / 5 * |p - y| = (0.2 + 0.2 + 2 * 0.2 + 0.4) / 5
    assert weighted["calibration_error"] == pytest.approx(0.24)
    assert weighted["log_loss"] == pytest.approx(
        log_loss([1, 0, 0, 0], [0.6, 0.2, 0.2, 0.2], sample_weight=[1, 1, 1, 2])
    )
    # five bins of four rows: |0.1 - 0.25|, |0.3 - 0.5|, 0, |0.7 - 0.5|, |0.9 - 0.75|, each 1/5
    assert cal.calibration_quality(y, p, n_bins=5)["calibration_error"] == pytest.approx(0.14)
    # a total weight of 1 (or less) is still positive
    half = cal.calibration_quality(np.array([0, 1]), np.array([0.2, 0.6]), np.array([0.5, 0.5]))
    assert half["label_rate"] == pytest.approx(0.5)
    assert np.isnan(cal.calibration_quality(np.zeros(3, int), np.full(3, 0.1))["mean_to_rate"])
    with pytest.raises(ValueError, match="^calibration_quality needs positive total weight$"):
        cal.calibration_quality(np.array([0, 1]), np.array([0.2, 0.3]), np.zeros(2))


def test_cross_fitting_uses_at_most_one_fold_per_group() -> None:
    """Three groups: three folds, each scored by the map fitted on the other two (as
    computed here); one group: no fold to fit on, NaN; a fold whose training rows hold
    one class only is scored uncalibrated."""
    rng = np.random.default_rng(59)
    y, p = draw(rng, 300, prior=0.3, at=0.1)
    w, groups = np.ones(300), np.arange(300) % 3
    want = np.empty(300)
    z = cal.log_odds(p)
    for g in range(3):
        fit = cal.fit_calibration(p[groups != g], y[groups != g], method="platt", fitted_on="dev_b")
        want[groups == g] = fit.map_log_odds(z[groups == g])
    got = cal.cross_fitted_log_loss(z, y, w, groups, method="platt")
    # scored from log-odds, unclipped: a confident miss costs its full log-odds
    assert got == pytest.approx(cal.log_loss_of_log_odds(y, want), rel=1e-9)
    assert np.isnan(cal.cross_fitted_log_loss(z, y, w, np.zeros(300), method="platt"))
    by_class = cal.cross_fitted_log_loss(z, y, w, y, method="platt")
    assert by_class == pytest.approx(cal.weighted_log_loss(y, p), rel=1e-12)


def test_choose_calibration_records_every_candidate_and_skips_what_cannot_be_scored() -> None:
    """The table names each candidate's fit and how it was scored; a dev_a with one class
    adds no candidate; a dev_b in one group cannot be cross-fitted, so its maps are never
    chosen, however well they fit in sample."""
    rng = np.random.default_rng(61)
    y, p = draw(rng, 2000, prior=0.05, at=0.05)
    over = priors.shift_prior(p, from_prior=0.05, to_prior=0.3)
    groups = np.arange(2000) // 4
    z_over = cal.log_odds(over)
    best, table = cal.choose_calibration(
        dev_a=(z_over, y, np.ones(2000)), dev_b=(z_over, y, np.ones(2000), groups), dev_a_offset=0.0
    )
    rows = {(r["method"], r["fitted_on"]): r for r in table}
    assert list(rows) == [
        ("none", None),
        ("temperature", "dev_a"),
        ("platt", "dev_a"),
        ("platt", "dev_b"),
        ("isotonic", "dev_b"),
    ]
    assert rows[("none", None)]["scored_on"] == "prior correction only"
    assert rows[("platt", "dev_a")]["scored_on"] == "dev_b, out of sample"
    assert rows[("platt", "dev_b")]["scored_on"] == "dev_b, 5-fold group cross-fitting"
    platt = cal.fit_calibration(over, y, method="platt", fitted_on="dev_b")
    assert rows[("platt", "dev_b")]["slope"] == platt.slope
    assert rows[("platt", "dev_b")]["intercept"] == platt.intercept
    assert rows[("platt", "dev_a")]["dev_b_log_loss"] == pytest.approx(
        cal.weighted_log_loss(y, platt.apply(over))
    )
    assert rows[("none", None)]["dev_b_log_loss"] == pytest.approx(cal.weighted_log_loss(y, over))
    iso = cal.fit_calibration(over, y, method="isotonic", fitted_on="dev_b")
    assert rows[("isotonic", "dev_b")]["knots"] == len(iso.knots_x) > 1
    assert rows[("platt", "dev_b")]["knots"] == 0
    assert best.method != "none"

    best, table = cal.choose_calibration(
        dev_a=(z_over, np.zeros(2000, int), np.ones(2000)),
        dev_b=(z_over, y, np.ones(2000), np.zeros(2000)),
        dev_a_offset=0.0,
    )
    assert [r["method"] for r in table] == ["none", "platt", "isotonic"]
    assert np.isnan(table[1]["dev_b_log_loss"])
    assert best is cal.IDENTITY


def test_choose_calibration_weighs_dev_b_and_keeps_platt_when_temperature_fails() -> None:
    """dev_b's weights (negatives thinned, weight 5) enter every fit and every loss; a dev_a
    whose log-odds are all positive while most labels are 0 gives temperature a slope <= 0,
    which is skipped, and Platt (with its intercept) is still a candidate."""
    rng = np.random.default_rng(67)
    y, p = draw(rng, 1500, prior=0.2, at=0.2)
    w = np.where(y == 1, 1.0, 5.0)
    groups = np.arange(1500) // 3
    x_a = np.linspace(1.0, 3.0, 400)
    y_a = (rng.random(400) < np.linspace(0.01, 0.3, 400)).astype(int)
    p_a = 1 / (1 + np.exp(-x_a))
    with pytest.raises(ValueError, match="temperature fit on dev_a has slope"):
        cal.fit_calibration(p_a, y_a, method="temperature", fitted_on="dev_a")
    _, table = cal.choose_calibration(
        dev_a=(cal.log_odds(p_a), y_a, np.ones(400)),
        dev_b=(cal.log_odds(p), y, w, groups),
        dev_a_offset=0.0,
    )
    rows = {(r["method"], r["fitted_on"]): r for r in table}
    assert list(rows) == [
        ("none", None),
        ("platt", "dev_a"),
        ("platt", "dev_b"),
        ("isotonic", "dev_b"),
    ]
    assert rows[("none", None)]["dev_b_log_loss"] == pytest.approx(cal.weighted_log_loss(y, p, w))
    dev_a_platt = cal.fit_calibration(p_a, y_a, method="platt", fitted_on="dev_a")
    assert rows[("platt", "dev_a")]["dev_b_log_loss"] == pytest.approx(
        cal.weighted_log_loss(y, dev_a_platt.apply(p), w)
    )
    platt = cal.fit_calibration(p, y, w, method="platt", fitted_on="dev_b")
    assert rows[("platt", "dev_b")]["slope"] == pytest.approx(platt.slope, rel=1e-9)
    assert rows[("platt", "dev_b")]["intercept"] == pytest.approx(platt.intercept, rel=1e-9)
    unweighted = cal.fit_calibration(p, y, method="platt", fitted_on="dev_b")
    assert abs(unweighted.intercept - platt.intercept) > 0.5


def test_refit_fits_the_same_method_on_other_rows_with_their_weights() -> None:
    """``refit`` keeps the method, split and offset and fits the new rows and weights; a
    ``none`` record is returned as it is."""
    rng = np.random.default_rng(71)
    y, p = draw(rng, 2000, prior=0.2, at=0.3)
    c = np.log(0.1)
    fit = cal.fit_calibration(p[:1000], y[:1000], method="temperature", fitted_on="dev_a", offset=c)
    w = np.where(y[1000:] == 1, 1.0, 4.0)
    again = cal.refit(fit, p[1000:], y[1000:], w)
    want = cal.fit_calibration(
        p[1000:], y[1000:], w, method="temperature", fitted_on="dev_a", offset=c
    )
    assert again == want and again != fit
    assert again.slope != cal.refit(fit, p[1000:], y[1000:]).slope
    kept = cal.Calibration(method="none", fitted_on="dev_b")
    assert cal.refit(kept, p, y) is kept


def test_cross_fitting_weighs_rows_and_keeps_the_offset() -> None:
    """Each fold's temperature map is fitted on ``logit(p) - c`` with the training rows'
    weights, and the held rows' losses are averaged with their weights (computed here)."""
    rng = np.random.default_rng(79)
    y, p = draw(rng, 300, prior=0.3, at=0.1)
    w, groups, c = np.where(y == 1, 1.0, 3.0), np.arange(300) % 3, np.log(0.2)
    want = np.empty(300)
    for g in range(3):
        train = groups != g
        fit = cal.fit_calibration(
            p[train], y[train], w[train], method="temperature", fitted_on="dev_a", offset=c
        )
        want[~train] = fit.apply(p[~train])
    z = cal.log_odds(p)
    got = cal.cross_fitted_log_loss(z, y, w, groups, method="temperature", offset=c)
    assert got == pytest.approx(cal.weighted_log_loss(y, want, w), rel=1e-9)
    assert got != pytest.approx(
        cal.cross_fitted_log_loss(z, y, np.ones(300), groups, method="temperature", offset=c)
    )


def test_logistic_fit_converges_where_slope_and_intercept_are_entangled() -> None:
    """Log-odds far from 0 (around 30) make the two parameters nearly collinear; Newton's
    exact two-by-two step still reaches scikit-learn's optimum within 100 steps."""
    rng = np.random.default_rng(83)
    x = 30 + rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-1.5 * (x - 30)))).astype(int)
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000).fit(x[:, None], y)
    slope, intercept = cal.fit_logistic(x, y)
    assert slope == pytest.approx(model.coef_[0, 0], rel=1e-8)
    assert intercept == pytest.approx(model.intercept_[0], rel=1e-8)


def test_isotonic_with_a_prior_offset_is_refused_not_fitted_off_by_the_offset() -> None:
    """A step map's outputs are at the prior it was fitted at: shifting its inputs by log(beta)
    would leave its outputs at the training prior, wrong by the offset, so it is refused."""
    p = np.linspace(0.05, 0.95, 50)
    y = (np.arange(50) >= 25).astype(np.int8)
    with pytest.raises(ValueError, match=r"isotonic is fitted at the production prior only"):
        cal.fit_calibration(p, y, method="isotonic", fitted_on="dev_a", offset=2.0)
    fitted = cal.fit_calibration(p, y, method="isotonic", fitted_on="dev_b", offset=0.0)
    assert fitted.apply(np.array([0.45]))[0] < 0.5 < fitted.apply(np.array([0.55]))[0]


def test_a_calibration_fitted_on_logits_ranks_the_saturated_examples_apart() -> None:
    """Half the examples have log-odds between 20 and 60, where a float32 sigmoid is exactly 1
    (and a probability clipped to 1 - EPS gives one log-odds value, 27.6): fitted on those
    probabilities isotonic sees one block and platt maps them to one value; fitted on the
    logits each map keeps them ordered, and isotonic finds more than one level among them."""
    rng = np.random.default_rng(97)
    n = 4000
    y = (rng.random(n) < 0.5).astype(int)
    z = np.where(y == 1, rng.uniform(20, 60, n), rng.normal(-2, 2, n))
    z[rng.random(n) < 0.15] = rng.uniform(20, 60)  # some confident negatives among them
    y[(z > 20) & (z < 30) & (rng.random(n) < 0.5)] = 0  # the low end of the pile is mixed
    top = z > 20
    saturated = 1 / (1 + np.exp(-z.astype(np.float32)))
    assert np.all(saturated[top] == 1.0)
    for method in ("platt", "isotonic"):
        from_p = cal.fit_calibration(saturated, y, method=method, fitted_on="dev_b")
        assert len(np.unique(from_p.apply(saturated)[top])) == 1, method
        from_z = cal.fit_calibration_log_odds(z, y, method=method, fitted_on="dev_b")
        mapped = from_z.map_log_odds(z)
        assert np.all(np.isfinite(mapped)), method
        assert np.all(np.diff(mapped[top][np.argsort(z[top])]) >= 0), method  # monotone
        assert len(np.unique(mapped[top])) > 1, method
    assert cal.log_loss_of_log_odds(y, from_z.map_log_odds(z)) < cal.weighted_log_loss(
        y, from_p.apply(saturated)
    )


@pytest.mark.parametrize("seed", [3, 4, 27, 53, 0, 1])
def test_temperature_fit_reaches_the_optimum_on_wide_log_odds(seed) -> None:
    """Log-odds spread over tens of units and off centre (saturated scores) give a Newton
    step of ~1e14 from the identity; the line search must shorten it as far as it takes.
    With a fixed 40 halvings it stopped at the start, slope 1, at a loss tens of times the
    optimum's (seeds 3, 4, 27 and 53 here; 0 and 1 it fitted)."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.3).astype(int)
    shift = rng.uniform(0, 6)
    x = 30 * (rng.normal(size=300) + shift * y - shift / 2 + rng.uniform(-5, 5))
    w = rng.uniform(0.1, 50, 300)
    slope, intercept = cal.fit_logistic(x, y, w, fit_intercept=False)

    def loss(a: float) -> float:
        return float(np.sum(w * (np.logaddexp(0.0, a * x) - y * a * x)))

    best = minimize_scalar(loss, bounds=(-1.0, 1.0), method="bounded", options={"xatol": 1e-12})
    assert intercept == 0.0
    assert slope == pytest.approx(best.x, abs=1e-6)
    assert loss(slope) <= best.fun + 1e-9 * abs(best.fun)


def test_non_finite_log_odds_are_refused_with_their_count() -> None:
    x = np.array([0.0, np.inf, 1.0, np.nan, -2.0])
    with pytest.raises(ValueError, match="^2 log-odds to fit on are not finite$"):
        cal.fit_calibration_log_odds(
            x, np.array([0, 1, 1, 0, 0]), method="platt", fitted_on="dev_b"
        )


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_a_fit_on_float32_log_odds_with_an_offset_is_the_float64_fit(method) -> None:
    """The offset is taken off in float64: float32 log-odds give the float64 input's fit."""
    rng = np.random.default_rng(7)
    y = (rng.random(500) < 0.3).astype(int)
    x32 = (rng.normal(size=500) * 2 + 3 * y - 1.5 + 3.3).astype(np.float32)
    kw = {"method": method, "fitted_on": "dev_a", "offset": 3.3}
    got = cal.fit_calibration_log_odds(x32, y, **kw)
    want = cal.fit_calibration_log_odds(x32.astype(np.float64), y, **kw)
    assert got == want
