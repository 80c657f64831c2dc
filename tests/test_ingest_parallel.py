"""Parallel ingest (ingest.workers > 1) gives the serial run's bytes, metrics and rejects."""

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

from dsprior import contract
from dsprior.ingest import IngestConfig, ingest_sources, parallel
from stages import ingest
from tests.rawfiles import INGEST_PARAMS

DIM = 8
NAMES = ["example_id", "group", "label", "true_label"] + [f"f{j}" for j in range(DIM)]


def examples(ids: list[str], *, seed: int) -> list[list[Any]]:
    """Long-layout rows of the given examples: 1-4 rows each, values exact in float16."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, example_id in enumerate(ids):
        for row in rng.integers(-64, 64, size=(int(rng.integers(1, 5)), DIM)) / 8.0:
            rows.append([example_id, f"g{k // 2}", k % 2, (k // 3) % 2, *map(float, row)])
    return rows


def write_parquet(path: Path, rows: list[list[Any]], names: list[str] = NAMES) -> Path:
    table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])
    pq.write_table(table, path, row_group_size=4)
    return path


def write_csv(path: Path, rows: list[list[Any]], names: list[str] = NAMES) -> Path:
    lines = [",".join(names)] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path: Path, rows: list[list[Any]], extra: list[str] = ()) -> Path:
    """One example per line from long rows (consecutive rows of one id), plus raw ``extra`` lines."""
    records: dict[str, dict[str, Any]] = {}
    for r in rows:
        rec = records.setdefault(
            r[0], {"example_id": r[0], "group": r[1], "label": r[2], "rows": []}
        )
        rec["rows"].append(list(r[4:]))
    lines = [json.dumps(rec) for rec in records.values()] + list(extra)
    path.write_text("\n".join(lines) + "\n")
    return path


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


def clean_sources(root: Path) -> dict[str, Any]:
    """Two sources, seven files of three formats; shards of 5 cut across files."""
    pool, prod = root / "pool", root / "prod"
    pool.mkdir(parents=True)
    prod.mkdir(parents=True)
    for k in range(4):
        write_parquet(pool / f"p{k}.parquet", examples(ids(f"p{k}_", 3 + k), seed=k))
    write_csv(prod / "a.csv", examples(ids("c", 6), seed=10))
    write_jsonl(prod / "b.jsonl", examples(ids("j", 4), seed=11))
    write_parquet(prod / "c.parquet", examples(ids("q", 7), seed=12))
    return {
        "pool": {"path": str(pool), "negative_rate": 0.1},
        "prod": {"path": str(prod), "negative_rate": 1.0},
    }


def messy_sources(root: Path) -> dict[str, Any]:
    """Bad examples, cross-file duplicates of every kind, a truncated file, a narrower file."""
    first, second = root / "first", root / "second"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    # 0: truncated before any row is readable, so the dimension comes from the next file.
    broken = write_parquet(first / "a0.parquet", examples(ids("z", 30), seed=0))
    broken.write_bytes(broken.read_bytes()[:200])
    rows = examples(ids("a", 8), seed=1)
    rows[0][2] = 7  # a00: bad label
    write_csv(first / "a1.csv", rows)
    # 2: a01 again (duplicate that alone looks valid), a02 again with a bad value (the
    # duplicate wins), a03 twice non-contiguously (both copies are cross-file duplicates),
    # then a bad value in a fresh example.
    dup = examples(["b0", "a01", "b1", "a02", "a03", "b2", "a03", "b3"], seed=2)
    dup[[r[0] for r in dup].index("a02")][6] = float("nan")
    dup[[r[0] for r in dup].index("b3")][5] = 1e6  # beyond float16
    write_parquet(first / "a2.parquet", dup)
    # 3: JSONL with an empty example whose id is a duplicate (reported as empty), bad JSON,
    # rows that are not a list (no id claimed), and a fresh good example.
    write_jsonl(
        second / "b0.jsonl",
        examples(["c0", "c1"], seed=3),
        extra=[
            json.dumps({"example_id": "a04", "group": "g", "label": 0, "rows": []}),
            '{"example_id": "c2", "rows": [[1, 2',
            json.dumps({"example_id": "a05", "group": "g", "label": 0, "rows": "x"}),
            json.dumps({"example_id": "c3", "group": "g", "label": 1, "rows": [[0.5] * DIM]}),
        ],
    )
    # 4: a narrower file: every example a dim mismatch (message names the file that set dim).
    narrow = [r[:-2] for r in examples(ids("n", 3), seed=4)]
    write_csv(second / "b1.csv", narrow, NAMES[:-2])
    # 5: a clean file after all that.
    write_parquet(second / "b2.parquet", examples(ids("d", 5), seed=5))
    return {
        "first": {"path": str(first), "negative_rate": 0.2},
        "second": {"path": str(second), "negative_rate": 1.0},
    }


def run(tmp: Path, sources: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Run the stage's main(); return exit code, metrics, rejects text and shard bytes."""
    tmp.mkdir(parents=True, exist_ok=True)
    params = tmp / "params.yaml"
    settings = {**INGEST_PARAMS, "row_group_size": 2, "shard_size": 5, "chunk_rows": 3, **options}
    params.write_text(yaml.safe_dump({"ingest": {**settings, "sources": sources}}, sort_keys=False))
    code = 0
    try:
        ingest.main(
            ["--params", str(params), "--out", str(tmp / "dataset"),
             "--rejects", str(tmp / "rejects.jsonl"), "--metrics", str(tmp / "ingest.json")]
        )  # fmt: skip
    except SystemExit as exc:
        code = exc.code
    dataset = tmp / "dataset"
    return {
        "code": code,
        "metrics": json.loads((tmp / "ingest.json").read_text()),
        "rejects": (tmp / "rejects.jsonl").read_text(),
        "shards": {p.name: p.read_bytes() for p in sorted(dataset.iterdir())}
        if dataset.exists()
        else None,
    }


@pytest.fixture
def parallel_calls(monkeypatch) -> list[int]:
    """Counts calls of the parallel path, so a silent fall-back to serial fails the test."""
    calls: list[int] = []
    original = parallel.ingest_parallel

    def spy(config, out_dir, **kwargs):
        calls.append(config.workers)
        return original(config, out_dir, **kwargs)

    monkeypatch.setattr(parallel, "ingest_parallel", spy)
    return calls


def assert_same(serial: dict[str, Any], parallel: dict[str, Any]) -> None:
    assert parallel["code"] == serial["code"]
    assert parallel["metrics"] == serial["metrics"]
    assert parallel["rejects"] == serial["rejects"]
    assert parallel["shards"] is not None or serial["shards"] is None
    if serial["shards"] is not None:
        assert list(parallel["shards"]) == list(serial["shards"])
        for name, data in serial["shards"].items():
            assert parallel["shards"][name] == data, name


@pytest.mark.parametrize("workers", [2, 3])
def test_clean_data_is_byte_identical(tmp_path: Path, workers: int, parallel_calls) -> None:
    sources = clean_sources(tmp_path / "raw")
    serial = run(tmp_path / "serial", sources)
    parallel = run(tmp_path / f"w{workers}", sources, workers=workers)
    assert parallel_calls == [workers]
    assert serial["code"] == 0 and serial["metrics"]["examples_written"] == 3 + 4 + 5 + 6 + 17
    assert len(serial["shards"]) == 7  # shards of 5 cut across files
    assert_same(serial, parallel)
    order = contract.read_metadata(tmp_path / f"w{workers}" / "dataset")["example_id"]
    assert (
        order.to_pylist()
        == contract.read_metadata(tmp_path / "serial" / "dataset")["example_id"].to_pylist()
    )
    assert not list((tmp_path / f"w{workers}").rglob(".spill"))  # temporary files removed


@pytest.mark.parametrize("workers", [2, 3])
def test_quarantine_with_bad_examples_and_duplicates(
    tmp_path: Path, workers: int, parallel_calls
) -> None:
    sources = messy_sources(tmp_path / "raw")
    serial = run(tmp_path / "serial", sources, on_error="quarantine")
    parallel = run(tmp_path / "par", sources, on_error="quarantine", workers=workers)
    assert parallel_calls == [workers]
    rejects = [json.loads(line) for line in serial["rejects"].splitlines()]
    by_id = {}
    for r in rejects:
        by_id.setdefault(r["example_id"], []).append(r["reason"])
    # The cases this data is meant to cover really occur in the serial run.
    assert by_id["a01"] == ["duplicate_id"] and by_id["a02"] == ["duplicate_id"]
    assert by_id["a03"] == ["duplicate_id", "duplicate_id"]
    assert by_id["a04"] == ["empty_example"] and by_id["a05"] == ["wrong_columns"]
    assert by_id["a00"] == ["bad_label"] and by_id["b3"] == ["out_of_range"]
    assert by_id["n00"] == ["dim_mismatch"] and "a1.csv" in next(
        r["message"] for r in rejects if r["reason"] == "dim_mismatch"
    )
    assert rejects[0]["reason"] == "unreadable_file"
    assert serial["code"] == 0 and serial["metrics"]["reconciled"]
    assert_same(serial, parallel)


@pytest.mark.parametrize("workers", [2, 3])
def test_fail_mode_stops_at_the_same_example(tmp_path: Path, workers: int, parallel_calls) -> None:
    sources = messy_sources(tmp_path / "raw")
    serial = run(tmp_path / "serial", sources)
    parallel = run(tmp_path / "par", sources, workers=workers)
    assert serial["code"] == 1 and serial["shards"] is None
    assert "unreadable or truncated" in serial["metrics"]["error"]
    assert_same(serial, parallel)
    # Without the truncated and bad-label files, the first failure is a duplicate that the
    # file's own worker cannot see: only the parent's replay in file order finds it.
    Path(sources["first"]["path"], "a0.parquet").unlink()
    rows = examples(ids("a", 8), seed=1)
    write_csv(Path(sources["first"]["path"], "a1.csv"), rows)
    serial = run(tmp_path / "serial2", sources)
    parallel = run(tmp_path / "par2", sources, workers=workers)
    assert serial["code"] == 1 and "'a01': duplicate example_id" in serial["metrics"]["error"]
    assert_same(serial, parallel)
    assert not (tmp_path / "par2" / "dataset").exists()


def test_everything_rejected_gives_the_same_empty_dataset(tmp_path: Path, parallel_calls) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_parquet(folder / "a.parquet", examples(ids("a", 3), seed=0))
    bad = examples(ids("a", 3), seed=1)  # every example a duplicate of the first file's
    write_parquet(folder / "b.parquet", bad)
    gz = folder / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"example_id": "x", "rows": [[1, 2]]}\n')[:20])  # truncated
    sources = {"s": {"path": str(folder), "negative_rate": 1.0}}
    serial = run(tmp_path / "serial", sources, on_error="quarantine")
    parallel = run(tmp_path / "par", sources, on_error="quarantine", workers=2)
    # The truncated gzip fails before its first line: a whole-file reject, not an example.
    assert serial["metrics"]["examples_rejected"] == 3
    assert serial["metrics"]["files_rejected"] == 1 and serial["metrics"]["reconciled"]
    assert_same(serial, parallel)


def test_simulated_sources_use_every_worker_and_give_the_serial_bytes(
    tmp_path: Path, parallel_calls
) -> None:
    """A simulated source's parts are read by the workers like files (``ingest.workers:
    auto`` uses both cores on the default run), and the dataset is the serial run's."""
    real = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["generate"]
    simulation = {
        **real,
        "seed": 3,
        "dim": 5,
        "min_rows": 2,
        "max_rows": 5,
        "files_per_source": 3,
        "sources": {
            "pool": {"examples": 120, "negative_rate": 0.3},
            "production": {"examples": 40, "negative_rate": 1.0},
        },
    }
    sources = {
        name: {"path": "dsprior/simulator.py", "format": "simulated", "negative_rate": rate}
        for name, rate in (("pool", 0.3), ("production", 1.0))
    }
    out = {}
    for workers in (1, 2):
        params = {**INGEST_PARAMS, "row_group_size": 4, "shard_size": 30, "workers": workers}
        config = IngestConfig.from_params({**params, "sources": sources}, simulation=simulation)
        result = ingest_sources(config, tmp_path / f"w{workers}")
        assert result.failure is None and result.written > 0
        out[workers] = {
            p.name: p.read_bytes() for p in sorted((tmp_path / f"w{workers}").iterdir())
        }
    assert parallel_calls == [2]
    assert len(out[1]) > 1 and out[1] == out[2]
