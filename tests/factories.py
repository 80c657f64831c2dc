"""Test data shared by several test modules.

Training: ``make_data`` writes a tiny dataset and downsampled manifest, ``TINY`` is the
train params that train on it in seconds (test_train, test_training_*, test_hardware).
Plots: ``declared_plots`` lists what `dvc plots show` should draw (test_plots, the e2e test).
Bundle and score: a tiny pipeline run, raw input files, edited bundles.
Evaluation: predictions tables of known truth (``make_predictions``), the evaluate params
and metrics checks shared by test_evaluate and test_evaluation_*.
Label-free and calibration: ``draw``, labels and probabilities calibrated at a chosen prior.

``build_pipeline`` makes a tiny dataset, manifest, model and train.json, and runs
the evaluate stage and the bundle stage on them; ``shared_pipeline`` builds it once
per test session for each prior, so the bundle's and the score command's test
modules read one run (none of them writes into it: an edit goes to a copy,
``edited_copy``).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dsprior import bundle, contract, priors, runtime
from dsprior.runtime import atomic_directory
from tests.rawfiles import write_jsonl
from tools.scratch import ROOT

__all__ = ["write_jsonl"]  # re-exported: the score tests write JSON Lines as the ingest tests do

DIM = 16
FILTER_SIZES = [2, 3]
MODEL_PRIOR = 0.08  # the prior train's weights describe (train.json production_prior_estimate)
BETA = 0.25
NAMES = ["example_id"] + [f"f{j}" for j in range(DIM)]  # an unlabelled raw file's header


def make_examples(n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` examples of 1-9 rows, groups of two, labels alternating by group."""
    rng = np.random.default_rng(seed)
    return [
        {
            "example_id": f"x{i:03d}",
            "group": f"g{i // 2:03d}",
            "label": int((i // 2) % 5 in (0, 2)),
            "rows": rng.normal(size=(int(rng.integers(1, 10)), DIM)) * 2.0,
        }
        for i in range(n)
    ]


def write_dataset(directory: Path, examples: list[dict[str, Any]]) -> None:
    with contract.DatasetWriter(directory, dim=DIM, row_group_size=8, shard_size=40) as writer:
        for ex in examples:
            writer.add(
                example_id=ex["example_id"],
                group=ex["group"],
                label=ex["label"],
                source="tiny",
                negative_rate=1.0,
                rows=ex["rows"],
            )


def make_manifest(examples: list[dict[str, Any]]) -> pd.DataFrame:
    """dev_a thinned (negatives kept at 0.5, one thinned away), dev_b and test production-ratio."""
    splits = ["dev_a", "dev_b", "test"]
    frame = pd.DataFrame(
        {
            "example_id": [e["example_id"] for e in examples],
            "group": [e["group"] for e in examples],
            "label": np.array([e["label"] for e in examples], np.int8),
            "source": "tiny",
            "n_rows": np.array([len(e["rows"]) for e in examples], np.int32),
            "split": [splits[(i // 2) % 3] for i in range(len(examples))],
            "upstream_rate": 1.0,
        }
    )
    thinned = (frame["split"] == "dev_a") & (frame["label"] == 0)
    frame["downsample_rate"] = np.where(thinned, 0.5, 1.0)
    frame["kept"] = True
    frame.loc[frame.index[thinned][0], "kept"] = False
    frame["weight"] = np.where(frame["label"] == 0, 1.0 / frame["downsample_rate"], 1.0)
    return frame


def save_model(model_dir: Path, *, dim: int = DIM, seed: int = 3) -> None:
    runtime.quiet_tensorflow()
    from dsprior import cnn

    model = cnn.build_cnn(
        dim=dim, filter_sizes=FILTER_SIZES, filters=4, dropout=0.5, l2=0.0, seed=seed
    )
    # Spread the untrained scores out so thresholds and decisions are not all alike.
    kernel, bias = model.get_layer("score").get_weights()
    model.get_layer("score").set_weights([kernel * 8.0, bias])
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "model.keras")
    record = {
        "dim": dim,
        "beta": BETA,
        "training_prior": 0.3,
        "production_prior_estimate": MODEL_PRIOR,
        "params": {"filter_sizes": FILTER_SIZES, "filters": 4, "seed": seed},
        "min_rows": max(FILTER_SIZES),
        "best_step": 7,
    }
    runtime.write_json(model_dir / "train.json", record)


def build_pipeline(root: Path, *, prior: float | None) -> dict[str, Path]:
    """Dataset, manifest, model, then the evaluate and bundle stages, under ``root``."""
    from stages import bundle as bundle_stage
    from stages import evaluate

    paths = {
        "params": root / "params.yaml",
        "dataset": root / "data" / "dataset",
        "manifest": root / "data" / "manifest.parquet",
        "model_dir": root / "models",
        "reports": root / "reports",
        "bundle": root / "bundle",
    }
    examples = make_examples(90, seed=5)
    write_dataset(paths["dataset"], examples)
    make_manifest(examples).to_parquet(paths["manifest"], index=False)
    save_model(paths["model_dir"])
    params = {
        "evaluate": {
            "prior": prior,
            "cost": {"false_positive": 1, "false_negative": 10},
            "bootstrap": {
                "resamples": 10,
                "level": 0.9,
                "seed": 1,
                "min_positives": 0,
                "min_prior_positives": 0,
            },
            "calibration_bins": 4,
            "batch_size": 8,
            "precision": "auto",
            "onednn": "auto",
            "threshold_labels": "distant",
            "stated_label_noise": {"missing_label_rate": None, "false_label_rate": None},
        }
    }
    paths["params"].write_text(yaml.safe_dump(params))
    evaluate.main(
        ["--params", str(paths["params"]), "--dataset", str(paths["dataset"])]
        + ["--manifest", str(paths["manifest"]), "--model-dir", str(paths["model_dir"])]
        + ["--reports", str(paths["reports"])]
    )
    bundle_stage.main(
        ["--params", str(paths["params"]), "--model-dir", str(paths["model_dir"])]
        + ["--dataset", str(paths["dataset"]), "--metrics", str(paths["reports"] / "metrics.json")]
        + ["--predictions", str(paths["reports"] / "predictions.parquet")]
        + ["--out", str(paths["bundle"])]
    )
    return paths


def spec_inputs(**changes: Any) -> dict[str, Any]:
    """``build_spec``'s arguments for a consistent tiny bundle, with ``changes`` applied."""
    inputs = {
        "train_record": {"dim": DIM, "beta": 0.02, "params": {"filter_sizes": [2]}, "min_rows": 2},
        "metrics": {
            "threshold": 0.09,
            "prior": 0.01,
            "beta": 0.02,
            "cost": {"false_positive": 1, "false_negative": 10},
            "prior_of_model": 0.01,
        },
        "evaluate_params": {"prior": None},
        "dataset_dim": DIM,
        "dataset_dtype": "float16",
        "model_sha256": "0" * 64,
    }
    inputs.update(changes)
    return inputs


_PIPELINES: dict[float | None, dict[str, Path]] = {}


def shared_pipeline(
    tmp_path_factory: pytest.TempPathFactory, *, prior: float | None
) -> dict[str, Path]:
    """``build_pipeline`` once per session and prior; tests copy what they edit."""
    if prior not in _PIPELINES:
        _PIPELINES[prior] = build_pipeline(tmp_path_factory.mktemp("pipeline"), prior=prior)
    return _PIPELINES[prior]


# The priors the bundle tests run at: evaluate's estimate (a prior shift), or the model's own.
PIPELINE_PRIORS = {"shifted-to-estimated-prior": None, "no-shift": MODEL_PRIOR}


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def edited_copy(pipeline: dict[str, Path], tmp_path: Path, edit) -> Path:
    """A copy of the bundle with ``edit(spec)`` applied and the content hash made to match.

    The hash is no defence against an edit (anyone can recompute it), so each
    refusal that follows must come from checking the field itself.
    """
    copy = tmp_path / "b" / "bundle"
    shutil.copytree(pipeline["bundle"], copy)
    spec = read_json(copy / "bundle.json")
    edit(spec)
    if isinstance(spec, dict):
        spec[bundle.HASH_KEY] = bundle.content_hash(spec)
    (copy / "bundle.json").write_text(json.dumps(spec))
    return copy


def set_field(key: str, value: Any):
    """An edit for ``edited_copy``: set the dotted ``key`` to ``value`` (``KeyError``: delete it)."""

    def edit(spec: dict[str, Any]) -> None:
        *parents, name = key.split(".")
        node = spec
        for parent in parents:
            node = node[parent]
        if value is KeyError:
            del node[name]
        else:
            node[name] = value

    return edit


def model_beside_the_bundle(tmp_path: Path, pipeline: dict[str, Path]) -> Path:
    """A genuine model (right sha256) outside the bundle folder: loadable if not refused."""
    outside = tmp_path / "models" / "model.keras"
    outside.parent.mkdir(parents=True)
    shutil.copy(pipeline["bundle"] / "model.keras", outside)
    return outside


def downgrade_to_format_2(spec: dict[str, Any]) -> None:
    """An edit for ``edited_copy``: bundle.json as format 2 wrote it (threshold as a probability
    only, no record that scores are log-odds)."""
    spec["format_version"] = 2
    del spec["scores"], spec["threshold"]["logit"]


def downgrade_to_format_1(spec: dict[str, Any]) -> None:
    """An edit for ``edited_copy``: bundle.json as format 1 wrote it (no recalibration, no reference)."""
    downgrade_to_format_2(spec)
    spec["format_version"] = 1
    del spec["calibration"], spec["reference"]


def dataset_examples(dataset_dir: Path, ids: list[str]) -> list[dict[str, Any]]:
    """Examples as the dataset stores them (float16 values, exact in float64), in ``ids`` order."""
    table = pa.concat_tables(pq.read_table(p) for p in contract.shard_paths(dataset_dir))
    rows, offsets = contract.decode_features(
        table["features"], dim=contract.dataset_dim(dataset_dir), dtype="float16"
    )
    by_id = {
        row["example_id"]: {**row, "rows": rows[offsets[j] : offsets[j + 1]].astype(np.float64)}
        for j, row in enumerate(table.select(["example_id", "group", "label"]).to_pylist())
    }
    return [by_id[i] for i in ids]


def long_rows(examples: list[dict[str, Any]], *, labelled: bool = False) -> list[list[Any]]:
    ids = (
        (lambda e: [e["example_id"], e["group"], e["label"]])
        if labelled
        else (lambda e: [e["example_id"]])
    )
    return [[*ids(e), *map(float, row)] for e in examples for row in e["rows"]]


def write_csv(path: Path, rows: list[list[Any]], header: list[str] = NAMES) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[list[Any]], names: list[str] = NAMES) -> Path:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = [
        pa.array(c, pa.string() if n in ("example_id", "group") else None)
        if rows
        else pa.array([], pa.string() if n == "example_id" else pa.float64())
        for n, c in zip(names, columns, strict=True)
    ]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path, row_group_size=7)
    return path


def jsonl_records(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"example_id": e["example_id"], "rows": e["rows"].tolist()} for e in examples]


def small_examples(n: int = 4, *, dim: int = DIM) -> list[dict[str, Any]]:
    """Two rows each, values exact in float16."""
    rng = np.random.default_rng(1)
    return [
        {
            "example_id": f"e{i}",
            "group": f"g{i}",
            "label": i % 2,
            "rows": rng.integers(-16, 16, (2, dim)) / 8,
        }
        for i in range(n)
    ]


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def csv_with(cell: tuple[int, int], value: str, name: str = "bad.csv"):
    """A writer (tmp_path -> path) of ``small_examples`` as CSV with ``value`` in one cell."""

    def write(tmp_path: Path) -> Path:
        rows = long_rows(small_examples())
        rows[cell[0]][cell[1]] = value
        return write_csv(tmp_path / name, rows)

    return write


def one_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "new.csv", long_rows(small_examples()))


def input_folder(tmp_path: Path) -> Path:
    (tmp_path / "new").mkdir()
    write_csv(tmp_path / "new" / "a.csv", long_rows(small_examples()))
    return tmp_path / "new"


# Training data.

TRAIN_DIM = 16  # the feature dimension of make_data's dataset
UPSTREAM, THIN = 0.05, 0.5

TINY = {
    **yaml.safe_load((ROOT / "params.yaml").read_text())["train"],  # every key is required
    "seed": 7,
    "filter_sizes": [2, 3],
    "filters": 8,
    "dropout": 0.1,
    "l2": 0.0,
    "learning_rate": 0.01,
    "batch_size": 6,
    "epochs": 2,
    "log_every": 2,
    "eval_every": 4,
    "eval_batch_size": 8,
    "pool_size": 12,
    "checkpoint_every": 4,
}


def make_data(root, *, n=60, seed=0):
    """A dataset whose positives carry a run of shifted rows, and a downsampled manifest."""
    rng = np.random.default_rng(seed)
    records = []
    with (
        atomic_directory(root / "dataset") as tmp,
        contract.DatasetWriter(
            tmp, dim=TRAIN_DIM, dtype="float16", row_group_size=8, shard_size=32
        ) as writer,
    ):
        for i in range(n):
            label = int(i % 3 == 0)
            n_rows = int(rng.integers(1, 12))
            rows = rng.normal(size=(n_rows, TRAIN_DIM))
            if label:
                start = rng.integers(0, n_rows)
                rows[start : start + 3, :4] += 2.0
            eid = f"ex{i:03d}"
            writer.add(
                example_id=eid,
                group=f"g{i}",
                label=label,
                source="pool",
                negative_rate=UPSTREAM,
                rows=rows,
            )
            split = "train" if i < 40 else "dev_a"
            kept = bool(label or rng.random() < 0.8)
            records.append(
                {
                    "example_id": eid,
                    "group": f"g{i}",
                    "label": label,
                    "source": "pool",
                    "n_rows": n_rows,
                    "split": split,
                    "upstream_rate": UPSTREAM,
                    "downsample_rate": 1.0 if label else THIN,
                    "kept": kept,
                    "weight": 1.0 if label else 1 / (UPSTREAM * THIN),
                    "true_label": None,  # no gold labels: a complete manifest all the same
                }
            )
    return root / "dataset", pd.DataFrame(records)


# Evaluation data: predictions tables whose truth is known, for the evaluate stage's and
# dsprior.evaluation's tests (test_evaluate, test_evaluation_*); conftest's ``predictions`` and
# ``evaluated`` fixtures are built from them.

EVAL_PRIOR = 0.02
EVAL_BETA = 0.05

EVAL_PARAMS = {
    "prior": None,
    "cost": {"false_positive": 1, "false_negative": 10},
    "bootstrap": {
        "resamples": 60,
        "level": 0.9,
        "seed": 3,
        "min_positives": 0,
        "min_prior_positives": 0,
    },
    "calibration_bins": 5,
    "batch_size": 8,
    "precision": "auto",
    "onednn": "auto",
    "threshold_labels": "distant",
    "stated_label_noise": {"missing_label_rate": None, "false_label_rate": None},
}

# The metrics.json keys the evaluate issue requires (test_evaluate, the e2e test).
REQUIRED_METRICS = [
    f"{split}.{view}.{name}"
    for split in ("dev_a", "dev_b", "test")
    for view in ("sample", "prior")
    for name in ("precision", "recall", "f1", "average_precision")
] + ["dev_b.prior.expected_cost", "test.prior.expected_cost", "threshold"]


def make_split(rng: np.random.Generator, name: str, n_groups: int, keep: float) -> pd.DataFrame:
    """Groups of 1-4 examples at EVAL_PRIOR; negatives kept with rate ``keep`` and weighted 1/keep."""
    sizes = rng.integers(1, 5, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    labels = (rng.random(len(groups)) < EVAL_PRIOR).astype(np.int8)
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


def make_predictions() -> pd.DataFrame:
    """A predictions table whose scores are calibrated at the thinned prior (beta = EVAL_BETA)."""
    rng = np.random.default_rng(42)
    frame = pd.concat(
        [
            make_split(rng, "dev_a", 1500, EVAL_BETA),
            make_split(rng, "dev_b", 1200, 1.0),
            make_split(rng, "test", 1200, 1.0),
        ],
        ignore_index=True,
    )
    # production log-odds from a logistic model, then the logit a thinned model would give
    at_prior = 2.5 * frame["label"].to_numpy() + 1.2 * rng.normal(size=len(frame)) - 5.0
    return with_log_odds(frame, at_prior, beta=EVAL_BETA).reset_index(drop=True)


def with_log_odds(frame: pd.DataFrame, at_prior: np.ndarray, *, beta: float) -> pd.DataFrame:
    """``frame`` with the predictions' score columns for log-odds ``at_prior`` at the production
    prior: the thinned model's ``logit`` and ``score``, ``logit_at_prior`` and ``probability``."""
    frame = frame.copy()
    frame["logit"] = np.asarray(at_prior, dtype=np.float64) - np.log(beta)
    frame["score"] = priors.sigmoid(frame["logit"].to_numpy())
    frame["logit_at_prior"] = priors.log_odds_at_prior(frame["logit"].to_numpy(), beta=beta)
    frame["probability"] = priors.sigmoid(frame["logit_at_prior"].to_numpy())
    return frame


def assert_finite_or_null(value, where="metrics"):
    if isinstance(value, dict):
        for k, v in value.items():
            assert_finite_or_null(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_finite_or_null(v, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), where


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


# Label-free and calibration data (test_quantify, test_calibration).

MU, SIGMA = 2.0, 1.0  # two Gaussian log-odds classes, as tests/fixtures/make_quapy_fixture.py


def posterior(x: np.ndarray, prior: float) -> np.ndarray:
    """P(y=1 | x) at ``prior``: exactly calibrated there."""
    return 1 / (1 + np.exp(-(2 * MU * x / SIGMA**2 + np.log(prior / (1 - prior)))))


def draw(
    rng: np.random.Generator, n: int, *, prior: float, at: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labels at ``prior`` and their probabilities calibrated at the prior ``at``."""
    y = (rng.random(n) < prior).astype(np.int8)
    x = np.where(y == 1, MU, -MU) + SIGMA * rng.normal(size=n)
    return y, posterior(x, at)


def declared_plots(repo: Path) -> list[str]:
    """Plot ids `dvc plots show` should draw: top-level ids, then every stage plot file."""
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())
    paths = yaml.safe_load((repo / "params.yaml").read_text())["paths"]

    def resolve(text: str) -> str:
        return re.sub(r"\$\{paths\.(\w+)\}", lambda m: str(paths[m.group(1)]), text)

    ids = [next(iter(entry)) for entry in spec.get("plots", [])]
    for stage in spec["stages"].values():
        for entry in stage.get("plots", []):
            target = repo / resolve(next(iter(entry)))
            files = (
                sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
            )
            assert files, f"{target} declared as a plot but holds no file"
            ids += [p.relative_to(repo).as_posix() for p in files]
    return ids


MONITOR_BUNDLE = "sha256:" + "a" * 64


def monitor_summary(
    prior: float = 0.01, *, precision: float = 0.9, width: float = 0.2, **extra: Any
) -> dict[str, Any]:
    """A ``score --summary`` dict with the keys the monitoring history reads; each interval is
    the value -+ ``width`` of it (recall's refused, as for a batch with too few positives)."""

    def pair(v: float) -> dict[str, Any]:
        return {"value": v, "ci": [v * (1 - width), v * (1 + width)]}

    return {
        "examples": 1000,
        "bundle_prior": 0.0114,
        "estimated_prior": {**pair(prior), "method": "EM", "interval": "text", "cross_check": {}},
        "estimated_at_threshold": {
            "threshold": 0.26,
            "interval": "text",
            "decisions": "at the bundle's prior",
            "precision": {"value": precision, "ci": [precision - 0.05, min(1.0, precision + 0.05)]},
            "recall": {"value": 0.86, "ci": [None, None]},
            "alerts_per_1000": pair(1000 * prior),
            "expected_cost": pair(3.0),
        },
        "drift": {"prior_shift": False, "score_shift_ks": 0.03, "p_value": 0.4, "against": "x"},
        "adapt_prior": {"applied": False, "to_prior": prior},
        "calibration": {"method": "isotonic"},
        "warnings": [],
        "scoring": {"examples_read": 1000},
        "bundle": {"path": "bundle", "content_hash": MONITOR_BUNDLE, "format_version": 2},
        **extra,
    }


def monitor_record(
    batch: str = "day-001", fingerprint: str | None = None, **kw: Any
) -> dict[str, Any]:
    """A history record of ``monitor_summary(**kw)``."""
    from dsprior.monitoring import record_from_summary

    return record_from_summary(
        monitor_summary(**kw),
        batch=batch,
        scored_at="2026-12-06T00:00:00Z",
        input_path=f"{batch}.csv",
        fingerprint=fingerprint or f"blake2b:{batch}",
    )
