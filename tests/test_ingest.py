"""ingest and rawio: contract round-trips, every kind of bad input, fail/quarantine, atomicity."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from stages import contract, ingest
from stages.rawio import Example, RawReader, Reject, SourceSpec, csv_text
from tests.rawfiles import (
    DIM,
    INGEST_PARAMS,
    NAMES,
    jsonl_records,
    long_rows,
    make_examples,
    write_csv,
    write_jsonl,
    write_parquet,
)


def read_all(path: Path, *, chunk_rows: int = 3, **spec: Any) -> list[Example | Reject]:
    source = SourceSpec.from_params("src", {"path": str(path), "negative_rate": 1.0, **spec})
    return list(RawReader(chunk_rows=chunk_rows, max_abs=65504.0).read_source(source))


def only_reject(items: list[Example | Reject]) -> Reject:
    rejects = [i for i in items if isinstance(i, Reject)]
    assert len(rejects) == 1, rejects
    return rejects[0]


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


# --------------------------------------------------------------------------- round trips


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


# --------------------------------------------------------------------------- bad input


def bad_csv(tmp_path: Path, mutate, *, n: int = 5, name: str = "bad.csv") -> Path:
    """A CSV of ``n`` examples where ``mutate(rows)`` breaks something; returns its path."""
    rows = long_rows(make_examples(n))
    mutate(rows)
    return write_csv(tmp_path / name, rows)


def line_of(path: Path, example_id: str, nth: int = 0) -> int:
    """1-based physical line of the nth row of an example in a CSV file."""
    lines = [
        i + 1
        for i, text in enumerate(path.read_text().splitlines())
        if text.startswith(example_id + ",")
    ]
    return lines[nth]


def assert_message(reject: Reject, *parts: str) -> None:
    for part in parts:
        assert part in reject.message, (part, reject.message)


def test_wrong_number_of_columns_names_line_and_example(tmp_path: Path) -> None:
    def drop_a_value(rows):
        rows[3] = rows[3][:-1]

    path = bad_csv(tmp_path, drop_a_value)
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
        items[dtype] = read_all(folder / "raw.parquet")
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


@pytest.mark.parametrize(("value", "shown"), [("", "''"), ("2", "'2'"), ("yes", "'yes'")])
def test_missing_or_invalid_label(tmp_path: Path, value: str, shown: str) -> None:
    def set_label(rows):
        rows[2][2] = value

    path = bad_csv(tmp_path, set_label)
    example_id = long_rows(make_examples(5))[2][0]
    reject = only_reject(read_all(path))
    assert reject.reason == "bad_label"
    assert_message(reject, "line 4", repr(example_id), f"label must be 0 or 1, got {shown}")


def test_missing_label_in_jsonl(tmp_path: Path) -> None:
    records = jsonl_records(make_examples(2))
    del records[1]["label"]
    reject = only_reject(read_all(write_jsonl(tmp_path / "bad.jsonl", records)))
    assert (
        reject.reason == "bad_label" and "line 2" in reject.message and "got None" in reject.message
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


def test_missing_group(tmp_path: Path) -> None:
    def drop_group(rows):
        rows[1][1] = ""

    reject = only_reject(read_all(bad_csv(tmp_path, drop_group)))
    assert reject.reason == "missing_group"
    assert_message(reject, "line 3", "missing group")


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


def test_duplicate_across_files_and_sources(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_parquet(folder / "a.parquet", long_rows(make_examples(3)))
    write_parquet(folder / "b.parquet", long_rows(make_examples(2, seed=5)))
    items = read_all(folder)
    assert [i.example_id for i in items if isinstance(i, Example)] == ["e0", "e1", "e2"]
    reject = [i for i in items if isinstance(i, Reject)][0]
    assert reject.reason == "duplicate_id" and reject.example_id == "e0"
    assert_message(reject, "b.parquet", "row 0", "already read from", "a.parquet")
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


def test_source_spec_validation_names_the_full_key_and_the_bad_value() -> None:
    def refused(params: dict) -> str:
        with pytest.raises(ValueError) as info:
            SourceSpec.from_params("s", {"path": "x", "negative_rate": 1.0, **params})
        return str(info.value)

    assert refused({"format": "xls"}) == (
        "ingest.sources.s.format must be one of ['csv', 'parquet', 'jsonl', 'simulated'], got 'xls'"
    )
    assert refused({"negative_rate": 0}) == (
        "ingest.sources.s.negative_rate must be a number > 0 and <= 1, got 0"
    )
    assert "ingest.sources.s.columns: with header: false" in refused({"header": False})
    assert refused({"colums": {}}).startswith(
        "ingest.sources.s.colums: unknown key (value {}); allowed keys in ingest.sources.s are"
    )
    assert "did you mean 'columns'?" in refused({"colums": {}})
    assert refused({"columns": {"label": -1}}) == (
        "ingest.sources.s.columns.label must be a column name or a 0-based position, got -1"
    )
    assert refused({"columns": {"lable": "y"}}).startswith(
        "ingest.sources.s.columns.lable: unknown name"
    )
    with pytest.raises(
        ValueError, match=r"ingest.on_error must be one of \['fail', 'quarantine'\]"
    ):
        ingest.IngestConfig.from_params(
            {
                **INGEST_PARAMS,
                "on_error": "ignore",
                "sources": {"s": {"path": "x", "negative_rate": 1}},
            }
        )
    with pytest.raises(
        ValueError, match=r"ingest.chunk_row: unknown key .*did you mean 'chunk_rows'"
    ):
        ingest.IngestConfig.from_params(
            {**INGEST_PARAMS, "chunk_row": 8, "sources": {"s": {"path": "x", "negative_rate": 1}}}
        )
    params = {k: v for k, v in INGEST_PARAMS.items() if k != "dtype"}
    with pytest.raises(ValueError, match=r"ingest.dtype is required; add it to params.yaml"):
        ingest.IngestConfig.from_params(
            {**params, "sources": {"s": {"path": "x", "negative_rate": 1}}}
        )


# --------------------------------------------------------------------------- modes, atomicity


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


# ----------------------------------------------------------------------------- traps of real exports
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
    original = RawReader._flush

    def lossy(self, state):
        items = list(original(self, state))
        if items and getattr(items[0], "example_id", None) == "e2":
            return iter(())  # a bug that silently loses one example
        return iter(items)

    monkeypatch.setattr(RawReader, "_flush", lossy)
    code, metrics, _ = run_ingest(tmp_path, {"s": {"path": str(path), "negative_rate": 1.0}})
    assert code == 1 and metrics["status"] == "failed" and metrics["reconciled"] is False
    assert metrics["examples_read"] == 5 and metrics["examples_written"] == 4
    assert "examples were lost between reading and writing" in metrics["error"]
    assert not (tmp_path / "dataset").exists()


# --------------------------------------------------------------------------- gold labels


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
