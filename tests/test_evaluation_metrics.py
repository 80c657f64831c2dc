"""metrics.json's thresholds (``dsprior.evaluation.metrics``): dev_b's threshold is the cost
minimum at the prior, found here by brute force with weights computed independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsprior.evaluation.inputs import PREDICTION_COLUMNS
from dsprior.evaluation.metrics import compute_metrics
from dsprior.priors import Bootstrap, Costs
from tests.factories import brute_force_cut


def split_frame(rng, name, *, n, positive_rate, keep=1.0):
    """``n`` examples at ``positive_rate``, negatives kept with rate ``keep`` (weight 1/keep)."""
    y = (rng.random(n) < positive_rate).astype(np.int8)
    frame = pd.DataFrame({"label": y})
    frame = frame[(y == 1) | (rng.random(n) < keep)].reset_index(drop=True)
    y = frame["label"].to_numpy()
    logit = 2.0 * y + rng.normal(size=len(y)) - 2.0
    probability = 1.0 / (1.0 + np.exp(-logit))
    frame["example_id"] = [f"{name}-{i:05d}" for i in range(len(y))]
    frame["split"] = name
    frame["group"] = [f"{name}-g{i // 2}" for i in range(len(y))]
    frame["weight"] = np.where(y == 1, 1.0, 1.0 / keep)
    frame["logit"] = frame["logit_at_prior"] = logit
    frame["score"] = probability
    frame["probability"] = probability
    return frame[list(PREDICTION_COLUMNS)]


@pytest.mark.parametrize(
    ("dev_b_kwargs", "prior"),
    [
        # dev_b's negatives thinned 1 in 20 with weights 20: sampled ~1:2.5 for a ~1:50 prior
        ({"n": 20_000, "positive_rate": 0.02, "keep": 0.05}, None),
        # dev_b unthinned (weights 1) at 1:4, evaluate.prior set to 1:99
        ({"n": 4_000, "positive_rate": 0.2}, 0.01),
    ],
    ids=["thinned_dev_b_with_weights", "prior_far_from_sample_rate"],
)
def test_threshold_is_searched_with_weights_at_the_prior(dev_b_kwargs, prior):
    """The dev_b threshold is the brute-force cost minimum at the prior, not as sampled."""
    rng = np.random.default_rng(17)
    dev_b = split_frame(rng, "dev_b", **dev_b_kwargs)
    predictions = pd.concat(
        [
            split_frame(rng, "dev_a", n=300, positive_rate=0.3),
            dev_b,
            split_frame(rng, "test", n=300, positive_rate=0.05),
        ],
        ignore_index=True,
    )
    y, p, w = (dev_b[c].to_numpy() for c in ("label", "probability", "weight"))
    if prior is None:  # the prior the recorded weights restore
        prior = float(np.dot(y, w) / w.sum())
    # weights at the prior, independently of priors.weights_at_prior: negatives rescaled so
    # that positives weigh `prior` of the total
    w_prior = w.copy()
    w_prior[y == 0] *= w[y == 1].sum() / w[y == 0].sum() * (1 - prior) / prior
    assert np.dot(y, w_prior) / w_prior.sum() == pytest.approx(prior)
    costs = {"cost_fp": 1.0, "cost_fn": 10.0}
    flag_prior, cost_prior = brute_force_cut(y, p, w_prior, **costs)
    flag_sampled, _ = brute_force_cut(y, p, np.ones(len(y)), **costs)
    # the two weightings pick clearly different rules, so the test can tell them apart
    assert flag_sampled.sum() > 2 * flag_prior.sum() > 0

    metrics = compute_metrics(
        predictions, prior=prior, costs=Costs(1.0, 10.0), bootstrap=Bootstrap(5, 0.9, 0)
    )
    threshold = metrics["threshold"]
    np.testing.assert_array_equal(p >= threshold, flag_prior)
    # midway between the lowest flagged probability and the highest unflagged one
    assert threshold == pytest.approx((p[flag_prior].min() + p[~flag_prior].max()) / 2)
    assert not np.array_equal(p >= threshold, flag_sampled)
    assert threshold > p[flag_sampled].min() + 0.1
    assert metrics["dev_b"]["prior"]["expected_cost"] == pytest.approx(cost_prior)


def with_prior_rows(
    seed: int, *, dev_a: int, production: int, rate: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """dev_a at 0.3, dev_b and test at ``rate`` (``production`` examples each), and the
    dev_b and test rows a prior would be estimated from."""
    rng = np.random.default_rng(seed)
    predictions = pd.concat(
        [
            split_frame(rng, "dev_a", n=dev_a, positive_rate=0.3),
            split_frame(rng, "dev_b", n=production, positive_rate=rate),
            split_frame(rng, "test", n=production, positive_rate=rate),
        ],
        ignore_index=True,
    )
    return predictions, predictions[predictions["split"].isin(["dev_b", "test"])]


def test_an_estimated_prior_widens_the_intervals_at_it():
    """The prior estimated from dev_b and test (given as ``prior_rows``) is uncertain, and so
    is every cost at it: test's cost interval is wider than with the prior taken as known,
    recall's (which does not depend on the prior) the same; metrics.json says which prior
    carried its uncertainty. A configured prior that is not those rows' rate is known."""
    predictions, rows = with_prior_rows(5, dev_a=600, production=2000, rate=0.03)
    prior = float(rows["label"].mean())
    kw = {"costs": Costs(1.0, 10.0), "bootstrap": Bootstrap(300, 0.95, 1)}
    known = compute_metrics(predictions, prior=prior, **kw)
    estimated = compute_metrics(predictions, prior=prior, prior_rows=rows, **kw)
    configured = compute_metrics(predictions, prior=0.01, prior_rows=rows, **kw)

    def width(metrics, name):
        low, high = metrics["test"]["prior"][f"{name}_ci"]
        return high - low

    assert width(estimated, "expected_cost") > 1.2 * width(known, "expected_cost")
    assert width(estimated, "recall") == pytest.approx(width(known, "recall"))
    assert known["bootstrap"]["prior_uncertainty"] == {"distant": False, "gold": False}
    assert estimated["bootstrap"]["prior_uncertainty"]["distant"] is True
    assert configured["bootstrap"]["prior_uncertainty"]["distant"] is False


def test_a_split_with_too_few_positives_gets_a_reason_not_an_interval():
    """Below ``bootstrap.min_positives`` label-1 examples, a split's rules (the chosen and the
    shipped one) carry ``interval_refused`` instead of their four intervals; at exactly the
    minimum they keep them, and the report says why a split has none."""
    from dsprior.evaluation.report import rule_table

    rng = np.random.default_rng(8)
    predictions = pd.concat(
        [
            split_frame(rng, "dev_a", n=400, positive_rate=0.3),
            split_frame(rng, "dev_b", n=2000, positive_rate=0.05),
            split_frame(rng, "test", n=300, positive_rate=0.03),
        ],
        ignore_index=True,
    )
    test_positives = int(predictions.query("split == 'test'")["label"].sum())
    dev_a_positives = int(predictions.query("split == 'dev_a'")["label"].sum())
    assert 3 <= test_positives < dev_a_positives
    names = ("precision_ci", "recall_ci", "f1_ci", "expected_cost_ci")

    def run(minimum):
        return compute_metrics(
            predictions,
            prior=0.03,
            costs=Costs(1.0, 10.0),
            bootstrap=Bootstrap(50, 0.95, 1, min_positives=minimum),
        )

    at_minimum, above = run(test_positives), run(test_positives + 1)
    for rule in (at_minimum["test"]["prior"], at_minimum["test"]["shipped"]["prior"]):
        assert "interval_refused" not in rule and all(k in rule for k in names)
    for rule in (above["test"]["prior"], above["test"]["shipped"]["prior"]):
        assert not any(k in rule for k in names)
        assert rule["interval_refused"].startswith(f"{test_positives} positives (distant labels)")
        assert f"min_positives = {test_positives + 1}" in rule["interval_refused"]
    assert "precision_ci" in above["dev_a"]["prior"]  # dev_a has more positives than the minimum
    assert above["bootstrap"]["min_positives"] == test_positives + 1
    text = "\n".join(rule_table(above, lambda s, v: above[s][v], 95))
    assert f"No interval on test measured at the prior: {test_positives} positives" in text
    assert "No interval on dev_a" not in text


def test_a_prior_from_too_few_positives_gets_a_reason_not_an_interval():
    """With fewer label-1 examples than ``bootstrap.min_prior_positives`` in the rows the
    prior was estimated from (dev_b and test), every split's rules at it (dev_a's projection
    and test's measurement, the chosen and the shipped one) carry ``interval_refused`` (the
    count, the key, why) instead of intervals; at exactly the minimum they keep them. A prior
    taken as known (no ``prior_rows``) is never refused this way."""
    predictions, rows = with_prior_rows(21, dev_a=400, production=1500, rate=0.02)
    positives = int(rows["label"].sum())
    assert 20 <= positives <= 100
    names = ("precision_ci", "recall_ci", "f1_ci", "expected_cost_ci")

    def run(minimum, prior_rows=rows):
        return compute_metrics(
            predictions,
            prior=float(rows["label"].mean()),
            costs=Costs(1.0, 10.0),
            bootstrap=Bootstrap(50, 0.95, 1, min_prior_positives=minimum),
            prior_rows=prior_rows,
        )

    at_minimum, above = run(positives), run(positives + 1)
    for split in ("dev_a", "test"):
        for rule in (at_minimum[split]["prior"], at_minimum[split]["shipped"]["prior"]):
            assert "interval_refused" not in rule and all(k in rule for k in names)
        for rule in (above[split]["prior"], above[split]["shipped"]["prior"]):
            assert not any(k in rule for k in names)
            reason = rule["interval_refused"]
            assert reason.startswith(f"the distant-label prior was estimated from {positives} ")
            assert f"min_prior_positives = {positives + 1}" in reason
    assert above["bootstrap"]["min_prior_positives"] == positives + 1
    known = run(positives + 1, prior_rows=None)
    assert all(k in known[split]["prior"] for k in names for split in ("dev_a", "test"))


def test_the_prior_refusal_counts_the_views_own_positives():
    """Through gold labels the prior's rows are their gold-labelled rows and gold positives."""
    from dsprior.evaluation.gold import Labels

    rows = pd.DataFrame(
        {
            "split": ["dev_b"] * 6,
            "label": [1, 1, 1, 0, 0, 0],
            "true_label": [1, 0, np.nan, 0, 0, 1],
            "weight": 1.0,
            "group": list("abcdef"),
        }
    )
    boot = Bootstrap(10, 0.95, 1, min_prior_positives=3)
    distant = Labels("distant", 0.5, rows)
    gold = Labels("gold", 0.4, rows)
    assert distant.prior_refusal(bootstrap=boot) is None  # 3 distant positives
    assert gold.prior_refusal(bootstrap=boot).startswith(
        "the gold-label prior was estimated from 2 positives"
    )
    assert Labels("gold", 0.4).prior_refusal(bootstrap=boot) is None  # known
