"""The train stage: ``python -m stages.train`` writes the model, its record and the curves.

Its data (``make_data``, ``TINY``) is in tests/factories.py, shared with the training
library's tests and test_hardware.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from dsprior import batches, cnn
from stages import train
from tests.factories import TINY, make_data
from tests.factories import TRAIN_DIM as DIM


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
