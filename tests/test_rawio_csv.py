"""rawio.csv: a line with the wrong number of fields, physical line numbers across blocks, unclosed quotes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsprior.rawio import Example, RawReader, Reject, SourceSpec, csv_text
from tests.rawfiles import (
    NAMES,
    assert_message,
    long_rows,
    make_examples,
    only_reject,
    read_all,
    write_csv,
)


def line_of(path: Path, example_id: str, nth: int = 0) -> int:
    """1-based physical line of the nth row of an example in a CSV file."""
    lines = [
        i + 1
        for i, text in enumerate(path.read_text().splitlines())
        if text.startswith(example_id + ",")
    ]
    return lines[nth]


def test_wrong_number_of_columns_names_line_and_example(tmp_path: Path) -> None:
    def drop_a_value(rows):
        rows[3] = rows[3][:-1]

    rows = long_rows(make_examples(5))
    drop_a_value(rows)
    path = write_csv(tmp_path / "bad.csv", rows)
    example_id = long_rows(make_examples(5))[3][0]
    reject = only_reject(read_all(path))
    assert reject.reason == "wrong_columns" and reject.example_id == example_id
    assert_message(
        reject, str(path), f"line {5}", repr(example_id), "expected 12 columns", "got 11"
    )


def test_line_numbers_stay_right_across_chunks_with_bad_lines(tmp_path: Path) -> None:
    examples = make_examples(12)
    rows = long_rows(examples)
    bad_at = [2, 9, 10, len(rows) - 1]  # includes consecutive bad lines and the last line
    for i in bad_at:
        rows[i] = rows[i][:5]
    path = write_csv(tmp_path / "raw.csv", rows)
    items = read_all(path, chunk_rows=2)
    rejects = [i for i in items if isinstance(i, Reject)]
    bad_ids = sorted({rows[i][0] for i in bad_at})
    assert sorted(r.example_id for r in rejects) == bad_ids
    for r in rejects:
        first_bad = min(i for i in bad_at if rows[i][0] == r.example_id)
        assert r.position == first_bad + 2  # header is line 1
    good = [i for i in items if isinstance(i, Example)]
    expected = [ex for ex in examples if ex["example_id"] not in bad_ids]
    assert [g.example_id for g in good] == [ex["example_id"] for ex in expected]
    for g, ex in zip(good, expected, strict=True):
        np.testing.assert_array_equal(g.rows, ex["rows"])
        assert g.position == line_of(path, ex["example_id"])


def test_an_unclosed_quote_is_an_unreadable_file_not_a_file_in_memory(tmp_path: Path) -> None:
    rows = long_rows(make_examples(40))
    text = ",".join(NAMES) + "\n" + csv_text(rows[:5]) + '"e-unclosed,g,0\n' + csv_text(rows[5:])
    path = tmp_path / "broken.csv"
    path.write_text(text)
    source = SourceSpec.from_params("src", {"path": str(path), "negative_rate": 1.0})
    reader = RawReader(chunk_rows=3, max_abs=65504.0, csv_block_bytes=64, csv_max_record_bytes=600)
    items = list(reader.read_source(source))
    reject = only_reject(items)
    assert reject.reason == "unreadable_file"
    assert "from line 7: a quote opened there is never closed" in reject.message
    written = [i for i in items if isinstance(i, Example)]
    assert written and all(i.example_id in {r[0] for r in rows[:5]} for i in written)


def test_lines_of_tabs_are_counted_blank_not_read_as_rows(tmp_path: Path) -> None:
    examples = make_examples(4)
    rows = long_rows(examples)
    blanks = ["\t\n", "\t \r\n", " \t\n", "\t\t"]  # the last one ends the file, no newline
    text = ",".join(NAMES) + "\n" + blanks[0] + csv_text(rows[:3]) + blanks[1]
    text += csv_text(rows[3:5]) + blanks[2] + csv_text(rows[5:]) + blanks[3]
    path = tmp_path / "tabs.csv"
    path.write_text(text, newline="")
    source = SourceSpec.from_params("src", {"path": str(path), "negative_rate": 1.0})
    reader = RawReader(chunk_rows=3, max_abs=65504.0, csv_block_bytes=16)
    items = list(reader.read_source(source))
    assert [i.example_id for i in items if isinstance(i, Example)] == [
        ex["example_id"] for ex in examples
    ]
    assert not [i for i in items if isinstance(i, Reject)]
    tally = reader.tallies[0]
    assert (tally.blank_lines, tally.rows) == (4, len(rows))
    # Positions are physical lines, the blank lines before them included.
    for example in items:
        assert example.position == line_of(path, example.example_id)


@pytest.mark.parametrize(
    "data",
    [
        csv_text([NAMES, *long_rows(make_examples(2))]).replace("\n", "\r").encode(),  # old Mac
        b"\ra\n",  # a bare carriage return in the header line
    ],
    ids=["cr-line-endings", "cr-in-header"],
)
def test_a_carriage_return_in_the_header_rejects_the_file_instead_of_raising(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(data)
    reject = only_reject(read_all(path))
    assert (reject.reason, reject.scope) == ("unreadable_file", "file")
    assert_message(reject, str(path), "new-line character seen in unquoted field")
