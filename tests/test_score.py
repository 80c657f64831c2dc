"""score: round trip against evaluate's predictions, every kind of bad input, dims, empty input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsprior import contract, priors, rawio
from dsprior.rawio import RawDataError
from stages import bundle, score
from tests.conftest import make_project, run
from tests.test_bundle import DIM, build_pipeline

NAMES = ["example_id"] + [f"f{j}" for j in range(DIM)]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    return build_pipeline(tmp_path_factory.mktemp("pipeline"), prior=None)


@pytest.fixture(scope="module")
def loaded(pipeline: dict[str, Path]) -> bundle.Bundle:
    return bundle.load_bundle(pipeline["bundle"])


# ----------------------------------------------------------------------------- raw files


def dataset_examples(dataset_dir: Path, ids: list[str]) -> list[dict[str, Any]]:
    """Examples as the dataset stores them (float16 values, exact in float64), in ``ids`` order."""
    table = pa.concat_tables(pq.read_table(p) for p in contract.shard_paths(dataset_dir))
    rows, offsets = contract.decode_features(
        table["features"], dim=contract.dataset_dim(dataset_dir), dtype="float16"
    )
    by_id = {
        row["example_id"]: {**row, "rows": rows[offsets[j] : offsets[j + 1]].astype(np.float64)}
        for j, row in enumerate(table.select(["example_id", "group", "label"]).to_pylist())
    }
    return [by_id[i] for i in ids]


def long_rows(examples: list[dict[str, Any]], *, labelled: bool = False) -> list[list[Any]]:
    ids = (
        (lambda e: [e["example_id"], e["group"], e["label"]])
        if labelled
        else (lambda e: [e["example_id"]])
    )
    return [[*ids(e), *map(float, row)] for e in examples for row in e["rows"]]


def write_csv(path: Path, rows: list[list[Any]], header: list[str] = NAMES) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[list[Any]], names: list[str] = NAMES) -> Path:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = [
        pa.array(c, pa.string() if n in ("example_id", "group") else None)
        if rows
        else pa.array([], pa.string() if n == "example_id" else pa.float64())
        for n, c in zip(names, columns, strict=True)
    ]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path, row_group_size=7)
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def jsonl_records(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"example_id": e["example_id"], "rows": e["rows"].tolist()} for e in examples]


def small_examples(n: int = 4, *, dim: int = DIM) -> list[dict[str, Any]]:
    """Two rows each, values exact in float16."""
    rng = np.random.default_rng(1)
    return [
        {
            "example_id": f"e{i}",
            "group": f"g{i}",
            "label": i % 2,
            "rows": rng.integers(-16, 16, (2, dim)) / 8,
        }
        for i in range(n)
    ]


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    ("fmt", "out"),
    [("csv", "scores.parquet"), ("parquet", "scores.csv"), ("jsonl", "scores.parquet")],
)
def test_scoring_the_test_split_reproduces_evaluate(
    pipeline: dict[str, Path], loaded: bundle.Bundle, tmp_path: Path, fmt: str, out: str
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
    summary = score.score_file(loaded, raw, tmp_path / out, batch_size=4, pool_size=8)
    got = read_output(tmp_path / out)

    assert list(got.columns) == list(score.OUTPUT_SCHEMA.names)
    assert got["example_id"].tolist() == test["example_id"].tolist()  # input order kept
    np.testing.assert_allclose(got["score"], test["score"], rtol=0, atol=2e-6)
    np.testing.assert_allclose(got["probability"], test["probability"], rtol=1e-5, atol=1e-9)
    threshold = json.loads((pipeline["reports"] / "metrics.json").read_text())["threshold"]
    np.testing.assert_array_equal(got["decision"], (test["probability"] >= threshold).astype(int))
    assert 0 < got["decision"].sum() < len(got), "the test should see both decisions"
    assert summary.scored == len(test) and summary.rejected == 0
    assert summary.positives == int(got["decision"].sum())


def test_expected_cost_per_example(
    pipeline: dict[str, Path], loaded: bundle.Bundle, tmp_path: Path
) -> None:
    raw = write_jsonl(tmp_path / "x.jsonl", jsonl_records(small_examples(6)))
    score.score_file(loaded, raw, tmp_path / "x.parquet")
    got = read_output(tmp_path / "x.parquet")
    p, flagged = got["probability"].to_numpy(), got["decision"].to_numpy() == 1
    np.testing.assert_allclose(got["expected_cost"][flagged], (1 - p[flagged]) * 1.0)
    np.testing.assert_allclose(got["expected_cost"][~flagged], p[~flagged] * 10.0)
    np.testing.assert_allclose(got["probability"], loaded.probability(got["score"].to_numpy()))


def test_expected_costs_and_decisions_by_hand() -> None:
    p = np.array([0.05, 0.2, 0.0909, 0.9])
    decision = score.decide(p, threshold=0.0909)
    assert decision.tolist() == [0, 1, 1, 1]
    np.testing.assert_allclose(
        score.expected_costs(p, decision, cost_fp=1, cost_fn=10), [0.5, 0.8, 0.9091, 0.1]
    )
    with pytest.raises(ValueError, match="costs must be >= 0"):
        score.expected_costs(p, decision, cost_fp=-1, cost_fn=10)


def test_scores_do_not_depend_on_batching(loaded: bundle.Bundle) -> None:
    arrays = [
        np.random.default_rng(i).normal(size=(n, DIM)) for i, n in enumerate([1, 7, 3, 12, 2])
    ]
    one = score.score_arrays(loaded.model, arrays, dim=DIM, batch_size=1)
    many = score.score_arrays(loaded.model, arrays, dim=DIM, batch_size=5)
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        score.score_arrays(loaded.model, arrays, dim=DIM, batch_size=0)


# ----------------------------------------------------------------------------- bad input

# Each case: file name, writer (tmp_path -> path), reason, example id, fragments of the message.
# Lines: header 1; e0 at lines 2-3, e1 at 4-5, e2 at 6-7, e3 at 8-9.


def _csv_with(cell: tuple[int, int], value: str, name: str = "bad.csv"):
    def write(tmp_path: Path) -> Path:
        rows = long_rows(small_examples())
        rows[cell[0]][cell[1]] = value
        return write_csv(tmp_path / name, rows)

    return write


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
    "non_numeric": (_csv_with((3, 4), "abc"), "e1", ["line 5", "non-numeric value 'abc' in feature column 'f3'"]),
    "non_finite": (_csv_with((3, 4), "nan"), "e1", ["line 5", "non-finite value nan in feature column 'f3'"]),
    "out_of_range": (_csv_with((3, 4), "1e6"), "e1", ["line 5", "exceeds 65504"]),
    "bad_label": (_bad_label, "e1", ["line 5", "label must be 0 or 1, got '2'"]),
    "inconsistent_label": (_label_disagrees, "e1", ["row 3", "rows disagree on label"]),
    "missing_id": (_csv_with((2, 0), ""), "e0", ["line 4", "missing example_id"]),
    "duplicate_id": (_non_contiguous, "e1", ["line 10", "rows are not contiguous"]),
    "empty_example": (_empty_example, "e1", ["line 2", "example has no rows"]),
    "bad_json": (_bad_json, None, ["line 2", "invalid JSON"]),
    "wrong_columns_jsonl": (_ragged_rows, "e1", ["line 2", "row 0 has 5 values, expected dim 16"]),
    "unreadable_file": (_truncated, None, ["unreadable or truncated"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_with_ingests_message(
    loaded: bundle.Bundle, tmp_path: Path, case: str
) -> None:
    write, example_id, fragments = BAD_INPUTS[case]
    path = write(tmp_path)
    out = tmp_path / "scores.parquet"
    with pytest.raises(RawDataError) as info:
        score.score_file(loaded, path, out)
    reject = info.value.reject
    assert reject.reason == case.removesuffix("_jsonl")
    assert reject.example_id == example_id or (example_id is None and case == "unreadable_file")
    message = str(info.value)
    for fragment in [str(path), *fragments] + ([f"{example_id!r}"] if example_id else []):
        assert fragment in message, (fragment, message)
    assert not out.exists() and not list(tmp_path.glob(".scores*"))


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_quarantine_skips_the_bad_example_and_scores_the_rest(
    loaded: bundle.Bundle, tmp_path: Path, case: str
) -> None:
    write, example_id, _ = BAD_INPUTS[case]
    path = write(tmp_path)
    rejects = tmp_path / "rejects.jsonl"
    summary = score.score_file(
        loaded, path, tmp_path / "scores.parquet", on_error="quarantine", rejects_path=rejects
    )
    got = read_output(tmp_path / "scores.parquet")
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["reason"] for r in records] == [case.removesuffix("_jsonl")]
    # A file unreadable before its first example is rejected whole: no example in it.
    whole_file = case == "unreadable_file" and records[0]["scope"] == "file"
    assert (summary.rejected, summary.files_rejected) == ((0, 1) if whole_file else (1, 0))
    assert summary.scored == len(got) and summary.reconciled
    assert summary.rejected_by_reason == {case.removesuffix("_jsonl"): 1}
    if example_id is not None:
        assert records[0]["example_id"] == example_id
        # a reappearing id is rejected, its first occurrence stands (as in ingest)
        expected = 1 if case == "duplicate_id" else 0
        assert got["example_id"].tolist().count(example_id) == expected
    if case != "unreadable_file":
        assert len(got) >= 3


def test_labels_and_groups_are_optional_but_checked_when_present(
    loaded: bundle.Bundle, tmp_path: Path
) -> None:
    rows = long_rows(small_examples(), labelled=True)
    for row in rows[:2]:
        row[1], row[2] = "", ""  # e0 has neither group nor label
    names = ["example_id", "group", "label", *NAMES[1:]]
    path = write_csv(tmp_path / "mixed.csv", rows, names)
    score.score_file(loaded, path, tmp_path / "out.parquet")
    assert read_output(tmp_path / "out.parquet")["example_id"].tolist() == ["e0", "e1", "e2", "e3"]


# ----------------------------------------------------------------------------- dims, empty, CLI


@pytest.mark.parametrize("on_error", ["fail", "quarantine"])
def test_wrong_dimension_fails_naming_both_dims(
    loaded: bundle.Bundle, pipeline: dict[str, Path], tmp_path: Path, on_error: str
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
            score.score_file(loaded, path, tmp_path / "out.parquet", on_error=on_error)
        assert info.value.reject.reason == "dim_mismatch"
        message = str(info.value)
        assert fragment in message and "but the model bundle has dim 16" in message
        assert str(pipeline["bundle"] / "bundle.json") in message
        assert not (tmp_path / "out.parquet").exists()


def test_wrong_dimension_via_the_command(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    header = ["example_id"] + [f"f{j}" for j in range(12)]
    path = write_csv(tmp_path / "narrow.csv", long_rows(small_examples(dim=12)), header)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main(
            [
                "--bundle",
                str(pipeline["bundle"]),
                "--input",
                str(path),
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
    assert info.value.code == 1
    assert "file has 12 feature columns but the model bundle has dim 16" in caplog.text


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("out", ["empty.parquet", "empty.csv"])
def test_empty_input_writes_empty_output_with_the_columns(
    loaded: bundle.Bundle, tmp_path: Path, kind: str, out: str
) -> None:
    path = {
        "csv": lambda: write_csv(tmp_path / "in.csv", []),
        "parquet": lambda: write_parquet(tmp_path / "in.parquet", []),
        "jsonl": lambda: write_jsonl(tmp_path / "in.jsonl", []),
    }[kind]()
    summary = score.score_file(loaded, path, tmp_path / out)
    assert summary.scored == 0 and summary.rejected == 0
    if out.endswith(".parquet"):
        assert pq.read_schema(tmp_path / out).names == score.OUTPUT_SCHEMA.names
        assert pq.read_table(tmp_path / out).num_rows == 0
    else:
        assert (tmp_path / out).read_text().splitlines() == [
            ",".join(f'"{n}"' for n in score.OUTPUT_SCHEMA.names)
        ]


def test_command_quarantines_to_the_default_rejects_file(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    path = _csv_with((3, 4), "abc")(tmp_path)
    out = tmp_path / "scores.csv"
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(path), "--output", str(out)]
        + ["--on-error", "quarantine", "--batch-size", "2"]
    )
    assert read_output(out)["example_id"].tolist() == ["e0", "e2", "e3"]
    rejects = (tmp_path / "scores.csv.rejects.jsonl").read_text().splitlines()
    assert [json.loads(r)["reason"] for r in rejects] == ["non_numeric"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output", "x.txt"], "extension must be one of"),
        (["--input", "missing.csv"], "does not exist"),
        (["--bundle", "nowhere"], "is not a model bundle"),
    ],
)
def test_command_setup_errors_are_named(
    pipeline: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    argv: list[str],
    message: str,
) -> None:
    good = write_csv(tmp_path / "in.csv", long_rows(small_examples()))
    args = {
        "--bundle": str(pipeline["bundle"]),
        "--input": str(good),
        "--output": str(tmp_path / "o.csv"),
    }
    for key, value in zip(argv[::2], argv[1::2], strict=True):
        args[key] = value if key != "--input" else str(tmp_path / value)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main([x for kv in args.items() for x in kv])
    assert info.value.code == 1 and message in caplog.text


def test_output_format_by_extension() -> None:
    assert score.output_format("a/b.PARQUET") == "parquet"
    assert score.output_format("b.csv.gz") == "csv"
    with pytest.raises(ValueError, match=r"extension must be one of .*'\.csv'"):
        score.output_format("b.json")


# ----------------------------------------------------------------------------- paths


def _one_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "new.csv", long_rows(small_examples()))


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "new").mkdir()
    write_csv(tmp_path / "new" / "a.csv", long_rows(small_examples()))
    return tmp_path / "new"


def _same_name(tmp_path: Path) -> tuple[list[str], str]:
    new = _one_file(tmp_path)
    return ["--input", str(new), "--output", str(new)], (
        f"--output {new} and --input {new} are the same file; scoring would overwrite its input"
    )


def _symlink(tmp_path: Path) -> tuple[list[str], str]:
    new = _one_file(tmp_path)
    (tmp_path / "link.csv").symlink_to(new)
    link = tmp_path / "link.csv"
    return ["--input", str(new), "--output", str(link)], (
        f"--output {link} and --input {new} are the same file"
    )


def _hardlink(tmp_path: Path) -> tuple[list[str], str]:
    new = _one_file(tmp_path)
    os.link(new, tmp_path / "hard.csv")
    hard = tmp_path / "hard.csv"
    return ["--input", str(new), "--output", str(hard)], (
        f"--output {hard} and --input {new} are the same file"
    )


def _dotted(tmp_path: Path) -> tuple[list[str], str]:
    new = _one_file(tmp_path)
    other = tmp_path / "sub" / ".." / "new.csv"
    return ["--input", str(new), "--output", str(other)], (
        f"--output {other} and --input {new} are the same file"
    )


def _rejects_is_output(tmp_path: Path) -> tuple[list[str], str]:
    path = _csv_with((3, 4), "abc")(tmp_path)
    out = tmp_path / "out.csv"
    argv = ["--input", str(path), "--output", str(out), "--rejects", str(out)]
    return argv + ["--on-error", "quarantine"], (
        f"--rejects {out} and --output {out} are the same file; one would overwrite the other"
    )


def _rejects_is_input(tmp_path: Path) -> tuple[list[str], str]:
    new = _one_file(tmp_path)
    return ["--input", str(new), "--output", str(tmp_path / "o.csv"), "--rejects", str(new)], (
        f"--rejects {new} and --input {new} are the same file"
    )


def _output_in_input_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = _folder(tmp_path)
    return ["--input", str(folder), "--output", str(folder / "a.csv")], (
        f"--output {folder / 'a.csv'} is inside the --input folder {folder}"
    )


def _new_output_in_input_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = _folder(tmp_path)
    return ["--input", str(folder), "--output", str(folder / "sub" / "scores.parquet")], (
        f"--output {folder / 'sub' / 'scores.parquet'} is inside the --input folder {folder}"
    )


def _output_linked_into_input_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = _folder(tmp_path)
    os.link(folder / "a.csv", tmp_path / "out.csv")
    return ["--input", str(folder), "--output", str(tmp_path / "out.csv")], (
        f"--output {tmp_path / 'out.csv'} is the same file as {folder / 'a.csv'} in the "
        f"--input folder {folder}"
    )


def _output_is_a_folder(tmp_path: Path) -> tuple[list[str], str]:
    new = _one_file(tmp_path)
    (tmp_path / "scores.csv").mkdir()
    return ["--input", str(new), "--output", str(tmp_path / "scores.csv")], (
        f"--output {tmp_path / 'scores.csv'} is a folder"
    )


@pytest.mark.parametrize(
    "case",
    [
        _same_name,
        _symlink,
        _hardlink,
        _dotted,
        _rejects_is_output,
        _rejects_is_input,
        _output_in_input_folder,
        _new_output_in_input_folder,
        _output_linked_into_input_folder,
        _output_is_a_folder,
    ],
)
def test_command_refuses_to_write_over_its_input_or_itself(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, case
) -> None:
    """Nothing is read and nothing changes: one ERROR line naming both options and the path."""
    argv, message = case(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main(["--bundle", str(pipeline["bundle"]), *argv])
    assert info.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert message in errors[0]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no scores over the raw data, no reject line on top of CSV rows


def test_score_file_refuses_the_input_as_output(loaded: bundle.Bundle, tmp_path: Path) -> None:
    new = _one_file(tmp_path)
    raw = new.read_bytes()
    with pytest.raises(ValueError, match="output_path .* and input_path .* are the same file"):
        score.score_file(loaded, new, new)
    with pytest.raises(ValueError, match="rejects_path .* and output_path .* are the same file"):
        score.score_file(loaded, new, tmp_path / "o.csv", rejects_path=tmp_path / "o.csv")
    assert new.read_bytes() == raw and not (tmp_path / "o.csv").exists()


def test_rejects_and_output_may_sit_beside_the_input(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(folder)]
        + ["--output", str(tmp_path / "new.csv"), "--on-error", "quarantine"]
    )
    assert len(read_output(tmp_path / "new.csv")) == 4


# ----------------------------------------------------------------------------- temporaries


def test_a_killed_runs_temporaries_are_gone_after_the_next_run(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    """A SIGKILLed score leaves .NAME.tmp beside the output and the rejects; the rerun takes them."""
    path = _csv_with((3, 4), "abc")(tmp_path)
    out = tmp_path / "scores.csv"
    stale = [tmp_path / ".scores.csv.tmp", tmp_path / ".scores.csv.rejects.jsonl.tmp"]
    for p in stale:
        p.write_text("partial, from a killed run\n")
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(path), "--output", str(out)]
        + ["--on-error", "quarantine"]
    )
    assert read_output(out)["example_id"].tolist() == ["e0", "e2", "e3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.csv",
        "scores.csv",
        "scores.csv.rejects.jsonl",
    ]


@pytest.mark.parametrize("out", ["scores.csv", "scores.parquet"])
def test_a_failed_rename_leaves_no_temporary(
    loaded: bundle.Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    path = _one_file(tmp_path)

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(score.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        score.score_file(loaded, path, tmp_path / out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]


# ----------------------------------------------------------------------------- fresh clone


@pytest.mark.slow
def test_fresh_clone_scores_after_pulling_only_the_bundle(tmp_path: Path) -> None:
    """`dvc repro` + `dvc push` in one repo; a clone pulls only the bundle and scores raw files."""
    project = make_project(tmp_path / "project")
    run(["dvc", "repro"], project)
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], project)
    run(["dvc", "push"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "pipeline run"], project)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run(["dvc", "pull", "bundle"], clone)
    assert sorted(p.name for p in (clone / "bundle").iterdir()) == [
        "bundle.json",
        "model.keras",
        "reference.parquet",
    ]
    for absent in (
        "models",
        "data/dataset",
        "data/manifest.parquet",
        "reports/predictions.parquet",
    ):
        assert not (clone / absent).exists(), absent

    # The production source as raw files (the pipeline drew it in memory), labelled.
    run(["python", "-m", "stages.generate", "--params", "params.yaml", "--out", "../raw"], project)
    raw = tmp_path / "raw" / "production"
    out = clone / "scores.parquet"
    run(["python", "-m", "stages.score", "--bundle", "bundle", "--input", str(raw)]
        + ["--output", str(out), "--summary", "summary.json", "--resamples", "50"], clone)  # fmt: skip
    got = pd.read_parquet(out)
    # the labelled production sample's summary: the measured prior inside the estimate's interval
    summary = json.loads((clone / "summary.json").read_text())
    low, high = summary["estimated_prior"]["ci"]
    assert summary["measured"]["labelled_examples"] == len(got)
    assert low <= summary["measured"]["prior"] <= high, (summary["measured"], low, high)
    assert (clone / "summary.md").is_file()
    predictions = pd.read_parquet(project / "reports" / "predictions.parquet")
    production = predictions[predictions["split"].isin(["dev_b", "test"])]
    merged = production.merge(got, on="example_id", suffixes=("_evaluate", ""))
    assert len(merged) == len(production) > 0
    np.testing.assert_allclose(merged["score"], merged["score_evaluate"], rtol=0, atol=2e-6)
    np.testing.assert_allclose(
        merged["probability"], merged["probability_evaluate"], rtol=1e-5, atol=1e-9
    )


# ----------------------------------------------------------------------------- traps of real exports
def test_the_csv_traps_of_real_exports_score_every_example(
    loaded: bundle.Bundle, tmp_path: Path
) -> None:
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
    summary = score.score_file(loaded, path, tmp_path / "out.parquet", on_error="fail")
    assert summary.scored == summary.examples_read == 2000 and summary.reconciled
    got = read_output(tmp_path / "out.parquet")["example_id"].tolist()
    assert got == [ex["example_id"] for ex in examples]
    # Quarantine loses nothing either, and the reject names the physical line.
    rows[-1][3] = "oops"
    path.write_text(text.rsplit("\n", 4)[0] + "\n" + rawio.csv_text([rows[-1]]), encoding="utf-8")
    summary = score.score_file(
        loaded, path, tmp_path / "out.csv", on_error="quarantine", rejects_path=tmp_path / "r.jsonl"
    )
    assert summary.scored == 1999 and summary.rejected == 1 and summary.reconciled
    (reject,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert reject["line"] == path.read_text().count("\n")
    assert "non-numeric value 'oops' in feature column 'f2'" in reject["message"]


# ----------------------------------------------------------------------------- --summary


SUMMARY_KEYS = {"examples", "bundle_prior", "estimated_prior", "estimated_at_threshold", "drift"}


def _score_with_summary(
    pipeline: dict[str, Path], tmp_path: Path, *, labelled: bool, extra: list[str] = ()
) -> tuple[dict[str, Any], Path, pd.DataFrame]:
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    test = predictions[predictions["split"] != "dev_a"].reset_index(drop=True)
    examples = dataset_examples(pipeline["dataset"], test["example_id"].tolist())
    names = ["example_id", "group", "label", *NAMES[1:]] if labelled else NAMES
    tmp_path.mkdir(parents=True, exist_ok=True)
    raw = write_csv(tmp_path / "in.csv", long_rows(examples, labelled=labelled), names)
    out, summary = tmp_path / "scores.parquet", tmp_path / "s.json"
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(raw), "--output", str(out)]
        + ["--summary", str(summary), "--resamples", "40", *extra]
    )
    return json.loads(summary.read_text()), out, test


def test_summary_end_to_end_with_a_real_bundle(pipeline: dict[str, Path], tmp_path: Path) -> None:
    got, out, batch = _score_with_summary(pipeline, tmp_path, labelled=False)
    assert SUMMARY_KEYS <= set(got)
    assert got["examples"] == len(batch)
    spec = json.loads((pipeline["bundle"] / "bundle.json").read_text())
    assert got["bundle_prior"] == spec["production_prior"]
    est = got["estimated_prior"]
    assert {"value", "ci", "method", "cross_check"} <= set(est)
    assert est["ci"][0] <= est["value"] <= est["ci"][1]
    assert {"acc", "pacc"} <= set(est["cross_check"])  # format 2: dev_b's rates are there
    for name in ("precision", "recall", "alerts_per_1000", "expected_cost"):
        assert set(got["estimated_at_threshold"][name]) == {"value", "ci"}
    assert isinstance(got["drift"]["prior_shift"], bool)
    assert 0 <= got["drift"]["score_shift_ks"] <= 1 and 0 <= got["drift"]["p_value"] <= 1
    assert "measured" not in got  # no labels in the input
    # the estimate is evaluate's: the same estimator on the same probabilities
    scored = read_output(out)
    alerts = 1000 * scored["decision"].mean()
    assert got["estimated_at_threshold"]["alerts_per_1000"]["value"] == pytest.approx(alerts)
    assert got["adapt_prior"]["applied"] is False
    assert got["adapt_prior"]["alerts_per_1000_before"] == pytest.approx(alerts)
    markdown = (tmp_path / "s.md").read_text()
    assert markdown.startswith("# Batch summary, without labels")
    assert "Estimated prior" in markdown and "Prior shift" in markdown


def test_summary_measures_labels_beside_the_estimates(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    got, out, batch = _score_with_summary(pipeline, tmp_path, labelled=True)
    measured = got["measured"]
    assert measured["labelled_examples"] == len(batch)
    assert measured["prior"] == pytest.approx(batch["label"].mean())
    decision = read_output(out)["decision"].to_numpy()
    y = batch["label"].to_numpy()
    tp, fp = float((decision * y).sum()), float((decision * (1 - y)).sum())
    if tp + fp:
        assert measured["precision"] == pytest.approx(tp / (tp + fp))
    assert "| precision |" in (tmp_path / "s.md").read_text()


def test_adapt_prior_rewrites_probabilities_and_decisions_at_the_estimate(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    plain, plain_out, _ = _score_with_summary(pipeline, tmp_path / "a", labelled=False)
    got, out, _ = _score_with_summary(
        pipeline, tmp_path / "b", labelled=False, extra=["--adapt-prior"]
    )
    before, after = read_output(plain_out), read_output(out)
    estimate, prior = got["estimated_prior"]["value"], got["bundle_prior"]
    estimate = min(max(estimate, 1e-9), 1 - 1e-9)  # an estimate of 0 or 1 is moved to just inside
    moved = priors.shift_prior(
        before["probability"].to_numpy(), from_prior=prior, to_prior=estimate
    )
    np.testing.assert_allclose(after["probability"], moved, rtol=1e-12)
    threshold = json.loads((pipeline["bundle"] / "bundle.json").read_text())["threshold"]["value"]
    np.testing.assert_array_equal(after["decision"], (moved >= threshold).astype(int))
    adapt = got["adapt_prior"]
    assert adapt["applied"] is True and adapt["to_prior"] == got["estimated_prior"]["value"]
    assert adapt["alerts_per_1000_before"] == pytest.approx(1000 * before["decision"].mean())
    assert adapt["alerts_per_1000_after"] == pytest.approx(1000 * after["decision"].mean())
    assert adapt["decisions_changed"] == int((before["decision"] != after["decision"]).sum())
    assert plain["estimated_prior"] == got["estimated_prior"]  # same seed, same estimate


def test_summary_of_an_empty_batch_warns_and_adapt_prior_needs_a_summary(
    pipeline: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = write_csv(tmp_path / "in.csv", [])
    summary = tmp_path / "s.json"
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(raw)]
        + ["--output", str(tmp_path / "o.csv"), "--summary", str(summary)]
    )
    got = json.loads(summary.read_text())
    assert got["examples"] == 0 and got["estimated_prior"] is None
    assert "empty" in got["warnings"][0]
    with pytest.raises(SystemExit) as info:
        score.main(
            ["--bundle", str(pipeline["bundle"]), "--input", str(raw)]
            + ["--output", str(tmp_path / "o.csv"), "--adapt-prior"]
        )
    assert info.value.code == 2 and "--adapt-prior needs --summary" in capsys.readouterr().err


def test_summary_from_a_format_1_bundle_says_not_available(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(pipeline["bundle"], old)
    spec = json.loads((old / "bundle.json").read_text())
    spec["format_version"] = 1
    del spec["calibration"], spec["reference"]
    spec["content_hash"] = bundle.content_hash(spec)
    (old / "bundle.json").write_text(json.dumps(spec))
    (old / "reference.parquet").unlink()
    raw = write_jsonl(tmp_path / "x.jsonl", jsonl_records(small_examples(6)))
    summary = tmp_path / "s.json"
    score.main(
        ["--bundle", str(old), "--input", str(raw), "--output", str(tmp_path / "o.csv")]
        + ["--summary", str(summary), "--resamples", "20"]
    )
    got = json.loads(summary.read_text())
    cross = got["estimated_prior"]["cross_check"]
    assert cross["available"] is False and "not available" in cross["reason"]
    assert got["drift"]["score_shift_ks"] is None and got["drift"]["p_value"] is None
    assert any("too few" in w for w in got["warnings"])  # six examples: a warning, no crash
