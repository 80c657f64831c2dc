"""The ingest stage: contract round-trips, bad input through the stage, fail/quarantine, atomicity.

The readers' own checks are tested in tests/test_rawio_*.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dsprior import contract
from dsprior.rawio import RawReader, Reject, SourceSpec, csv_text
from stages import ingest
from tests.rawfiles import (
    DIM,
    INGEST_PARAMS,
    NAMES,
    jsonl_records,
    long_rows,
    lose_example,
    make_examples,
    write_csv,
    write_jsonl,
    write_parquet,
)


def run_ingest(tmp_path: Path, sources: dict[str, Any], **options: Any) -> tuple[int, dict, list]:
    """Run the stage's main() as dvc would; return exit code, metrics and rejects."""
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "ingest": {
                    **INGEST_PARAMS,
                    "row_group_size": 2,
                    "shard_size": 4,
                    "chunk_rows": 3,
                    **options,
                    "sources": sources,
                }
            },
            sort_keys=False,  # sources are read in params order
        )
    )
    args = ["--params", str(params), "--out", str(tmp_path / "dataset")]
    args += [
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
        "--metrics",
        str(tmp_path / "ingest.json"),
    ]
    code = 0
    try:
        ingest.main(args)
    except SystemExit as exc:
        code = exc.code
    metrics = json.loads((tmp_path / "ingest.json").read_text())
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    return code, metrics, rejects


def assert_dataset_matches(
    dataset: Path, examples: list[dict[str, Any]], *, source: str, rate: float
) -> None:
    meta = contract.read_metadata(dataset).to_pylist()
    assert [m["example_id"] for m in meta] == [ex["example_id"] for ex in examples]
    for m, ex in zip(meta, examples, strict=True):
        assert (m["group"], m["label"], m["source"], m["negative_rate"]) == (
            ex["group"],
            ex["label"],
            source,
            rate,
        )
        assert m["n_rows"] == len(ex["rows"])
    features = pa.concat_tables([pq.read_table(p) for p in contract.shard_paths(dataset)])[
        "features"
    ]
    for i, ex in enumerate(examples):
        np.testing.assert_array_equal(example_rows(features, i), ex["rows"])


def example_rows(features: pa.ChunkedArray, index: int, dtype: str = "float16") -> np.ndarray:
    """One example's rows as float32 (the contract's decoder honours slice offsets)."""
    rows, offsets = contract.decode_features(features, dim=DIM, dtype=dtype)
    return rows[offsets[index] : offsets[index + 1]].astype(np.float32)


@pytest.mark.parametrize("kind", ["csv", "csv_no_header", "csv.gz", "parquet", "jsonl"])
def test_round_trip_every_format(tmp_path: Path, kind: str) -> None:
    examples = make_examples(7)
    spec: dict[str, Any] = {"negative_rate": 0.25}
    if kind == "csv":
        path = write_csv(tmp_path / "raw.csv", long_rows(examples))
    elif kind == "csv_no_header":
        # No header, columns by position, true_label left out, features default to the rest.
        rows = [[r[0], r[1], r[2], *r[4:]] for r in long_rows(examples)]
        path = write_csv(tmp_path / "raw.txt", rows, header=None)
        spec.update(format="csv", header=False, columns={"example_id": 0, "group": 1, "label": 2})
    elif kind == "csv.gz":
        path = write_csv(tmp_path / "raw.csv.gz", long_rows(examples))
    elif kind == "parquet":
        path = write_parquet(tmp_path / "raw.parquet", long_rows(examples))
    else:
        path = write_jsonl(tmp_path / "raw.jsonl", jsonl_records(examples))
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), **spec}})
    assert code == 0 and rejects == []
    assert_dataset_matches(tmp_path / "dataset", examples, source="s", rate=0.25)
    true_labels = contract.read_metadata(tmp_path / "dataset", ["true_label"])[
        "true_label"
    ].to_pylist()
    expected = [None] * 7 if kind == "csv_no_header" else [ex["true_label"] for ex in examples]
    assert true_labels == expected
    schema = pq.read_schema(contract.shard_paths(tmp_path / "dataset")[0])
    assert schema.metadata[b"dim"] == str(DIM).encode() and schema.metadata[b"dtype"] == b"float16"
    assert metrics["examples_written"] == 7 and metrics["rows_written"] == sum(
        len(e["rows"]) for e in examples
    )


def test_metadata_reader_never_touches_features(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "raw.parquet", long_rows(make_examples(9)))
    run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    meta = contract.read_metadata(tmp_path / "dataset")
    assert meta.column_names == list(contract.METADATA_COLUMNS) and meta.num_rows == 9
    with pytest.raises(ValueError, match="never reads features"):
        contract.read_metadata(tmp_path / "dataset", ["example_id", "features"])
    # Row groups are the streaming unit: at most row_group_size=2 examples, shard_size=4.
    files = [pq.ParquetFile(p) for p in contract.shard_paths(tmp_path / "dataset")]
    assert len(files) >= 3 and all(f.metadata.num_rows <= 4 for f in files)
    sizes = [
        f.metadata.row_group(i).num_rows for f in files for i in range(f.metadata.num_row_groups)
    ]
    assert max(sizes) == 2 and sum(sizes) == 9


def test_float32_param_keeps_full_precision(tmp_path: Path) -> None:
    examples = make_examples(3)
    examples[0]["rows"] = examples[0]["rows"] + 1e-4  # not representable in float16
    path = write_jsonl(tmp_path / "raw.jsonl", jsonl_records(examples))
    code, metrics, _ = run_ingest(
        tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}}, dtype="float32"
    )
    assert code == 0 and metrics["dtype"] == "float32"
    shard = contract.shard_paths(tmp_path / "dataset")[0]
    assert pq.read_schema(shard).metadata[b"dtype"] == b"float32"
    rows = example_rows(pq.read_table(shard)["features"], 0, dtype="float32")
    np.testing.assert_array_equal(rows, examples[0]["rows"].astype(np.float32))


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "raw.csv", long_rows(make_examples(10)))
    sources = {"s": {"path": str(path), "negative_rate": 1.0}}
    run_ingest(tmp_path, sources)
    first = [p.read_bytes() for p in contract.shard_paths(tmp_path / "dataset")]
    run_ingest(tmp_path, sources)
    assert [p.read_bytes() for p in contract.shard_paths(tmp_path / "dataset")] == first


def test_duplicate_across_sources(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_parquet(folder / "a.parquet", long_rows(make_examples(3)))
    # Across sources, through the stage.
    other = write_jsonl(tmp_path / "other.jsonl", jsonl_records(make_examples(1)))
    code, metrics, rejects = run_ingest(
        tmp_path,
        {
            "p": {"path": str(folder / "a.parquet"), "negative_rate": 1.0},
            "j": {"path": str(other), "negative_rate": 1.0},
        },
        on_error="quarantine",
    )
    assert code == 0 and [r["reason"] for r in rejects] == ["duplicate_id"]
    assert "source 'p'" in rejects[0]["message"]


def test_feature_dimension_must_agree_across_sources(tmp_path: Path) -> None:
    first = write_parquet(tmp_path / "a.parquet", long_rows(make_examples(2)))
    narrow = [r[:-2] for r in long_rows(make_examples(2, prefix="n"))]
    second = write_csv(tmp_path / "b.csv", narrow, header=NAMES[:-2])
    code, metrics, rejects = run_ingest(
        tmp_path,
        {
            "a": {"path": str(first), "negative_rate": 1.0},
            "b": {"path": str(second), "negative_rate": 1.0},
        },
    )
    assert code == 1 and rejects[0]["reason"] == "dim_mismatch"
    assert "6 feature columns but the dataset has dim 8" in metrics["error"]
    assert "a.parquet" in metrics["error"] and "line 2" in metrics["error"]


def messy_sources(tmp_path: Path) -> dict[str, Any]:
    """Two sources with known bad examples: 2 in the CSV, 1 in the JSONL."""
    rows = long_rows(make_examples(6))
    rows[0][2] = 7  # e0: bad label
    rows[-1][5] = "x"  # e5: non-numeric
    csv_path = write_csv(tmp_path / "a.csv", rows)
    records = jsonl_records(make_examples(4, prefix="j"))
    records[2]["rows"] = []
    jsonl_path = write_jsonl(tmp_path / "b.jsonl", records)
    return {
        "a": {"path": str(csv_path), "negative_rate": 0.1},
        "b": {"path": str(jsonl_path), "negative_rate": 1.0},
    }


def test_quarantine_reconciles_per_source_and_reason(tmp_path: Path) -> None:
    code, metrics, rejects = run_ingest(tmp_path, messy_sources(tmp_path), on_error="quarantine")
    assert code == 0 and metrics["status"] == "ok" and metrics["reconciled"]
    assert metrics["examples_read"] == 10
    assert metrics["examples_read"] == metrics["examples_written"] + metrics["examples_rejected"]
    assert metrics["examples_rejected"] == len(rejects) == 3
    assert metrics["rejected_by_reason"] == {"bad_label": 1, "empty_example": 1, "non_numeric": 1}
    a, b = metrics["sources"]["a"], metrics["sources"]["b"]
    assert (a["examples_read"], a["examples_written"], a["rejected_by_reason"]) == (
        6,
        4,
        {"bad_label": 1, "non_numeric": 1},
    )
    assert (b["examples_read"], b["examples_written"], b["rejected_by_reason"]) == (
        4,
        3,
        {"empty_example": 1},
    )
    assert {r["example_id"] for r in rejects} == {"e0", "e5", "j2"}
    assert all(r["message"] and r["file"] and r["reason"] for r in rejects)
    written = contract.read_metadata(tmp_path / "dataset")["example_id"].to_pylist()
    assert written == ["e1", "e2", "e3", "e4", "j0", "j1", "j3"]
    assert metrics["rows_read"] == metrics["rows_written"] + metrics["rows_rejected"]


def test_fail_mode_stops_with_message_and_keeps_previous_dataset(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", long_rows(make_examples(3)))
    code, _, rejects = run_ingest(tmp_path, {"s": {"path": str(good), "negative_rate": 1.0}})
    assert code == 0 and rejects == []
    before = {p.name: p.read_bytes() for p in contract.shard_paths(tmp_path / "dataset")}

    code, metrics, rejects = run_ingest(tmp_path, messy_sources(tmp_path))
    assert code == 1 and metrics["status"] == "failed"
    assert "a.csv, line 2: example 'e0': label must be 0 or 1, got '7'" in metrics["error"]
    # Nothing was written, and the reader stopped inside a file: no claim of reconciliation.
    assert metrics["examples_rejected"] == 1 and metrics["reconciled"] is None
    assert metrics["examples_written"] == 0 and metrics["bytes_written"] == 0
    assert len(rejects) == 1 and rejects[0]["reason"] == "bad_label" and rejects[0]["line"] == 2
    assert {p.name: p.read_bytes() for p in contract.shard_paths(tmp_path / "dataset")} == before
    assert not list(tmp_path.glob(".dataset.*"))  # no temporary folder left behind


def test_failure_with_no_previous_dataset_leaves_none(tmp_path: Path) -> None:
    code, _, _ = run_ingest(tmp_path, messy_sources(tmp_path))
    assert code == 1 and not (tmp_path / "dataset").exists()


def test_interrupted_ingest_leaves_no_partial_dataset(tmp_path: Path, monkeypatch) -> None:
    path = write_csv(tmp_path / "raw.csv", long_rows(make_examples(10)))
    calls = []
    original = contract.DatasetWriter.add

    def add_then_die(self, **kwargs):
        calls.append(kwargs["example_id"])
        if len(calls) == 7:
            raise KeyboardInterrupt
        original(self, **kwargs)

    monkeypatch.setattr(contract.DatasetWriter, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert len(calls) == 7  # several row groups and shards were already written
    assert not (tmp_path / "dataset").exists()
    assert not list(tmp_path.glob(".dataset.*"))


def test_missing_source_path_fails_with_metrics(tmp_path: Path) -> None:
    code, metrics, rejects = run_ingest(
        tmp_path, {"s": {"path": str(tmp_path / "nowhere"), "negative_rate": 1.0}}
    )
    assert code == 1 and rejects == []
    assert metrics["status"] == "failed" and "nowhere does not exist" in metrics["error"]
    assert not (tmp_path / "dataset").exists()


def _trap_csv(path: Path, rows: list[list[Any]], *, bom: bool = False, tail: str = "") -> Path:
    """CSV text written with Python's csv module (which quotes newlines), optionally BOM'd."""
    text = ("\ufeff" if bom else "") + ",".join(NAMES) + "\n" + csv_text(rows) + tail
    path.write_text(text, encoding="utf-8")
    return path


def _assert_all_written(metrics: dict, rejects: list, n: int) -> None:
    assert rejects == []
    assert metrics["status"] == "ok" and metrics["reconciled"] is True
    assert metrics["examples_read"] == metrics["examples_written"] == n


def test_a_long_field_after_the_first_mib_loses_nothing(tmp_path: Path) -> None:
    examples = make_examples(4000, seed=3)
    examples[3000]["example_id"] = "e3000-" + "x" * 200_000  # a 200 KB id, far past 1 MiB
    path = _trap_csv(tmp_path / "long.csv", long_rows(examples))
    assert path.stat().st_size > 1 << 20
    code, metrics, rejects = run_ingest(
        tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}}, on_error="quarantine"
    )
    assert code == 0
    _assert_all_written(metrics, rejects, 4000)
    ids = contract.read_metadata(tmp_path / "dataset")["example_id"].to_pylist()
    assert ids == [ex["example_id"] for ex in examples]


def test_quoted_newlines_in_ids_lose_nothing_and_lines_stay_physical(tmp_path: Path) -> None:
    examples = make_examples(3000, seed=4)
    for ex in examples:
        ex["example_id"] = ex["example_id"] + "\nsecond line"  # legal CSV: quoted newline
    rows = long_rows(examples)
    path = _trap_csv(tmp_path / "nl.csv", rows)
    code, metrics, rejects = run_ingest(
        tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}}, on_error="quarantine"
    )
    assert code == 0
    _assert_all_written(metrics, rejects, 3000)
    got = contract.read_metadata(tmp_path / "dataset")["example_id"].to_pylist()
    assert got == [ex["example_id"] for ex in examples]
    # A bad label in the last example: its line is the physical line (each row takes two).
    rows[-1][2] = 7
    _trap_csv(path, rows)
    code, metrics, rejects = run_ingest(
        tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}}, on_error="quarantine"
    )
    physical = path.read_text().count("\n")  # the last row starts two lines before the end
    assert [r["line"] for r in rejects] == [physical - 1]
    assert (
        path.read_text()
        .splitlines()[physical - 2]
        .startswith(f'"{examples[-1]["example_id"]}'.split("\n")[0])
    )
    assert f"line {physical - 1}: example " in rejects[0]["message"]
    assert "label must be 0 or 1, got '7'" in rejects[0]["message"]
    assert metrics["reconciled"] is True and metrics["examples_written"] == 2999


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    examples = make_examples(5)
    path = _trap_csv(tmp_path / "excel.csv", long_rows(examples), bom=True)
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 0
    _assert_all_written(metrics, rejects, 5)
    assert_dataset_matches(tmp_path / "dataset", examples, source="s", rate=1.0)


def test_blank_lines_reject_nothing(tmp_path: Path) -> None:
    examples = make_examples(4)
    rows = long_rows(examples)
    n0 = len(examples[0]["rows"])
    text = csv_text(rows[:n0]) + "\n  \r\n" + csv_text(rows[n0:]) + "\n\n"
    path = tmp_path / "blank.csv"
    path.write_text(",".join(NAMES) + "\n" + text)
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 0, metrics["error"]
    _assert_all_written(metrics, rejects, 4)
    assert metrics["blank_lines"] == 4
    assert_dataset_matches(tmp_path / "dataset", examples, source="s", rate=1.0)
    # Line numbers after the blank lines are still physical lines.
    rows[n0][2] = 9
    path.write_text(",".join(NAMES) + "\n" + csv_text(rows[:n0]) + "\n  \r\n" + csv_text(rows[n0:]))
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 1 and rejects[0]["line"] == 2 + n0 + 2


def test_all_input_rejected_is_a_clear_failure_with_metrics(tmp_path: Path) -> None:
    rows = long_rows(make_examples(3))
    for row in rows:
        row[2] = "yes"
    path = write_csv(tmp_path / "bad.csv", rows)
    code, metrics, rejects = run_ingest(
        tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}}, on_error="quarantine"
    )
    assert code == 1 and metrics["status"] == "failed"
    assert metrics["error"].startswith(
        "no valid example in any source: 3 examples read, all rejected"
    )
    assert "bad_label: 3" in metrics["error"]
    assert [r["reason"] for r in rejects] == ["bad_label"] * 3
    assert metrics["examples_written"] == 0 and metrics["reconciled"] is True
    assert not (tmp_path / "dataset").exists()


def test_fail_mode_stop_reports_nothing_written(tmp_path: Path) -> None:
    examples = make_examples(6)
    rows = long_rows(examples)
    rows[-1][2] = 5
    path = write_csv(tmp_path / "late.csv", rows)
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 1 and not (tmp_path / "dataset").exists()
    assert metrics["examples_written"] == 0 and metrics["examples_valid_before_stop"] == 5
    assert metrics["sources"]["s"]["examples_written"] == 0


@pytest.mark.parametrize(
    "name,content",
    [
        ("zero.csv", b""),
        ("zero.jsonl", b""),
        ("zero.parquet", b""),
        ("header_only.csv", (",".join(NAMES) + "\n").encode()),
        ("blank_only.jsonl", b"\n\n"),
        ("no_rows.parquet", None),
    ],
)
def test_a_file_with_no_example_is_rejected_the_same_way_in_every_format(
    tmp_path: Path, name: str, content: bytes | None
) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_csv(folder / "a_good.csv", long_rows(make_examples(2)))
    empty = folder / f"b_{name}"
    if content is None:  # a Parquet file with every column and no row
        types = [pa.string(), pa.string(), pa.int64(), pa.int64()] + [pa.float64()] * DIM
        pq.write_table(pa.schema(list(zip(NAMES, types, strict=True))).empty_table(), empty)
    else:
        empty.write_bytes(content)
    sources = {"s": {"path": str(folder), "negative_rate": 1.0}}
    code, metrics, rejects = run_ingest(tmp_path, sources, on_error="quarantine")
    assert code == 0 and metrics["examples_written"] == 2 and metrics["reconciled"]
    assert [(r["reason"], r["scope"], r["example_id"]) for r in rejects] == [
        ("empty_file", "file", None)
    ]
    assert rejects[0]["message"].startswith(f"{empty}: example_id unknown: file holds no example")
    assert metrics["files_rejected"] == 1 and metrics["examples_rejected"] == 0
    code, metrics, _ = run_ingest(tmp_path, sources)
    assert code == 1 and "file holds no example" in metrics["error"]


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_labels_may_be_booleans_in_every_format(tmp_path: Path, kind: str) -> None:
    examples = make_examples(4)
    for ex in examples:
        ex["label"] = bool(ex["label"])
    if kind == "csv":
        rows = long_rows(examples)
        for row in rows:
            row[2] = {True: "TRUE", False: "false"}[row[2]]
        path = write_csv(tmp_path / "b.csv", rows)
    elif kind == "jsonl":
        path = write_jsonl(tmp_path / "b.jsonl", jsonl_records(examples))
    else:
        path = write_parquet(tmp_path / "b.parquet", long_rows(examples))
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 0 and rejects == []
    labels = contract.read_metadata(tmp_path / "dataset")["label"].to_pylist()
    assert labels == [int(ex["label"]) for ex in examples]


def test_a_lost_example_fails_the_reconciliation(tmp_path: Path, monkeypatch) -> None:
    """The counts of what was read come from the files, so a reader that drops an example fails."""
    path = write_csv(tmp_path / "a.csv", long_rows(make_examples(5)))
    lose_example(monkeypatch, "e2")
    code, metrics, _ = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 1 and metrics["status"] == "failed" and metrics["reconciled"] is False
    assert metrics["examples_read"] == 5 and metrics["examples_written"] == 4
    assert "examples were lost between reading and writing" in metrics["error"]
    assert not (tmp_path / "dataset").exists()


@pytest.mark.parametrize("kind", ["csv", "jsonl", "jsonl_key_absent"])
def test_partially_gold_labelled_source_ingests_nulls_where_unlabelled(
    tmp_path: Path, kind: str
) -> None:
    """``true_label`` for some examples only: the rest are null, nothing is rejected."""
    examples = make_examples(8)
    unlabelled = {1, 4, 5}
    for i in unlabelled:
        examples[i]["true_label"] = None
    if kind == "csv":  # csv.writer writes None as an empty field
        path = write_csv(tmp_path / "gold.csv", long_rows(examples))
    else:
        records = jsonl_records(examples)
        if kind == "jsonl_key_absent":
            for i in unlabelled:
                del records[i]["true_label"]
        path = write_jsonl(tmp_path / "gold.jsonl", records)
    code, metrics, rejects = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 0 and rejects == []
    meta = contract.read_metadata(tmp_path / "dataset", ["label", "true_label"])
    assert meta["true_label"].to_pylist() == [ex["true_label"] for ex in examples]
    assert meta["true_label"].null_count == len(unlabelled)
    assert meta["label"].to_pylist() == [ex["label"] for ex in examples]  # distant labels kept
    assert metrics["examples_written"] == 8


def test_float32_parquet_reads_and_ingests_as_float64_does(tmp_path: Path) -> None:
    # float32 feature columns are checked as float32 (no float64 copy): the same
    # rejects, messages, example rows and dataset bytes as the same numbers in float64.
    examples = make_examples(8)
    rows = long_rows(examples)
    first = np.cumsum([0] + [len(ex["rows"]) for ex in examples])  # each example's first row
    rows[first[1]][5] = float("nan")
    rows[first[2] + 1 if first[3] > first[2] + 1 else first[2]][6] = float("inf")
    rows[first[3]][4] = -1e6  # beyond float16
    rows[first[5]][4], rows[first[5]][6] = 1e6, float("-inf")  # both: reported as non-finite
    rows[first[6]][7] = 65504.0  # float16's largest: kept
    schema = {
        dtype: pa.schema(
            [(n, pa.string()) for n in NAMES[:2]]
            + [(n, pa.int64()) for n in NAMES[2:4]]
            + [(n, dtype) for n in NAMES[4:]]
        )
        for dtype in (pa.float32(), pa.float64())
    }
    items, datasets = {}, {}
    for dtype, sch in schema.items():
        folder = tmp_path / str(dtype)
        folder.mkdir()
        table = pa.Table.from_pylist([dict(zip(NAMES, r, strict=True)) for r in rows], sch)
        pq.write_table(table, folder / "raw.parquet", row_group_size=5)
        spec = SourceSpec.from_params(
            "src", {"path": str(folder / "raw.parquet"), "negative_rate": 1.0}
        )
        items[dtype] = list(RawReader(chunk_rows=3, max_abs=65504.0).read_source(spec))
        source = {"src": {"path": str(folder / "raw.parquet"), "negative_rate": 1.0}}
        code, metrics, _ = run_ingest(folder, source, on_error="quarantine")
        assert code == 0 and metrics["examples_rejected"] == 4
        datasets[dtype] = [p.read_bytes() for p in contract.shard_paths(folder / "dataset")]
    f32, f64 = items[pa.float32()], items[pa.float64()]
    assert [type(i) for i in f32] == [type(i) for i in f64]
    for a, b in zip(f32, f64, strict=True):
        if isinstance(a, Reject):
            where = (a.message.split("raw.parquet")[1], b.message.split("raw.parquet")[1])
            assert a.reason == b.reason and where[0] == where[1]  # all but the folder
        else:
            assert a.rows.dtype == np.float32 and a.example_id == b.example_id
            np.testing.assert_array_equal(a.rows, b.rows)
    assert [r.reason for r in f32 if isinstance(r, Reject)] == [
        "non_finite", "non_finite", "out_of_range", "non_finite"
    ]  # fmt: skip
    assert datasets[pa.float32()] == datasets[pa.float64()]


@pytest.mark.parametrize("lossy", ["a", "c"])
def test_one_source_that_does_not_reconcile_fails_the_run(
    tmp_path: Path, monkeypatch, lossy: str
) -> None:
    """The run reconciles only when every source does: the others reconciling is not enough."""
    sources = {}
    for name in ("a", "b", "c"):
        path = write_csv(tmp_path / f"{name}.csv", long_rows(make_examples(3, prefix=name)))
        sources[name] = {"path": str(path), "negative_rate": 1.0}
    lose_example(monkeypatch, f"{lossy}1")  # one example of one source
    code, metrics, _ = run_ingest(tmp_path, sources)
    assert {name: s["reconciled"] for name, s in metrics["sources"].items()} == {
        name: name != lossy for name in sources
    }
    assert code == 1 and metrics["status"] == "failed" and metrics["reconciled"] is False
    assert (metrics["examples_read"], metrics["examples_written"]) == (9, 8)
    assert "examples were lost between reading and writing" in metrics["error"]
    assert f"{lossy}: read 3 examples" in metrics["error"] and "b: read" not in metrics["error"]
    assert not (tmp_path / "dataset").exists()
