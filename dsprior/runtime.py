"""What every entry point needs around its work: logging, a user error as one line, quiet
TensorFlow, JSON, atomic file and folder writes, a file's hash. ``dsprior.settings`` reads
and checks params."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

# TensorFlow reads it once, at import (dsprior.hardware chooses it from params and machine).
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
# Set beside ONEDNN_ENV to the value this code put there, so a child process can tell an
# inherited default from a value a person exported (hardware.user_onednn_env).
MARKER_ENV = "STAGES_ONEDNN_DEFAULT"


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; call before importing tensorflow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if ONEDNN_ENV not in os.environ:  # dsprior.hardware sets it first from params
        os.environ[ONEDNN_ENV] = "0"
        os.environ[MARKER_ENV] = "0"  # a default, not a person's export
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules:
        _import_tensorflow_silently()


def _import_tensorflow_silently() -> None:
    """Import TensorFlow and Keras with the C++ stderr closed.

    TensorFlow logs "oneDNN custom operations are on" (and absl's pre-init notice)
    from C++ at import whenever oneDNN is on, whatever TF_CPP_MIN_LOG_LEVEL says; the
    import is the only moment it speaks unasked, so that is the moment to close fd 2.
    A failing import still raises its Python exception with its message.
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _Formatter(logging.Formatter):
    """Timestamped progress lines; errors as one plain ``ERROR: ...`` line for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.ERROR and not record.exc_info:
            return f"ERROR: {record.getMessage()}"
        return super().format(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once, from a stage's ``main()``.

    Records at ERROR level print as ``ERROR: <message>`` (no timestamp), the line a
    user's mistake ends with (see ``run_main``).
    """
    root = logging.getLogger()
    if root.handlers:  # configured already (by run_main, a test harness or an embedding app)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(level)


# A user's mistake, not a bug in the code: a bad param or input (ValueError is the project's
# convention, rawio.RawDataError included), a path that is missing or of the wrong kind, or
# params.yaml that is not YAML. Anything else (KeyError, TypeError, ...) is a bug and keeps
# its traceback; validation turns wrong-typed or missing params into ValueError.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    yaml.YAMLError,
)
_OS_ERROR_WORDS = {
    FileNotFoundError: "no such file or directory",
    IsADirectoryError: "is a directory",
    NotADirectoryError: "not a directory",
    PermissionError: "permission denied",
}
TRACEBACK_ENV = "STAGES_TRACEBACK"  # set to 1 to see the traceback of a user error too


def describe_user_error(exc: BaseException) -> str:
    """One line for a user error: what is wrong, with the file, key or row and the value."""
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, OSError) and len(exc.args) == 1 and not str(exc).split()[1:]:
        # raise FileNotFoundError(path), as pyarrow does: say what is wrong with the path
        text = f"{exc}: {_OS_ERROR_WORDS.get(type(exc), type(exc).__name__)}"
    elif isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: "
        text += " ".join(str(x) for x in (exc.context, exc.problem) if x)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line, however the message was wrapped


def run_main(main: Callable[[], object]) -> None:
    """Run a stage's or command's ``main()``; a user error ends it with one ``ERROR:`` line.

    Every ``if __name__ == "__main__"`` and console script goes through here, so
    ``main()`` itself stays callable from tests, where the exception propagates. The
    line goes to stderr (through logging, as ``ERROR: ...``) and the exit code is 1;
    any other exception is a bug and prints its traceback as usual.
    """
    setup_logging()
    try:
        main()
    except USER_ERRORS as exc:
        if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            raise
        logging.getLogger("stages").error("%s", describe_user_error(exc))
        sys.exit(1)


def machine_cores() -> int:
    """The CPU cores this process may run on (its affinity, as a container's CPU set gives
    it), at least 1: what ``ingest.workers: auto`` and the audit's readers use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def map_in_processes(
    function: Callable[[Any], Any], items: Sequence[Any], *, workers: int
) -> list[Any]:
    """``[function(item) for item in items]``, in up to ``workers`` fresh processes when there
    are ``workers > 1`` and several items; in this process otherwise. The results come back in
    ``items``' order and are the same as in this process: a function whose randomness is its
    own (each item seeds its own generator) gives the same bytes at every ``workers``.

    The processes are spawned, not forked: a fork would copy TensorFlow's and pyarrow's
    thread pools half-held. ``function`` must be importable (module level), and each worker
    pays for importing it, about a second: worth it for items of several seconds each.
    """
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(
        max_workers=min(workers, len(items)), mp_context=get_context("spawn")
    ) as pool:
        return list(pool.map(function, items))


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
    text = json.dumps(finite_or_none(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(path, text)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield ``.NAME.tmp`` beside ``path`` to write; it replaces ``path`` only on success.

    So ``path`` is never half-written: a reader sees the old file or the new one. Parent
    folders are created; a failure removes the temporary file (it must not outlive it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """``data`` (text or bytes) written to ``path`` through ``atomic_file``."""
    with atomic_file(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


def file_sha256(path: str | Path, *, block: int = 1 << 20) -> str:
    """The sha256 of a file's bytes (hex), read ``block`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


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
