"""Evaluate stage: its outputs written, its manifest reading, and the stage end to end on a tiny model.

The library it calls (``dsprior.evaluation``) is tested in tests/test_evaluation_*.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from dsprior import calibration, priors, sampling
from dsprior.evaluation import run as evaluation_run
from dsprior.evaluation.config import check_params
from dsprior.evaluation.gold import GOLD
from dsprior.evaluation.inputs import PREDICTION_COLUMNS, SPLITS
from dsprior.evaluation.pipeline import evaluate_predictions
from stages import evaluate
from tests.conftest import ROOT
from tests.factories import EVAL_BETA as BETA
from tests.factories import EVAL_PARAMS as PARAMS
from tests.factories import EVAL_PRIOR as PRIOR
from tests.factories import REQUIRED_METRICS as REQUIRED
from tests.factories import assert_finite_or_null


def lookup(metrics: dict, dotted: str):
    value = metrics
    for key in dotted.split("."):
        value = value[key]
    return value


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
    evaluation_run.write_outputs(tmp_path, predictions, metrics, plots, report)
    written = check_metrics_file(tmp_path / "metrics.json")
    table = pd.read_parquet(tmp_path / "predictions.parquet")
    assert list(table.columns) == list(PREDICTION_COLUMNS)
    threshold = written["threshold"]
    for split in SPLITS:
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
    # searched over the log-odds at the prior (no ties from rounding), reported as a probability
    z = dev_b["logit_at_prior"].to_numpy()
    cut, cost = priors.cost_minimising_threshold(dev_b["label"], z, w, cost_fp=1, cost_fn=10)
    assert threshold == pytest.approx(priors.threshold_probability(cut, z))
    assert written["threshold_logit"] == pytest.approx(np.log(threshold / (1 - threshold)))
    np.testing.assert_array_equal(
        (z >= written["threshold_logit"]), (dev_b["probability"] >= threshold).to_numpy()
    )
    assert written["dev_b"]["prior"]["expected_cost"] == pytest.approx(cost)


def test_outputs_are_deterministic(predictions, evaluated, tmp_path):
    again = evaluate_predictions(
        predictions, config=check_params(PARAMS), prior=PRIOR, prior_source="fixture", beta=BETA
    )
    evaluation_run.write_outputs(tmp_path / "a", predictions, *evaluated)
    evaluation_run.write_outputs(tmp_path / "b", predictions, *again)
    for name in ("metrics.json", "report.md", "predictions.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_manifest_is_read_as_sampling_declares_it(tmp_path):
    """sampling's schema and reader: a missing column is refused, ``true_label`` may be absent."""
    empty = sampling.MANIFEST_SCHEMA.empty_table()
    paths = {name: tmp_path / f"{name}.parquet" for name in ("full", "no_gold", "no_weight")}
    sampling.write_table_atomic(empty, paths["full"])
    sampling.write_table_atomic(empty.drop_columns([GOLD]), paths["no_gold"])
    sampling.write_table_atomic(empty.drop_columns(["weight"]), paths["no_weight"])
    assert (
        list(evaluation_run.read_manifest(paths["full"]).columns) == sampling.MANIFEST_SCHEMA.names
    )
    assert GOLD not in evaluation_run.read_manifest(paths["no_gold"]).columns
    with pytest.raises(ValueError, match=r"manifest lacks column\(s\) \['weight'\]"):
        evaluation_run.read_manifest(paths["no_weight"])


DIM = 16


def write_stage_inputs(root: Path) -> tuple[Path, Path, Path]:
    """A tiny dataset, manifest and untrained CNN bundle under ``root``."""
    from dsprior import contract, runtime
    from dsprior.cnn import build_cnn

    rng = np.random.default_rng(0)
    records = []
    dataset = root / "data" / "dataset"
    with runtime.atomic_directory(dataset) as tmp:
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
                        "source": "pool" if split == "dev_a" else "production",
                        "n_rows": len(rows),
                        "split": split,
                        "upstream_rate": upstream,
                        "downsample_rate": 1.0,
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


def test_stage_main_end_to_end(tmp_path, caplog):
    pytest.importorskip("tensorflow")
    from tools.measure import stage_log_seconds

    dataset, manifest, model_dir = write_stage_inputs(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": PARAMS}))
    reports = tmp_path / "reports"
    argv = [
        "--params", str(params), "--dataset", str(dataset), "--manifest", str(manifest),
        "--model-dir", str(model_dir), "--reports", str(reports),
    ]  # fmt: skip
    with caplog.at_level("INFO", logger="dsprior.evaluation.run"):
        evaluate.main(argv)
    # the log says how long scoring and the rest took: what the benchmarks read
    seconds = stage_log_seconds(caplog.text)
    assert seconds["evaluate_scoring"]["examples"] == 90
    assert seconds["evaluate_scoring"]["seconds"] >= 0 and seconds["evaluate_metrics_seconds"] >= 0
    assert seconds["train_fit"] is None
    metrics = check_metrics_file(reports / "metrics.json")
    table = pd.read_parquet(reports / "predictions.parquet")
    assert len(table) == 90 and set(table["split"]) == set(SPLITS)
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
    # the gold labels travel into predictions.parquet unchanged, null where unlabelled
    assert table[GOLD].dtype == "Int8"
    gold = pd.read_parquet(manifest)[GOLD].astype("Int8")
    pd.testing.assert_series_equal(table[GOLD], gold, check_names=False)
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
