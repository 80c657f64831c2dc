"""Resuming: the checkpoints a killed run leaves, which one a new run picks up, and from which step.

The backup folder (``--backup-dir``, not a DVC output; removed after success) holds

- ``fingerprint.txt``: the run it belongs to (``run_fingerprint``). A backup made with other
  params or data is discarded.
- ``checkpoints/<step>/``: one folder per checkpoint, the newest ``KEEP``. Each holds the
  model's and the optimizer's weights (``model.weights.h5``), the training callback's state
  (``StepCurves.save_state``) and, written last, ``checkpoint.json``: the step, the Keras
  epoch, whether training had stopped, and the SHA-256 of every other file.
- ``curves/``: the curve rows logged up to each checkpoint (``curves``).

A SIGKILL (an OOM kill, a preempted node) can land at any moment, in the middle of a write
too. So a checkpoint is written whole into a staging folder and renamed into place
(``save_checkpoint``): a folder under ``checkpoints/`` is complete, the staging folder a kill
leaves behind is deleted, and the model, optimizer, callback state and step of a checkpoint
always belong together. Keras' ``BackupAndRestore`` overwrote its weights file in place and
then its ``training_metadata.json``, so a kill during either left a truncated file (the next
run failed) or new weights with the previous epoch (the next run went on from the wrong
point). A resumed run takes the newest checkpoint whose files match their digests
(``latest_checkpoint``); one that does not (a disk fault, a power cut that lost unsynced
data) is discarded with a warning and the next older one is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsprior.runtime import file_sha256, write_atomic

logger = logging.getLogger(__name__)

STAMP = "fingerprint.txt"
CHECKPOINTS = "checkpoints"
WEIGHTS = "model.weights.h5"
META = "checkpoint.json"
STAGING = ".staging-"
KEEP = 2  # checkpoints kept: the newest, and one to fall back to should it not read back
# what the backup held before checkpoints/ (Keras' BackupAndRestore and the callback state)
LEGACY = ("keras", "best")
_NAME = re.compile(r"^\d{12}$")


class UnusableCheckpoint(Exception):
    """A checkpoint folder that does not read back whole."""


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint: training resumes at global ``step``, Keras epoch ``epoch``."""

    path: Path
    step: int
    epoch: int  # Keras epochs (of checkpoint_every steps) done
    stopped: bool  # training had ended (last step or early stop): nothing is left to run


def run_fingerprint(params: dict[str, Any], train_ids: list[str], dim: int) -> str:
    """Identifies a training run so that a backup from other params or data is not resumed."""
    text = json.dumps({"params": params, "dim": dim, "ids": train_ids}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def latest_checkpoint(backup_dir: str | Path, fingerprint: str) -> Checkpoint | None:
    """The newest usable checkpoint of this run in ``backup_dir``; None to start from step 0.

    A backup of another run (or unstamped) is discarded and the folder stamped for this one.
    What a kill can leave half-done is cleaned away: a staging folder, and checkpoints that
    do not match their digests (each with a warning, falling back to the next older one).
    """
    backup_dir = Path(backup_dir)
    for removed in backup_dir.parent.glob(f".{backup_dir.name}.removed-*"):
        shutil.rmtree(removed, ignore_errors=True)  # remove_backup was cut short
    stamp = backup_dir / STAMP
    if not _stamped(stamp, fingerprint):
        if backup_dir.exists():
            logger.info("discarding backup %s from another run", backup_dir)
            shutil.rmtree(backup_dir)
        backup_dir.mkdir(parents=True)
        write_atomic(stamp, fingerprint.encode())
        return None
    for name in LEGACY:
        if (backup_dir / name).exists():
            logger.warning("discarding %s: a backup in an older layout", backup_dir / name)
            shutil.rmtree(backup_dir / name)
    root = backup_dir / CHECKPOINTS
    found = checkpoint_folders(root)  # also removes staging folders left by a kill
    for path in reversed(found):
        try:
            return read_checkpoint(path)
        except UnusableCheckpoint as err:
            logger.warning("discarding unusable checkpoint %s: %s", path, err)
            shutil.rmtree(path)
    if found:
        logger.warning("no usable checkpoint left in %s: training from step 0", root)
    return None


def remove_backup(backup_dir: str | Path) -> None:
    """Delete the backup after a successful run, all at once for a kill: it is renamed
    away first, so a kill cannot leave a checkpoint with only part of its curve rows."""
    backup_dir = Path(backup_dir)
    if not backup_dir.exists():
        return
    removed = backup_dir.with_name(f".{backup_dir.name}.removed-{os.getpid()}")
    shutil.rmtree(removed, ignore_errors=True)
    os.rename(backup_dir, removed)
    shutil.rmtree(removed, ignore_errors=True)


def _stamped(stamp: Path, fingerprint: str) -> bool:
    try:
        return stamp.read_text() == fingerprint
    except (OSError, UnicodeDecodeError):
        return False


def checkpoint_folders(root: Path) -> list[Path]:
    """The checkpoint folders under ``root``, oldest first; staging folders are removed."""
    if not root.is_dir():
        return []
    for staging in root.glob(f"{STAGING}*"):
        logger.info("removing %s, a checkpoint whose writing was cut short", staging)
        shutil.rmtree(staging)
    return sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name))


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint in ``path``; UnusableCheckpoint unless every file matches its digest."""
    try:
        meta = json.loads((path / META).read_text())
        step, epoch, stopped, files = (
            int(meta["step"]),
            int(meta["epoch"]),
            bool(meta["stopped"]),
            dict(meta["files"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UnusableCheckpoint(f"{META} unreadable ({err})") from err
    if path.name != f"{step:012d}":
        raise UnusableCheckpoint(f"{META} says step {step}")
    if WEIGHTS not in files:
        raise UnusableCheckpoint(f"no {WEIGHTS}")
    for name, digest in files.items():
        try:
            actual = file_sha256(path / name)
        except OSError as err:
            raise UnusableCheckpoint(f"{name} unreadable ({err})") from err
        if actual != digest:
            raise UnusableCheckpoint(f"{name} does not match its digest")
    return Checkpoint(path=path, step=step, epoch=epoch, stopped=stopped)


def save_checkpoint(
    root: str | Path,
    *,
    step: int,
    epoch: int,
    stopped: bool,
    write: Callable[[Path], None],
    keep: int = KEEP,
) -> Path:
    """Write a checkpoint as ``root/<step>``, whole or not at all; keep the newest ``keep``.

    ``write(folder)`` writes the checkpoint's files into a staging folder; ``checkpoint.json``
    (their digests) goes in last, and the folder is then renamed into place.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{step:012d}"
    staging = root / f"{STAGING}{final.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write(staging)
    files = {p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
    meta = {"step": step, "epoch": epoch, "stopped": stopped, "files": files}
    (staging / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if final.exists():  # a checkpoint at this step that a restart did not resume from
        shutil.rmtree(final)
    os.rename(staging, final)
    for old in checkpoint_folders(root)[:-keep]:
        shutil.rmtree(old)
    return final
