"""Gold labels (``dsprior.evaluation.gold``): metrics against gold, label noise, the gold prior,
threshold on gold, and the report's gold section.

Fast: predictions tables are built directly; nothing is trained.
Every number is recomputed here with scikit-learn from the per-example predictions and gold
labels, with weights moved to the gold prior independently of ``priors.weights_at_prior``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from dsprior import priors
from dsprior.evaluation.config import check_params
from dsprior.evaluation.gold import (
    GOLD,
    Labels,
    gold_frame,
    gold_labels,
    gold_threshold_refusal,
    label_noise,
    weighted_gold_prior,
)
from dsprior.evaluation.inputs import SPLITS, build_predictions
from dsprior.evaluation.measures import CI_METRICS
from dsprior.evaluation.metrics import classic_example, compute_metrics, split_metrics
from dsprior.evaluation.pipeline import evaluate_predictions
from dsprior.evaluation.report import render_report
from dsprior.priors import Bootstrap, Costs
from tests.factories import EVAL_BETA as BETA
from tests.factories import EVAL_PARAMS as PARAMS
from tests.factories import assert_finite_or_null, brute_force_cut

GOLD_PRIOR = 0.03  # truth in production
KB_MISSING = 0.3  # P(distant 0 | gold 1)
KB_FALSE = 0.004  # P(distant 1 | gold 0): about 1 in 8 distant positives false
COSTS = {"cost_fp": 1.0, "cost_fn": 10.0}
BOOT = Bootstrap(resamples=40, level=0.9, seed=5)


def noisy_split(rng: np.random.Generator, name: str, n_groups: int, keep: float) -> pd.DataFrame:
    """Gold labels at GOLD_PRIOR, distant labels with both kinds of noise, scores from the truth.

    Distant negatives are kept with rate ``keep`` and weighted 1/keep (thinning sees only the
    distant label, as the pipeline's does).
    """
    sizes = rng.integers(1, 5, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    n = len(groups)
    gold = (rng.random(n) < GOLD_PRIOR).astype(np.int8)
    distant = gold.copy()
    distant[(gold == 1) & (rng.random(n) < KB_MISSING)] = 0
    distant[(gold == 0) & (rng.random(n) < KB_FALSE)] = 1
    frame = pd.DataFrame(
        {
            "example_id": [f"{name}-{i:05d}" for i in range(n)],
            "split": name,
            "group": [f"{name}-g{g}" for g in groups],
            "label": distant,
            GOLD: gold,
        }
    )
    frame = frame[(frame["label"] == 1) | (rng.random(n) < keep)].copy()
    frame["weight"] = np.where(frame["label"] == 1, 1.0, 1.0 / keep)
    logit = 3.0 * frame[GOLD].to_numpy() + 1.2 * rng.normal(size=len(frame)) - 5.0
    frame["logit_at_prior"] = logit
    frame["probability"] = 1.0 / (1.0 + np.exp(-logit))
    frame["logit"] = logit - np.log(BETA)  # the thinned model's log-odds
    frame["score"] = priors.sigmoid(frame["logit"].to_numpy())
    return frame


def with_gold(frame: pd.DataFrame, gold: np.ndarray) -> pd.DataFrame:
    out = frame.copy()
    out[GOLD] = pd.array(
        [None if np.isnan(g) else int(g) for g in gold.astype(float)], dtype="Int8"
    )
    return out


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    """Every example of every split gold-labelled, as the simulator does."""
    rng = np.random.default_rng(7)
    frame = pd.concat(
        [
            noisy_split(rng, "dev_a", 1500, BETA),
            noisy_split(rng, "dev_b", 2500, 1.0),
            noisy_split(rng, "test", 2500, 1.0),
        ],
        ignore_index=True,
    )
    return with_gold(frame, frame[GOLD].to_numpy())


@pytest.fixture(scope="module")
def partial(full) -> pd.DataFrame:
    """dev_a without any gold label, test gold-labelled on a random 40%."""
    rng = np.random.default_rng(11)
    gold = full[GOLD].to_numpy(dtype=float, na_value=np.nan)
    gold[(full["split"] == "dev_a").to_numpy()] = np.nan
    gold[(full["split"] == "test").to_numpy() & (rng.random(len(full)) < 0.6)] = np.nan
    return with_gold(full, gold)


def metrics_of(predictions: pd.DataFrame, **kwargs) -> dict:
    return compute_metrics(
        predictions, prior=0.02, costs=Costs(1.0, 10.0), bootstrap=BOOT, beta=BETA, **kwargs
    )


def weights_at(y: np.ndarray, w: np.ndarray, prior: float) -> np.ndarray:
    """Negatives rescaled so positives weigh ``prior`` of the total (independent of dsprior.priors)."""
    out = w.astype(float).copy()
    out[y == 0] *= w[y == 1].sum() / w[y == 0].sum() * (1 - prior) / prior
    return out


def expected_gold_prior(predictions: pd.DataFrame) -> float:
    gold = predictions[GOLD].to_numpy(dtype=float, na_value=np.nan)
    labelled = ~np.isnan(gold)
    w = predictions["weight"].to_numpy()[labelled]
    return float(np.dot(gold[labelled], w) / w.sum())


def check_against_sklearn(metrics: dict, predictions: pd.DataFrame, split: str) -> None:
    frame = predictions[predictions["split"] == split]
    gold = frame[GOLD].to_numpy(dtype=float, na_value=np.nan)
    frame = frame[~np.isnan(gold)]
    y = frame[GOLD].to_numpy(dtype=int)
    distant = frame["label"].to_numpy()
    w_manifest = frame["weight"].to_numpy()
    w = weights_at(y, w_manifest, metrics["gold_prior"])
    view = metrics[split]["gold"]
    assert view["gold_examples"] == len(frame)
    rules = {
        "chosen": (frame["probability"] >= metrics["threshold"]).astype(int).to_numpy(),
        "shipped": (frame["score"] >= 0.5).astype(int).to_numpy(),
    }
    for rule, pred in rules.items():
        views = view if rule == "chosen" else view["shipped"]
        for name, weights in (("sample", None), ("prior", w)):
            got = views[name]
            assert got["precision"] == pytest.approx(
                precision_score(y, pred, sample_weight=weights)
            ), (rule, name)
            assert got["recall"] == pytest.approx(recall_score(y, pred, sample_weight=weights))
            assert got["f1"] == pytest.approx(f1_score(y, pred, sample_weight=weights))
            tn, fp, fn, tp = confusion_matrix(y, pred, sample_weight=weights).ravel()
            cm = got["confusion"]
            assert [cm["tn"], cm["fp"], cm["fn"], cm["tp"]] == pytest.approx([tn, fp, fn, tp])
            total = tn + fp + fn + tp
            assert got["expected_cost"] == pytest.approx(1000 * (fp * 1.0 + fn * 10.0) / total)
    assert view["sample"]["average_precision"] == pytest.approx(
        average_precision_score(y, frame["score"])
    )
    assert view["prior"]["average_precision"] == pytest.approx(
        average_precision_score(y, frame["probability"], sample_weight=w)
    )
    assert view["prior"]["positive_fraction"] == pytest.approx(metrics["gold_prior"])
    # label noise: the distant label scored as a prediction of gold, with the manifest weights
    noise = metrics[split]["label_noise"]
    assert noise["false_label_rate"] == pytest.approx(
        1 - precision_score(y, distant, sample_weight=w_manifest)
    )
    assert noise["missing_label_rate"] == pytest.approx(
        1 - recall_score(y, distant, sample_weight=w_manifest)
    )
    assert noise["counts"]["false_labels"] == int(((distant == 1) & (y == 0)).sum())
    assert noise["counts"]["missing_labels"] == int(((distant == 0) & (y == 1)).sum())
    for name in ("false_label_rate", "missing_label_rate"):
        low, high = noise[f"{name}_ci"]
        assert low <= noise[name] <= high


def test_gold_metrics_and_noise_equal_sklearn_on_every_split(full):
    metrics = metrics_of(full)
    assert metrics["gold_prior"] == pytest.approx(expected_gold_prior(full))
    for split in SPLITS:
        check_against_sklearn(metrics, full, split)
    # the simulated noise is what the rates measure (KB_MISSING of gold positives unlabelled)
    assert metrics["test"]["label_noise"]["missing_label_rate"] == pytest.approx(
        KB_MISSING, abs=0.1
    )
    # group-bootstrap intervals on test (and the dev_a projection) as for the distant labels
    for split in ("dev_a", "test"):
        for view in (metrics[split]["gold"]["prior"], metrics[split]["gold"]["shipped"]["prior"]):
            for name in CI_METRICS:
                low, high = view[f"{name}_ci"]
                assert low <= high
    assert "precision_ci" not in metrics["dev_b"]["gold"]["prior"]
    # missing labels make the model's true finds look like false positives
    assert metrics["test"]["gold"]["prior"]["precision"] > metrics["test"]["prior"]["precision"]
    assert metrics["threshold_labels"] == "distant"
    assert_finite_or_null(metrics)


def test_no_gold_labels_means_no_gold_keys(full, partial):
    for predictions in (full.drop(columns=GOLD), partial):
        metrics = metrics_of(predictions)
        assert "gold" not in metrics["dev_a"] and "label_noise" not in metrics["dev_a"]
    none_at_all = metrics_of(full.drop(columns=GOLD))
    assert not any("gold" in metrics_key for metrics_key in none_at_all)
    for split in SPLITS:
        assert "gold" not in none_at_all[split] and "label_noise" not in none_at_all[split]
    assert list(none_at_all["threshold_by_labels"]) == ["distant"]
    all_null = with_gold(full, np.full(len(full), np.nan))
    assert "gold" not in metrics_of(all_null)["test"]
    report = render_report(
        {**none_at_all, "classic_example": classic_example(), "prior_source": "x"}
    )
    assert "gold" not in report.lower().replace("threshold_labels", "")


def test_partially_labelled_test_split_counts_the_labelled_part_only(partial):
    metrics = metrics_of(partial)
    test = partial[partial["split"] == "test"]
    labelled = int(test[GOLD].notna().sum())
    assert 0.3 * len(test) < labelled < 0.5 * len(test)
    assert metrics["test"]["gold"]["gold_examples"] == labelled
    assert metrics["test"]["gold"]["split_examples"] == len(test)
    assert metrics["test"]["label_noise"]["both_labelled"] == labelled
    assert metrics["gold_prior"] == pytest.approx(expected_gold_prior(partial))
    for split in ("dev_b", "test"):
        check_against_sklearn(metrics, partial, split)
    # the distant-label metrics still cover the whole split
    assert metrics["test"]["sample"]["examples"] == len(test)
    low, high = metrics["test"]["gold"]["prior"]["precision_ci"]
    assert low <= metrics["test"]["gold"]["prior"]["precision"] <= high
    metrics["bootstrap"] = {"level": 0.9, "resamples": 40}
    report = render_report({**metrics, "classic_example": classic_example(), "prior_source": "x"})
    assert "Only part of test is gold-labelled" in report
    assert f"{labelled} of {len(test)} examples gold-labelled" in report


def test_threshold_labels_gold_picks_the_gold_cost_minimum(full):
    distant = metrics_of(full)
    gold = metrics_of(full, threshold_labels="gold")
    assert gold["threshold_labels"] == "gold" and "against gold" in gold["threshold_source"]
    dev_b = full[full["split"] == "dev_b"]
    y = dev_b[GOLD].to_numpy(dtype=int)
    p = dev_b["probability"].to_numpy()
    w = weights_at(y, dev_b["weight"].to_numpy(), gold["gold_prior"])
    flag, cost = brute_force_cut(y, p, w, **COSTS)
    np.testing.assert_array_equal(p >= gold["threshold"], flag)
    assert gold["dev_b"]["gold"]["prior"]["expected_cost"] == pytest.approx(cost)
    assert gold["threshold"] == pytest.approx(distant["threshold_by_labels"]["gold"])
    assert gold["threshold_by_labels"]["distant"] == pytest.approx(distant["threshold"])
    # noisy distant labels pick a different rule than the truth does
    assert not np.array_equal(p >= gold["threshold"], p >= distant["threshold"])
    # the gold threshold is applied to the distant-label metrics as well
    test = full[full["split"] == "test"]
    pred = (test["probability"] >= gold["threshold"]).astype(int)
    assert gold["test"]["sample"]["precision"] == pytest.approx(
        precision_score(test["label"], pred)
    )
    gold["bootstrap"] = {"level": 0.9, "resamples": 40}
    report = render_report({**gold, "classic_example": classic_example(), "prior_source": "x"})
    assert "chosen against gold labels" in report
    assert "against **gold** labels" in report


def test_threshold_on_gold_refuses_too_few_gold_labels(full):
    gold = full[GOLD].to_numpy(dtype=float, na_value=np.nan)
    dev_b = (full["split"] == "dev_b").to_numpy()
    keep = np.flatnonzero(dev_b & (gold == 1))[:5]  # 5 gold positives left on dev_b
    gold[dev_b & (gold == 1)] = np.nan
    gold[keep] = 1
    few = with_gold(full, gold)
    with pytest.raises(ValueError, match=r"threshold_labels is gold but dev_b has .* \(5 gold pos"):
        metrics_of(few, threshold_labels="gold")
    assert metrics_of(few)["threshold_by_labels"]["gold"] is None  # distant: fine, says so


def test_report_puts_distant_and_gold_side_by_side(full):
    metrics, _, report = evaluate_predictions(
        full, config=check_params(PARAMS), prior=0.02, prior_source="fixture", beta=BETA
    )
    assert "## Distant labels against gold labels" in report
    for split in ("dev_b", "test"):
        for rule in ("raw score >= 0.5", "chosen threshold"):
            for view in ("as sampled", "at the prior"):
                assert f"| {split} | {rule} | {view} |" in report
    assert "missing label" in report and "false label" in report
    assert "every example gold-labelled" in report
    assert f"{100 * metrics['test']['label_noise']['missing_label_rate']:.1f}%" in report
    assert f"from gold labels: {metrics['gold_prior']:.4f}" in report


def test_gold_labels_travel_into_predictions_and_metrics(partial):
    """Into the predictions table as nullable Int8, and into the metrics where labelled.

    That they survive the stage's writing is checked in tests/test_evaluate.py.
    """
    rows = partial.drop(columns=["score", "probability"])
    out = build_predictions(rows, partial["score"].to_numpy(), beta=BETA)
    assert out[GOLD].dtype == "Int8"
    assert out[GOLD].isna().sum() == partial[GOLD].isna().sum()
    metrics, _, _ = evaluate_predictions(
        out, config=check_params(PARAMS), prior=0.02, prior_source="fixture", beta=BETA
    )
    assert "gold" not in metrics["dev_a"]
    assert metrics["test"]["gold"]["gold_examples"] == int(
        partial[partial["split"] == "test"][GOLD].notna().sum()
    )


def test_gold_labels_refuse_other_values():
    with pytest.raises(ValueError, match="true_label must be 0, 1 or null"):
        gold_labels(pd.DataFrame({GOLD: [0, 2]}))


def gold_dev_b(positives: int, negatives: int, *, unlabelled: int = 5) -> pd.DataFrame:
    """dev_b as ``gold_frame`` sees it: ``positives`` and ``negatives`` gold-labelled rows, and
    ``unlabelled`` rows without a gold label (distant label 1: they must not count at all)."""
    n = positives + negatives
    gold = np.r_[np.ones(positives), np.zeros(negatives), np.full(unlabelled, np.nan)]
    frame = pd.DataFrame({"label": np.r_[np.zeros(n, np.int8), np.ones(unlabelled, np.int8)]})
    return gold_frame(with_gold(frame, gold))


# The documented minimum (gold.GOLD_THRESHOLD_MIN): 100 gold examples, 10 of each gold class.
@pytest.mark.parametrize(
    ("positives", "negatives"),
    [(10, 90), (90, 10), (50, 50)],
    ids=["10-positives", "10-negatives", "100-examples"],
)
def test_gold_threshold_minimum_is_enough_exactly_at_the_minimum(positives, negatives):
    assert gold_threshold_refusal(gold_dev_b(positives, negatives)) is None


@pytest.mark.parametrize(
    ("positives", "negatives", "short"),
    [
        (9, 91, "(9 gold positives, 91"),
        (91, 9, "91 gold positives, 9 gold negatives"),
        (50, 49, "99 gold-labelled examples"),
    ],
    ids=["9-positives", "9-negatives", "99-examples"],
)
def test_gold_threshold_minimum_refuses_one_below(positives, negatives, short):
    reason = gold_threshold_refusal(gold_dev_b(positives, negatives))
    assert reason is not None and short in reason
    assert reason.endswith("needs at least 100 examples, 10 positives, 10 negatives")


def test_label_noise_rates_weigh_rows_by_the_manifest_weights():
    """Thinned distant negatives (kept at 1/10, weight 10) hold both gold classes, so the
    population's missing-label rate is far from the rows' count of them.

    By hand: distant 1 rows (weight 1): 6 gold 1, 2 gold 0; distant 0 rows (weight 10):
    3 gold 1, 9 gold 0. P(gold 0 | distant 1) = 2 / 8; P(distant 0 | gold 1) =
    30 / (6 + 30), where counting rows would say 3 / 9.
    """
    distant = np.r_[np.ones(8), np.zeros(12)].astype(np.int8)
    gold = np.r_[np.ones(6), np.zeros(2), np.ones(3), np.zeros(9)].astype(np.int8)
    frame = pd.DataFrame(
        {
            "label": distant,
            GOLD: gold,
            "weight": np.where(distant == 1, 1.0, 10.0),
            "group": [f"g{i // 2}" for i in range(len(gold))],
        }
    )
    noise = label_noise(gold_frame(frame), bootstrap=BOOT)
    assert noise["false_label_rate"] == pytest.approx(2 / 8)
    assert noise["missing_label_rate"] == pytest.approx(30 / 36)
    assert noise["counts"] == {
        "both_positive": 6,
        "false_labels": 2,
        "missing_labels": 3,
        "both_negative": 9,
    }
    assert noise["both_labelled"] == 20


def test_gold_labels_absent_or_bad_by_hand():
    """No column: all NaN, one per row; bad values are listed, at most five of them."""
    assert np.isnan(gold_labels(pd.DataFrame({"label": [0, 1, 1]}))).tolist() == [True] * 3
    bad = pd.DataFrame({GOLD: [0, 7, 2, 1, 3, 4, 5, 6, None]})
    with pytest.raises(ValueError) as raised:
        gold_labels(bad)
    assert str(raised.value) == "true_label must be 0, 1 or null, got [2.0, 3.0, 4.0, 5.0, 6.0]"
    got = gold_labels(pd.DataFrame({GOLD: pd.array([1, None, 0], dtype="Int8")}))
    np.testing.assert_array_equal(got, [1.0, np.nan, 0.0])


def test_weighted_gold_prior_needs_both_gold_classes():
    """The manifest-weighted positive fraction of the labelled rows; None with no labelled
    row or a single gold class."""
    w = np.array([1.0, 1.0, 5.0, 2.0])
    assert weighted_gold_prior(np.array([1, 0, np.nan, 0]), w) == pytest.approx(1 / 4)
    assert weighted_gold_prior(np.array([0, 0, np.nan, 0]), w) is None
    assert weighted_gold_prior(np.array([1, 1, np.nan, 1]), w) is None
    assert weighted_gold_prior(np.full(4, np.nan), w) is None


def test_gold_metrics_of_a_partly_labelled_split_by_hand():
    """Four of five rows gold-labelled: the unlabelled row is left out, the distant label
    kept beside gold, the labelled fraction 4/5; the shipped rule (raw score >= 0.5) is
    scored against gold as sampled and at the gold prior."""
    frame = pd.DataFrame(
        {
            "label": np.array([1, 0, 0, 1, 1], dtype=np.int8),
            GOLD: pd.array([1, 1, 0, 0, None], dtype="Int8"),
            "weight": [1.0, 4.0, 4.0, 1.0, 1.0],
            "score": [0.5, 0.2, 0.6, 0.1, 0.9],
            "probability": [0.8, 0.6, 0.3, 0.2, 0.9],
            "group": ["a", "b", "c", "d", "e"],
        }
    )
    gold = gold_frame(frame)
    assert gold["label"].tolist() == [1, 1, 0, 0] and gold["label"].dtype == np.int8
    assert gold["distant_label"].tolist() == [1, 0, 0, 1]
    assert gold["distant_label"].dtype == np.int8
    out = gold_entry(frame)
    assert (out["gold_examples"], out["split_examples"]) == (4, 5)
    assert out["labelled_fraction"] == pytest.approx(0.8)
    # the chosen rule (probability >= 0.5) flags the two gold positives only
    assert out["sample"]["confusion"] == {"tn": 2.0, "fp": 0.0, "fn": 0.0, "tp": 2.0}
    assert out["sample"]["probability_scored"] == "score"
    # shipped: rows 1 and 3 (score 0.5 and 0.6); gold 1 and 0
    assert out["shipped"]["sample"]["confusion"] == {"tn": 1.0, "fp": 1.0, "fn": 1.0, "tp": 1.0}
    # at the gold prior 0.5 the gold positives weigh 5 (1 + 4), the negatives 5 too
    assert out["shipped"]["prior"]["confusion"] == pytest.approx(
        {"tn": 1.0, "fp": 4.0, "fn": 4.0, "tp": 1.0}
    )
    assert out["prior"]["positive_fraction"] == pytest.approx(0.5)
    assert gold_entry(frame.drop(columns=GOLD)) is None


def gold_entry(frame: pd.DataFrame) -> dict | None:
    """``frame``'s entry against gold at prior 0.5, threshold 0.5 (None where it has none)."""
    labels = (Labels("distant", 0.5), Labels("gold", 0.5))
    entry = split_metrics(
        frame,
        labels=labels,
        threshold=0.5,
        bayes=0.5,
        costs=Costs(1.0, 10.0),
        bootstrap=Bootstrap(20, 0.95, 1),
    )
    return entry.get("gold")


def test_labels_refuse_an_unknown_name():
    """A label view names the labels it measures against; a typo is refused, naming both."""
    with pytest.raises(
        ValueError, match=r"labels must be one of \('distant', 'gold'\), got 'glod'"
    ):
        Labels("glod", 0.5)


def test_label_noise_names_its_weights_and_interval():
    """The record says which weights and which interval level it used, in percent."""
    distant = np.array([1, 1, 0, 0, 1, 0], dtype=np.int8)
    frame = pd.DataFrame(
        {
            "label": distant,
            GOLD: np.array([1, 0, 1, 0, 1, 0], dtype=np.int8),
            "weight": 1.0,
            "group": ["a", "b", "c", "d", "e", "f"],
        }
    )
    noise = label_noise(gold_frame(frame), bootstrap=Bootstrap(20, 0.95, 1))
    assert noise["interval"] == "95% Jeffreys on the group bootstrap's effective count"
    assert noise["weights"] == "manifest weights (the population the split stands for)"
    assert noise["false_label_rate"] == pytest.approx(1 / 3)
    assert noise["missing_label_rate"] == pytest.approx(1 / 3)
    assert set(noise) >= {"false_label_rate_ci", "missing_label_rate_ci"}
    # the seed fixes the intervals: the same call gives the same intervals
    again = label_noise(gold_frame(frame), bootstrap=Bootstrap(20, 0.95, 1))
    assert again["false_label_rate_ci"] == noise["false_label_rate_ci"]
    assert again["missing_label_rate_ci"] == noise["missing_label_rate_ci"]


def test_label_noise_without_a_missing_label_still_has_an_interval():
    """12 distant positives, all gold 1; 8 distant negatives thinned 1 in 20 (weight 20), all
    gold 0: the missing-label rate is 0, but 8 sampled distant negatives, each standing for
    20, cannot show that none of their kind is a true relation. The interval starts at 0 and
    reaches the 97.5% point of 160 q0 / (160 q0 + 12 q1) under Jeffreys' posteriors
    q0 ~ Beta(1/2, 8 + 1/2) (0 of 8) and q1 ~ Beta(12 + 1/2, 1/2) (12 of 12): not the one
    value [0, 0] a resample of the zero gives, nor the bound for 0 missing of the 12 gold
    positives, which ignores that the gold positives among the distant negatives are what
    the thinning hid."""
    rng = np.random.default_rng(0)
    q0, q1 = rng.beta(0.5, 8.5, 200_000), rng.beta(12.5, 0.5, 200_000)
    expected_high = np.quantile(160 * q0 / (160 * q0 + 12 * q1), 0.975)
    distant = np.r_[np.ones(12), np.zeros(8)].astype(np.int8)
    frame = pd.DataFrame(
        {
            "label": distant,
            GOLD: np.r_[np.ones(12), np.zeros(8)].astype(np.int8),
            "weight": np.where(distant == 1, 1.0, 20.0),
            "group": [f"g{i}" for i in range(20)],
        }
    )
    noise = label_noise(gold_frame(frame), bootstrap=Bootstrap(4000, 0.95, 3))
    assert noise["missing_label_rate"] == 0.0
    low, high = noise["missing_label_rate_ci"]
    assert low == 0.0
    assert high == pytest.approx(expected_high, rel=0.1)
    assert high > 0.5


def test_a_prior_not_from_its_rows_is_refused():
    """Labels carry the rows their prior came from; a prior those rows do not give is
    refused, naming both numbers, rather than drawn around the wrong centre."""
    rows = pd.DataFrame({"label": [1, 0, 0, 0], "weight": 1.0, "group": ["a", "b", "c", "d"]})
    assert Labels("distant", 0.25, rows).prior_draws(bootstrap=Bootstrap(5, 0.95, 1)).shape == (5,)
    assert Labels("distant", 0.25).prior_draws(bootstrap=Bootstrap(5, 0.95, 1)) is None
    with pytest.raises(ValueError, match=r"the distant-label prior 0\.1 is not the rate 0\.25"):
        Labels("distant", 0.1, rows).prior_draws(bootstrap=Bootstrap(5, 0.95, 1))


def test_a_prior_is_from_its_rows_only_at_their_rate_to_nine_digits():
    """``estimated_from`` ties a prior to rows only where it is their weighted rate, within a
    relative 1e-9 and no absolute slack (priors near 1:1000 differ by far less than the
    usual 1e-8); rows of any positive total weight count, even below 1; and the draws at
    such a prior are fixed by the bootstrap's seed. A prior the rows do not give is refused
    with both numbers."""
    rows = pd.DataFrame(
        {"label": [1, 0, 0, 0], "weight": [0.05, 0.05, 0.05, 0.05], "group": list("abcd")}
    )  # total weight 0.2: a sample, still the prior's source
    assert Labels("distant", 0.25).estimated_from(rows).prior_rows is rows
    for off in (0.25 * (1 + 1e-7), 0.25 + 5e-9, 0.26):  # within numpy's default tolerances
        assert Labels("distant", off).estimated_from(rows).prior_rows is None, off
    assert Labels("distant", 0.25 * (1 + 1e-12)).estimated_from(rows).prior_rows is rows
    weightless = rows.assign(weight=0.0)
    assert Labels("distant", 0.25).estimated_from(weightless).prior_rows is None
    boot = Bootstrap(50, 0.95, 7)
    labels = Labels("distant", 0.25, rows)
    assert np.array_equal(labels.prior_draws(bootstrap=boot), labels.prior_draws(bootstrap=boot))
    for off in (0.25 * (1 + 1e-7), 0.25 + 5e-9):
        with pytest.raises(ValueError) as error:
            Labels("distant", off, rows).prior_draws(bootstrap=boot)
        assert str(error.value) == (
            f"the distant-label prior {off!r} is not the rate 0.25 of the rows given as its "
            "source (prior_rows); pass the rows it was estimated from"
        )
