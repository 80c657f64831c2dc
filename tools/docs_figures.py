"""Measured figures in the docs come from the results files, never typed by hand.

A docs page writes ``{{ fig | benchmarks/results/train.json | speeds/parquet_bucketed | .0f }}``
where a number goes: the file (relative to the repository's root), the key path into its
JSON (``/`` between keys; a number indexes a list, -1 its last item; a ``.tsv`` curve of
DVCLive's is a list of rows, so ``-1/step`` is its last step), and a Python format spec (optional;
``odds`` writes a prior p as the N of "1:N"; ``/1e9 .1f`` divides by a factor first, a
unit change such as bytes to GB).
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

from tools.measure import curve_rows

ROOT = Path(__file__).resolve().parents[1]

_FIELD = r"\s*([^|}]+?)\s*"
FIGURE = re.compile(r"\{\{\s*fig\s*\|" + _FIELD + r"\|" + _FIELD + r"(?:\|" + _FIELD + r")?\}\}")
SOURCE = re.compile(r"\{\{\s*source\s*\|" + _FIELD + r"\}\}")
# ``{{ lines | benchmarks/results/monitor.json | streams/drift/report | 0-22 }}``: items 0 to 22
# of a list of text lines in a results file (a report the benchmark kept), one a line.
LINES = re.compile(r"\{\{\s*lines\s*\|" + _FIELD + r"\|" + _FIELD + r"\|\s*(\d+)-(\d+)\s*\}\}")
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
    """A JSON file's value; a TSV file (DVCLive's curves: a header, then ``step`` and the
    value per row) as a list of rows, each a dict of its numbers."""
    if path.suffix != ".tsv":
        return json.loads(path.read_text(encoding="utf-8"))
    try:
        return curve_rows(path)
    except ValueError as exc:
        raise FigureError(f"{path.name}: not a table of numbers ({exc})") from exc


def lookup(file: str, key: str, *, root: Path = ROOT) -> Any:
    """The value at ``key`` (``a/b/0/c``) in the JSON file ``file`` under ``root``."""
    value = _load_checked(file, root)
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


# Not a Python format spec: a prior p written as the N of "1:N" (N = 1/p - 1, rounded), the
# way the docs state class ratios ("dev_b, at 1:87").
ODDS = "odds"
# A unit change before the format: "/1e9 .1f" writes bytes as GB, "*1000 .2f" seconds per
# example as seconds per 1,000, "/3600 .2f" seconds as hours.
SCALED = re.compile(r"([*/])\s*(\d+(?:\.\d*)?(?:e\d+)?)\s+(.*)")


def figure(file: str, key: str, spec: str | None = None, *, root: Path = ROOT) -> str:
    """The figure as text: the value formatted with ``spec`` (``.3f``, ``.1%``, ``,d``),
    first multiplied or divided by a factor (``/1e9 .1f``), or with ``odds`` a prior as the
    N of 1:N."""
    value = lookup(file, key, root=root)
    if isinstance(value, (dict, list)):
        raise FigureError(f"{file}: {key} is a {type(value).__name__}, not a figure")
    if spec == ODDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise FigureError(f"{file}: {key} = {value!r} is not a prior in (0, 1) for 'odds'")
        return f"{round(1 / value - 1):,d}"
    scaled = SCALED.fullmatch(spec or "")
    if scaled:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FigureError(f"{file}: {key} = {value!r} is not a number to scale by {spec!r}")
        op, factor, spec = scaled[1], float(scaled[2]), scaled[3]
        value = value * factor if op == "*" else value / factor
    try:
        return format(value, spec or "")
    except (TypeError, ValueError) as exc:
        raise FigureError(f"{file}: {key} = {value!r} does not format as {spec!r}") from exc


def _git_date(file: str, root: Path) -> str | None:
    out = subprocess.run(
        ["git", "log", "-1", "--format=%cs", "--", file], cwd=root, capture_output=True, text=True
    )
    return out.stdout.strip() or None


# The script that writes each results file, for files written before they recorded their
# own command (every benchmark now does, through ``tools.measure.provenance``).
PRODUCERS = {
    f"benchmarks/results/{name}.json": f"python benchmarks/{script}.py"
    for name, script in [
        ("generate", "bench_generate"),
        ("ingest", "bench_ingest"),
        ("ingest_workers", "bench_ingest"),
        ("label_free", "bench_label_free"),
        ("monitor", "bench_monitor"),
        ("noise_shift", "bench_noise_shift"),
        ("onednn", "bench_onednn"),
        ("reference", "reference"),
        ("scale", "bench_scale"),
        ("score", "bench_score"),
        ("stages", "bench_stages"),
        ("train", "bench_train"),
        ("mutation", "mutation_report"),
    ]
}


def machine_text(data: dict[str, Any]) -> str:
    """The machine a results file says it ran on, in the shapes the benchmarks have used."""
    machine = data.get("machine") or data.get("cpu")
    if isinstance(machine, str):
        return machine
    if not isinstance(machine, dict):
        return "a machine the file does not describe"
    model = machine.get("model") or machine.get("cpu") or machine.get("cpu_model")
    cores = machine.get("cores") or machine.get("cpus")
    flags = [f for f in machine.get("flags") or machine.get("cpu_flags") or [] if "bf16" in f]
    text = model or "a CPU whose model the file does not record"
    if cores:
        text += f", {cores} cores"
    if flags:
        text += f" ({', '.join(sorted(flags))})"
    return text


def provenance(file: str, *, root: Path = ROOT) -> str:
    """Where a results file's figures came from: its command, machine and date.

    The command is the file's ``command`` key (or, for a file written before it had one,
    the script known to write it); the machine its ``machine`` or ``cpu`` record; the date
    its ``date`` key or, failing that, the day the file was last committed.
    """
    data = _load_checked(file, root)
    if not isinstance(data, dict):
        raise FigureError(f"{file}: not a record")
    command = data.get("command") or PRODUCERS.get(file)
    if not command:
        raise FigureError(f"{file}: no key 'command', and no known script writes it")
    committed = None if data.get("date") else _git_date(file, root)
    date = data.get("date") or (f"committed {committed}" if committed else "not yet committed")
    return f"Measured with `{command}` on {machine_text(data)}, {date}."


def _load_checked(file: str, root: Path) -> Any:
    path = root / file
    if not path.is_file():
        raise FigureError(f"{file}: no such results file")
    return _load(path)


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


def lines(file: str, key: str, first: int, last: int, *, root: Path = ROOT) -> str:
    """Items ``first`` to ``last`` (inclusive) of the list of text lines at ``key``, joined."""
    value = lookup(file, key, root=root)
    if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
        raise FigureError(f"{file}: {key} is not a list of text lines")
    if not 0 <= first <= last < len(value):
        raise FigureError(f"{file}: {key} has lines 0-{len(value) - 1}, not {first}-{last}")
    return "\n".join(value[first : last + 1])


def render(markdown: str, *, root: Path = ROOT) -> str:
    """``markdown`` with every figure, lines, source and record placeholder replaced by its
    text."""
    markdown = LINES.sub(lambda m: lines(m[1], m[2], int(m[3]), int(m[4]), root=root), markdown)
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


# The line before a table that reads figures from files but also holds typed numbers that
# are not measurements (targets, params, estimates built on the figures) says why.
TYPED_CELLS = re.compile(r"<!--\s*typed cells:\s*\S[^>]*-->")
_TABLE_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def typed_numbers_in_tables(markdown: str) -> list[tuple[int, str]]:
    """(line number, cell) for each number typed by hand in a table that reads figures.

    A table with one ``{{ fig }}`` reads every measured number from its file, so a cell
    other than the first of its row (which names the row) that holds a digit outside a
    figure tag is listed, unless the line before the table is a ``typed cells`` comment.
    """
    lines = markdown.splitlines()
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        if not (
            lines[i].startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1])
        ):
            i += 1
            continue
        end = i + 2
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        if any(FIGURE.search(line) for line in lines[i:end]) and not TYPED_CELLS.search(before):
            for number in range(i + 2, end):
                cells = _CELL_SPLIT.split(FIGURE.sub("", lines[number]).strip())[1:-1]
                found += [(number + 1, c.strip()) for c in cells[1:] if re.search(r"\d", c)]
        i = end
    return found


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs' hook: render the page's figures from the files as they are now."""
    from mkdocs.exceptions import PluginError

    _load.cache_clear()
    root = Path(config["config_file_path"]).resolve().parent
    try:
        return render(markdown, root=root)
    except FigureError as exc:
        raise PluginError(f"{page.file.src_path}: {exc}") from exc
