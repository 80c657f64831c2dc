"""dsprior.scoring.stream: round trip against evaluate's predictions, every kind of bad input,
dims, empty input, the CSV traps of real exports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dsprior import rawio, scoring
from dsprior.bundle import Bundle
from dsprior.rawio import RawDataError
from tests.factories import (
    NAMES,
    csv_with,
    dataset_examples,
    jsonl_records,
    long_rows,
    read_output,
    small_examples,
    write_csv,
    write_jsonl,
    write_parquet,
)
from tests.rawfiles import lose_example


@pytest.mark.parametrize(
    ("fmt", "out"),
    [("csv", "scores.parquet"), ("parquet", "scores.csv"), ("jsonl", "scores.parquet")],
)
def test_scoring_the_test_split_reproduces_evaluate(
    pipeline: dict[str, Path], loaded: Bundle, tmp_path: Path, fmt: str, out: str
) -> None:
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    examples = dataset_examples(pipeline["dataset"], test["example_id"].tolist())
    if fmt == "csv":  # unlabelled: only ids and features
        raw = write_csv(tmp_path / "test.csv", long_rows(examples))
    elif (
        fmt == "parquet"
    ):  # labelled, as ingest reads it: group and label are validated, then unused
        names = ["example_id", "group", "label", *NAMES[1:]]
        raw = write_parquet(tmp_path / "test.parquet", long_rows(examples, labelled=True), names)
    else:
        raw = write_jsonl(tmp_path / "test.jsonl", jsonl_records(examples))
    summary = scoring.score_file(loaded, raw, tmp_path / out, batch_size=4, pool_size=8)
    got = read_output(tmp_path / out)

    assert list(got.columns) == list(scoring.OUTPUT_SCHEMA.names)
    assert got["example_id"].tolist() == test["example_id"].tolist()  # input order kept
    assert got["logit"].dtype == np.float64
    np.testing.assert_allclose(got["logit"], test["logit"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["score"], test["score"], rtol=0, atol=2e-6)
    np.testing.assert_allclose(got["probability"], test["probability"], rtol=1e-5, atol=1e-9)
    threshold = json.loads((pipeline["reports"] / "metrics.json").read_text())["threshold_logit"]
    np.testing.assert_array_equal(
        got["decision"], (test["logit_at_prior"] >= threshold).astype(int)
    )
    assert 0 < got["decision"].sum() < len(got), "the test should see both decisions"
    assert summary.examples_kept == len(test) and summary.rejected.examples == 0
    assert summary.positives == int(got["decision"].sum())


def test_expected_cost_per_example(
    pipeline: dict[str, Path], loaded: Bundle, tmp_path: Path
) -> None:
    raw = write_jsonl(tmp_path / "x.jsonl", jsonl_records(small_examples(6)))
    scoring.score_file(loaded, raw, tmp_path / "x.parquet")
    got = read_output(tmp_path / "x.parquet")
    p, flagged = got["probability"].to_numpy(), got["decision"].to_numpy() == 1
    np.testing.assert_allclose(got["expected_cost"][flagged], (1 - p[flagged]) * 1.0)
    np.testing.assert_allclose(got["expected_cost"][~flagged], p[~flagged] * 10.0)
    np.testing.assert_allclose(got["probability"], loaded.probability(got["logit"].to_numpy()))
    np.testing.assert_allclose(got["score"], 1 / (1 + np.exp(-got["logit"])), rtol=1e-12)


# Each case: file name, writer (tmp_path -> path), reason, example id, fragments of the message.
# Lines: header 1; e0 at lines 2-3, e1 at 4-5, e2 at 6-7, e3 at 8-9.


def _short_line(tmp_path: Path) -> Path:
    rows = long_rows(small_examples())
    rows[3] = rows[3][:-1]
    return write_csv(tmp_path / "bad.csv", rows)


def _bad_label(tmp_path: Path) -> Path:
    rows = long_rows(small_examples(), labelled=True)
    rows[3][2] = 2
    return write_csv(tmp_path / "bad.csv", rows, ["example_id", "group", "label", *NAMES[1:]])


def _label_disagrees(tmp_path: Path) -> Path:
    rows = long_rows(small_examples(), labelled=True)
    rows[3][2] = 1 - rows[3][2]
    names = ["example_id", "group", "label", *NAMES[1:]]
    return write_parquet(tmp_path / "bad.parquet", rows, names)


def _non_contiguous(tmp_path: Path) -> Path:
    rows = long_rows(small_examples())
    rows.append(list(rows[2]))  # e1 again after e2, e3
    return write_csv(tmp_path / "bad.csv", rows)


def _empty_example(tmp_path: Path) -> Path:
    records = jsonl_records(small_examples())
    records[1]["rows"] = []
    return write_jsonl(tmp_path / "bad.jsonl", records)


def _bad_json(tmp_path: Path) -> Path:
    lines = [json.dumps(r) for r in jsonl_records(small_examples())]
    lines[1] = lines[1][:25]
    return write_jsonl(tmp_path / "bad.jsonl", lines)


def _ragged_rows(tmp_path: Path) -> Path:
    records = jsonl_records(small_examples())
    records[1]["rows"][0] = records[1]["rows"][0][:5]
    return write_jsonl(tmp_path / "bad.jsonl", records)


def _truncated(tmp_path: Path) -> Path:
    path = write_csv(tmp_path / "bad.csv.gz", long_rows(small_examples(40)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_INPUTS = {
    "wrong_columns": (_short_line, "e1", ["line 5", "expected 17 columns (as in the first line), got 16"]),
    "non_numeric": (csv_with((3, 4), "abc"), "e1", ["line 5", "non-numeric value 'abc' in feature column 'f3'"]),
    "non_finite": (csv_with((3, 4), "nan"), "e1", ["line 5", "non-finite value nan in feature column 'f3'"]),
    "out_of_range": (csv_with((3, 4), "1e6"), "e1", ["line 5", "exceeds 65504"]),
    "bad_label": (_bad_label, "e1", ["line 5", "label must be 0 or 1, got '2'"]),
    "inconsistent_label": (_label_disagrees, "e1", ["row 3", "rows disagree on label"]),
    "missing_id": (csv_with((2, 0), ""), "e0", ["line 4", "missing example_id"]),
    "duplicate_id": (_non_contiguous, "e1", ["line 10", "rows are not contiguous"]),
    "empty_example": (_empty_example, "e1", ["line 2", "example has no rows"]),
    "bad_json": (_bad_json, None, ["line 2", "invalid JSON"]),
    "wrong_columns_jsonl": (_ragged_rows, "e1", ["line 2", "row 0 has 5 values, expected dim 16"]),
    "unreadable_file": (_truncated, None, ["unreadable or truncated"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_with_ingests_message(loaded: Bundle, tmp_path: Path, case: str) -> None:
    write, example_id, fragments = BAD_INPUTS[case]
    path = write(tmp_path)
    out = tmp_path / "scores.parquet"
    with pytest.raises(RawDataError) as info:
        scoring.score_file(loaded, path, out)
    reject = info.value.reject
    assert reject.reason == case.removesuffix("_jsonl")
    assert reject.example_id == example_id or (example_id is None and case == "unreadable_file")
    message = str(info.value)
    for fragment in [str(path), *fragments] + ([f"{example_id!r}"] if example_id else []):
        assert fragment in message, (fragment, message)
    assert not out.exists() and not list(tmp_path.glob(".scores*"))


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_quarantine_skips_the_bad_example_and_scores_the_rest(
    loaded: Bundle, tmp_path: Path, case: str
) -> None:
    write, example_id, _ = BAD_INPUTS[case]
    path = write(tmp_path)
    rejects = tmp_path / "rejects.jsonl"
    summary = scoring.score_file(
        loaded, path, tmp_path / "scores.parquet", on_error="quarantine", rejects_path=rejects
    )
    got = read_output(tmp_path / "scores.parquet")
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["reason"] for r in records] == [case.removesuffix("_jsonl")]
    # A file unreadable before its first example is rejected whole: no example in it.
    whole_file = case == "unreadable_file" and records[0]["scope"] == "file"
    assert (summary.rejected.examples, summary.rejected.files) == ((0, 1) if whole_file else (1, 0))
    assert summary.examples_kept == len(got) and summary.reconciled
    assert summary.rejected.by_reason == {case.removesuffix("_jsonl"): 1}
    if example_id is not None:
        assert records[0]["example_id"] == example_id
        # a reappearing id is rejected, its first occurrence stands (as in ingest)
        expected = 1 if case == "duplicate_id" else 0
        assert got["example_id"].tolist().count(example_id) == expected
    if case != "unreadable_file":
        assert len(got) >= 3


def test_labels_and_groups_are_optional_but_checked_when_present(
    loaded: Bundle, tmp_path: Path
) -> None:
    rows = long_rows(small_examples(), labelled=True)
    for row in rows[:2]:
        row[1], row[2] = "", ""  # e0 has neither group nor label
    names = ["example_id", "group", "label", *NAMES[1:]]
    path = write_csv(tmp_path / "mixed.csv", rows, names)
    scoring.score_file(loaded, path, tmp_path / "out.parquet")
    assert read_output(tmp_path / "out.parquet")["example_id"].tolist() == ["e0", "e1", "e2", "e3"]


@pytest.mark.parametrize("on_error", ["fail", "quarantine"])
def test_wrong_dimension_fails_naming_both_dims(
    loaded: Bundle, pipeline: dict[str, Path], tmp_path: Path, on_error: str
) -> None:
    narrow = small_examples(dim=12)
    header = ["example_id"] + [f"f{j}" for j in range(12)]
    for path, fragment in [
        (
            write_csv(tmp_path / "narrow.csv", long_rows(narrow), header),
            "file has 12 feature columns",
        ),
        (write_jsonl(tmp_path / "narrow.jsonl", jsonl_records(narrow)), "rows have 12 values"),
    ]:
        with pytest.raises(RawDataError) as info:
            scoring.score_file(loaded, path, tmp_path / "out.parquet", on_error=on_error)
        assert info.value.reject.reason == "dim_mismatch"
        message = str(info.value)
        assert fragment in message and "but the model bundle has dim 16" in message
        assert str(pipeline["bundle"] / "bundle.json") in message
        assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("out", ["empty.parquet", "empty.csv"])
def test_empty_input_writes_empty_output_with_the_columns(
    loaded: Bundle, tmp_path: Path, kind: str, out: str
) -> None:
    path = {
        "csv": lambda: write_csv(tmp_path / "in.csv", []),
        "parquet": lambda: write_parquet(tmp_path / "in.parquet", []),
        "jsonl": lambda: write_jsonl(tmp_path / "in.jsonl", []),
    }[kind]()
    summary = scoring.score_file(loaded, path, tmp_path / out)
    assert summary.examples_kept == 0 and summary.rejected.examples == 0
    if out.endswith(".parquet"):
        assert pq.read_schema(tmp_path / out).names == scoring.OUTPUT_SCHEMA.names
        assert pq.read_table(tmp_path / out).num_rows == 0
    else:
        assert (tmp_path / out).read_text().splitlines() == [
            ",".join(f'"{n}"' for n in scoring.OUTPUT_SCHEMA.names)
        ]


def test_the_csv_traps_of_real_exports_score_every_example(loaded: Bundle, tmp_path: Path) -> None:
    """A BOM, blank lines, quoted newlines in ids and 200 KB ids: every example is scored."""
    examples = small_examples(2000)
    for ex in examples[::3]:
        ex["example_id"] += "\nline two"
    examples[1500]["example_id"] = "long-" + "x" * 200_000  # written on both its rows
    examples[1600]["example_id"] = "long2-" + "y" * 200_000
    rows = long_rows(examples)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(NAMES)
    writer.writerows(rows[:10])
    writer.writerows([])
    text = buffer.getvalue() + "\n \r\n" + rawio.csv_text(rows[10:]) + "\n\n"
    path = tmp_path / "export.csv"
    path.write_text("\ufeff" + text, encoding="utf-8")
    assert path.stat().st_size > 1 << 20
    summary = scoring.score_file(loaded, path, tmp_path / "out.parquet", on_error="fail")
    assert summary.examples_kept == summary.examples_read == 2000 and summary.reconciled
    got = read_output(tmp_path / "out.parquet")["example_id"].tolist()
    assert got == [ex["example_id"] for ex in examples]
    # Quarantine loses nothing either, and the reject names the physical line.
    rows[-1][3] = "oops"
    path.write_text(text.rsplit("\n", 4)[0] + "\n" + rawio.csv_text([rows[-1]]), encoding="utf-8")
    summary = scoring.score_file(
        loaded, path, tmp_path / "out.csv", on_error="quarantine", rejects_path=tmp_path / "r.jsonl"
    )
    assert summary.examples_kept == 1999 and summary.rejected.examples == 1 and summary.reconciled
    (reject,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert reject["line"] == path.read_text().count("\n")
    assert "non-numeric value 'oops' in feature column 'f2'" in reject["message"]


def test_a_lost_example_fails_the_run_with_its_counts(
    loaded: Bundle, tmp_path: Path, monkeypatch
) -> None:
    """What was read is counted from the files, so a reader that drops an example fails."""
    raw = write_csv(tmp_path / "x.csv", long_rows(small_examples(4)))
    lose_example(monkeypatch, "e1")
    with pytest.raises(RuntimeError, match="lost between reading and scoring") as caught:
        scoring.score_file(loaded, raw, tmp_path / "x.parquet")
    assert "read 4 examples" in str(caught.value) and "scored 3 / " in str(caught.value)
    assert not (tmp_path / "x.parquet").exists()
