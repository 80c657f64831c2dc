"""Resuming: a backup resumes only the run that made it; any other is discarded."""

from __future__ import annotations

import json

from dsprior.training.resume import resume_step, run_fingerprint


def test_fingerprint_follows_params_data_and_dim():
    base = run_fingerprint({"seed": 1}, ["a", "b"], 16)
    assert base == run_fingerprint({"seed": 1}, ["a", "b"], 16)
    assert len({base, run_fingerprint({"seed": 2}, ["a", "b"], 16),
                run_fingerprint({"seed": 1}, ["a"], 16), run_fingerprint({"seed": 1}, ["a", "b"], 8)}) == 4  # fmt: skip


def test_a_matching_backup_resumes_at_its_checkpoint_and_another_is_discarded(tmp_path):
    backup = tmp_path / "backup"
    assert resume_step(backup, "run-a", 4) == 0  # nothing to resume: the folder is stamped
    assert (backup / "fingerprint.txt").read_text() == "run-a"
    (backup / "keras").mkdir()
    (backup / "keras" / "training_metadata.json").write_text(json.dumps({"epoch": 3}))
    assert resume_step(backup, "run-a", 4) == 12
    assert resume_step(backup, "run-b", 4) == 0
    assert not (backup / "keras").exists()
    assert (backup / "fingerprint.txt").read_text() == "run-b"
