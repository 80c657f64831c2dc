"""The measures of one split (``dsprior.evaluation.measures``): intervals resample whole groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from dsprior import priors
from dsprior.evaluation.measures import (
    CI_METRICS,
    bootstrap_intervals,
    decision_metrics,
    decisions_at,
    metrics_from_rates,
    shipped_decisions,
    view_metrics,
    view_weights,
)
from dsprior.priors import Bootstrap, Costs


def test_bootstrap_intervals_resample_whole_groups():
    """Few large groups sharing label and decision: the group interval is far wider.

    40 groups of 25 examples each; every example of a group has its group's label and
    decision. Resampling examples would treat the 1,000 examples as independent; the
    group bootstrap sees only 40 units, so its design effect (25) shrinks each rate's
    effective count to the 40 groups and its intervals are about 5 (sqrt 25) times wider.
    """
    n_groups, size, prior, level, resamples = 40, 25, 0.1, 0.9, 400
    group_label = np.array([1] * 12 + [0] * 28)
    group_flag = np.array([1] * 8 + [0] * 4 + [1] * 6 + [0] * 22)
    codes = np.repeat(np.arange(n_groups), size)
    frame = pd.DataFrame(
        {
            "example_id": [f"e{i:04d}" for i in range(len(codes))],
            "group": [f"g{c:02d}" for c in codes],
            "label": group_label[codes].astype(np.int8),
            "weight": 1.0,
        }
    )
    y, predicted = frame["label"].to_numpy(), group_flag[codes]
    cis = bootstrap_intervals(
        frame, predicted, prior=prior, costs=Costs(1, 10),
        bootstrap=Bootstrap(resamples, level, seed=3),
    )  # fmt: skip

    # the example-level bootstrap, computed here: resample the 1,000 rows independently
    rng = np.random.default_rng(0)
    draws = {"precision": [], "recall": []}
    for _ in range(resamples):
        w = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)).astype(float)
        w[y == 0] *= w[y == 1].sum() / w[y == 0].sum() * (1 - prior) / prior
        tp, fp = w[(y == 1) & (predicted == 1)].sum(), w[(y == 0) & (predicted == 1)].sum()
        draws["precision"].append(tp / (tp + fp))
        draws["recall"].append(tp / w[y == 1].sum())
    alpha = (1 - level) / 2
    for name, values in draws.items():
        low, high = np.quantile(values, [alpha, 1 - alpha])
        group_low, group_high = cis[f"{name}_ci"]
        assert group_high - group_low > 3 * (high - low), (name, cis[f"{name}_ci"], (low, high))


def tiny_split() -> pd.DataFrame:
    """Two positives (weight 1) and four thinned negatives (weight 10); the chosen rule at 0.5
    flags one of each; a score of exactly 0.5 is a shipped alert."""
    return pd.DataFrame(
        {
            "label": np.array([1, 1, 0, 0, 0, 0], dtype=np.int8),
            "weight": [1.0, 1.0, 10.0, 10.0, 10.0, 10.0],
            "score": [0.5, 0.4, 0.7, 0.49, 0.2, 0.1],
            "probability": [0.9, 0.3, 0.5, 0.2, 0.1, 0.05],
            "group": ["a", "a", "b", "c", "c", "d"],
        }
    )


def test_rules_flag_at_or_above_their_cut():
    """Both rules are ``>=``: the shipped raw score 0.5 and a probability equal to the cut."""
    frame = tiny_split()
    np.testing.assert_array_equal(shipped_decisions(frame), [1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(decisions_at(frame, 0.5), [1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(decisions_at(frame, 0.3), [1, 1, 1, 0, 0, 0])
    assert shipped_decisions(frame).dtype.kind == "i" and decisions_at(frame, 0.5).dtype.kind == "i"
    # the cut is compared in float64: a float32 probability just below it is not flagged
    p32 = np.float32(0.3)
    below = pd.DataFrame({"probability": np.array([p32], dtype=np.float32)})
    assert decisions_at(below, float(p32) + 1e-12).tolist() == [0]
    assert decisions_at(below, float(p32)).tolist() == [1]


def test_view_weights_by_hand():
    """As sampled: ones; at the prior 0.2 the two positives keep weight 1 and the four
    negatives share 8; any other view is refused by name."""
    frame = tiny_split()
    np.testing.assert_array_equal(view_weights(frame, view="sample", prior=0.2), np.ones(6))
    np.testing.assert_allclose(view_weights(frame, view="prior", prior=0.2), [1, 1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match=r"view must be one of \('sample', 'prior'\), got 'both'"):
        view_weights(frame, view="both", prior=0.2)


def test_view_metrics_by_hand_in_both_views():
    """As sampled: tp 1, fp 1, fn 1, tn 3, scored on the raw score; at the prior 0.2: tp 1,
    fp 2, fn 1, tn 6 of weight 10, scored on the probability; each threshold-free score is
    scikit-learn's on the view's column and weights."""
    frame = tiny_split()
    y = frame["label"].to_numpy()
    kw = {"prior": 0.2, "threshold": 0.5, "costs": Costs(1.0, 10.0)}
    sample = view_metrics(frame, view="sample", **kw)
    prior = view_metrics(frame, view="prior", **kw)
    assert sample["confusion"] == {"tn": 3.0, "fp": 1.0, "fn": 1.0, "tp": 1.0}
    assert (sample["precision"], sample["recall"], sample["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert sample["lr_plus"] == pytest.approx(0.5 / 0.25)
    assert sample["expected_cost"] == pytest.approx(1000 * 11 / 6)
    assert sample["positive_fraction"] == pytest.approx(2 / 6)
    assert prior["confusion"] == pytest.approx({"tn": 6.0, "fp": 2.0, "fn": 1.0, "tp": 1.0})
    assert prior["confusion_per_1000"] == pytest.approx(
        {"tn": 600.0, "fp": 200.0, "fn": 100.0, "tp": 100.0}
    )
    assert (prior["precision"], prior["recall"]) == pytest.approx((1 / 3, 0.5))
    assert prior["f1"] == pytest.approx(0.4)
    assert prior["lr_plus"] == pytest.approx(0.5 / 0.25)
    assert prior["expected_cost"] == pytest.approx(1000 * 12 / 10)
    assert prior["alerts_per_1000"] == pytest.approx(300.0)
    assert prior["missed_per_1000"] == pytest.approx(100.0)
    assert prior["positive_fraction"] == pytest.approx(0.2)
    for view, column, w in ((sample, "score", None), (prior, "probability", [1, 1, 2, 2, 2, 2])):
        p = frame[column].to_numpy()
        assert view["probability_scored"] == column
        assert (view["examples"], view["positives"]) == (6, 2)
        assert view["average_precision"] == pytest.approx(
            average_precision_score(y, p, sample_weight=w)
        )
        assert view["roc_auc"] == pytest.approx(roc_auc_score(y, p, sample_weight=w))
        assert view["log_loss"] == pytest.approx(log_loss(y, p, sample_weight=w))
        assert view["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w))


def test_undefined_metrics_are_nan_not_errors():
    """No predicted positive: precision NaN (not 0); no false positive: LR+ NaN; one class
    only: ROC AUC NaN."""
    y, none_flagged = np.array([0, 1, 0]), np.zeros(3, dtype=int)
    out = decision_metrics(y, none_flagged, np.ones(3), costs=Costs(1.0, 10.0))
    assert np.isnan(out["precision"]) and out["recall"] == 0.0
    assert np.isnan(out["lr_plus"])
    assert out["expected_cost"] == pytest.approx(1000 * 10 / 3)
    negatives = tiny_split().iloc[2:]
    view = view_metrics(negatives, view="sample", prior=0.2, threshold=0.5, costs=Costs(1.0, 10.0))
    assert np.isnan(view["roc_auc"]) and np.isnan(view["recall"])
    assert view["positives"] == 0 and view["positive_fraction"] == 0.0


def test_bootstrap_intervals_name_each_metric():
    """One ``<metric>_ci`` pair per CI metric, low <= high, the point estimate inside."""
    frame = tiny_split()
    predicted = decisions_at(frame, 0.5)
    cis = bootstrap_intervals(
        frame, predicted, prior=0.2, costs=Costs(1.0, 10.0), bootstrap=Bootstrap(50, 0.9, 1)
    )
    assert sorted(cis) == sorted(f"{name}_ci" for name in CI_METRICS)
    point = view_metrics(frame, view="prior", prior=0.2, threshold=0.5, costs=Costs(1.0, 10.0))
    for name in ("recall", "expected_cost"):
        low, high = cis[f"{name}_ci"]
        assert low <= point[name] <= high, name


def test_bootstrap_intervals_are_at_the_prior_and_fixed_by_the_seed():
    """Three identical groups: the intervals hold the point values at the prior 0.2
    (precision 1/3, recall 1/2, F1 0.4, cost 1,200), not those at the manifest weights
    (precision 1/11); one seed gives one set of intervals."""
    frame = pd.concat([tiny_split().assign(group=f"g{i}") for i in range(3)], ignore_index=True)
    predicted = decisions_at(frame, 0.5)
    kw = {"costs": Costs(1.0, 10.0), "bootstrap": Bootstrap(30, 0.9, seed=2)}
    cis = bootstrap_intervals(frame, predicted, prior=0.2, **kw)
    for name, value in (
        ("precision", 1 / 3),
        ("recall", 0.5),
        ("f1", 0.4),
        ("expected_cost", 1200),
    ):
        low, high = cis[f"{name}_ci"]
        assert low <= value <= high, name
    assert cis["precision_ci"][0] > 1 / 11
    split = tiny_split()
    once = bootstrap_intervals(split, decisions_at(split, 0.5), prior=0.2, **kw)
    assert once == bootstrap_intervals(split, decisions_at(split, 0.5), prior=0.2, **kw)


def simulated_split(rng, *, n: int, prior: float, tpr: float, fpr: float) -> pd.DataFrame:
    """``n`` independent examples (one group each) at ``prior``; the rule flags positives at
    ``tpr`` and negatives at ``fpr``; the flag is in the ``flag`` column."""
    y = (rng.random(n) < prior).astype(np.int8)
    flag = np.where(y == 1, rng.random(n) < tpr, rng.random(n) < fpr).astype(int)
    return pd.DataFrame({"label": y, "weight": 1.0, "group": np.arange(n), "flag": flag})


@pytest.mark.slow
def test_intervals_at_an_estimated_prior_carry_its_uncertainty():
    """Cost at the prior depends on the prior; a prior estimated from 3,000 rows (60
    positives) is 13% uncertain. Taken as known, the cost interval misses the population
    cost in about one case in five; with the prior's draws (``rate_draws`` on the rows it
    came from) it covers near 95%. Recall does not depend on the prior: unchanged."""
    rng = np.random.default_rng(7)
    pi, tpr, fpr = 0.02, 0.6, 0.01
    truth = 1000 * ((1 - pi) * fpr * 1.0 + pi * (1 - tpr) * 10.0)
    costs = Costs(1.0, 10.0)
    covered = {"known": 0, "drawn": 0}
    trials = 120
    for seed in range(trials):
        source = simulated_split(rng, n=3000, prior=pi, tpr=tpr, fpr=fpr)
        prior, draws = priors.rate_draws(
            source["label"].to_numpy(float), np.ones(3000), np.arange(3000), size=200, rng=rng
        )
        test = simulated_split(rng, n=6000, prior=pi, tpr=tpr, fpr=fpr)
        for name, prior_draws in (("known", None), ("drawn", draws)):
            cis = bootstrap_intervals(
                test,
                test["flag"].to_numpy(),
                prior=prior,
                costs=costs,
                bootstrap=Bootstrap(200, 0.95, seed),
                prior_draws=prior_draws,
            )
            low, high = cis["expected_cost_ci"]
            covered[name] += low <= truth <= high
            if name == "known":
                recall_known = cis["recall_ci"]
        assert cis["recall_ci"] == recall_known
    assert covered["known"] / trials < 0.88
    assert covered["drawn"] / trials >= 0.90


def test_lr_plus_uses_the_weights():
    """LR+ = TPR / FPR with weighted rates: the one flagged negative weighs 1 of 1 + 9, so
    FPR is 0.1 (unweighted it would be 0.5) and LR+ is (1/2) / 0.1 = 5."""
    labels = np.array([1, 1, 0, 0])
    predicted = np.array([1, 0, 1, 0])
    out = decision_metrics(labels, predicted, np.array([1.0, 1.0, 1.0, 9.0]), costs=Costs(1, 1))
    assert out["lr_plus"] == pytest.approx(5.0)


def test_a_rule_on_one_class_only_is_measured_not_refused():
    """A split of negatives only, none flagged (a quiet production batch): every rate with
    positives in its denominator is NaN, the cost is 0, and the counts per 1,000 are there."""
    labels, predicted = np.zeros(4, dtype=int), np.zeros(4, dtype=int)
    out = decision_metrics(labels, predicted, np.ones(4), costs=Costs(1.0, 10.0))
    assert np.isnan(out["lr_plus"]) and np.isnan(out["recall"]) and np.isnan(out["precision"])
    assert out["expected_cost"] == 0.0
    assert out["confusion_per_1000"] == {"tn": 1000.0, "fp": 0.0, "fn": 0.0, "tp": 0.0}


def test_counts_per_1000_scale_a_total_weight_below_one():
    """A total weight of 0.5 (one example of weight 0.5) still scales to 1,000. (A total of 0
    never gets here: scikit-learn refuses all-zero weights first.)"""
    half = decision_metrics(np.array([1]), np.array([1]), np.array([0.5]), costs=Costs(1.0, 1.0))
    assert half["confusion_per_1000"] == {"tn": 0.0, "fp": 0.0, "fn": 0.0, "tp": 1000.0}


def test_a_one_example_split_has_its_own_label_rate():
    """One positive example as sampled: positive fraction 1 (its weight sums to exactly 1)."""
    one = tiny_split().iloc[:1]
    out = view_metrics(one, view="sample", prior=0.2, threshold=0.5, costs=Costs(1.0, 1.0))
    assert out["positive_fraction"] == 1.0


def test_threshold_free_scores_at_the_prior_use_unequal_negative_weights():
    """Negatives thinned at different rates (weights 1 and 30): ROC AUC and AP at the prior
    are scikit-learn's weighted values, which differ from the unweighted ones here (with
    equal negative weights ROC AUC would not notice the weights at all)."""
    frame = pd.DataFrame(
        {
            "label": np.array([1, 1, 0, 0, 0, 0], dtype=np.int8),
            "weight": [1.0, 1.0, 1.0, 30.0, 30.0, 1.0],
            "score": [0.8, 0.3, 0.6, 0.2, 0.1, 0.05],
            "probability": [0.8, 0.3, 0.6, 0.2, 0.1, 0.05],
            "group": list("abcdef"),
        }
    )
    out = view_metrics(frame, view="prior", prior=0.05, threshold=0.5, costs=Costs(1.0, 1.0))
    y, p = frame["label"].to_numpy(), frame["probability"].to_numpy()
    w = view_weights(frame, view="prior", prior=0.05)
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y, p, sample_weight=w))
    assert out["roc_auc"] != pytest.approx(roc_auc_score(y, p))
    assert out["average_precision"] == pytest.approx(average_precision_score(y, p, sample_weight=w))
    assert out["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w))


def test_scores_of_a_split_with_one_class_are_defined_where_they_can_be():
    """Negatives only: ROC AUC and AP are undefined (NaN), but the log loss and the Brier
    score are not: each is the weighted mean loss of saying 'negative' with the
    probabilities given."""
    negatives = tiny_split().iloc[2:]
    out = view_metrics(negatives, view="sample", prior=0.2, threshold=0.5, costs=Costs(1, 1))
    p = negatives["score"].to_numpy()
    assert np.isnan(out["roc_auc"])
    assert out["brier"] == pytest.approx(np.mean(p**2))
    assert out["log_loss"] == pytest.approx(-np.mean(np.log1p(-p)))


def test_metrics_from_rates_are_the_confusion_at_the_prior_by_hand():
    """prior 0.1, TPR 0.8, FPR 0.05: per example TP 0.08, FP 0.045, FN 0.02, so precision
    0.08/0.125, F1 0.16/0.225 and the cost 1000 * (0.045 * 1 + 0.02 * 10) = 245, computed
    in float64 whatever the inputs' dtype."""
    from dsprior.evaluation.measures import metrics_from_rates

    got = metrics_from_rates(
        np.float32([0.1]), np.float32([0.8]), np.float32([0.05]), costs=Costs(1.0, 10.0)
    )
    want = {"precision": 0.64, "recall": 0.8, "f1": 0.16 / 0.225, "expected_cost": 245.0}
    for name, value in want.items():
        assert got[name].dtype == np.float64, name
        assert got[name][0] == pytest.approx(value, rel=1e-6), name
    # float64 inputs: the exact float64 arithmetic
    exact = metrics_from_rates(
        np.array([0.1]), np.array([0.8]), np.array([0.05]), costs=Costs(1, 10)
    )
    assert exact["precision"][0] == 0.1 * 0.8 / (0.1 * 0.8 + 0.9 * 0.05)


def test_metrics_from_rates_leave_undefined_values_nan_without_a_warning():
    """No alert at all (TPR = FPR = 0): precision is undefined, NaN, quietly (a bootstrap
    draws thousands of these), and so is F1 where there is no positive either."""
    import warnings

    from dsprior.evaluation.measures import metrics_from_rates

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = metrics_from_rates(
            np.array([0.0, 0.2]), np.array([0.0, 0.0]), np.array([0.0, 0.0]), costs=Costs(1, 10)
        )
    assert np.isnan(got["precision"]).all()
    assert np.isnan(got["f1"][0]) and got["f1"][1] == 0.0  # at prior 0.2 the misses count
    assert list(got["recall"]) == [0.0, 0.0]
    assert list(got["expected_cost"]) == pytest.approx([0.0, 2000.0])


def prior_split() -> pd.DataFrame:
    """Twelve groups of tiny_split: enough rows that the prior's own draws spread."""
    return pd.concat(
        [tiny_split().assign(group=lambda f, i=i: f["group"] + str(i)) for i in range(12)],
        ignore_index=True,
    )


def test_an_estimated_prior_widens_the_intervals_and_stays_fixed_by_the_seed():
    """``prior`` None: the split's own weighted positive rate, with its uncertainty; the
    same seed gives the same intervals; explicit ``prior_draws`` replace the split's own."""
    frame = prior_split()
    predicted = decisions_at(frame, 0.5)
    kw = {"costs": Costs(1.0, 10.0), "bootstrap": Bootstrap(300, 0.9, seed=4)}
    rate = float((frame["weight"] * frame["label"]).sum() / frame["weight"].sum())
    estimated = bootstrap_intervals(frame, predicted, prior=None, **kw)
    assert estimated == bootstrap_intervals(frame, predicted, prior=None, **kw)
    known = bootstrap_intervals(frame, predicted, prior=rate, **kw)
    for name in ("precision", "expected_cost"):
        low, high = estimated[f"{name}_ci"]
        known_low, known_high = known[f"{name}_ci"]
        assert low < known_low and high > known_high, name  # the prior's spread added
    assert estimated["recall_ci"] == known["recall_ci"]  # recall does not depend on it
    fixed = np.full(300, rate)
    assert bootstrap_intervals(frame, predicted, prior=None, prior_draws=fixed, **kw) == known


@pytest.mark.parametrize("min_positives", [1, 2, 3])
def test_intervals_are_refused_below_the_minimum_count_of_positives_only(min_positives):
    from dsprior.evaluation.measures import interval_refusal

    frame = tiny_split()  # two positives, four negatives
    refusal = interval_refusal(
        frame, labels="distant", bootstrap=Bootstrap(10, 0.9, 1, min_positives=min_positives)
    )
    if min_positives <= 2:
        assert refusal is None
    else:
        assert refusal is not None and refusal.startswith("2 positives (distant labels)")
        assert "min_positives = 3" in refusal


def test_expected_cost_weighs_each_error_by_its_own_cost():
    from dsprior.evaluation.measures import metrics_from_rates

    got = metrics_from_rates(
        np.array([0.1]), np.array([0.8]), np.array([0.05]), costs=Costs(3.0, 7.0)
    )
    fp, fn = 0.9 * 0.05, 0.1 * 0.2
    assert got["expected_cost"][0] == pytest.approx(priors.PER_EXAMPLES * (3 * fp + 7 * fn))


def test_log_odds_come_out_in_float64_whatever_the_table_stores():
    """A float32 logit column (a table written by other tools) is read as float64, so that
    decisions and ranks compare at full precision."""
    from dsprior.evaluation.measures import log_odds_at_prior, ranking_scores, view_log_odds

    frame = tiny_split().assign(
        logit=np.float32([0.1, 2.5, -1.0, 0.3, 7.0, -3.0]),
        logit_at_prior=np.float32([0.0, 1.5, -2.0, -0.7, 6.0, -4.0]),
    )
    assert log_odds_at_prior(frame).dtype == np.float64
    assert view_log_odds(frame, view="sample").dtype == np.float64
    assert ranking_scores(frame).dtype == np.float64
    legacy = tiny_split().astype({"probability": np.float32, "score": np.float32})
    assert log_odds_at_prior(legacy).dtype == np.float64
    assert view_log_odds(legacy, view="sample").dtype == np.float64


def test_probabilities_of_zero_and_one_become_infinite_log_odds_without_a_warning():
    import warnings

    from dsprior.evaluation.measures import log_odds_at_prior, view_log_odds

    frame = tiny_split().assign(probability=[1.0, 0.0, 0.5, 0.5, 0.5, 0.5], score=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = log_odds_at_prior(frame)
        sampled = view_log_odds(frame, view="sample")
    assert z[0] == np.inf and z[1] == -np.inf and np.isneginf(sampled).all()


def test_an_unknown_view_is_refused_with_the_views_allowed():
    from dsprior.evaluation.measures import VIEWS, view_log_odds

    with pytest.raises(ValueError, match=r"view must be one of .*'sample'.*, got 'production'"):
        view_log_odds(tiny_split(), view="production")
    assert "sample" in VIEWS and "prior" in VIEWS


def test_ranking_without_the_models_log_odds_defaults_to_the_prior_view():
    """A table without ``logit`` (written before it existed) ranks by the prior view's
    log-odds unless told otherwise: ``logit(probability)``, not the raw score."""
    from scipy.special import logit

    from dsprior.evaluation.measures import ranking_scores

    frame = tiny_split()  # score and probability rank differently
    np.testing.assert_array_equal(ranking_scores(frame), logit(frame["probability"].to_numpy()))
    np.testing.assert_array_equal(
        ranking_scores(frame, view="sample"), logit(frame["score"].to_numpy())
    )


def test_a_metric_that_raises_value_error_is_nan():
    from dsprior.evaluation.measures import _safe

    def undefined(*args, **kwargs):
        raise ValueError("one class only")

    got = _safe(undefined, 1, labels=[0, 1])
    assert isinstance(got, float) and np.isnan(got)
    assert _safe(lambda a, b: a + b, 1, 2) == 3.0
    with pytest.raises(TypeError):  # only ValueError means "undefined"
        _safe(lambda: None)


def test_threshold_free_scores_read_a_float32_probability_as_float64():
    """A float32 probability column (a table written by other tools) scores the same Brier
    loss as the same values in float64: the arithmetic is done at full precision."""
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {
            "label": (rng.random(n) < 0.3).astype(np.int8),
            "weight": rng.uniform(1.0, 20.0, n),
            "score": rng.random(n).astype(np.float32),
            "probability": rng.random(n).astype(np.float32),
            "group": [f"g{i}" for i in range(n)],
        }
    )
    wide = frame.astype({"score": np.float64, "probability": np.float64})
    kw = {"prior": 0.1, "threshold": 0.5, "costs": Costs(1.0, 10.0)}
    for view in ("sample", "prior"):
        assert (
            view_metrics(frame, view=view, **kw)["brier"]
            == (view_metrics(wide, view=view, **kw)["brier"])
        )


def test_intervals_at_an_estimated_prior_cover_the_population_values_about_95_in_100():
    """Test's four intervals, the prior estimated from dev_b's and test's rows and its draws
    carried in, over 120 simulated splits where the truth is known: a rule with tpr 0.7 and
    fpr 0.004 at a prior of 0.01, positives clustered in entity groups of 4 (group rates
    Beta with concentration 2), about 40 positives a split. Each interval should hold the
    population value (``metrics_from_rates`` at the true rates) about 95 times in 100; the
    bounds are the binomial's central 99.9% at 120 replicates (about 0.89 to 0.99)."""
    prior, tpr, fpr, size, conc = 0.01, 0.7, 0.004, 4, 2.0
    costs = Costs(false_positive=1, false_negative=10)
    truth = metrics_from_rates(np.array([prior]), np.array([tpr]), np.array([fpr]), costs=costs)
    rng = np.random.default_rng(2026)

    def split(n: int, tag: str) -> tuple[pd.DataFrame, np.ndarray]:
        groups = np.repeat(np.arange(n // size), size)
        rate = rng.beta(prior * conc, (1 - prior) * conc, n // size)[groups]
        y = (rng.random(len(groups)) < rate).astype(int)
        d = np.where(y == 1, rng.random(len(y)) < tpr, rng.random(len(y)) < fpr).astype(int)
        frame = pd.DataFrame({"label": y, "weight": 1.0, "group": [f"{tag}{g}" for g in groups]})
        return frame, d

    held = dict.fromkeys(CI_METRICS, 0)
    replicates = 120
    for r in range(replicates):
        test, decided = split(4000, "t")
        rows = pd.concat([split(4000, "b")[0], test])
        estimate, draws = priors.rate_draws(
            rows["label"].to_numpy(np.float64), rows["weight"].to_numpy(),
            rows["group"].to_numpy(), size=200, rng=np.random.default_rng(r),
        )  # fmt: skip
        ci = bootstrap_intervals(
            test, decided, prior=estimate, costs=costs,
            bootstrap=Bootstrap(resamples=200, level=0.95, seed=r), prior_draws=draws,
        )  # fmt: skip
        for name in CI_METRICS:
            low, high = ci[f"{name}_ci"]
            held[name] += low <= float(truth[name][0]) <= high
    low, high = binom.ppf([0.0005, 0.9995], replicates, 0.95) / replicates
    for name, count in held.items():
        assert low <= count / replicates <= high, (name, held)
