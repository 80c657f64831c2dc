"""params.yaml: one section read, and checked against the schema its stage declares.

Every stage declares its params section as a schema: a mapping of key -> spec, a spec
being one of the classes here; ``check_section`` walks the section against it. params.yaml
is the one place defaults live: every key of a schema is required unless marked Optional
(only where params.yaml documents the key as optional), and unknown keys are refused at
any depth, so a typo never falls back silently to a default. A bad value is refused with
its full key path, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from dsprior.runtime import describe_user_error


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


class AutoOr(Spec):
    """The string ``auto`` (resolved by the caller, e.g. to the machine's cores) or ``spec``."""

    def __init__(self, spec: Spec, *, describe: str) -> None:
        self.spec, self.describe = spec, describe

    def check(self, value: Any, key: str) -> Any:
        if value == "auto" and isinstance(value, str):
            return value
        try:
            return self.spec.check(value, key)
        except ValueError:
            raise ValueError(f"{key} must be 'auto' or {self.describe}, got {value!r}") from None


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
