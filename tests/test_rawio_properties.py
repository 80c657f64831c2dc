"""Property tests of the readers on generated, untrusted input.

The CSV record scanner (``csvrecords``) and the CSV and JSON Lines readers are checked
against what the generator knows, never against their own output: each file is built
piece by piece, so the physical line each record starts on, which lines are blank, and
which examples are good (and why the others are not) are known before the reader runs.
Python's ``csv`` module is the reference for the fields of a record. Where the input is
byte soup, nothing is known of it but the readers' promises: nothing raises, every example
counted in the file is read or rejected, positions lie inside the file.

Bounded for CI: a fixed number of examples, derandomized (the same inputs on every run,
no example database written), no deadline (the machines running them are shared).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsprior.rawio import (
    BAD_JSON,
    BAD_LABEL,
    EMPTY_EXAMPLE,
    EMPTY_FILE,
    MISSING_ID,
    NON_NUMERIC,
    REASONS,
    WRONG_COLUMNS,
    Example,
    RawReader,
    Reject,
    SourceSpec,
)
from dsprior.rawio.csvrecords import BOM
from tests.rawfiles import DIM, NAMES
from tests.test_rawio_csvrecords import records

BOUNDED = settings(max_examples=150, deadline=None, derandomize=True, database=None)

BOM_TEXT = "\ufeff"
# Pieces of field text: quotes (single, doubled, one before a newline: written doubled inside
# a quoted field; one inside a word: a literal quote where the field is left unquoted),
# delimiters, newlines, tabs, spaces, non-ASCII (a Unicode line separator among them), a form
# feed, a long run.
TOKENS = ("a", "7", "-0.5", "é", "Ω", "\u2028", " ", "\t", ",", ";", '"', '""', '"\n', 'b"c',
          "\n", "\r\n", "\x0c", "L" * 300)  # fmt: skip
TERMINATORS = ("\n", "\r\n")
# Whitespace-only fields too: a record of them is the boundary between blank line and record.
field_texts = st.lists(st.sampled_from(TOKENS), max_size=5).map("".join) | st.text(
    " \t\x0b\x0c", max_size=3
)


def csv_line(fields: list[str], delimiter: str, quote_all: bool, raw: list[bool]) -> str:
    """One record as Python's csv module writes it, without its line terminator.

    The fields flagged ``raw`` are written as they are wherever that is valid CSV too (a
    quote inside an unquoted field is a literal character), which the writer never does.
    """
    buffer = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n", quoting=quoting)
    parts = []
    for text, as_is in zip(fields, raw, strict=True):
        if as_is and (text or len(fields) > 1) and not text.startswith('"'):
            if not set(text) & {delimiter, "\n", "\r"}:
                parts.append(text)
                continue
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([text])
        parts.append(buffer.getvalue()[:-1])
    return delimiter.join(parts)


@st.composite
def csv_records(draw, fields: list[str], delimiter: str) -> str:
    """``fields`` as one CSV record: all quoted, or quoted where needed, some maybe as they are."""
    raw = draw(st.lists(st.booleans(), min_size=len(fields), max_size=len(fields)))
    return csv_line(fields, delimiter, draw(st.booleans()), raw)


def is_blank(text: str) -> bool:
    """The documented rule: a line of nothing but spaces, tabs and carriage returns is blank."""
    return not text.strip(" \t\r")


@dataclass
class Builder:
    """A file built line by line, which knows the physical line each piece starts on."""

    text: str = ""
    line: int = 1
    blank: int = 0
    lines: list[int] = field(default_factory=list)  # of the records written, blank ones left out
    last: str = ""  # the last line written, without its terminator

    def add(self, record: str, terminator: str) -> int:
        """Append a record (or a blank line); the line it starts on."""
        start = self.line
        if is_blank(record):
            self.blank += 1
        else:
            self.lines.append(start)
        self.text += record + terminator
        self.last = record
        self.line += (record + terminator).count("\n")
        return start

    def add_blank(self, draw) -> None:
        self.add(draw(st.text(" \t", max_size=3)), draw(st.sampled_from(TERMINATORS)))

    def end(self, draw) -> None:
        """Maybe drop the last line's terminator: a file need not end in a newline."""
        if self.last and draw(st.booleans()):  # (an empty last line would be no line at all)
            cut = 2 if self.text.endswith("\r\n") else 1
            self.text = self.text[:-cut]


@st.composite
def csv_files(draw) -> dict[str, Any]:
    """CSV text of random records and blank lines, with what a reader must find in it."""
    delimiter = draw(st.sampled_from([",", "\t", ";"]))
    built = Builder(text=BOM_TEXT if draw(st.booleans()) else "")
    rows = []  # (fields, written text) of every record, blank ones included
    for _ in range(draw(st.integers(0, 10))):
        if draw(st.integers(0, 3)) == 0:
            built.add_blank(draw)
            rows.append(None)
            continue
        fields = draw(st.lists(field_texts, min_size=1, max_size=4))
        text = draw(csv_records(fields, delimiter))
        built.add(text, draw(st.sampled_from(TERMINATORS)))
        rows.append((fields, text))
    built.end(draw)
    return {"delimiter": delimiter, "built": built, "rows": rows}


def python_csv_rows(text: str, delimiter: str) -> list[list[str]]:
    """Every row of the text as Python's csv module reads it (a blank line too)."""
    return list(
        csv.reader(io.StringIO(text.removeprefix(BOM_TEXT), newline=""), delimiter=delimiter)
    )


@BOUNDED
@given(csv_files(), st.integers(1, 80))
def test_the_scanner_finds_the_records_pythons_csv_module_reads(file, block_bytes: int) -> None:
    built, delimiter = file["built"], file["delimiter"]
    data = built.text.encode()
    python_rows = python_csv_rows(built.text, delimiter)
    expected = []  # (written text, fields) of the records that are not blank
    for row, python in zip(file["rows"], python_rows, strict=True):
        if row is not None:
            fields, written = row
            assert python == fields  # Python's csv module reads what was written
            if not is_blank(written):
                expected.append((written, fields))
    for size in (block_bytes, 1 << 20):
        got, blank = records(data, size, delimiter)
        assert [line for line, _ in got] == built.lines
        assert [text.decode() for _, text in got] == [written for written, _ in expected]
        parsed = [next(csv.reader([text.decode()], delimiter=delimiter)) for _, text in got]
        assert parsed == [fields for _, fields in expected]
        assert blank == built.blank


LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "FALSE": 0}
TRUE_LABELS = {"": None, "0": 0, "1": 1}
# The faults a row may have, and the reason the reader must reject its example for.
FAULTS = {"short": WRONG_COLUMNS, "long": WRONG_COLUMNS, "text": NON_NUMERIC, "label": BAD_LABEL}


@dataclass
class Expected:
    """An example as the generator wrote it: its rows, where it starts, its first fault."""

    example_id: str
    group: str
    label: int
    true_label: int | None
    rows: list[list[float]] = field(default_factory=list)
    line: int = 0
    fault: tuple[str, int] | None = None  # (reason, line)


@st.composite
def long_layout_files(draw) -> dict[str, Any]:
    """A long-layout CSV file (header, then rows of examples) with faults and blank lines."""
    delimiter = draw(st.sampled_from([",", "\t", ";"]))
    built = Builder(text=BOM_TEXT if draw(st.booleans()) else "")
    terminators = st.sampled_from(TERMINATORS)
    if draw(st.booleans()):
        built.add_blank(draw)
    built.add(draw(csv_records(NAMES, delimiter)), draw(terminators))
    examples = []
    for i in range(draw(st.integers(1, 6))):
        label, true_label = (
            draw(st.sampled_from(sorted(LABELS))),
            draw(st.sampled_from(["", "0", "1"])),
        )
        ex = Expected(
            example_id=draw(field_texts) + f"#{i}",  # unique, never empty
            group="g" + draw(field_texts),
            label=LABELS[label],
            true_label=TRUE_LABELS[true_label],
        )
        for _ in range(draw(st.integers(1, 3))):
            values = [
                v / 8 for v in draw(st.lists(st.integers(-64, 64), min_size=DIM, max_size=DIM))
            ]
            fields = [ex.example_id, ex.group, label, true_label, *map(repr, values)]
            fault = draw(st.sampled_from([None] * 8 + sorted(FAULTS)))
            if fault == "short":
                fields = fields[:-1]
            elif fault == "long":
                fields = [*fields, "0"]
            elif fault == "text":
                fields[4 + draw(st.integers(0, DIM - 1))] = "x"
            elif fault == "label":
                fields[2] = "7"
            if draw(st.integers(0, 4)) == 0:
                built.add_blank(draw)
            line = built.add(draw(csv_records(fields, delimiter)), draw(terminators))
            ex.line = ex.line or line
            if fault and not ex.fault:
                ex.fault = (FAULTS[fault], line)
            ex.rows.append(values)
        examples.append(ex)
    if draw(st.booleans()):
        built.add_blank(draw)
    built.end(draw)
    return {"delimiter": delimiter, "built": built, "examples": examples}


@BOUNDED
@given(
    long_layout_files(),
    st.booleans(),
    st.integers(1, 5),
    st.integers(1, 300),
)
def test_the_csv_reader_reads_or_rejects_every_example_where_it_was_written(
    file, gzipped: bool, chunk_rows: int, block_bytes: int
) -> None:
    examples, built = file["examples"], file["built"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("raw.csv.gz" if gzipped else "raw.csv")
        data = built.text.encode()
        path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
        spec = {"path": str(path), "negative_rate": 1.0, "delimiter": file["delimiter"]}
        reader = RawReader(chunk_rows=chunk_rows, max_abs=65504.0, csv_block_bytes=block_bytes)
        items = list(reader.read_source(SourceSpec.from_params("src", spec)))
    assert [i.example_id for i in items] == [ex.example_id for ex in examples]
    for item, ex in zip(items, examples, strict=True):
        if ex.fault:
            assert isinstance(item, Reject), (item, ex)
            assert (item.reason, item.position, item.n_rows) == (*ex.fault, len(ex.rows))
            assert item.scope == "example" and f"line {ex.fault[1]}:" in item.message
        else:
            assert isinstance(item, Example), (item.message, ex)
            assert (item.group, item.label, item.true_label) == (ex.group, ex.label, ex.true_label)
            assert item.position == ex.line
            np.testing.assert_array_equal(item.rows, np.array(ex.rows))
    # What the reader counted in the file, apart from what it made of it.
    tally = reader.tallies[0]
    assert tally.complete and tally.blank_lines == built.blank
    assert tally.examples == len(examples)
    assert tally.rows == sum(len(ex.rows) for ex in examples)
    assert_reconciled(tally, items)


def assert_reconciled(tally, items: list[Example | Reject]) -> None:
    """Every example the reader counted in the file was either read or rejected."""
    read = [i for i in items if isinstance(i, Example)]
    rejected = [i for i in items if isinstance(i, Reject) and i.scope == "example"]
    assert tally.examples == len(read) + len(rejected)
    assert tally.rows == sum(i.n_rows for i in read) + sum(i.n_rows for i in rejected)


# Bytes a damaged or hostile file may hold: stray and doubled quotes, bare carriage returns,
# bytes that are not UTF-8, NUL, a byte order mark in the middle, delimiters, long runs.
SOUP = (b"a", b"e1", b"1.5", b"x", b",", b";", b"\t", b" ", b'"', b'""', b"\r", b"\r\n", b"\n",
        b"\xff", b"\xc3", b"\x00", BOM, b"L" * 200)  # fmt: skip
row_fields = st.lists(
    st.sampled_from(["e0", "e1", "e2", "", "g", "0", "1", "7", "0.5", "x", "inf", "1e9", "\n"]),
    min_size=len(NAMES) - 1,
    max_size=len(NAMES) + 1,
)


@st.composite
def untrusted_csv(draw) -> bytes:
    """A header, then rows that are plausible (ids repeat, fields miss) or byte soup."""
    soup = st.lists(st.sampled_from(SOUP), max_size=8).map(b"".join)
    header = ",".join(NAMES).encode() if draw(st.integers(0, 5)) else draw(soup)
    lines = [header]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 2)):
            lines.append(draw(csv_records(draw(row_fields), ",")).encode())
        else:
            lines.append(draw(soup))
    return b"".join(line + draw(st.sampled_from([b"\n", b"\r\n"])) for line in lines)


# Bytes that are not UTF-8 in a line with the wrong number of fields: pyarrow fails to decode
# the line for the invalid-row handler and reports that as unraisable, before the read fails
# (the file is then an unreadable_file reject, which is what this test checks).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@BOUNDED
@given(untrusted_csv(), st.integers(1, 4), st.integers(1, 200))
def test_whatever_the_csv_holds_every_example_counted_is_read_or_rejected(
    data: bytes, chunk_rows: int, block_bytes: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "raw.csv"
        path.write_bytes(data)
        reader = RawReader(chunk_rows=chunk_rows, max_abs=65504.0, csv_block_bytes=block_bytes)
        spec = SourceSpec.from_params("src", {"path": str(path), "negative_rate": 1.0})
        items = list(reader.read_source(spec))  # never raises: a bad file is a reject
    tally = reader.tallies[0]
    assert tally.complete
    assert_reconciled(tally, items)
    last_line = data.count(b"\n") + 1
    for item in items:
        if isinstance(item, Example):
            assert item.rows.shape[1] == DIM and 2 <= item.position <= last_line
        else:
            assert item.reason in REASONS and item.message.startswith(str(path))
            assert item.position is None or 1 <= item.position <= last_line


@st.composite
def jsonl_files(draw) -> dict[str, Any]:
    """JSON Lines: examples, lines that are not JSON or not an object, faults, blank lines."""
    text = BOM_TEXT if draw(st.booleans()) else ""
    line, blank, expected = 1, 0, []  # expected: (line, example_id or None, reason or None)
    rows_at = {}  # the rows of each good example, by line
    for i in range(draw(st.integers(0, 8))):
        rows = draw(st.lists(st.lists(st.integers(-8, 8), min_size=DIM, max_size=DIM), max_size=3))
        record = {"example_id": draw(field_texts) + f"#{i}", "group": "g", "label": 1, "rows": rows}
        kind = draw(st.sampled_from(["good"] * 4 + ["blank", "cut", "not_object", "no_id", "soup"]))
        reason = EMPTY_EXAMPLE if not rows else None
        if kind == "no_id":
            reason = MISSING_ID
            del record["example_id"]
        content = json.dumps(record, ensure_ascii=draw(st.booleans()))
        if kind == "blank":
            content = draw(st.text(" \t", max_size=3))
        elif kind == "cut":  # a line cut short (a JSON object never closed)
            content, reason = content[: draw(st.integers(1, len(content) - 1))], BAD_JSON
        elif kind == "not_object":
            content, reason = draw(st.sampled_from(["[1, 2]", "3", '"text"', "null"])), BAD_JSON
        elif kind == "soup":  # text that is no JSON, a bare carriage return in it maybe
            soup = st.lists(st.sampled_from(["a", '"', "{", "\r", "\t", "é", "\u2028"]), max_size=6)
            content, reason = "x" + "".join(draw(soup)), BAD_JSON
        if kind == "blank":
            blank += 1
        else:
            example_id = record.get("example_id") if reason in (None, EMPTY_EXAMPLE) else None
            expected.append((line, example_id, reason))
            if reason is None:
                rows_at[line] = rows
        text += content + draw(st.sampled_from(TERMINATORS))
        line += 1
    return {"text": text, "blank": blank, "expected": expected, "rows": rows_at}


@BOUNDED
@given(jsonl_files(), st.booleans())
def test_every_jsonl_line_is_read_or_rejected_with_its_line_number(file, gzipped: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("raw.jsonl.gz" if gzipped else "raw.jsonl")
        data = file["text"].encode()
        path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
        reader = RawReader(chunk_rows=2, max_abs=65504.0, dim=DIM)
        spec = SourceSpec.from_params("src", {"path": str(path), "negative_rate": 1.0})
        items = list(reader.read_source(spec))
    if not file["expected"]:  # no line but blank ones
        assert [(i.reason, i.scope) for i in items] == [(EMPTY_FILE, "file")]
        items = []
    got = [(i.position, i.example_id, i.reason if isinstance(i, Reject) else None) for i in items]
    assert got == file["expected"]
    for item in items:
        if isinstance(item, Example):
            np.testing.assert_array_equal(item.rows, np.array(file["rows"][item.position]))
    tally = reader.tallies[0]
    assert tally.blank_lines == file["blank"] and tally.examples == len(file["expected"])
    assert_reconciled(tally, items)
