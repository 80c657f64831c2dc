"""Scoring benchmark: examples/s of ``stages.score`` end to end, and where the time goes.

Builds a bundle around an untrained CNN with the default train params (filter
heights 5-10, 125 filters; the weights do not change the cost), writes
``--examples`` unlabelled examples of D = 700 and 10-100 rows as long-layout
Parquet, then times, each in the same process after one warm-up batch:

- ``read``: the raw reader alone (validation included), no model;
- ``model``: length-bucketed batches through the model, from memory;
- ``score``: ``scoring.score_file`` end to end (read, validate, score, write Parquet).

    python benchmarks/bench_score.py --examples 1000        # ~1 minute on 2 cores

Results go to benchmarks/results/score.json and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dsprior import bundle, runtime, scoring
from dsprior.rawio import RawReader
from tools.measure import provenance
from tools.scratch import ROOT

runtime.quiet_tensorflow()
import tensorflow as tf  # noqa: E402

from dsprior import cnn  # noqa: E402


def write_raw(
    path: Path, *, examples: int, dim: int, min_rows: int, max_rows: int, seed: int
) -> int:
    """Long-layout Parquet, float32 feature columns; returns the sentence row count."""
    rng = np.random.default_rng(seed)
    names = ["example_id"] + [f"f{j}" for j in range(dim)]
    writer = None
    total = 0
    for lo in range(0, examples, 64):
        ids, blocks = [], []
        for i in range(lo, min(lo + 64, examples)):
            n = int(rng.integers(min_rows, max_rows + 1))
            ids += [f"ex{i:07d}"] * n
            blocks.append(rng.normal(size=(n, dim)).astype(np.float32))
        features = np.concatenate(blocks)
        total += len(features)
        table = pa.Table.from_arrays(
            [pa.array(ids)] + [pa.array(features[:, j]) for j in range(dim)], names=names
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return total


def make_bundle(target: Path, *, dim: int, filter_sizes: list[int], filters: int) -> None:
    model = cnn.build_cnn(dim=dim, filter_sizes=filter_sizes, filters=filters, seed=0)
    model_path = target.parent / "model.keras"
    model.save(model_path)
    spec = bundle.build_spec(
        train_record={
            "dim": dim,
            "beta": 0.02,
            "params": {"filter_sizes": filter_sizes, "filters": filters},
            "min_rows": max(filter_sizes),
        },
        metrics={
            "threshold": 1 / 11,
            "prior": 0.0099,
            "beta": 0.02,
            "cost": {"false_positive": 1, "false_negative": 10},
        },
        evaluate_params={},
        dataset_dim=dim,
        dataset_dtype="float16",
        model_sha256=bundle.file_sha256(model_path),
    )
    bundle.write_bundle(target, model_path=model_path, spec=spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=700)
    parser.add_argument("--min-rows", type=int, default=10)
    parser.add_argument("--max-rows", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=125)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "score.json")
    args = parser.parse_args()
    filter_sizes = [5, 6, 7, 8, 9, 10]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = tmp / "raw.parquet"
        rows = write_raw(
            raw, examples=args.examples, dim=args.dim, min_rows=args.min_rows,
            max_rows=args.max_rows, seed=0,
        )  # fmt: skip
        make_bundle(tmp / "bundle", dim=args.dim, filter_sizes=filter_sizes, filters=args.filters)
        loaded = bundle.load_bundle(tmp / "bundle")
        spec = scoring.input_spec(raw)

        start = time.perf_counter()
        arrays = [
            item.rows
            for item in RawReader(dim=args.dim, max_abs=65504.0, required_roles=("example_id",))
            .read_source(spec)
        ]  # fmt: skip
        read_s = time.perf_counter() - start

        scoring.score_arrays(
            loaded.model, arrays[: args.batch_size], dim=args.dim, batch_size=args.batch_size
        )  # fmt: skip  (warm-up: traces the graph)
        start = time.perf_counter()
        scoring.score_arrays(loaded.model, arrays, dim=args.dim, batch_size=args.batch_size)
        model_s = time.perf_counter() - start
        del arrays

        start = time.perf_counter()
        summary = scoring.score_file(
            loaded, raw, tmp / "scores.parquet", batch_size=args.batch_size, progress=False
        )
        score_s = time.perf_counter() - start

    result = {
        "examples": args.examples,
        "sentence_rows": rows,
        "dim": args.dim,
        "rows_per_example": [args.min_rows, args.max_rows],
        "batch_size": args.batch_size,
        "filter_sizes": filter_sizes,
        "filters": args.filters,
        "raw_format": "parquet (long layout, float32 features)",
        "read_examples_per_s": round(args.examples / read_s, 1),
        "model_examples_per_s": round(args.examples / model_s, 1),
        "score_examples_per_s": round(summary.examples_kept / score_s, 1),
        "score_rows_per_s": round(rows / score_s, 1),
        "seconds": {
            "read": round(read_s, 2),
            "model": round(model_s, 2),
            "score": round(score_s, 2),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
        },
    }
    runtime.write_json(args.out, {**result, **provenance()})
    print("| stage | examples/s | seconds |\n|---|---|---|")
    for name in ("read", "model", "score"):
        print(f"| {name} | {result[f'{name}_examples_per_s']} | {result['seconds'][name]} |")
    print(json.dumps(result["machine"]))


if __name__ == "__main__":
    main()
