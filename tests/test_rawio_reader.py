"""rawio.reader: rows grouped into examples in file order; ids missing, repeated or duplicated; unreadable files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dsprior.rawio import Example, Reject
from tests.rawfiles import (
    assert_message,
    jsonl_records,
    long_rows,
    make_examples,
    only_reject,
    read_all,
    write_csv,
    write_jsonl,
    write_parquet,
)


def test_missing_id_rejects_the_example_above(tmp_path: Path) -> None:
    rows = long_rows(make_examples(5))
    target = next(i for i in range(1, len(rows)) if rows[i][0] == rows[i - 1][0])
    owner = rows[target][0]
    rows[target][0] = ""
    path = write_csv(tmp_path / "bad.csv", rows)
    reject = only_reject(read_all(path))
    assert reject.reason == "missing_id" and reject.example_id == owner
    assert_message(reject, f"line {target + 2}", "missing example_id")


def test_missing_id_at_start_and_in_jsonl(tmp_path: Path) -> None:
    rows = long_rows(make_examples(2))
    rows[0][0] = ""
    reject = only_reject(read_all(write_csv(tmp_path / "bad.csv", rows)))
    assert reject.reason == "missing_id" and "line 2" in reject.message
    records = jsonl_records(make_examples(2))
    records[0]["example_id"] = None
    reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", records)))
    assert reject.reason == "missing_id" and "line 1" in reject.message


@pytest.mark.parametrize("column", [1, 2])
def test_rows_disagree_on_group_or_label(tmp_path: Path, column: int) -> None:
    rows = long_rows(make_examples(5))
    target = next(i for i in range(1, len(rows)) if rows[i][0] == rows[i - 1][0])
    rows[target][column] = "other" if column == 1 else 1 - rows[target][column]
    reject = only_reject(
        read_all(
            write_csv(
                tmp_path / "bad.csv",
                rows,
            ),
            chunk_rows=1,
        )
    )
    name = "group" if column == 1 else "label"
    assert reject.reason == f"inconsistent_{name}" and reject.example_id == rows[target][0]
    assert_message(reject, f"line {target + 2}", f"rows disagree on {name}")


def test_non_contiguous_rows_within_a_file(tmp_path: Path) -> None:
    examples = make_examples(3)
    rows = long_rows(examples) + long_rows(examples[:1])  # e0 reappears at the end
    path = write_csv(tmp_path / "bad.csv", rows)
    items = read_all(path)
    reject = only_reject(items)
    assert reject.reason == "duplicate_id" and reject.example_id == "e0"
    assert_message(reject, f"line {len(long_rows(examples)) + 2}", "not contiguous")
    assert [i.example_id for i in items if isinstance(i, Example)] == ["e0", "e1", "e2"]


def test_duplicate_across_files(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_parquet(folder / "a.parquet", long_rows(make_examples(3)))
    write_parquet(folder / "b.parquet", long_rows(make_examples(2, seed=5)))
    items = read_all(folder)
    assert [i.example_id for i in items if isinstance(i, Example)] == ["e0", "e1", "e2"]
    reject = [i for i in items if isinstance(i, Reject)][0]
    assert reject.reason == "duplicate_id" and reject.example_id == "e0"
    assert_message(reject, "b.parquet", "row 0", "already read from", "a.parquet")


@pytest.mark.parametrize("suffix", ["csv.gz", "parquet", "jsonl.gz"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    examples = make_examples(40)
    path = tmp_path / f"raw.{suffix}"
    if suffix == "csv.gz":
        write_csv(path, long_rows(examples))
    elif suffix == "parquet":
        write_parquet(path, long_rows(examples))
    else:
        with gzip.open(path, "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in jsonl_records(examples))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    items = read_all(path, chunk_rows=4)
    reject = [i for i in items if isinstance(i, Reject)][-1]
    assert reject.reason == "unreadable_file"
    assert_message(reject, str(path), "unreadable or truncated")
    assert all(isinstance(i, Example) for i in items[:-1])
    assert len(items) - 1 < len(examples)
