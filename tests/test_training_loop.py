"""The training run (``dsprior.training.loop``): windowed curves equal scikit-learn, a killed
run resumes to the uninterrupted result, determinism, and the weighted mode's beta."""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, precision_recall_fscore_support

from dsprior import batches, modeldir, records
from dsprior.training.callback import StepCurves
from dsprior.training.loop import train_model
from dsprior.training.params import resolve_params
from dsprior.training.rows import select_rows
from dsprior.training.stream import TrainingStream
from tests.factories import TINY, UPSTREAM, make_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("train_data"))


def run(data, tmp_path, name="run", callbacks=None, **overrides):
    dataset, manifest = data
    return train_model(
        dataset_dir=dataset,
        manifest=manifest,
        config=resolve_params({**TINY, **overrides}),
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


def test_windowed_metrics_equal_sklearn_on_the_same_window(data, tmp_path):
    # learning_rate 0 and no dropout: the training-mode predictions are the final model's
    model, record = run(data, tmp_path, learning_rate=0.0, dropout=0.0, epochs=1, eval_every=100)
    dataset, manifest = data
    rows = select_rows(manifest, "train")
    index = batches.index_dataset(dataset)
    reader = batches.BatchReader(index, index.positions(rows.example_id.tolist()), min_rows=3)
    stream = TrainingStream(
        reader,
        rows.label.to_numpy(),
        np.ones(len(rows)),
        batch_size=6,
        pool_size=12,
        seed=TINY["seed"],
    )
    plan = stream.plan(0)
    logits = batches.predict_scores(model, dataset, rows.example_id.tolist(), batch_size=7)
    scores = 1 / (1 + np.exp(-logits))  # the sigmoid Keras' windowed counts saw
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


def test_every_key_of_train_json_is_declared(full_run, tmp_path):
    _, record, _ = full_run
    modeldir.write_train_record(tmp_path, record)
    written = modeldir.read_train_record(tmp_path)
    assert written["params"]["filter_sizes"] == TINY["filter_sizes"]
    assert records.undeclared(written, modeldir.TrainRecord) == []


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
    assert (tmp_path / "killed" / "backup" / "checkpoints" / f"{4:012d}").is_dir()
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
    # and the summary byte for byte: its dev_a scores were restored from the saved state
    summary = "metrics.json"
    assert (tmp_path / "killed" / "live" / summary).read_text() == (full_live / summary).read_text()


def kill_in_checkpoint(where, at_call):
    """A stand-in for ``where`` (a method writing into a checkpoint) that, at its ``at_call``-th
    call, writes half its file and raises: a SIGKILL in the middle of the write."""
    calls = []

    def killing(self, folder_or_path, *args, **kwargs):
        calls.append(1)
        if len(calls) < at_call:
            return where(self, folder_or_path, *args, **kwargs)
        if where is keras.Model.save_weights:
            where(self, folder_or_path, *args, **kwargs)
            data = Path(folder_or_path).read_bytes()
            Path(folder_or_path).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt("simulated SIGKILL mid-checkpoint")

    return killing


@pytest.mark.parametrize("where", ["weights", "state"])
def test_a_kill_mid_checkpoint_resumes_from_the_previous_one_to_the_uninterrupted_result(
    data, full_run, tmp_path, monkeypatch, where
):
    """Killed while the step-8 checkpoint is half written (its weights file torn, or its
    weights written but not the callback's state): the next run resumes at step 4 and ends
    as an uninterrupted run. Keras' BackupAndRestore, writing in place, failed here."""
    full_model, full, full_live = full_run
    with monkeypatch.context() as patch:
        if where == "weights":
            patch.setattr(
                keras.Model, "save_weights", kill_in_checkpoint(keras.Model.save_weights, 2)
            )
        else:
            patch.setattr(StepCurves, "save_state", kill_in_checkpoint(StepCurves.save_state, 2))
        with pytest.raises(KeyboardInterrupt):
            run(data, tmp_path, name="killed")
    backup = tmp_path / "killed" / "backup" / "checkpoints"
    assert sorted(p.name for p in backup.iterdir()) == [".staging-000000000008", "000000000004"]

    model, resumed = run(data, tmp_path, name="killed")
    assert resumed["resumed_from_step"] == 4
    for a, b in zip(model.get_weights(), full_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert curve_files(tmp_path / "killed" / "live") == curve_files(full_live)


@pytest.mark.parametrize("patience", [None, 1], ids=["last_step", "early_stop"])
def test_a_run_killed_after_its_last_checkpoint_trains_no_further(
    data, full_run, tmp_path, patience
):
    """The last checkpoint (after the last step, or mid-epoch after an early stop) marks
    training as stopped: a restart trains no further and only writes the model."""
    if patience is None:
        full_model, _, full_live = full_run
    else:  # stops at step 6 of 12, inside the Keras epoch of steps 5 to 8
        full_model, _ = run(data, tmp_path, name="full", patience=patience)
        full_live = tmp_path / "full" / "live"
    stopped_at = curve(full_live, "train/loss")["step"].max()
    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, name="killed", callbacks=[InterruptAtTrainEnd()], patience=patience)
    counter = StepCounter()
    model, resumed = run(data, tmp_path, name="killed", callbacks=[counter], patience=patience)
    assert resumed["resumed_from_step"] == stopped_at and counter.steps == 0
    for a, b in zip(model.get_weights(), full_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert curve_files(tmp_path / "killed" / "live") == curve_files(full_live)


class InterruptAtTrainEnd(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        raise KeyboardInterrupt("simulated kill after the last checkpoint")


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


def test_weighted_mode_trains_at_the_production_prior(data, tmp_path):
    dataset, manifest = data
    unthinned = manifest.assign(kept=True, downsample_rate=1.0)
    unthinned["weight"] = np.where(unthinned.label == 1, 1.0, 1 / UPSTREAM)
    _, record = train_model(
        dataset_dir=dataset,
        manifest=unthinned,
        config=resolve_params(
            {**TINY, "epochs": 1, "balance": "weighted", "loss_weight": "example"}
        ),
        live_dir=tmp_path / "live",
        backup_dir=tmp_path / "backup",
    )
    assert record["beta"] == pytest.approx(1.0)
    assert record["training_prior"] == pytest.approx(record["production_prior_estimate"])
