"""The true-prior shift through class-conditional label noise: exact algebra, coverage, params."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import noise_shift, priors

COSTS = priors.Costs(false_positive=1.0, false_negative=10.0)


def boot(resamples: int, *, seed: int = 0) -> priors.Bootstrap:
    return priors.Bootstrap(resamples=resamples, level=0.95, seed=seed)


def _rows(cells: dict[tuple[int, int, int], int]) -> tuple[np.ndarray, ...]:
    """(truth, decision, distant) rows, ``count`` of each ``(truth, decision, distant)`` cell."""
    keys = list(cells)
    counts = [cells[k] for k in keys]
    truth, decision, distant = (np.repeat([k[i] for k in keys], counts) for i in range(3))
    return truth, decision, distant


# Class-conditional exactly: within each true class, decision and distant label are
# independent. tpr 0.8, a 0.9 (true positives); fpr 0.01, b 0.02 (true negatives).
REFERENCE = {
    (1, 1, 1): 72, (1, 1, 0): 8, (1, 0, 1): 18, (1, 0, 0): 2,
    (0, 1, 1): 2, (0, 1, 0): 98, (0, 0, 1): 198, (0, 0, 0): 9702,
}  # fmt: skip
# A batch at true prior 0.05, the same rates: 5000 true positives, 95000 negatives.
BATCH = {
    (1, 1, 1): 3600, (1, 1, 0): 400, (1, 0, 1): 900, (1, 0, 0): 100,
    (0, 1, 1): 19, (0, 1, 0): 931, (0, 0, 1): 1881, (0, 0, 0): 92169,
}  # fmt: skip


def _reference(cells=REFERENCE, *, gold: bool = True) -> noise_shift.NoiseReference:
    truth, decision, distant = _rows(cells)
    return noise_shift.NoiseReference(
        decision=decision,
        distant=distant,
        gold=truth.astype(np.float64) if gold else np.full(len(truth), np.nan),
        weight=np.ones(len(truth)),
        group=np.arange(len(truth)),
    )


def test_point_estimates_recover_the_true_prior_and_both_precisions_exactly():
    truth, decision, distant = _rows(BATCH)
    out = noise_shift.estimate_true_shift(
        decision, _reference(), threshold=0.3, bootstrap=boot(5), costs=COSTS
    )
    alerts = decision == 1
    prior = out["estimated_prior_true"]["value"]
    at = out["estimated_at_threshold_true"]
    assert prior == pytest.approx(truth.mean(), abs=1e-12)  # 0.05
    assert at["precision"]["value"] == pytest.approx(truth[alerts].mean(), abs=1e-12)
    assert at["recall"]["value"] == pytest.approx(decision[truth == 1].mean(), abs=1e-12)
    assert at["alerts_per_1000"]["value"] == pytest.approx(1000 * alerts.mean())
    # what distant labels measure on the same batch, from the true-label estimate
    distant_at = at["distant_labels"]
    assert distant_at["precision"]["value"] == pytest.approx(distant[alerts].mean(), abs=1e-12)
    assert distant_at["recall"]["value"] == pytest.approx(decision[distant == 1].mean(), abs=1e-12)
    assert distant_at["prior"]["value"] == pytest.approx(distant.mean(), abs=1e-12)
    errors = (1000 / len(truth)) * (
        10 * ((truth == 1) & ~alerts).sum() + (~(truth == 1) & alerts).sum()
    )
    assert at["expected_cost"]["value"] == pytest.approx(errors, rel=1e-12)
    noise = out["label_noise"]
    assert noise["distant_1_given_true_1"]["value"] == pytest.approx(0.9)
    assert noise["distant_1_given_true_0"]["value"] == pytest.approx(0.02)
    assert noise["missing_label_rate"]["value"] == pytest.approx(0.1)
    assert noise["false_label_rate"]["value"] == pytest.approx(200 / 290)
    low, high = out["estimated_prior_true"]["ci"]
    assert 0 < low <= high < 1


def test_stated_noise_rates_recover_the_gold_rates_from_distant_labels_alone():
    """dev_b's true rates are solved from its distant labels and the noise a team states."""
    truth, decision, distant = _rows(BATCH)
    stated = {"missing_label_rate": 0.1, "false_label_rate": 200 / 290}
    out = noise_shift.estimate_true_shift(
        decision,
        _reference(gold=False),
        threshold=0.3,
        stated=stated,
        bootstrap=boot(5),
        costs=COSTS,
    )
    assert out["estimated_prior_true"]["value"] == pytest.approx(0.05, abs=1e-12)
    precision = out["estimated_at_threshold_true"]["precision"]["value"]
    assert precision == pytest.approx(truth[decision == 1].mean(), abs=1e-12)
    assert out["label_noise"]["decision_tpr_true"]["value"] == pytest.approx(0.8)
    assert out["label_noise"]["decision_fpr_true"]["value"] == pytest.approx(0.01)
    assert out["label_noise"]["distant_1_given_true_0"]["value"] == pytest.approx(0.02)
    assert "stated rates" in out["label_noise"]["from"]


def test_only_gold_labelled_rows_count_and_their_weights_do():
    """Unlabelled rows are left out, never taken as negatives; weights undo thinning."""
    truth, decision, distant = _rows(REFERENCE)
    negatives = np.flatnonzero(truth == 0)
    kept = np.concatenate([np.flatnonzero(truth == 1), negatives[::10]])
    gold = np.full(len(truth), np.nan)
    gold[kept] = truth[kept]
    weight = np.where(truth == 0, 10.0, 1.0)  # a tenth of negatives labelled, each stands for 10
    rates = noise_shift.gold_rates(decision, distant, gold, weight)
    exact = noise_shift.gold_rates(decision[kept], distant[kept], truth[kept], weight[kept])
    for key in ("tpr", "fpr", "a", "b", "false_label_rate"):
        assert rates[key] == pytest.approx(exact[key])
    assert rates["tpr"] == pytest.approx(0.8)


def test_shift_through_noise_edges():
    out = noise_shift.shift_through_noise(0.0, tpr=0.8, fpr=0.01, a=0.9, b=0.02, costs=COSTS)
    assert out["prior"] == 0 and np.isnan(out["precision"])  # no alerts: no precision
    out = noise_shift.shift_through_noise(0.5, tpr=0.3, fpr=0.3, a=0.9, b=0.02, costs=COSTS)
    assert np.isnan(out["prior"])  # a rule no better than chance says nothing of the prior
    out = noise_shift.shift_through_noise(0.95, tpr=0.9, fpr=0.1, a=0.9, b=0.02, costs=COSTS)
    assert out["prior"] == 1 and out["precision"] == pytest.approx(0.9 / 0.95)


def _world(rng, n, prior, *, tpr=0.7, fpr=0.02, a=0.85, b=0.01):
    truth = (rng.random(n) < prior).astype(np.int8)
    decision = np.where(truth == 1, rng.random(n) < tpr, rng.random(n) < fpr).astype(np.int8)
    distant = np.where(truth == 1, rng.random(n) < a, rng.random(n) < b).astype(np.int8)
    return truth, decision, distant


@pytest.mark.slow
def test_intervals_cover_the_true_prior_and_precision_about_95_in_100():
    """Replicates of (dev_b, batch) drawn where the truth is known, at two batch priors.

    Each replicate draws a fresh reference at prior 0.05 and a batch at 0.02 or 0.1
    (groups of 2 and 3). The prior's interval is for the prior of the world the batch
    came from; the precisions' for what the batch's own gold and distant labels measure.
    200 replicates of a true 95% interval cover between about 90% and 99% of the time
    (binomial, three standard deviations).
    """
    covered = {"prior": [], "precision": [], "precision_distant": []}
    for replicate in range(200):
        prior = (0.02, 0.1)[replicate % 2]
        rng = np.random.default_rng([23, replicate])
        truth, decision, distant = _world(rng, 3000, 0.05)
        reference = noise_shift.NoiseReference(
            decision, distant, truth.astype(float), np.ones(len(truth)), np.arange(len(truth)) // 2
        )
        batch_truth, batch_decision, batch_distant = _world(rng, 3000, prior)
        out = noise_shift.estimate_true_shift(
            batch_decision,
            reference,
            groups=np.arange(3000) // 3,
            threshold=0.5,
            bootstrap=boot(150, seed=replicate),
            costs=COSTS,
        )
        alerts = batch_decision == 1
        truths = {
            "prior": (out["estimated_prior_true"], prior),
            "precision": (
                out["estimated_at_threshold_true"]["precision"],
                batch_truth[alerts].mean(),
            ),
            "precision_distant": (
                out["estimated_at_threshold_true"]["distant_labels"]["precision"],
                batch_distant[alerts].mean(),
            ),
        }
        for name, (entry, value) in truths.items():
            low, high = entry["ci"]
            covered[name].append(low is not None and low <= value <= high)
    for name, hits in covered.items():
        assert 0.90 <= np.mean(hits) <= 0.99, (name, np.mean(hits))


@pytest.mark.parametrize(
    "stated, message",
    [
        ({"missing_label_rate": 0.1}, r"exactly \['missing_label_rate', 'false_label_rate'\]"),
        ({"missing_label_rate": 0.1, "false_label_rate": None}, r"false_label_rate must be a number"),
        ({"missing_label_rate": 1.0, "false_label_rate": 0.1}, r"missing_label_rate must be in \[0, 1\), got 1.0"),
        ({"missing_label_rate": "x", "false_label_rate": 0.1}, r"missing_label_rate must be a number"),
        ({"missing_label_rate": True, "false_label_rate": 0.1}, r"missing_label_rate must be a number"),
        ("0.1", r"evaluate.stated_label_noise must be a mapping"),
    ],
)  # fmt: skip
def test_stated_noise_is_checked_with_its_full_key(stated, message):
    with pytest.raises(ValueError, match=message):
        noise_shift.check_stated_noise(stated)


def test_stated_noise_unset_is_none_and_set_is_floats():
    unset = {"missing_label_rate": None, "false_label_rate": None}
    assert noise_shift.check_stated_noise(unset) is None
    assert noise_shift.check_stated_noise(None) is None
    assert noise_shift.check_stated_noise({"missing_label_rate": 0, "false_label_rate": 0.1}) == {
        "missing_label_rate": 0.0,
        "false_label_rate": 0.1,
    }


def test_no_gold_and_no_stated_rates_is_refused():
    truth, decision, _ = _rows(BATCH)
    with pytest.raises(ValueError, match="no gold labels of both classes; state noise rates"):
        noise_shift.estimate_true_shift(
            decision, _reference(gold=False), threshold=0.3, bootstrap=boot(5), costs=COSTS
        )


def test_a_rate_of_exactly_one_on_dev_b_still_has_an_interval():
    """Every gold positive flagged on dev_b: the recall interval reaches below 1 (Jeffreys
    draws at the edge), not the single point a percentile bootstrap gives."""
    cells = dict(REFERENCE)
    cells[(1, 1, 1)], cells[(1, 1, 0)] = 90, 10  # every true positive flagged
    cells[(1, 0, 1)] = cells[(1, 0, 0)] = 0
    truth, decision, distant = _rows(cells)
    reference = noise_shift.NoiseReference(
        decision, distant, truth.astype(float), np.ones(len(truth)), np.arange(len(truth))
    )
    batch_decision = np.random.default_rng(0).permutation(decision)[:2000]
    out = noise_shift.estimate_true_shift(
        batch_decision, reference, threshold=0.3, bootstrap=boot(300), costs=COSTS
    )
    recall = out["estimated_at_threshold_true"]["recall"]
    assert recall["value"] == 1.0
    # 100 gold positives on dev_b, none missed (the rule of three: tpr above about 0.97),
    # and the batch's own 20 or so positives, a miss among them a draw
    assert 0.8 < recall["ci"][0] < 0.99 and recall["ci"][1] == 1.0


def test_a_generator_draws_in_place_of_the_bootstraps_seed():
    """``rng`` replaces ``bootstrap.seed``: the same generator state gives the same intervals,
    which differ from the seed's."""
    _, decision, _ = _rows(BATCH)
    batch = np.random.default_rng(1).permutation(decision)[:500]
    kw = {"threshold": 0.3, "bootstrap": boot(40), "costs": COSTS}

    def ci(**extra):
        out = noise_shift.estimate_true_shift(batch, _reference(), **kw, **extra)
        return out["estimated_prior_true"]["ci"]

    drawn = ci(rng=np.random.default_rng(7))
    assert drawn == ci(rng=np.random.default_rng(7))
    assert drawn != ci()


def test_a_true_prior_at_one_bound_in_every_resample_or_undefined_gets_no_interval():
    """A batch the rule flags nowhere: the adjusted count is 0 in every resample, a bound of
    its clip, not a 95% interval of a prior (the coverage benchmark's such intervals never
    held the truth); a rule that flags no gold positive of dev_b leaves the count undefined.
    Both keep what they can and say why the interval is missing."""
    kw = {"threshold": 0.3, "bootstrap": boot(40), "costs": COSTS}
    silent = noise_shift.estimate_true_shift(np.zeros(3000, np.int8), _reference(), **kw)
    prior = silent["estimated_prior_true"]
    assert prior["value"] == 0.0 and prior["ci"] == [None, None]
    assert prior["interval_refused"].startswith("every resample put the true prior at 0,")
    cells = dict(REFERENCE)
    cells[(1, 0, 1)] += cells.pop((1, 1, 1))
    cells[(1, 0, 0)] += cells.pop((1, 1, 0))  # no gold positive flagged: tpr 0 < fpr
    _, decision, _ = _rows(BATCH)
    blind = noise_shift.estimate_true_shift(decision[:3000], _reference(cells), **kw)
    prior = blind["estimated_prior_true"]
    assert prior["value"] is None and prior["ci"] == [None, None]
    assert "the adjusted count is undefined" in prior["interval_refused"]
    flagged = noise_shift.estimate_true_shift(decision, _reference(), **kw)["estimated_prior_true"]
    assert "interval_refused" not in flagged and flagged["ci"][0] < flagged["ci"][1]
