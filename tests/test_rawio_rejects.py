"""rawio.rejects: messages name file, position and example; one counter; the rejects file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsprior.rawio import (
    BAD_LABEL,
    EMPTY_FILE,
    REASONS,
    FileTally,
    RawDataError,
    Reconciliation,
    RejectCounts,
    RejectsFile,
    duplicate_problem,
    lost_message,
    make_reject,
)


def reject(reason: str = BAD_LABEL, *, n_rows: int = 0, scope: str = "example", **kw):
    made = make_reject(
        source=kw.get("source", "s"),
        file=kw.get("file", "a.csv"),
        position_kind=kw.get("position_kind", "line"),
        example_id=kw.get("example_id", "e1"),
        reason=reason,
        position=kw.get("position", 3),
        problem=kw.get("problem", "label must be 0 or 1, got '7'"),
        n_rows=n_rows,
    )
    made.scope = scope
    return made


def test_a_message_names_file_position_example_and_problem() -> None:
    assert reject().message == "a.csv, line 3: example 'e1': label must be 0 or 1, got '7'"
    assert reject(position_kind="row", position=0).message.startswith("a.csv, row 0: ")
    unknown = reject(EMPTY_FILE, example_id=None, position=None, problem="file holds no example")
    assert unknown.message == "a.csv: example_id unknown: file holds no example"
    assert duplicate_problem("b.parquet", "pool") == (
        "duplicate example_id, already read from b.parquet (source 'pool')"
    )
    assert len(set(REASONS)) == len(REASONS) == 15


def test_raw_data_error_carries_the_reject() -> None:
    with pytest.raises(RawDataError, match="line 3: example 'e1'") as info:
        raise RawDataError(reject())
    assert info.value.reject.reason == BAD_LABEL and isinstance(info.value, ValueError)


def test_counts_keep_example_rejects_apart_from_whole_files() -> None:
    counts = RejectCounts()
    counts.add(reject(n_rows=4))
    counts.add(reject("non_numeric", n_rows=2))
    counts.add(reject(EMPTY_FILE, n_rows=0, scope="file"))
    counts.add(reject(n_rows=1))
    assert (counts.examples, counts.rows, counts.files) == (3, 7, 1)
    assert counts.reasons() == {"bad_label": 2, "empty_file": 1, "non_numeric": 1}
    assert list(counts.reasons()) == sorted(counts.reasons())


def test_counts_of_several_sources_add_up() -> None:
    a, b = RejectCounts(), RejectCounts()
    a.add(reject(n_rows=4))
    b.add(reject("wrong_columns", n_rows=1))
    b.add(reject(EMPTY_FILE, scope="file"))
    total = RejectCounts.combined([a, b])
    assert (total.examples, total.rows, total.files) == (2, 5, 1)
    assert total.reasons() == {"bad_label": 1, "empty_file": 1, "wrong_columns": 1}
    assert a.reasons() == {"bad_label": 1}  # the parts are left as they were
    assert RejectCounts.combined([]) == RejectCounts()


def test_the_rejects_file_appears_whole_on_close(tmp_path: Path) -> None:
    path = tmp_path / "out" / "rejects.jsonl"
    with RejectsFile(path) as rejects:
        rejects.write(reject(n_rows=2))
        rejects.write(reject(EMPTY_FILE, example_id=None, position=None, scope="file"))
        assert not path.exists()  # written beside it, renamed into place on close
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0] == {
        "source": "s",
        "file": "a.csv",
        "line": 3,
        "example_id": "e1",
        "reason": "bad_label",
        "message": "a.csv, line 3: example 'e1': label must be 0 or 1, got '7'",
        "n_rows": 2,
        "scope": "example",
    }
    assert list(records[0]) == sorted(records[0])  # keys sorted, so the file is deterministic
    assert (records[1]["scope"], records[1]["example_id"]) == ("file", None)
    assert [p.name for p in path.parent.iterdir()] == ["rejects.jsonl"]


def test_every_whole_file_reject_counts_when_sources_are_combined() -> None:
    """Files rejected in several sources add up, as examples and rows do."""
    a, b = RejectCounts(), RejectCounts()
    for counts in (a, b, b):
        counts.add(reject(EMPTY_FILE, scope="file"))
    assert (a.files, b.files) == (1, 2)
    assert RejectCounts.combined([a, b]).files == 3


def test_the_rejects_file_makes_every_missing_parent_directory(tmp_path: Path) -> None:
    """A rejects path several directories deep is created, not refused."""
    path = tmp_path / "reports" / "rejects" / "train.jsonl"
    with RejectsFile(path) as rejects:
        rejects.write(reject())
    assert json.loads(path.read_text())["reason"] == BAD_LABEL


def test_a_reject_made_without_rows_counts_no_rows() -> None:
    """make_reject's n_rows defaults to 0: a whole-file or row-less reject adds no rows."""
    made = make_reject(
        source="s",
        file="a.csv",
        position_kind="line",
        example_id=None,
        reason=EMPTY_FILE,
        position=None,
        problem="file holds no example",
    )
    assert made.n_rows == 0
    counts = RejectCounts()
    counts.add(made)
    assert (counts.examples, counts.rows) == (1, 0)


def test_reconciliation_holds_only_when_read_equals_kept_plus_rejected() -> None:
    counts = Reconciliation()
    counts.add_tally(FileTally(source="s", file="a.csv", rows=7, examples=3, blank_lines=2))
    counts.keep(examples=2, rows=5)
    assert not counts.reconciled  # one example of two rows unaccounted for
    counts.rejected.add(reject(n_rows=2))
    assert counts.reconciled and counts.blank_lines == 2
    counts.rejected.add(reject(EMPTY_FILE, scope="file"))  # a whole file holds no example
    assert counts.reconciled
    counts.keep(examples=0, rows=1)  # a row too many: rows must add up as well as examples
    assert not counts.reconciled


def test_a_lost_example_is_named_with_every_count() -> None:
    counts = Reconciliation(examples_read=5, rows_read=9, examples_kept=3, rows_kept=6)
    counts.rejected.add(reject(n_rows=2))
    message = lost_message("scoring", [counts.account("scored")])
    assert message == (
        "examples were lost between reading and scoring (please report this bug): "
        "read 5 examples / 9 rows, scored 3 / 6, rejected 1 / 2"
    )
    assert lost_message("writing", ["a: x", "b: y"]).endswith("bug): a: x; b: y")
