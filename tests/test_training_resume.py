"""Resuming: a backup resumes only the run that made it, from its newest checkpoint that reads
back whole; whatever a SIGKILL can leave half-written is discarded, never loaded.

The states a kill leaves are made here directly; test_training_loop kills a real training in
the middle of a checkpoint, and test_pipeline_e2e kills ``dvc repro`` at several moments.
"""

from __future__ import annotations

import json
import logging

import pytest

from dsprior.training.resume import (
    CHECKPOINTS,
    META,
    STAMP,
    WEIGHTS,
    latest_checkpoint,
    remove_backup,
    run_fingerprint,
    save_checkpoint,
)


def test_fingerprint_follows_params_data_and_dim():
    base = run_fingerprint({"seed": 1}, ["a", "b"], 16)
    assert base == run_fingerprint({"seed": 1}, ["a", "b"], 16)
    assert len({base, run_fingerprint({"seed": 2}, ["a", "b"], 16),
                run_fingerprint({"seed": 1}, ["a"], 16), run_fingerprint({"seed": 1}, ["a", "b"], 8)}) == 4  # fmt: skip


def files(**contents):
    """A ``write`` for save_checkpoint: these files, with these bytes."""

    def write(folder):
        for name, data in contents.items():
            (folder / name).write_bytes(data)

    return write


def checkpoint(backup, step, *, stopped=False, **extra):
    """A checkpoint every 4 steps, as the Checkpointer writes one."""
    return save_checkpoint(
        backup / CHECKPOINTS,
        step=step,
        epoch=-(-step // 4),
        stopped=stopped,
        write=files(**{WEIGHTS: f"weights at {step}".encode() * 100, "state.json": b"{}", **extra}),
    )


def test_a_matching_backup_resumes_at_its_newest_checkpoint_and_another_is_discarded(tmp_path):
    backup = tmp_path / "backup"
    assert latest_checkpoint(backup, "run-a") is None  # nothing to resume: the folder is stamped
    assert (backup / STAMP).read_text() == "run-a"
    checkpoint(backup, 4)
    checkpoint(backup, 8)
    found = latest_checkpoint(backup, "run-a")
    assert (found.step, found.epoch, found.stopped) == (8, 2, False)
    assert found.path == backup / CHECKPOINTS / "000000000008"
    assert latest_checkpoint(backup, "run-b") is None
    assert not (backup / CHECKPOINTS).exists()
    assert (backup / STAMP).read_text() == "run-b"


def test_the_newest_two_checkpoints_are_kept(tmp_path):
    backup = tmp_path / "backup"
    for step in (4, 8, 12, 14):
        checkpoint(backup, step, stopped=step == 14)
    assert sorted(p.name for p in (backup / CHECKPOINTS).iterdir()) == [
        "000000000012",
        "000000000014",
    ]
    meta = json.loads((backup / CHECKPOINTS / "000000000014" / META).read_text())
    assert meta["step"] == 14 and meta["epoch"] == 4 and meta["stopped"] is True
    assert sorted(meta["files"]) == ["model.weights.h5", "state.json"]


def test_a_checkpoint_cut_short_mid_write_is_removed_and_the_previous_one_resumes(tmp_path):
    backup = tmp_path / "backup"
    latest_checkpoint(backup, "run")
    checkpoint(backup, 4)

    def killed(folder):  # the weights half written, then the process is gone
        (folder / WEIGHTS).write_bytes(b"\x89HDF\r\n")
        raise KeyboardInterrupt("simulated SIGKILL")

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(backup / CHECKPOINTS, step=8, epoch=2, stopped=False, write=killed)
    assert latest_checkpoint(backup, "run").step == 4
    assert sorted(p.name for p in (backup / CHECKPOINTS).iterdir()) == ["000000000004"]


def truncate_weights(path):
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[: len(data) // 2])


def empty_meta(path):
    (path / META).write_text("")  # open("w") truncated it, then the kill: no json at all


def no_meta(path):
    (path / META).unlink()


def lost_state(path):
    (path / "state.json").unlink()


def misnamed(path):
    path.rename(path.with_name("000000000016"))


@pytest.mark.parametrize("damage", [truncate_weights, empty_meta, no_meta, lost_state, misnamed])
def test_an_unusable_checkpoint_is_discarded_with_a_warning_for_the_previous_one(
    tmp_path, caplog, damage
):
    backup = tmp_path / "backup"
    latest_checkpoint(backup, "run")
    checkpoint(backup, 4)
    damage(checkpoint(backup, 8))
    with caplog.at_level(logging.WARNING, logger="dsprior.training.resume"):
        found = latest_checkpoint(backup, "run")
    assert found.step == 4  # not from zero: the previous checkpoint is whole
    assert "discarding unusable checkpoint" in caplog.text
    assert sorted(p.name for p in (backup / CHECKPOINTS).iterdir()) == ["000000000004"]


def test_no_usable_checkpoint_starts_from_zero_with_a_warning(tmp_path, caplog):
    backup = tmp_path / "backup"
    latest_checkpoint(backup, "run")
    truncate_weights(checkpoint(backup, 4))
    with caplog.at_level(logging.WARNING, logger="dsprior.training.resume"):
        assert latest_checkpoint(backup, "run") is None
    assert "training from step 0" in caplog.text
    assert (backup / STAMP).read_text() == "run"


def test_a_half_written_stamp_is_another_run(tmp_path):
    backup = tmp_path / "backup"
    latest_checkpoint(backup, "run-abcdef")
    checkpoint(backup, 4)
    (backup / STAMP).write_text("run-ab")  # the kill cut the stamp short
    assert latest_checkpoint(backup, "run-abcdef") is None
    assert (backup / STAMP).read_text() == "run-abcdef"


def test_the_backup_keras_left_mid_write_starts_over_instead_of_failing(tmp_path, caplog):
    """What #29's failing resume found: Keras' BackupAndRestore killed while it overwrote
    its files in place (a truncated weights file, an empty training_metadata.json)."""
    backup = tmp_path / "backup"
    latest_checkpoint(backup, "run")
    (backup / "keras").mkdir()
    (backup / "keras" / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n\x00")
    (backup / "keras" / "training_metadata.json").write_text("")
    (backup / "best").mkdir()
    (backup / "best" / "state.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="dsprior.training.resume"):
        assert latest_checkpoint(backup, "run") is None
    assert "older layout" in caplog.text
    assert not (backup / "keras").exists() and not (backup / "best").exists()


def test_a_backup_removal_cut_short_is_finished_by_the_next_run(tmp_path):
    """After success the stage removes the backup by renaming it away first: a kill during
    the deletion leaves a renamed folder that the next run deletes, never resumes."""
    backup = tmp_path / "backup"
    latest_checkpoint(backup, "run")
    checkpoint(backup, 4)
    remove_backup(backup)
    assert list(tmp_path.iterdir()) == []
    latest_checkpoint(backup, "run")
    checkpoint(backup, 4)
    backup.rename(tmp_path / ".backup.removed-123")  # killed after the rename
    assert latest_checkpoint(backup, "run") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup"]
