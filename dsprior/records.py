"""The declared shapes of the JSON records the pipeline writes, read as data.

Each record (train.json in ``dsprior.modeldir``, bundle.json in ``dsprior.bundle.record``) is
declared once as a ``TypedDict`` whose every key is ``Annotated[type, "what it means"]``, so
that mypy checks the code that writes and reads it (a renamed key is a type error) and the
descriptions can be listed for the docs. This module walks such a declaration: the keys it
declares with their descriptions (``describe``), and the keys of a written record that it
does not declare (``undeclared``). Nothing here runs in a stage.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from typing import (
    Annotated,
    Any,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

ANY_KEY = "*"  # in a declared path: any key of an open mapping (a split, a source name)


def _strip(shape: Any) -> tuple[Any, str | None]:
    """The type inside ``Annotated`` (and ``NotRequired``) and its description, if any."""
    text = None
    while get_origin(shape) in (Annotated, NotRequired, Required):
        if get_origin(shape) is Annotated:
            extras = shape.__metadata__
            # nested Annotated flatten, the outer text last: the key's own text wins
            text = text or next((e for e in reversed(extras) if isinstance(e, str)), None)
            shape = shape.__origin__
        else:
            shape = get_args(shape)[0]
    return shape, text


def _members(shape: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``A | B``, ``Optional[A]``), else the shape alone."""
    if get_origin(shape) in (Union, types.UnionType):
        return get_args(shape)
    return (shape,)


def _fields(shape: Any) -> dict[str, Any]:
    return get_type_hints(shape, include_extras=True)


def describe(shape: Any, prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """Every key path that ``shape`` declares, with its description, parents first.

    Open mappings (``dict[str, X]``) appear as ``*`` in the path.
    """
    for member in _members(_strip(shape)[0]):
        inner = _strip(member)[0]
        if is_typeddict(inner):
            for key, field in _fields(inner).items():
                path = f"{prefix}.{key}" if prefix else key
                yield path, _strip(field)[1]
                yield from describe(field, path)
        elif get_origin(inner) in (dict, Mapping) and len(get_args(inner)) == 2:
            yield from describe(get_args(inner)[1], f"{prefix}.{ANY_KEY}")
        elif get_origin(inner) is list and get_args(inner):
            yield from describe(get_args(inner)[0], prefix)


def undeclared(record: Any, shape: Any, prefix: str = "") -> list[str]:
    """The key paths of ``record`` (parsed JSON) that ``shape`` does not declare.

    A union matches when any of its members does; ``dict[str, Any]`` and ``Any`` declare
    whatever they hold.
    """
    best: list[str] | None = None
    for member in _members(_strip(shape)[0]):
        missing = _undeclared_one(record, _strip(member)[0], prefix)
        if not missing:
            return []
        if best is None or len(missing) < len(best):
            best = missing
    return best or []


def _undeclared_one(record: Any, shape: Any, prefix: str) -> list[str]:
    if is_typeddict(shape):
        if not isinstance(record, dict):
            return [f"{prefix} (a {type(record).__name__}, declared an object)"]
        fields = _fields(shape)
        out: list[str] = []
        for key, value in record.items():
            path = f"{prefix}.{key}" if prefix else key
            if key in fields:
                out += undeclared(value, fields[key], path)
            else:
                out.append(path)
        return out
    if get_origin(shape) in (dict, Mapping) and isinstance(record, dict):
        value_shape = get_args(shape)[1] if get_args(shape) else Any
        return [m for k, v in record.items() for m in undeclared(v, value_shape, f"{prefix}.{k}")]
    if get_origin(shape) is list and isinstance(record, list) and get_args(shape):
        return [m for v in record for m in undeclared(v, get_args(shape)[0], prefix)]
    if shape is Any or shape is object:
        return []
    if isinstance(record, dict) and get_origin(shape) not in (dict, Mapping):
        return [f"{prefix} (an object, declared {shape})"]
    return []


def type_text(shape: Any) -> str:
    """A declared type as a reader of the JSON sees it: a record's name, ``list of ...``,
    ``name -> ...`` for an open mapping, ``number``, ``text``, ``... or null``."""
    inner = _strip(shape)[0]
    members = _members(inner)
    if len(members) > 1:
        parts = [type_text(m) for m in members if m is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return f"{text} or null" if type(None) in members else text
    if is_typeddict(inner):
        return inner.__name__
    origin, args = get_origin(inner), get_args(inner)
    if origin in (dict, Mapping) and len(args) == 2:
        return f"name -> {type_text(args[1])}"
    if origin in (list, tuple) and args:
        return f"list of {type_text(args[0])}"
    names = {bool: "true/false", int: "integer", float: "number", str: "text", type(None): "null"}
    return names.get(inner, getattr(inner, "__name__", str(inner)))


def schema(shape: Any) -> list[tuple[str, list[tuple[str, str, str | None]]]]:
    """Every record type ``shape`` reaches, in the order a reader meets them, each with its
    keys as (key, type text, description): the declaration as a reference a person reads."""
    seen: dict[str, list[tuple[str, str, str | None]]] = {}
    queue = [shape]
    while queue:
        current = queue.pop(0)
        for member in _members(_strip(current)[0]):
            inner = _strip(member)[0]
            origin, args = get_origin(inner), get_args(inner)
            if origin in (dict, Mapping) and len(args) == 2:
                queue.append(args[1])
            elif origin in (list, tuple) and args:
                queue.append(args[0])
            elif is_typeddict(inner) and inner.__name__ not in seen:
                fields = _fields(inner)
                seen[inner.__name__] = [
                    (key, type_text(field), _strip(field)[1]) for key, field in fields.items()
                ]
                queue.extend(fields.values())
    return list(seen.items())
