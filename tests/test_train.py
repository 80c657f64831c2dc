"""The train stage: ``python -m stages.train`` writes the model, its record and the curves.

``make_data`` and ``TINY`` are also what the training library's tests and test_hardware
train on.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from dsprior import batches, cnn, contract
from dsprior.common import atomic_directory
from stages import train
from tests.conftest import ROOT

DIM = 16
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
            tmp, dim=DIM, dtype="float16", row_group_size=8, shard_size=32
        ) as writer,
    ):
        for i in range(n):
            label = int(i % 3 == 0)
            n_rows = int(rng.integers(1, 12))
            rows = rng.normal(size=(n_rows, DIM))
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


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("train_data"))


def curve(live_dir, name):
    return pd.read_csv(live_dir / "plots" / "metrics" / f"{name}.tsv", sep="\t")


def test_main_trains_and_loss_falls(data, tmp_path):
    dataset, manifest = data
    manifest.to_parquet(tmp_path / "manifest.parquet")
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"train": {**TINY, "epochs": 6, "eval_every": 8, "checkpoint_every": 8}})
    )
    backup = tmp_path / "backup"
    train.main(
        [
            "--params", str(params), "--dataset", str(dataset), "--manifest", str(tmp_path / "manifest.parquet"),
            "--model-dir", str(tmp_path / "models"), "--live-dir", str(tmp_path / "live"),
            "--backup-dir", str(backup),
        ]
    )  # fmt: skip
    loss = curve(tmp_path / "live", "train/loss")["loss"].to_numpy()
    assert len(loss) >= 8
    assert loss[-4:].mean() < 0.7 * loss[:2].mean()
    assert not backup.exists()

    record = json.loads((tmp_path / "models" / "train.json").read_text())
    kept_train = manifest[(manifest.split == "train") & manifest.kept]
    negatives = kept_train[kept_train.label == 0]
    assert record["dim"] == DIM
    assert record["beta"] == pytest.approx(len(negatives) / negatives.weight.sum())
    assert record["training_prior"] == pytest.approx(kept_train.label.mean())
    assert record["params"]["filters"] == TINY["filters"]
    model = cnn.load_model(tmp_path / "models" / "model.keras")  # safe mode
    ids = manifest.example_id[manifest.split == "dev_a"].tolist()
    scores = batches.predict_scores(model, dataset, ids, batch_size=5)
    labels = manifest.label[manifest.split == "dev_a"].to_numpy()
    assert scores[labels == 1].mean() > scores[labels == 0].mean()

    metrics = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert metrics["best_step"] == record["best_step"]
    sampled = curve(tmp_path / "live", "dev_a/sampled/precision")["precision"]
    prior = curve(tmp_path / "live", "dev_a/prior/precision")["precision"]
    assert len(sampled) == len(prior) >= 2
    assert (prior <= sampled + 1e-12).all() and (prior < sampled).any()
