"""Measured figures in the docs come from the results files, never typed by hand.

A docs page writes ``{{ fig | benchmarks/results/train.json | speeds/parquet_bucketed | .0f }}``
where a number goes: the file (relative to the repository's root), the key path into its
JSON (``/`` between keys; a number indexes a list), and a Python format spec (optional).
``{{ source | benchmarks/results/train.json }}`` says where that file's figures came from:
the command, the machine and the date recorded in it. MkDocs runs ``on_page_markdown`` on
every page (``hooks:`` in mkdocs.yml), so a figure is whatever the file holds when the site
is built, and a key that is not there fails the build.

The README cannot be rendered, so its figures carry a marker instead, right after the
number: ``0.940<!-- fig | reports/metrics.json | classic_example/... | .3f -->``;
``readme_mismatches`` lists every marked number that is not what its file says (a test runs
it).
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_FIELD = r"\s*([^|}]+?)\s*"
FIGURE = re.compile(r"\{\{\s*fig\s*\|" + _FIELD + r"\|" + _FIELD + r"(?:\|" + _FIELD + r")?\}\}")
SOURCE = re.compile(r"\{\{\s*source\s*\|" + _FIELD + r"\}\}")
# ``{{ record | dsprior.evaluation.record.Metrics }}``: a declared record shape, as tables.
RECORD = re.compile(r"\{\{\s*record\s*\|" + _FIELD + r"\}\}")
# A number (optionally signed, with thousands commas, a decimal part and a % sign) followed
# by a figure marker in an HTML comment.
MARKED = re.compile(
    r"(-?[\d,]*\.?\d+%?)<!--\s*fig\s*\|" + _FIELD + r"\|" + _FIELD + r"(?:\|" + _FIELD + r")?-->"
)


class FigureError(ValueError):
    """A figure that cannot be read: no such file, key or format."""


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def lookup(file: str, key: str, *, root: Path = ROOT) -> Any:
    """The value at ``key`` (``a/b/0/c``) in the JSON file ``file`` under ``root``."""
    path = root / file
    if not path.is_file():
        raise FigureError(f"{file}: no such results file")
    value = _load(path)
    walked: list[str] = []
    for part in key.split("/"):
        walked.append(part)
        if isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(value) <= index < len(value):
                raise FigureError(f"{file}: {'/'.join(walked)} is past the list's end")
            value = value[index]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise FigureError(f"{file}: no key {'/'.join(walked)!r}")
    return value


def figure(file: str, key: str, spec: str | None = None, *, root: Path = ROOT) -> str:
    """The figure as text: the value formatted with ``spec`` (``.3f``, ``.1%``, ``,d``)."""
    value = lookup(file, key, root=root)
    if isinstance(value, (dict, list)):
        raise FigureError(f"{file}: {key} is a {type(value).__name__}, not a figure")
    try:
        return format(value, spec or "")
    except (TypeError, ValueError) as exc:
        raise FigureError(f"{file}: {key} = {value!r} does not format as {spec!r}") from exc


def _git_date(file: str, root: Path) -> str | None:
    out = subprocess.run(
        ["git", "log", "-1", "--format=%cs", "--", file], cwd=root, capture_output=True, text=True
    )
    return out.stdout.strip() or None


def provenance(file: str, *, root: Path = ROOT) -> str:
    """Where a results file's figures came from: its command, machine and date.

    The file records its ``command`` and its machine (``machine`` or ``cpu``: model and
    cores); the date is its ``date`` key or, failing that, the day the file was last
    committed.
    """
    lookup(file, "command", root=root)  # a file that does not say how it was made has none
    data = _load(root / file)
    machine = data.get("machine") or data.get("cpu")
    if not isinstance(machine, dict):
        raise FigureError(f"{file}: no machine or cpu record")
    model = machine.get("cpu") or machine.get("model") or "unknown CPU"
    cores = machine.get("cores")
    date = data.get("date") or _git_date(file, root) or "an uncommitted run"
    where = f"{model}, {cores} cores" if cores else model
    return f"Measured with `{data['command']}` on {where}, {date}."


def record_tables(dotted: str) -> str:
    """A declared record (``package.module.Name``) as one table per record type it reaches:
    each key, its type (a record type links to its table) and what it means. Generated from
    the declaration the code is type-checked against, so a key cannot go undocumented."""
    from dsprior import records

    module, _, name = dotted.rpartition(".")
    try:
        shape = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise FigureError(f"{dotted}: no such record declaration") from exc
    tables = records.schema(shape)
    names = {table for table, _ in tables}

    def linked(text: str) -> str:
        return re.sub(
            r"\b(" + "|".join(map(re.escape, names)) + r")\b",
            lambda m: f"[{m[1]}](#{m[1].lower()})",
            text,
        )

    out = []
    for table, rows in tables:
        out += [f"### {table}", "", "| key | type | meaning |", "|---|---|---|"]
        for key, kind, text in rows:
            meaning = (text or "").replace("|", "\\|")
            out.append(f"| `{key}` | {linked(kind)} | {meaning} |")
        out.append("")
    return "\n".join(out)


def render(markdown: str, *, root: Path = ROOT) -> str:
    """``markdown`` with every figure, source and record placeholder replaced by its text."""
    markdown = FIGURE.sub(lambda m: figure(m[1], m[2], m[3], root=root), markdown)
    markdown = RECORD.sub(lambda m: record_tables(m[1]), markdown)
    return SOURCE.sub(lambda m: provenance(m[1], root=root), markdown)


def readme_mismatches(text: str, *, root: Path = ROOT) -> list[str]:
    """Every marked figure in ``text`` that differs from what its results file says."""
    wrong = []
    for match in MARKED.finditer(text):
        quoted, file, key, spec = match[1], match[2], match[3], match[4]
        try:
            actual = figure(file, key, spec, root=root)
        except FigureError as exc:
            wrong.append(str(exc))
            continue
        if actual != quoted:
            wrong.append(f"{file}: {key} is {actual}, the text says {quoted}")
    return wrong


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs' hook: render the page's figures from the files as they are now."""
    from mkdocs.exceptions import PluginError

    _load.cache_clear()
    root = Path(config["config_file_path"]).resolve().parent
    try:
        return render(markdown, root=root)
    except FigureError as exc:
        raise PluginError(f"{page.file.src_path}: {exc}") from exc
