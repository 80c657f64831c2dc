"""The monitoring history: records read generically from a summary, appended atomically under
concurrent writers, recorded once, read back tolerating a torn line."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from dsprior.monitoring import history as hist
from tests.factories import MONITOR_BUNDLE as BUNDLE
from tests.factories import monitor_record, monitor_summary


def summary(prior: float = 0.01, **extra: Any) -> dict[str, Any]:
    return monitor_summary(prior, **extra)


def record(batch: str = "day-001", fingerprint: str = "blake2b:1", **kw: Any) -> dict[str, Any]:
    return monitor_record(batch, fingerprint, **kw)


def test_a_record_keeps_what_a_team_follows_and_every_field_is_documented() -> None:
    got = record()
    assert got["schema_version"] == hist.SCHEMA_VERSION
    assert got["estimated_prior"] == {"value": 0.01, "ci": [0.008, 0.012], "method": "EM"}
    assert got["estimated_at_threshold"]["precision"] == {
        "value": 0.9,
        "ci": pytest.approx([0.85, 0.95]),
    }
    assert got["estimated_at_threshold"]["recall"] == {"value": 0.86, "ci": [None, None]}
    assert set(got["estimated_at_threshold"]) == set(hist.ESTIMATES)
    assert got["threshold"] == 0.26 and got["bundle_prior"] == 0.0114
    assert got["bundle"]["content_hash"] == BUNDLE
    assert got["drift"] == {"prior_shift": False, "score_shift_ks": 0.03, "p_value": 0.4}
    assert got["measured"] is None and got["adapt_prior_applied"] is False
    json.dumps(got, allow_nan=False)
    page = (Path(__file__).resolve().parents[1] / "docs" / "production.md").read_text()
    for key in got:
        assert f"`{key}`" in page, f"history field {key!r} is not in docs/production.md"


def test_true_label_keys_and_measured_numbers_are_kept_where_the_summary_has_them() -> None:
    noise = {"false_label_rate": 0.1, "missing_label_rate": 0.09}
    got = hist.record_from_summary(
        summary(
            estimated_prior_true={"value": 0.012, "ci": [0.01, 0.014], "method": "EM"},
            estimated_at_threshold_true={"precision": {"value": 0.95, "ci": [0.9, 0.98]}},
            label_noise=noise,
            measured={"labelled_examples": 10, "prior": 0.1, "precision": 0.5, "labels": "text"},
        ),
        batch="b",
        scored_at="t",
        input_path="in",
        fingerprint="f",
    )
    assert got["estimated_prior_true"]["ci"] == [0.01, 0.014]
    assert got["estimated_at_threshold_true"]["precision"]["value"] == 0.95
    assert got["estimated_at_threshold_true"]["recall"] is None
    assert got["label_noise"] == noise
    assert got["measured"] == {"labelled_examples": 10, "prior": 0.1, "precision": 0.5}
    assert "estimated_prior_true" not in record()  # absent where the bundle has no noise rates


def test_an_empty_batch_is_recorded_without_estimates() -> None:
    empty = {"examples": 0, "bundle_prior": 0.01, "estimated_prior": None,
             "estimated_at_threshold": None, "drift": None, "warnings": ["empty"]}  # fmt: skip
    got = hist.record_from_summary(
        empty, batch="b", scored_at="t", input_path="in", fingerprint="f"
    )
    assert got["estimated_prior"] is None and got["estimated_at_threshold"] is None
    assert got["threshold"] is None and got["warnings"] == ["empty"]


def test_append_then_read_in_order_and_a_batch_is_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "monitoring" / "history.jsonl"
    assert hist.read_history(path) == []
    assert hist.append_record(path, record("a", "f1"))[0] == "appended"
    assert hist.append_record(path, record("b", "f2"))[0] == "appended"
    # the same name, or the same input under another name, with the same bundle: a duplicate
    done, earlier = hist.append_record(path, record("a", "f3", prior=0.5))
    assert done == "skipped" and earlier["batch"] == "a"
    assert hist.append_record(path, record("c", "f2"))[0] == "skipped"
    assert [r["batch"] for r in hist.read_history(path)] == ["a", "b"]
    # replace: in the earlier one's place; append: again
    assert hist.append_record(path, record("a", "f1", prior=0.02), duplicate="replace")[0] == (
        "replaced"
    )
    rows = hist.read_history(path)
    assert [r["batch"] for r in rows] == ["a", "b"]
    assert rows[0]["estimated_prior"]["value"] == 0.02
    assert hist.append_record(path, record("b", "f2"), duplicate="append")[0] == "appended"
    assert hist.batch_labels(hist.read_history(path)) == ["a", "b", "b #2"]
    # another bundle's view of the same batch is another record
    other = record("a", "f1")
    other["bundle"]["content_hash"] = "sha256:" + "b" * 64
    assert hist.append_record(path, other)[0] == "appended"
    assert all(line.endswith("}") for line in path.read_text().splitlines())


def test_a_torn_line_is_skipped_with_a_warning_and_the_next_record_starts_a_new_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.jsonl"
    hist.append_record(path, record("a", "f1"))
    with open(path, "ab") as f:
        f.write(b'{"schema_version": 1, "batch": "torn')  # a writer killed mid-line
    hist.append_record(path, record("b", "f2"))
    assert [r["batch"] for r in hist.read_history(path)] == ["a", "b"]
    assert "line 2 is not a history record; skipped" in caplog.text


def test_a_newer_schema_is_refused_with_the_version(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"schema_version": hist.SCHEMA_VERSION + 1, "batch": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"record 1 has schema_version 2; this code reads 1 to 1"):
        hist.read_history(path)


def test_unknown_duplicate_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"duplicate must be one of \['skip', 'replace', 'append'\], got 'keep'"
    ):
        hist.append_record(tmp_path / "h.jsonl", record(), duplicate="keep")


def _writer(path: str, worker: int, count: int, start: float) -> None:
    while time.time() < start:  # every writer starts at once
        pass
    for k in range(count):
        batch = f"w{worker}-{k}"
        # every third record replaces an earlier batch of this writer: the file is swapped
        # for a new one while the others wait for the lock
        mode = "replace" if k % 3 == 2 else "skip"
        name = f"w{worker}-{k - 1}" if mode == "replace" else batch
        hist.append_record(path, record(name, f"{batch}-input"), duplicate=mode)


def test_concurrent_writers_lose_and_tear_no_row(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    workers, count = 6, 15
    ctx = multiprocessing.get_context("fork")
    start = time.time() + 0.5
    procs = [ctx.Process(target=_writer, args=(str(path), w, count, start)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line a whole record
    expected = {
        f"w{w}-{k}" for w in range(workers) for k in range(count) if k % 3 != 2
    }  # replaced ones keep their name
    assert sorted(r["batch"] for r in rows) == sorted(expected)
    # the replacements landed: the record in place of w*-1 is the one for input w*-2
    for w in range(workers):
        (row,) = [r for r in rows if r["batch"] == f"w{w}-1"]
        assert row["input"]["fingerprint"] == f"w{w}-2-input"


def test_a_years_history_reads_and_appends_quickly(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"".join(hist._line(record(f"day-{d:03d}", f"f{d}")) for d in range(365)))
    began = time.process_time()  # CPU seconds: a stall of the shared machine is not ours
    hist.append_record(path, record("day-365", "f365"))
    rows = hist.read_history(path)
    assert len(rows) == 366 and time.process_time() - began < 2.0
    assert path.stat().st_size < 365 * 1500  # about a kilobyte a batch


def test_input_fingerprint_follows_the_bytes_not_the_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x\n1\n")
    b.write_text("x\n1\n")
    assert hist.input_fingerprint(a) == hist.input_fingerprint(b)
    b.write_text("x\n2\n")
    assert hist.input_fingerprint(a) != hist.input_fingerprint(b)
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "part-0.csv").write_text("x\n1\n")
    first = hist.input_fingerprint(folder)
    (folder / "part-1.csv").write_text("x\n3\n")
    assert hist.input_fingerprint(folder) != first
    assert hist.default_batch_name(folder, "2026-12-06T00:00:00Z") == "batch@2026-12-06T00:00:00Z"
