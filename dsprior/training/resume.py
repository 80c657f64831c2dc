"""Resuming: which backup a run picks up, and from which step.

The backup folder (``--backup-dir``, not a DVC output) holds Keras' ``BackupAndRestore``
checkpoint, the callback's state and the curve rows (``curves``); it is removed after
success. A backup made with other params or data is discarded (``run_fingerprint``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def run_fingerprint(params: dict[str, Any], train_ids: list[str], dim: int) -> str:
    """Identifies a training run so that a backup from other params or data is not resumed."""
    text = json.dumps({"params": params, "dim": dim, "ids": train_ids}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def resume_step(backup_dir: Path, fingerprint: str, checkpoint_every: int) -> int:
    """Global step to resume from; 0 (after discarding a stale backup) when there is none."""
    meta = backup_dir / "keras" / "training_metadata.json"
    stamp = backup_dir / "fingerprint.txt"
    if meta.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return int(json.loads(meta.read_text())["epoch"]) * checkpoint_every
    if backup_dir.exists():
        logger.info("discarding backup %s from another run", backup_dir)
        shutil.rmtree(backup_dir)
    backup_dir.mkdir(parents=True)
    stamp.write_text(fingerprint)
    return 0
