"""Small helpers every stage uses: params, logging, user errors, quiet TensorFlow, atomic writes."""

from __future__ import annotations

import contextlib
import difflib
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; call before importing tensorflow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:  # dsprior.hardware sets it first from params
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        # marks the value as a default, not a person's export (hardware.user_onednn_env)
        os.environ["STAGES_ONEDNN_DEFAULT"] = "0"
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


def load_params(path: str | Path, section: str) -> dict[str, Any]:
    """One section of params.yaml; dvc.yaml declares the whole section as a dependency.

    ValueError, naming the file (and line), when it is not YAML, not a mapping, has no
    such section or the section is not a mapping.
    """
    with open(path) as f:
        try:
            params = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise ValueError(describe_user_error(exc)) from exc
    if not isinstance(params, Mapping):
        raise ValueError(f"{path}: must be a mapping of sections, got {type(params).__name__}")
    if section not in params:
        raise ValueError(f"{path}: no section {section!r}; sections are {sorted(params)}")
    if params[section] is None:
        return {}
    if not isinstance(params[section], Mapping):
        raise ValueError(
            f"{path}: section {section!r} must be a mapping of keys, got {params[section]!r}"
        )
    return params[section]


def require(params: Mapping[str, Any], key: str, section: str) -> Any:
    """``params[key]``, or ValueError naming ``section.key`` when it is missing."""
    if key not in params:
        raise ValueError(f"{section}.{key} is required; add it to params.yaml")
    return params[key]


def check_number(
    value: Any,
    key: str,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    none: bool = False,
) -> Any:
    """``value`` if it is a number (an int when ``integer``) in range; else ValueError.

    ``key`` is the param's full path (``evaluate.bootstrap.level``); the message names
    it, the value and what is allowed. ``none`` allows null. Booleans are not numbers.
    """
    if value is None and none:
        return None
    kinds = (int,) if integer else (int, float)
    allowed = "an integer" if integer else "a number"
    if minimum is not None or maximum is not None:
        lo = "" if minimum is None else f"{'>' if min_open else '>='} {minimum:g}"
        hi = "" if maximum is None else f"{'<' if max_open else '<='} {maximum:g}"
        allowed += " " + " and ".join(x for x in (lo, hi) if x)
    if none:
        allowed = f"null or {allowed}"
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and not integer:
        ok = math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if min_open else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if max_open else value <= maximum
    if not ok:
        raise ValueError(f"{key} must be {allowed}, got {value!r}")
    return value


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


# ----------------------------------------------------------------------------- params schemas
#
# Every stage declares its params section as a schema: a mapping of key -> spec. A spec is
# one of the classes below; ``check_section`` walks the section against it. params.yaml is
# the one place defaults live: every key of a schema is required unless marked Optional
# (only where params.yaml documents the key as optional), and unknown keys are refused at
# any depth, so a typo never falls back silently to a default.


class Spec:
    """One param's allowed values; ``check`` returns the value or raises ValueError."""

    def check(self, value: Any, key: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Number(Spec):
    """A number (bool is not), optionally an integer, in a range, or null."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def check(self, value: Any, key: str) -> Any:
        return check_number(value, key, **self.kwargs)


class Integer(Number):
    """A :class:`Number` that must be an int."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(integer=True, **kwargs)


class Choice(Spec):
    """One of ``values`` (compared with ==, so 1 and True are different from '1')."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def check(self, value: Any, key: str) -> Any:
        ok = any(type(value) is type(v) and value == v for v in self.values)
        if not ok:
            hint = _did_you_mean(value, [v for v in self.values if isinstance(v, str)])
            raise ValueError(f"{key} must be one of {list(self.values)}, got {value!r}{hint}")
        return value


class Text(Spec):
    """A non-empty string."""

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key} must be a non-empty string, got {value!r}")
        return value


class Flag(Spec):
    """true or false."""

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value


class ListOf(Spec):
    """A list whose items each match ``item`` (at least ``min_len``; ``unique``: no repeats)."""

    def __init__(
        self,
        item: Spec,
        *,
        min_len: int = 0,
        unique: bool = False,
        none: bool = False,
    ) -> None:
        self.item, self.min_len, self.unique, self.none = item, min_len, unique, none

    def check(self, value: Any, key: str) -> Any:
        if value is None and self.none:
            return None
        if not isinstance(value, list) or len(value) < self.min_len:
            what = "a list" if not self.min_len else f"a list of at least {self.min_len} item(s)"
            if self.none:
                what = f"null or {what}"
            raise ValueError(f"{key} must be {what}, got {value!r}")
        for i, item in enumerate(value):
            self.item.check(item, f"{key}[{i}]")
        if self.unique:
            seen = [v for i, v in enumerate(value) if v in value[:i]]
            if seen:
                raise ValueError(f"{key} must not repeat items, got {value!r} ({seen[0]!r} twice)")
        return value


class Optional(Spec):
    """A key that may be left out of its section (only where params.yaml says so)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def check(self, value: Any, key: str) -> Any:
        return self.spec.check(value, key)


class Section(Spec):
    """A mapping with exactly the keys of ``schema`` (less the Optional ones it omits)."""

    def __init__(self, schema: Mapping[str, Spec]) -> None:
        self.schema = dict(schema)

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{key} must be a mapping with keys {list(self.schema)}, got {value!r}"
            )
        allowed = list(self.schema)
        for name in value:  # a typo first: it is usually also why a key is "missing"
            if name not in self.schema:
                hint = _did_you_mean(name, allowed)
                raise ValueError(
                    f"{key}.{name}: unknown key (value {value[name]!r}); "
                    f"allowed keys in {key} are {allowed}{hint}"
                )
        for name, spec in self.schema.items():
            if name in value:
                spec.check(value[name], f"{key}.{name}")
        for name, spec in self.schema.items():
            if name not in value and not isinstance(spec, Optional):
                raise ValueError(f"{key}.{name} is required; add it to params.yaml")
        return value


class MapOf(Spec):
    """A mapping of free names (sources, splits) -> ``value`` specs; ``keys`` limits the names."""

    def __init__(self, value: Spec, *, keys: Sequence[str] | None = None, min_len: int = 1) -> None:
        self.value, self.keys, self.min_len = value, keys, min_len

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, Mapping) or len(value) < self.min_len:
            raise ValueError(
                f"{key} must be a mapping of at least {self.min_len} name(s) -> value, "
                f"got {value!r}"
            )
        for name in value:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{key}: names must be non-empty strings, got {name!r}")
            if self.keys is not None and name not in self.keys:
                hint = _did_you_mean(name, list(self.keys))
                raise ValueError(f"{key}.{name}: unknown name; allowed are {list(self.keys)}{hint}")
        for name, item in value.items():
            self.value.check(item, f"{key}.{name}")
        return value


def _did_you_mean(name: Any, allowed: Sequence[str]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_section(
    params: Mapping[str, Any] | None, schema: Mapping[str, Spec], section: str
) -> dict[str, Any]:
    """``params`` (one params.yaml section) checked against ``schema``; else ValueError.

    Refuses, with the full key path (``evaluate.cost.false_negatve``), the value and
    what is allowed: unknown keys at any depth (naming the allowed keys there and a
    close one, if any), then wrong-typed or out-of-range values, then missing keys.
    Call it before any work. Returns ``params`` as a plain dict.
    """
    Section(schema).check({} if params is None else params, section)
    return dict(params or {})
