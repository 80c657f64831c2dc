"""Evaluate stage: pure metrics on a predictions table, and the stage end to end on a tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from dsprior import calibration, priors
from stages import evaluate
from tests.conftest import ROOT, deep_merge

PRIOR = 0.02
BETA = 0.05
PARAMS = {
    "prior": None,
    "cost": {"false_positive": 1, "false_negative": 10},
    "bootstrap": {"resamples": 60, "level": 0.9, "seed": 3},
    "calibration_bins": 5,
    "batch_size": 8,
    "precision": "auto",
    "onednn": "auto",
    "threshold_labels": "distant",
}


def make_split(rng: np.random.Generator, name: str, n_groups: int, keep: float) -> pd.DataFrame:
    """Groups of 1-4 examples at PRIOR; negatives kept with rate ``keep`` and weighted 1/keep."""
    sizes = rng.integers(1, 5, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    labels = (rng.random(len(groups)) < PRIOR).astype(np.int8)
    frame = pd.DataFrame(
        {
            "example_id": [f"{name}-{i:05d}" for i in range(len(groups))],
            "split": name,
            "group": [f"{name}-g{g}" for g in groups],
            "label": labels,
        }
    )
    frame = frame[(frame["label"] == 1) | (rng.random(len(frame)) < keep)].copy()
    frame["weight"] = np.where(frame["label"] == 1, 1.0, 1.0 / keep)
    return frame


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    """A predictions table whose scores are calibrated at the thinned prior (beta = BETA)."""
    rng = np.random.default_rng(42)
    frame = pd.concat(
        [
            make_split(rng, "dev_a", 1500, BETA),
            make_split(rng, "dev_b", 1200, 1.0),
            make_split(rng, "test", 1200, 1.0),
        ],
        ignore_index=True,
    )
    # production probability from a logistic model, then the score a thinned model would give
    logit = 2.5 * frame["label"].to_numpy() + 1.2 * rng.normal(size=len(frame)) - 5.0
    probability = 1.0 / (1.0 + np.exp(-logit))
    frame["score"] = priors.invert_prior_correction(probability, beta=BETA)
    frame["probability"] = priors.correct_prior(frame["score"].to_numpy(), beta=BETA)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def evaluated(predictions):
    return evaluate.evaluate_predictions(
        predictions, params=PARAMS, prior=PRIOR, prior_source="fixture", beta=BETA
    )


REQUIRED = [
    f"{split}.{view}.{name}"
    for split in ("dev_a", "dev_b", "test")
    for view in ("sample", "prior")
    for name in ("precision", "recall", "f1", "average_precision")
] + ["dev_b.prior.expected_cost", "test.prior.expected_cost", "threshold"]


def lookup(metrics: dict, dotted: str):
    value = metrics
    for key in dotted.split("."):
        value = value[key]
    return value


def assert_finite_or_null(value, where="metrics"):
    if isinstance(value, dict):
        for k, v in value.items():
            assert_finite_or_null(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_finite_or_null(v, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), where


def check_metrics_file(path: Path) -> dict:
    """Required keys present, numbers finite or null, CIs as [low, high]."""
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    metrics = json.loads(text)
    for key in REQUIRED:
        value = lookup(metrics, key)
        assert value is None or isinstance(value, (int, float)), key
    assert isinstance(metrics["threshold"], float)
    for name in ("precision_ci", "recall_ci"):
        low, high = metrics["test"]["prior"][name]
        assert low <= high
    assert_finite_or_null(metrics)
    return metrics


def test_metrics_written_have_required_keys_and_agree_with_sklearn(
    predictions, evaluated, tmp_path
):
    metrics, plots, report = evaluated
    evaluate.write_outputs(tmp_path, predictions, metrics, plots, report)
    written = check_metrics_file(tmp_path / "metrics.json")
    table = pd.read_parquet(tmp_path / "predictions.parquet")
    assert list(table.columns) == list(evaluate.PREDICTION_COLUMNS)
    threshold = written["threshold"]
    for split in evaluate.SPLITS:
        frame = table[table["split"] == split]
        y = frame["label"].to_numpy()
        pred = (frame["probability"] >= threshold).astype(int)
        w = priors.weights_at_prior(y, frame["weight"].to_numpy(), prior=written["prior"])
        prior_view, sample_view = written[split]["prior"], written[split]["sample"]
        assert prior_view["precision"] == pytest.approx(precision_score(y, pred, sample_weight=w))
        assert prior_view["recall"] == pytest.approx(recall_score(y, pred, sample_weight=w))
        assert prior_view["f1"] == pytest.approx(f1_score(y, pred, sample_weight=w))
        assert prior_view["average_precision"] == pytest.approx(
            average_precision_score(y, frame["probability"], sample_weight=w)
        )
        assert sample_view["precision"] == pytest.approx(precision_score(y, pred))
        assert sample_view["average_precision"] == pytest.approx(
            average_precision_score(y, frame["score"])
        )
        assert prior_view["positive_fraction"] == pytest.approx(written["prior"])
        # the shipped rule (raw score >= 0.5), as sampled and at the prior
        shipped = (frame["score"] >= 0.5).astype(int)
        assert written[split]["shipped"]["prior"]["precision"] == pytest.approx(
            precision_score(y, shipped, sample_weight=w)
        )
        assert written[split]["shipped"]["sample"]["precision"] == pytest.approx(
            precision_score(y, shipped)
        )
        assert written[split]["shipped"]["sample"]["recall"] == pytest.approx(
            recall_score(y, shipped)
        )
    for split in ("dev_a", "test"):
        low, high = written[split]["shipped"]["prior"]["precision_ci"]
        assert low <= written[split]["shipped"]["prior"]["precision"] <= high
    # the threshold is the dev_b cost minimum, and the same rule is used on test
    dev_b = table[table["split"] == "dev_b"]
    w = priors.weights_at_prior(dev_b["label"].to_numpy(), dev_b["weight"].to_numpy(), prior=PRIOR)
    expected, cost = priors.cost_minimising_threshold(
        dev_b["label"], dev_b["probability"], w, cost_fp=1, cost_fn=10
    )
    assert threshold == pytest.approx(expected)
    assert written["dev_b"]["prior"]["expected_cost"] == pytest.approx(cost)


def brute_force_cut(y, p, w, *, cost_fp, cost_fn):
    """The flag set ``p >= cut`` of least weighted cost, trying every cut (and flagging nothing).

    Returns (flagged mask, cost per 1,000 of the weighted population); ties go to the
    higher cut.
    """
    best_cost, best_flag = cost_fn * w[y == 1].sum(), np.zeros(len(y), dtype=bool)
    for cut in np.unique(p)[::-1]:
        flag = p >= cut
        cost = cost_fp * w[flag & (y == 0)].sum() + cost_fn * w[~flag & (y == 1)].sum()
        if cost < best_cost:
            best_cost, best_flag = cost, flag
    return best_flag, 1000 * best_cost / w.sum()


def split_frame(rng, name, *, n, positive_rate, keep=1.0):
    """``n`` examples at ``positive_rate``, negatives kept with rate ``keep`` (weight 1/keep)."""
    y = (rng.random(n) < positive_rate).astype(np.int8)
    frame = pd.DataFrame({"label": y})
    frame = frame[(y == 1) | (rng.random(n) < keep)].reset_index(drop=True)
    y = frame["label"].to_numpy()
    probability = 1.0 / (1.0 + np.exp(-(2.0 * y + rng.normal(size=len(y)) - 2.0)))
    frame["example_id"] = [f"{name}-{i:05d}" for i in range(len(y))]
    frame["split"] = name
    frame["group"] = [f"{name}-g{i // 2}" for i in range(len(y))]
    frame["weight"] = np.where(y == 1, 1.0, 1.0 / keep)
    frame["score"] = probability
    frame["probability"] = probability
    return frame[list(evaluate.PREDICTION_COLUMNS)]


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

    metrics = evaluate.compute_metrics(
        predictions, prior=prior, resamples=5, level=0.9, seed=0, **costs
    )
    threshold = metrics["threshold"]
    np.testing.assert_array_equal(p >= threshold, flag_prior)
    # midway between the lowest flagged probability and the highest unflagged one
    assert threshold == pytest.approx((p[flag_prior].min() + p[~flag_prior].max()) / 2)
    assert not np.array_equal(p >= threshold, flag_sampled)
    assert threshold > p[flag_sampled].min() + 0.1
    assert metrics["dev_b"]["prior"]["expected_cost"] == pytest.approx(cost_prior)


def test_thinned_dev_a_looks_better_as_sampled_than_at_the_prior(evaluated):
    metrics, _, _ = evaluated
    dev_a = metrics["dev_a"]
    assert dev_a["sample"]["precision"] > dev_a["prior"]["precision"] + 0.2
    # recall does not depend on the prior
    assert dev_a["sample"]["recall"] == pytest.approx(dev_a["prior"]["recall"])
    # dev_b/test are at the production ratio: weights are 1, sample and prior nearly agree
    assert metrics["test"]["sample"]["precision"] == pytest.approx(
        metrics["test"]["prior"]["precision"], abs=0.05
    )
    low, high = dev_a["prior"]["precision_ci"]
    assert low < dev_a["prior"]["precision"] < high


def test_bootstrap_intervals_resample_whole_groups(monkeypatch):
    """Few large groups sharing label and decision: the group interval is far wider.

    40 groups of 25 examples each; every example of a group has its group's label and
    decision. Resampling examples would treat the 1,000 examples as independent; the
    group bootstrap sees only 40 units, so its intervals are about 5 (sqrt 25) times wider.
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

    multiplicities = []
    real_bootstrap = priors.group_bootstrap

    def recording(groups, statistic, **kwargs):
        def spy(multiplicity):
            multiplicities.extend(multiplicity.copy())
            return statistic(multiplicity)

        return real_bootstrap(groups, spy, **kwargs)

    monkeypatch.setattr(priors, "group_bootstrap", recording)
    cis = evaluate.bootstrap_intervals(
        frame, predicted, prior=prior, cost_fp=1, cost_fn=10,
        resamples=resamples, level=level, seed=3,
    )  # fmt: skip
    # each resample weights whole groups: one multiplicity per group, n_groups groups drawn
    assert len(multiplicities) == resamples
    for m in multiplicities:
        per_group = m.reshape(n_groups, size)
        assert (per_group == per_group[:, :1]).all()
        assert per_group[:, 0].sum() == n_groups

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


def test_threshold_near_bayes_on_calibrated_scores(evaluated):
    metrics, _, _ = evaluated
    assert metrics["bayes_threshold"] == pytest.approx(1 / 11)
    assert metrics["bayes_threshold_score"] == pytest.approx(
        float(priors.invert_prior_correction(1 / 11, beta=BETA))
    )
    # searched on a few thousand examples: same order as the analytic optimum
    assert 0.3 * metrics["bayes_threshold"] < metrics["threshold"] < 3 * metrics["bayes_threshold"]


def test_report_has_table_classic_example_and_production_terms(evaluated):
    metrics, _, report = evaluated
    for row in (
        "dev_a as sampled",
        "dev_a projected to the prior",
        "dev_b measured at the prior",
        "test measured at the prior",
    ):
        assert report.count(f"| {row} |") == 2  # the shipped rule and the chosen threshold
    assert "shipped rule (raw score >= 0.5)" in report
    assert "97/(97+150) = 0.393" in report
    assert "precision 97/(97+3) = 0.97" in report
    assert f"{metrics['test']['prior']['alerts_per_1000']:.1f} alerts" in report
    assert metrics["classic_example"]["precision_projected"] == pytest.approx(97 / 247)
    assert metrics["classic_example"]["precision_siblini"] == pytest.approx(97 / 247)


def test_plot_data_series(evaluated, predictions):
    metrics, plots, _ = evaluated
    assert set(plots) == {
        "precision_recall", "roc", "calibration", "cost", "confusion",
        "prior_sensitivity", "label_free",
    }  # fmt: skip
    # the label-free picture: every batch's estimate with its interval beside the measured prior
    free = pd.DataFrame(plots["label_free"])
    for batch, entry in metrics["label_free"].items():
        name = f"{batch} (in sample)" if entry.get("in_sample") else batch
        rows = free[free["batch"] == name].set_index("series")
        estimate = rows.loc["estimated without labels (EM, 95% interval)"]
        assert estimate["prior"] == pytest.approx(entry["estimated_prior"]["value"])
        assert [estimate["low"], estimate["high"]] == pytest.approx(entry["estimated_prior"]["ci"])
        if entry.get("measured"):
            assert rows.loc["measured with labels", "prior"] == pytest.approx(
                entry["measured"]["prior"]
            )
    sensitivity = pd.DataFrame(plots["prior_sensitivity"])
    assert set(sensitivity["series"]) == {"precision", "recall"}
    assert len(sensitivity) == 2 * len(metrics["prior_sensitivity"]["rows"])
    for name, records in plots.items():
        assert records and all(set(r) == set(records[0]) for r in records), name
    pr = pd.DataFrame(plots["precision_recall"])
    assert set(pr["series"]) == {
        "dev_a as sampled",
        "dev_a projected to the production prior",
        "test at the production prior",
    }
    curves = pr[pr["kind"] == "curve"]
    assert (curves.groupby("series").size() <= evaluate.CURVE_POINTS + 2).all()
    # each series' operating points: the shipped rule's and the chosen threshold's metrics
    points = pr[pr["kind"] != "curve"].set_index(["series", "kind"])
    shipped = points.loc[("test at the production prior", evaluate.PR_SHIPPED)]
    assert shipped["precision"] == metrics["test"]["shipped"]["prior"]["precision"]
    chosen = points.loc[("dev_a as sampled", evaluate.PR_CHOSEN)]
    assert chosen["recall"] == metrics["dev_a"]["sample"]["recall"]
    assert set(pd.DataFrame(plots["roc"])["series"]) == set(evaluate.SPLITS)
    # confusion: the share of each label flagged or not, per set, adding up to 1 per label
    confusion = pd.DataFrame(plots["confusion"])
    assert len(confusion) == 4 * len(evaluate.SPLITS)
    np.testing.assert_allclose(confusion.groupby(["series", "actual"])["rate"].sum(), 1.0)
    test = predictions[predictions["split"] == "test"]
    flagged = (test["probability"] >= metrics["threshold"]) & (test["label"] == 1)
    tp = confusion.query("series == 'test' and actual == 1 and predicted == 1")["examples"]
    assert tp.item() == int(flagged.sum())
    # cost: the curve in threshold order, and the run's two thresholds at their dev_b cost
    cost = pd.DataFrame(plots["cost"])
    curve = cost[cost["kind"] == "curve"]
    assert curve["threshold"].is_monotonic_increasing
    assert curve["expected_cost"].min() == pytest.approx(metrics["dev_b"]["prior"]["expected_cost"])
    marks = cost[cost["kind"] != "curve"].set_index("kind")
    assert marks.loc["chosen", "threshold"] == metrics["threshold"]
    assert marks.loc["bayes", "threshold"] == metrics["bayes_threshold"]
    bayes_cost = metrics["dev_b"]["prior_at_bayes_threshold"]["expected_cost"]
    assert marks.loc["bayes", "expected_cost"] == pytest.approx(bayes_cost)


def test_thinning_keeps_the_steep_stretch_of_a_curve():
    """Evenly along the curve, not by index: a jump carried by few points keeps points."""
    x = np.concatenate([np.linspace(0, 0.1, 10_000), [0.1, 0.1, 1.0]])
    y = np.concatenate([np.zeros(10_000), [0.5, 1.0, 1.0]])
    kept = evaluate._thin_along(x, y, points=50)
    assert len(kept) <= 52 and kept[0] == 0 and kept[-1] == len(x) - 1
    assert {10_000, 10_001} <= set(kept)  # the jump's points survive
    thresholds = np.concatenate([np.geomspace(1e-12, 0.01, 10_000), [0.3, 0.6, 0.9]])
    kept = evaluate._thin_on_grid(thresholds, keep=5, points=20)
    assert {5, 10_000, 10_001, 10_002} <= set(kept) and len(kept) <= 23


def test_outputs_are_deterministic(predictions, evaluated, tmp_path):
    again = evaluate.evaluate_predictions(
        predictions, params=PARAMS, prior=PRIOR, prior_source="fixture", beta=BETA
    )
    evaluate.write_outputs(tmp_path / "a", predictions, *evaluated)
    evaluate.write_outputs(tmp_path / "b", predictions, *again)
    for name in ("metrics.json", "report.md", "predictions.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_estimate_production_prior_uses_production_ratio_rows():
    manifest = pd.DataFrame(
        {
            "label": [1, 0, 0, 0, 1, 0],
            "upstream_rate": [1.0, 1.0, 1.0, 1.0, 0.05, 0.05],
            "kept": [True, True, True, False, True, True],
            "weight": [1.0, 1.0, 2.0, 1.0, 1.0, 20.0],
        }
    )
    prior, source = evaluate.estimate_production_prior(manifest)
    assert prior == pytest.approx(1 / 4)  # kept production rows: 1 positive, weight 3 of negatives
    assert "production-ratio" in source


def test_build_predictions_corrects_and_shifts():
    rows = pd.DataFrame(
        {
            "example_id": ["a", "b"],
            "split": ["test", "test"],
            "group": ["g", "h"],
            "label": [0, 1],
            "weight": [1.0, 1.0],
        }
    )
    out = evaluate.build_predictions(rows, np.array([0.2, 0.9]), beta=0.1)
    np.testing.assert_allclose(out["probability"], priors.correct_prior([0.2, 0.9], beta=0.1))
    shifted = evaluate.build_predictions(rows, np.array([0.2, 0.9]), beta=0.1, shift=(0.02, 0.01))
    assert (shifted["probability"] < out["probability"]).all()
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        evaluate.build_predictions(rows, np.array([0.2]), beta=0.1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"prior": 1.5}, r"evaluate.prior must be null or a number > 0 and < 1, got 1.5"),
        ({"cost": {"false_positive": -1}}, r"evaluate.cost.false_positive must be a number >= 0"),
        ({"cost": {"false_positive": 0, "false_negative": 0}}, "both 0"),
        ({"bootstrap": {"resamples": 0}}, "resamples must be an integer >= 1, got 0"),
        ({"bootstrap": {"level": 1.2}}, r"level must be a number > 0 and < 1, got 1.2"),
        ({"batch_size": 0}, "evaluate.batch_size must be an integer >= 1, got 0"),
    ],
)
def test_bad_params_raise_with_message(params, message):
    with pytest.raises(ValueError, match=message):
        evaluate.check_params(deep_merge(PARAMS, params))


def test_evaluation_rows_needs_every_split():
    manifest = pd.DataFrame(
        {c: [] for c in evaluate.MANIFEST_COLUMNS}
        | {"split": pd.Series([], dtype=str), "kept": pd.Series([], dtype=bool)}
    )
    with pytest.raises(ValueError, match="no kept rows in splits"):
        evaluate.evaluation_rows(manifest)
    with pytest.raises(ValueError, match=r"manifest lacks columns \['weight'\]"):
        evaluate.evaluation_rows(manifest.drop(columns="weight"))


# ----------------------------------------------------------------------------- the stage


DIM = 16


def write_stage_inputs(root: Path) -> tuple[Path, Path, Path]:
    """A tiny dataset, manifest and untrained CNN bundle under ``root``."""
    from dsprior import common, contract
    from dsprior.cnn import build_cnn

    rng = np.random.default_rng(0)
    records = []
    dataset = root / "data" / "dataset"
    with common.atomic_directory(dataset) as tmp:
        with contract.DatasetWriter(tmp, dim=DIM, row_group_size=16, shard_size=40) as writer:
            for i in range(90):
                split = ("dev_a", "dev_b", "test")[i % 3]
                label = int(i % 9 < 3)  # 1:2 in every split
                rows = rng.normal(size=(int(rng.integers(2, 8)), DIM)) + label
                group = f"g{i // 2}"
                upstream = 0.05 if split == "dev_a" else 1.0
                writer.add(
                    example_id=f"e{i:03d}",
                    group=group,
                    label=label,
                    source="pool" if split == "dev_a" else "production",
                    negative_rate=upstream,
                    rows=rows,
                )
                records.append(
                    {
                        "example_id": f"e{i:03d}",
                        "group": group,
                        "label": label,
                        "split": split,
                        "upstream_rate": upstream,
                        "kept": True,
                        "weight": 1.0 if label else 1.0 / upstream,
                        # gold labels on test only (one distant label wrong), null elsewhere
                        "true_label": (1 - label if i == 2 else label) if split == "test" else None,
                    }
                )
    manifest = root / "data" / "manifest.parquet"
    pd.DataFrame(records).to_parquet(manifest)
    model_dir = root / "models"
    model_dir.mkdir()
    build_cnn(dim=DIM, filter_sizes=(2, 3), filters=4, seed=1).save(model_dir / "model.keras")
    (model_dir / "train.json").write_text(
        json.dumps(
            {
                "dim": DIM,
                "beta": 0.1,
                "training_prior": 1 / 3,
                "production_prior_estimate": 0.25,
                "params": {},
            }
        )
    )
    return dataset, manifest, model_dir


def test_stage_main_end_to_end(tmp_path):
    pytest.importorskip("tensorflow")

    dataset, manifest, model_dir = write_stage_inputs(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": PARAMS}))
    reports = tmp_path / "reports"
    argv = [
        "--params", str(params), "--dataset", str(dataset), "--manifest", str(manifest),
        "--model-dir", str(model_dir), "--reports", str(reports),
    ]  # fmt: skip
    evaluate.main(argv)
    metrics = check_metrics_file(reports / "metrics.json")
    table = pd.read_parquet(reports / "predictions.parquet")
    assert len(table) == 90 and set(table["split"]) == set(evaluate.SPLITS)
    assert table["score"].between(0, 1).all()
    # production-ratio rows (dev_b, test) are 1:2 here, so the estimated prior is 1/3; beta maps
    # scores to the 0.25 that train's weights describe, and the stage moves them on to 1/3
    assert metrics["prior"] == pytest.approx(1 / 3)
    assert metrics["prior_of_model"] == pytest.approx(0.25)
    corrected = priors.correct_prior(table["score"], beta=0.1)
    np.testing.assert_allclose(
        table["probability_prior_corrected"],
        priors.shift_prior(corrected, from_prior=0.25, to_prior=1 / 3),
    )
    # then the recalibration chosen by dev_b's log loss, recorded with every candidate
    record = metrics["calibration"]
    chosen = calibration.Calibration.from_dict(record["chosen"])
    np.testing.assert_allclose(
        table["probability"], chosen.apply(table["probability_prior_corrected"])
    )
    losses = [c["dev_b_log_loss"] for c in record["candidates"]]
    assert min(losses) == next(
        c["dev_b_log_loss"] for c in record["candidates"] if c["method"] == chosen.method
        and c["fitted_on"] == chosen.fitted_on
    )  # fmt: skip
    assert set(metrics["label_free"]) >= {"dev_b", "test"}
    assert (reports / "report.md").read_text().startswith("# Evaluation at the production prior")
    # gold labels on test only: gold keys there, none on dev_a/dev_b; the gold prior from test
    assert "gold" not in metrics["dev_a"] and "gold" not in metrics["dev_b"]
    assert metrics["test"]["gold"]["gold_examples"] == 30
    assert metrics["test"]["label_noise"]["counts"]["false_labels"] == 1
    assert metrics["gold_prior"] == pytest.approx(9 / 30) and "n=30" in metrics["gold_prior_source"]
    assert table["true_label"].notna().sum() == 30
    plot_dir = reports / "evaluate_plots"
    plot_files = {p.relative_to(plot_dir).as_posix() for p in plot_dir.rglob("*")}
    # one file per picture, each declared in dvc.yaml as one of the stage's plots
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    declared = {next(iter(entry)).rsplit("/", 1)[-1] for entry in stage["plots"]}
    pictures = {"precision_recall", "cost", "roc", "calibration", "confusion", "prior_sensitivity",
                "label_free"}  # fmt: skip
    assert plot_files == declared == {f"{name}.json" for name in pictures}
    # scoring is deterministic: a second run writes the same predictions
    first = (reports / "predictions.parquet").read_bytes()
    evaluate.main(argv)
    assert (reports / "predictions.parquet").read_bytes() == first


@pytest.fixture(scope="module")
def calibrated():
    """Like ``predictions``, but with probabilities exactly calibrated at PRIOR (two Gaussian
    log-odds classes), so that the label-free estimates must find the measured numbers."""
    rng = np.random.default_rng(43)
    frame = pd.concat(
        [make_split(rng, s, n, keep) for s, n, keep in
         (("dev_a", 1500, BETA), ("dev_b", 2400, 1.0), ("test", 2400, 1.0))],
        ignore_index=True,
    )  # fmt: skip
    x = np.where(frame["label"] == 1, 2.0, -2.0) + rng.normal(size=len(frame))
    probability = 1 / (1 + np.exp(-(4.0 * x + np.log(PRIOR / (1 - PRIOR)))))
    frame["score"] = priors.invert_prior_correction(probability, beta=BETA)
    frame["probability"] = priors.correct_prior(frame["score"].to_numpy(), beta=BETA)
    frame = frame.reset_index(drop=True)
    return evaluate.evaluate_predictions(
        frame, params=PARAMS, prior=PRIOR, prior_source="fixture", beta=BETA
    )


def test_evaluate_reports_calibration_and_the_label_free_estimates(calibrated):
    metrics, _, report = calibrated
    for split in ("dev_a", "dev_b", "test"):
        c = metrics[split]["calibration_at_prior"]
        assert c["mean_to_rate"] == pytest.approx(c["mean_probability"] / c["label_rate"])
        assert 0 <= c["calibration_error"] <= 1
    free = metrics["label_free"]
    assert {"dev_b", "test", "test_at_1_30", "test_at_1_100", "test_at_1_250"} <= set(free)
    for name, entry in free.items():
        est = entry["estimated_prior"]
        assert est["ci"][0] <= est["value"] <= est["ci"][1], name
        assert set(entry["estimated_at_threshold"]) >= {
            "precision", "recall", "alerts_per_1000", "expected_cost"
        }  # fmt: skip
        assert set(entry["drift"]) >= {"prior_shift", "score_shift_ks", "p_value"}
        assert {"prior", "precision", "recall"} <= set(entry["measured"])
    # calibrated scores: the estimate's interval covers test's measured prior, and test
    # subsampled to 1:30 (above the fixture's 1:49) is found to have moved up
    test = free["test"]
    assert test["estimated_prior"]["ci"][0] <= test["measured"]["prior"]
    assert test["measured"]["prior"] <= test["estimated_prior"]["ci"][1]
    assert free["test_at_1_30"]["estimated_prior"]["ci"][0] > metrics["prior"]
    assert free["test_at_1_30"]["drift"]["prior_shift"] is True
    assert "## What the label-free estimate would have said" in report
    assert "## Calibration at the prior" in report
    # prior sensitivity: recall is prior-free, precision falls and alerts shrink with the prior
    rows = metrics["prior_sensitivity"]["rows"]
    assert [r["factor"] for r in rows] == list(evaluate.PRIOR_FACTORS)
    assert len({round(r["recall"], 12) for r in rows}) == 1
    assert all(a["precision"] < b["precision"] for a, b in zip(rows, rows[1:], strict=False))
    one = next(r for r in rows if r["factor"] == 1.0)
    assert one["precision"] == pytest.approx(metrics["test"]["prior"]["precision"])
    assert "## Prior sensitivity" in report
