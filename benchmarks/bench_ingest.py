"""Ingest benchmark: peak memory is bounded by a chunk, and throughput next to pyarrow alone.

Writes raw long-layout data (Parquet and CSV, D = 700 by default) at 1x and 4x
size with numpy, runs ``python -m stages.ingest`` on each in a subprocess, and
records the child's peak RSS (``ru_maxrss`` from ``os.wait4``), wall time, raw
MB/s and sentence rows/s. As a reference it times ``pq.write_table`` of the
already-built canonical table (what pyarrow alone needs to write the output).

    python benchmarks/bench_ingest.py --examples 300          # ~2-3 minutes on 2 cores
    python benchmarks/bench_ingest.py --formats parquet --examples 1000
    python benchmarks/bench_ingest.py --formats parquet --scales 4 --files 8 --workers 1 2

``--files N`` splits the raw data into N files and ``--workers 1 2 ...`` runs ingest
with each ``ingest.workers`` value on the same files, recording the speedup over
one worker and whether the dataset is byte-identical to the one-worker run.

Results go to benchmarks/results/ingest.json and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]

from dsprior import contract  # noqa: E402


def write_raw(
    path: Path,
    *,
    fmt: str,
    examples: int,
    dim: int,
    seed: int,
    min_rows: int,
    max_rows: int,
    first_id: int = 0,
) -> int:
    """Write ``examples`` long-layout examples chunk by chunk; return the sentence row count."""
    rng = np.random.default_rng(seed)
    names = ["example_id", "group", "label"] + [f"f{j}" for j in range(dim)]
    rows_total = 0
    writer: Any = None
    per_chunk = 64
    for lo in range(0, examples, per_chunk):
        ids = first_id + np.arange(lo, min(lo + per_chunk, examples))
        counts = rng.integers(min_rows, max_rows + 1, size=len(ids))
        n = int(counts.sum())
        features = rng.standard_normal((n, dim), dtype=np.float32)
        columns = [
            pa.array(np.repeat([f"ex{i:07d}" for i in ids], counts)),
            pa.array(np.repeat([f"g{i // 4:06d}" for i in ids], counts)),
            pa.array(np.repeat((ids % 3 == 0).astype(np.int8), counts)),
        ] + [pa.array(features[:, j]) for j in range(dim)]
        table = pa.Table.from_arrays(columns, names=names)
        if writer is None:
            writer = (
                pq.ParquetWriter(path, table.schema, compression="zstd")
                if fmt == "parquet"
                else pacsv.CSVWriter(str(path), table.schema)
            )
        writer.write_table(table)
        rows_total += n
    writer.close()
    return rows_total


def run_ingest(
    raw: Path, work: Path, *, chunk_rows: int, dtype: str, workers: int = 1
) -> dict[str, Any]:
    """Run the stage in a child process; return its metrics plus peak RSS and wall time."""
    params = work / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "ingest": {
                    **yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"],
                    "on_error": "fail",
                    "dtype": dtype,
                    "chunk_rows": chunk_rows,
                    "workers": workers,
                    "sources": {"bench": {"path": str(raw), "negative_rate": 1.0}},
                }
            }
        )
    )
    out, metrics = work / "dataset", work / "ingest.json"
    cmd = [sys.executable, "-m", "stages.ingest", "--params", str(params), "--out", str(out)]
    cmd += ["--rejects", str(work / "rejects.jsonl"), "--metrics", str(metrics)]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(
            f"ingest failed on {raw}: {metrics.read_text() if metrics.exists() else ''}"
        )
    result = json.loads(metrics.read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["wall_s"] = wall
    # CPU of the stage and its waited-for worker processes: the work, whatever the load.
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def time_pyarrow_write(dataset: Path, work: Path) -> dict[str, float]:
    """Seconds pyarrow alone needs to write the canonical table already built in memory."""
    table = pa.concat_tables(pq.read_table(p) for p in contract.shard_paths(dataset))
    target = work / "pyarrow_only.parquet"
    start = time.perf_counter()
    pq.write_table(table, target, row_group_size=128, **contract.writer_options())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": target.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="examples at 1x")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"])
    parser.add_argument("--dim", type=int, default=contract.DEFAULT_DIM)
    parser.add_argument("--min-rows", type=int, default=10)
    parser.add_argument("--max-rows", type=int, default=100)
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: params.yaml")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--files", type=int, default=1, help="raw files the data is split into")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="ingest.workers values")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    chunk_rows = args.chunk_rows or int(
        yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"]["chunk_rows"]
    )

    results = []
    work_root = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        for fmt in args.formats:
            for scale in args.scales:
                work = work_root / f"{fmt}-{scale}x"
                work.mkdir()
                n_examples = args.examples * scale
                print(f"writing {fmt} {scale}x ({n_examples} examples) ...", file=sys.stderr)
                if args.files == 1:
                    raw = work / f"raw.{fmt}"
                    paths = [raw]
                else:
                    raw = work / "raw"
                    raw.mkdir()
                    paths = [raw / f"part-{k:03d}.{fmt}" for k in range(args.files)]
                for k, path in enumerate(paths):
                    write_raw(
                        path,
                        fmt=fmt,
                        examples=n_examples // len(paths),
                        dim=args.dim,
                        seed=args.seed + scale + 1000 * k,
                        min_rows=args.min_rows,
                        max_rows=args.max_rows,
                        first_id=k * n_examples,
                    )
                raw_mb = sum(path.stat().st_size for path in paths) / 1e6
                baseline: dict[str, Any] = {}
                for workers in args.workers:
                    print(f"ingesting {fmt} {scale}x, {workers} workers ...", file=sys.stderr)
                    out = work / "dataset"
                    shutil.rmtree(out, ignore_errors=True)
                    m = run_ingest(raw, work, chunk_rows=chunk_rows, dtype=args.dtype,
                                   workers=workers)  # fmt: skip
                    shards = {q.name: q.read_bytes() for q in contract.shard_paths(out)}
                    baseline.setdefault("shards", shards)
                    baseline.setdefault("wall_s", m["wall_s"])
                    ref = time_pyarrow_write(out, work)
                    results.append(
                        {
                            "format": fmt,
                            "scale": scale,
                            "files": len(paths),
                            "workers": workers,
                            "speedup_vs_first_workers": baseline["wall_s"] / m["wall_s"],
                            "identical_to_first_workers": shards == baseline["shards"],
                            **_row(m, ref, raw_mb),
                        }
                    )
                del baseline
                shutil.rmtree(work)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    _report(args, results, chunk_rows)


def _row(m: dict[str, Any], ref: dict[str, float], raw_mb: float) -> dict[str, Any]:
    return {
        "examples": m["examples_written"],
        "rows": m["rows_read"],
        "raw_mb": raw_mb,
        "dataset_mb": m["bytes_written"] / 1e6,
        "ingest_s": m["wall_s"],
        "ingest_mb_per_s": raw_mb / m["wall_s"],
        "ingest_rows_per_s": m["rows_read"] / m["wall_s"],
        "peak_rss_mb": m["peak_rss_mb"],
        "cpu_s": m["cpu_s"],
        "load_1m": os.getloadavg()[0],
        "pyarrow_write_s": ref["seconds"],
        "pyarrow_write_rows_per_s": m["rows_read"] / ref["seconds"],
        "pyarrow_write_raw_mb_per_s": raw_mb / ref["seconds"],
    }


def _report(args: argparse.Namespace, results: list[dict[str, Any]], chunk_rows: int) -> None:
    ratios = {}
    for fmt in args.formats:
        peaks = {
            r["scale"]: r["peak_rss_mb"]
            for r in results
            if r["format"] == fmt and r["workers"] == args.workers[0]
        }
        lo, hi = min(peaks), max(peaks)
        ratios[fmt] = peaks[hi] / peaks[lo]
    summary = {
        "dim": args.dim,
        "dtype": args.dtype,
        "chunk_rows": chunk_rows,
        "rows_per_example": [args.min_rows, args.max_rows],
        "cpu_count": os.cpu_count(),
        "runs": results,
        "peak_rss_ratio_largest_vs_smallest": ratios,
        "bounded_memory": all(r < 1.5 for r in ratios.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")

    print(
        "| format | scale | files | workers | speedup | identical | examples | rows | raw MB "
        "| ingest s | ingest MB/s | ingest rows/s | peak RSS MB | pyarrow write s | pyarrow rows/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['format']} | {r['scale']}x | {r['files']} | {r['workers']} "
            f"| {r['speedup_vs_first_workers']:.2f} | {r['identical_to_first_workers']} "
            f"| {r['examples']} | {r['rows']} | {r['raw_mb']:.0f} "
            f"| {r['ingest_s']:.1f} | {r['ingest_mb_per_s']:.1f} | {r['ingest_rows_per_s']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['pyarrow_write_s']:.2f} "
            f"| {r['pyarrow_write_rows_per_s']:.0f} |"
        )
    for fmt, ratio in ratios.items():
        print(
            f"\n{fmt}: peak RSS {max(args.scales)}x / {min(args.scales)}x = {ratio:.2f} (bound: < 1.5)"
        )
    if not summary["bounded_memory"] or not all(r["identical_to_first_workers"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
