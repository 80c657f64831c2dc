"""rawio.validation: every kind of bad value or label is rejected with a message naming it, in every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.rawfiles import (
    DIM,
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


def bad_csv(tmp_path: Path, mutate, *, n: int = 5, name: str = "bad.csv") -> Path:
    """A CSV of ``n`` examples where ``mutate(rows)`` breaks something; returns its path."""
    rows = long_rows(make_examples(n))
    mutate(rows)
    return write_csv(tmp_path / name, rows)


def test_one_column_can_be_both_id_and_group(tmp_path: Path) -> None:
    examples = make_examples(4)
    rows = [[r[0], r[2], *r[4:]] for r in long_rows(examples)]
    path = write_csv(tmp_path / "raw.csv", rows, header=None)
    items = read_all(path, header=False, columns={"example_id": 0, "group": 0, "label": 1})
    assert [(i.example_id, i.group) for i in items] == [(e["example_id"],) * 2 for e in examples]
    assert all(i.rows.shape[1] == DIM for i in items)


def test_explicit_feature_columns_and_folder_of_files_sorted(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    first, second = make_examples(3, prefix="a"), make_examples(3, prefix="b", seed=1)
    write_parquet(folder / "part-1.parquet", long_rows(second))
    write_parquet(folder / "part-0.parquet", long_rows(first))
    (folder / ".hidden").write_text("ignored")
    items = read_all(folder, features=["f2", "f0"])
    assert [i.example_id for i in items] == ["a0", "a1", "a2", "b0", "b1", "b2"]
    np.testing.assert_array_equal(items[0].rows, first[0]["rows"][:, [2, 0]])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_non_numeric_value(tmp_path: Path, fmt: str) -> None:
    examples = make_examples(4)
    if fmt == "jsonl":
        records = jsonl_records(examples)
        records[2]["rows"][0][3] = "abc"
        reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", records)))
        assert_message(reject, "bad.jsonl", "line 3", "'e2'", "non-numeric value 'abc'")
    else:
        rows = [[str(v) for v in r] for r in long_rows(examples)]
        target = next(i for i, r in enumerate(rows) if r[0] == "e2")
        rows[target][4 + 3] = "abc"
        path = (write_csv if fmt == "csv" else write_parquet)(tmp_path / f"bad.{fmt}", rows)
        reject = only_reject(read_all(path))
        where = f"line {target + 2}" if fmt == "csv" else f"row {target}"
        assert_message(reject, f"bad.{fmt}", where, "'e2'", "non-numeric value 'abc'", "'f3'")
    assert reject.reason == "non_numeric"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_or_inf(tmp_path: Path, value: str) -> None:
    def poison(rows):
        rows[4][6] = value

    path = bad_csv(tmp_path, poison)
    reject = only_reject(read_all(path))
    example_id = long_rows(make_examples(5))[4][0]
    assert reject.reason == "non_finite"
    assert_message(reject, "line 6", repr(example_id), "non-finite value", "'f2'")


def test_nan_in_parquet_and_jsonl(tmp_path: Path) -> None:
    rows = long_rows(make_examples(3))
    rows[1][5] = float("nan")
    reject = only_reject(read_all(write_parquet(tmp_path / "bad.parquet", rows)))
    assert reject.reason == "non_finite" and "row 1" in reject.message
    line = (
        '{"example_id": "j", "group": "g", "label": 1, "rows": [[1, 2, 3, 4, 5, 6, 7, Infinity]]}'
    )
    reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", [line])))
    assert reject.reason == "non_finite" and "line 1" in reject.message and "'j'" in reject.message


def test_value_beyond_float16_range(tmp_path: Path) -> None:
    def huge(rows):
        rows[0][4] = 1e6

    reject = only_reject(read_all(bad_csv(tmp_path, huge)))
    assert reject.reason == "out_of_range"
    assert_message(reject, "line 2", "'e0'", "1000000.0", "'f0'", "65504")


@pytest.mark.parametrize(("value", "shown"), [("", "''"), ("2", "'2'"), ("yes", "'yes'")])
def test_missing_or_invalid_label(tmp_path: Path, value: str, shown: str) -> None:
    def set_label(rows):
        rows[2][2] = value

    path = bad_csv(tmp_path, set_label)
    example_id = long_rows(make_examples(5))[2][0]
    reject = only_reject(read_all(path))
    assert reject.reason == "bad_label"
    assert_message(reject, "line 4", repr(example_id), f"label must be 0 or 1, got {shown}")


def test_missing_group(tmp_path: Path) -> None:
    def drop_group(rows):
        rows[1][1] = ""

    reject = only_reject(read_all(bad_csv(tmp_path, drop_group)))
    assert reject.reason == "missing_group"
    assert_message(reject, "line 3", "missing group")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bad_gold_label_is_rejected_as_bad_label(tmp_path: Path, fmt: str) -> None:
    examples = make_examples(4)
    if fmt == "csv":
        rows = long_rows(examples)
        for row in rows:
            if row[0] == "e2":
                row[3] = "maybe"
        path = write_csv(tmp_path / "bad.csv", rows)
        shown = "'maybe'"
    else:
        records = jsonl_records(examples)
        records[2]["true_label"] = 3
        path = write_jsonl(tmp_path / "bad.jsonl", records)
        shown = "3"
    reject = only_reject(read_all(path))
    assert reject.reason == "bad_label"
    assert_message(reject, "'e2'", f"true_label must be 0, 1 or empty, got {shown}")
