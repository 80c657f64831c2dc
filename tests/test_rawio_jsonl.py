"""rawio.jsonl: one example per line; bad JSON, empty examples, wrong row lengths, missing labels."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dsprior.rawio import Example
from tests.rawfiles import (
    assert_message,
    jsonl_records,
    make_examples,
    only_reject,
    read_all,
    write_jsonl,
)


def test_missing_label_in_jsonl(tmp_path: Path) -> None:
    records = jsonl_records(make_examples(2))
    del records[1]["label"]
    reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", records)))
    assert (
        reject.reason == "bad_label" and "line 2" in reject.message and "got None" in reject.message
    )


def test_example_with_no_rows(tmp_path: Path) -> None:
    records = jsonl_records(make_examples(2))
    records.insert(1, {"example_id": "empty", "group": "g", "label": 0, "rows": []})
    reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", records)))
    assert reject.reason == "empty_example" and reject.example_id == "empty"
    assert_message(reject, "line 2", "no rows")


def test_wrong_row_length_in_jsonl(tmp_path: Path) -> None:
    records = jsonl_records(make_examples(2))
    records[1]["rows"][0] = records[1]["rows"][0][:5]
    reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", records)))
    assert reject.reason == "wrong_columns"
    assert_message(reject, "line 2", "'e1'", "row 0 has 5 values, expected dim 8")


def test_bad_json_line(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in jsonl_records(make_examples(3))]
    lines[1] = lines[1][:30]
    items = read_all(write_jsonl(tmp_path / "bad.jsonl", lines))
    reject = only_reject(items)
    assert (
        reject.reason == "bad_json"
        and "line 2" in reject.message
        and "invalid JSON" in reject.message
    )
    assert [i.example_id for i in items if isinstance(i, Example)] == ["e0", "e2"]


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz"])
def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path, suffix: str) -> None:
    text = "\ufeff" + "".join(json.dumps(r) + "\n" for r in jsonl_records(make_examples(2)))
    path = tmp_path / f"bom.{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    items = read_all(path)
    assert all(isinstance(i, Example) for i in items), items
    assert [(i.example_id, i.position) for i in items] == [("e0", 1), ("e1", 2)]


def test_a_bare_carriage_return_does_not_end_a_line(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in jsonl_records(make_examples(3))]
    text = lines[0] + "\r\n" + "not\rJSON\n" + lines[1] + "\n\r\n" + lines[2] + "\r\n"
    path = tmp_path / "cr.jsonl"
    path.write_bytes(text.encode())
    items = read_all(path)
    assert [(type(i).__name__, i.example_id, i.position) for i in items] == [
        ("Example", "e0", 1),
        ("Reject", None, 2),  # one line, one reject: as `sed -n 2p` shows it
        ("Example", "e1", 3),
        ("Example", "e2", 5),  # line 4 ("\r\n") is blank
    ]
