"""The train stage: loss falls, windowed curves equal scikit-learn, resume, determinism, beta."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import log_loss, precision_recall_fscore_support

from dsprior import batches, contract
from dsprior.common import atomic_directory
from stages import train
from tests.conftest import ROOT

keras = train.keras
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
                }
            )
    return root / "dataset", pd.DataFrame(records)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("train_data"))


def run(data, tmp_path, name="run", callbacks=None, **overrides):
    dataset, manifest = data
    return train.train_model(
        dataset_dir=dataset,
        manifest=manifest,
        params={**TINY, **overrides},
        live_dir=tmp_path / name / "live",
        backup_dir=tmp_path / name / "backup",
        callbacks=callbacks,
    )


def curve(live_dir, name):
    return pd.read_csv(live_dir / "plots" / "metrics" / f"{name}.tsv", sep="\t")


class StepCounter(keras.callbacks.Callback):
    def __init__(self, fail_after=None):
        super().__init__()
        self.steps = 0
        self.fail_after = fail_after

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.fail_after is not None and self.steps >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")


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
    model = keras.models.load_model(tmp_path / "models" / "model.keras", safe_mode=True)
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


def test_windowed_metrics_equal_sklearn_on_the_same_window(data, tmp_path):
    # learning_rate 0 and no dropout: the training-mode predictions are the final model's
    model, record = run(data, tmp_path, learning_rate=0.0, dropout=0.0, epochs=1, eval_every=100)
    dataset, manifest = data
    rows = train.select_rows(manifest, "train")
    index = batches.index_dataset(dataset)
    reader = batches.BatchReader(index, index.positions(rows.example_id.tolist()), min_rows=3)
    stream = train.TrainingStream(
        reader,
        rows.label.to_numpy(),
        np.ones(len(rows)),
        batch_size=6,
        pool_size=12,
        seed=TINY["seed"],
    )
    plan = stream.plan(0)
    scores = batches.predict_scores(model, dataset, rows.example_id.tolist(), batch_size=7)
    logged = {
        name: curve(tmp_path / "run" / "live", f"train/{name}")
        for name in ("loss", "precision", "recall", "f1")
    }
    steps = logged["loss"]["step"].tolist()
    assert steps == sorted(set(list(range(2, len(plan) + 1, 2)) + [len(plan)]))
    y = rows.label.to_numpy()
    previous = 0
    windows_differ = False
    for row, step in enumerate(steps):
        window = np.concatenate(plan[previous:step])
        previous = step
        y_w, p_w = y[window], scores[window]
        p, r, f, _ = precision_recall_fscore_support(
            y_w, (p_w > 0.5).astype(int), average="binary", zero_division=0.0
        )
        assert logged["precision"]["precision"][row] == pytest.approx(p, abs=1e-6)
        assert logged["recall"]["recall"][row] == pytest.approx(r, abs=1e-6)
        assert logged["f1"]["f1"][row] == pytest.approx(f, abs=1e-6)
        assert logged["loss"]["loss"][row] == pytest.approx(
            log_loss(y_w, p_w, labels=[0, 1]), rel=1e-4
        )
        cumulative = np.concatenate(plan[:step])
        windows_differ |= (
            abs(log_loss(y[cumulative], scores[cumulative], labels=[0, 1]) - log_loss(y_w, p_w))
            > 1e-3
        )
    assert windows_differ  # the check above would catch cumulative curves


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("full")
    model, record = run(data, tmp_path, name="full")
    return model, record, tmp_path / "full" / "live"


def curve_files(live_dir):
    plots = live_dir / "plots"
    return {p.relative_to(plots).as_posix(): p.read_text() for p in sorted(plots.rglob("*.tsv"))}


@pytest.mark.parametrize("curves_deleted", [False, True], ids=["curves_kept", "curves_deleted"])
def test_killed_training_resumes_from_checkpoint_and_matches_uninterrupted(
    data, full_run, tmp_path, curves_deleted
):
    full_model, full, full_live = full_run
    total = full["steps"]
    assert total > 6

    counter = StepCounter(fail_after=6)  # mid-epoch, after the checkpoint at step 4
    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, name="killed", callbacks=[counter])
    assert (tmp_path / "killed" / "backup" / "keras").exists()
    assert curve(tmp_path / "killed" / "live", "train/loss")["step"].max() == 6  # past step 4
    if curves_deleted:  # as `dvc repro` does to the stage's plot outputs before rerunning it
        shutil.rmtree(tmp_path / "killed" / "live")

    counter = StepCounter()
    model, resumed = run(data, tmp_path, name="killed", callbacks=[counter])
    assert resumed["resumed_from_step"] == 4
    assert counter.steps == total - 4  # not from zero
    # optimizer, dropout state and stream position were all restored: same weights as no kill
    for a, b in zip(model.get_weights(), full_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    loss_full = curve(full_live, "train/loss")
    loss_resumed = curve(tmp_path / "killed" / "live", "train/loss")
    assert loss_resumed["step"].tolist() == loss_full["step"].tolist()  # no duplicated steps
    np.testing.assert_allclose(loss_resumed["loss"], loss_full["loss"], rtol=1e-5)
    # every curve file, rows from before and after the restart, as DVCLive wrote them
    assert curve_files(tmp_path / "killed" / "live") == curve_files(full_live)


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_differs(data, full_run, tmp_path):
    full_model, full, full_live = full_run
    again_model, again = run(data, tmp_path, name="again")
    _, other = run(data, tmp_path, name="other", seed=8)
    assert again["best_value"] == pytest.approx(full["best_value"], abs=1e-6)
    for name in ("train/loss", "dev_a/prior/loss", "dev_a/sampled/f1"):
        expected = curve(full_live, name).iloc[:, -1]
        np.testing.assert_allclose(
            curve(tmp_path / "again" / "live", name).iloc[:, -1], expected, atol=1e-6
        )
    assert not np.allclose(
        curve(tmp_path / "other" / "live", "train/loss").iloc[:, -1],
        curve(full_live, "train/loss").iloc[:, -1],
    )


def test_saved_model_is_byte_reproducible_and_loads(tmp_path):
    import time

    import keras

    def build() -> keras.Model:
        # a new model with the same weights, shared regularizer and names, as a rerun makes
        keras.utils.set_random_seed(3)
        shared = keras.regularizers.L2(0.001)
        inputs = keras.Input((4,), name="x")
        hidden = keras.layers.Dense(3, kernel_regularizer=shared, name="a")(inputs)
        outputs = keras.layers.Dense(2, kernel_regularizer=shared, name="b")(hidden)
        model = keras.Model(inputs, outputs, name="m")
        model.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mse")
        model.optimizer.build(model.trainable_variables)
        return model

    first = build()
    train.save_model(first, tmp_path / "first.keras")
    time.sleep(1.1)  # Keras stamps the save time to the second
    train.save_model(build(), tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    loaded = keras.saving.load_model(tmp_path / "first.keras", safe_mode=True)
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), first.predict(x, verbose=0))
    for name in ("a", "b"):  # the renumbered shared regularizer loads as before
        assert loaded.get_layer(name).kernel_regularizer.get_config() == {"l2": 0.001}
    keras.saving.KerasFileEditor(str(tmp_path / "first.keras")).summary()  # reads date_saved


def test_weighted_mode_trains_at_the_production_prior(data, tmp_path):
    dataset, manifest = data
    unthinned = manifest.assign(kept=True, downsample_rate=1.0)
    unthinned["weight"] = np.where(unthinned.label == 1, 1.0, 1 / UPSTREAM)
    _, record = train.train_model(
        dataset_dir=dataset,
        manifest=unthinned,
        params={**TINY, "epochs": 1, "balance": "weighted", "loss_weight": "example"},
        live_dir=tmp_path / "live",
        backup_dir=tmp_path / "backup",
    )
    assert record["beta"] == pytest.approx(1.0)
    assert record["training_prior"] == pytest.approx(record["production_prior_estimate"])


def test_beta_reflects_balancing_mode():
    labels = np.array([1, 1, 0, 0, 0, 0])
    weight = np.array([1.0, 1.0, 20.0, 20.0, 40.0, 40.0])
    down = train.training_weights(labels, weight, balance="downsample", loss_weight="example")
    assert train.effective_beta(labels, weight, down) == pytest.approx(4 / 120)
    example = train.training_weights(labels, weight, balance="weighted", loss_weight="example")
    assert train.effective_beta(labels, weight, example) == pytest.approx(1.0)
    assert example.mean() == pytest.approx(1.0)
    balanced = train.training_weights(labels, weight, balance="weighted", loss_weight="class")
    # balanced class weights give negatives half the weight of positives here (4 vs 2 rows)
    assert train.effective_beta(labels, weight, balanced) == pytest.approx(0.5 * 4 / 120)
    assert train.training_prior(labels, balanced) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"balance": "smote"},
            r"train.balance must be one of \['downsample', 'weighted'\], got 'smote'",
        ),
        ({"select_metric": "auc"}, "train.select_metric must be one of"),
        ({"checkpoint_every": 5}, "must be a multiple of train.log_every"),
        ({"batch_size": 0}, "train.batch_size must be an integer >= 1, got 0"),
        ({"colour": 1}, r"train.colour: unknown key \(value 1\); allowed keys in train are"),
    ],
)
def test_bad_params_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        train.resolve_params({**TINY, **override})
