"""Small helpers every stage uses: params, logging, quiet TensorFlow, atomic writes."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; call before importing tensorflow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once, from a stage's ``main()``."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def load_params(path: str | Path, section: str) -> dict[str, Any]:
    """One section of params.yaml; dvc.yaml declares the whole section as a dependency."""
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    if section not in params:
        raise ValueError(f"{path}: no section {section!r}; sections are {sorted(params)}")
    return params[section]


def finite_or_none(value: Any) -> Any:
    """Recursively replace NaN/inf with None and numpy scalars with Python ones."""
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON with NaN/inf as null, atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(finite_or_none(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a half-written temp must not outlive the failure
        raise


def current_umask() -> int:
    """The process umask, read without changing it.

    ``os.umask`` can only be read by setting it, which for a moment gives every
    other thread's new files the wrong mode; Linux reports it in
    ``/proc/self/status``. Elsewhere a probe folder made with mode 0o777 shows it.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with tempfile.TemporaryDirectory() as scratch:
        probe = os.path.join(scratch, "probe")
        os.mkdir(probe, 0o777)
        return 0o777 & ~stat.S_IMODE(os.stat(probe).st_mode)


def umask_mode(base: int = 0o777) -> int:
    """``base`` as the umask lets it through: the mode ``open``/``mkdir`` would give."""
    return base & ~current_umask()


def _temp_dir_pattern(target: Path) -> re.Pattern[str]:
    # tempfile.mkdtemp(prefix=".NAME.", suffix=".tmp") inserts 8 of [a-z0-9_]
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")


def remove_stale_temp_dirs(target: str | Path) -> list[Path]:
    """Delete the temporary folders that killed ``atomic_directory`` runs left beside ``target``.

    Only names ``atomic_directory`` makes for this target (``.NAME.xxxxxxxx.tmp``)
    are touched. Returns what was removed.
    """
    target = Path(target)
    pattern = _temp_dir_pattern(target)
    removed = []
    if target.parent.is_dir():
        for entry in target.parent.iterdir():
            if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it replaces ``target`` only on success.

    An interrupted writer therefore never leaves a partial folder at ``target``
    that looks complete. The folder gets the mode the umask gives (``mkdtemp``
    alone would make it owner-only), and on success the temporary folders of
    earlier, killed runs for the same target are removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(tmp, umask_mode(0o777))
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    remove_stale_temp_dirs(target)
