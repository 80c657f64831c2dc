"""Factories of raw input files (CSV, CSV.gz, Parquet, JSON Lines) for the reader and stage tests,
and the readers' tests' way to read one back (``read_all``) and check its reject."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from dsprior.rawio import Example, RawReader, Reject, SourceSpec

# params.yaml's ingest section without its sources: the one place the defaults live.
INGEST_PARAMS = {
    k: v
    for k, v in yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())[
        "ingest"
    ].items()
    if k != "sources"
} | {"workers": 1}  # the serial path unless a test asks for workers (params.yaml says auto)

DIM = 8
NAMES = ["example_id", "group", "label", "true_label"] + [f"f{j}" for j in range(DIM)]


def make_examples(n: int = 6, *, prefix: str = "e", seed: int = 0) -> list[dict[str, Any]]:
    """Tiny examples with 1-4 rows each, both labels, a few groups; values exact in float16."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        rows = rng.integers(-64, 64, size=(int(rng.integers(1, 5)), DIM)) / 8.0
        out.append(
            {
                "example_id": f"{prefix}{i}",
                "group": f"g{i // 2}",
                "label": i % 2,
                "true_label": (i // 2) % 2,
                "rows": rows,
            }
        )
    return out


def long_rows(examples: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [ex["example_id"], ex["group"], ex["label"], ex["true_label"], *map(float, row)]
        for ex in examples
        for row in ex["rows"]
    ]


def write_csv(path: Path, rows: list[list[Any]], *, header: list[str] | None = NAMES) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[list[Any]], names: list[str] = NAMES) -> Path:
    table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])
    pq.write_table(table, path, row_group_size=5)
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def jsonl_records(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**ex, "rows": ex["rows"].tolist()} for ex in examples]


def read_all(path: Path, *, chunk_rows: int = 3, **spec: Any) -> list[Example | Reject]:
    source = SourceSpec.from_params("src", {"path": str(path), "negative_rate": 1.0, **spec})
    return list(RawReader(chunk_rows=chunk_rows, max_abs=65504.0).read_source(source))


def only_reject(items: list[Example | Reject]) -> Reject:
    rejects = [i for i in items if isinstance(i, Reject)]
    assert len(rejects) == 1, rejects
    return rejects[0]


def assert_message(reject: Reject, *parts: str) -> None:
    for part in parts:
        assert part in reject.message, (part, reject.message)


def lose_example(monkeypatch: Any, example_id: str) -> None:
    """Make the reader silently drop ``example_id`` (a CSV or Parquet example): the bug
    that reconciliation, counting what was read from the files, must catch."""
    original = RawReader._flush

    def lossy(self: RawReader, state: Any) -> Any:
        items = list(original(self, state))
        if items and getattr(items[0], "example_id", None) == example_id:
            return iter(())
        return iter(items)

    monkeypatch.setattr(RawReader, "_flush", lossy)
