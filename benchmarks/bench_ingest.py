"""Ingest benchmark: peak memory is bounded by a chunk, and throughput next to pyarrow alone.

Writes raw long-layout data (Parquet and CSV, D = 700 by default) at 1x and 4x
size with numpy, runs ``python -m stages.ingest`` on each in a subprocess, and
records the child's peak RSS (``ru_maxrss`` from ``os.wait4``), wall time, raw
MB/s and sentence rows/s. The reference is pyarrow alone doing the same I/O in a
fresh process (``pyarrow_baseline``): reading the same raw files, building the
canonical table and writing it with the dataset's writer options, with no
validation; ``ingest_vs_pyarrow`` is its wall time over ingest's (1.0: as fast).
Ingest and the baseline run in alternating rounds (``--rounds``), best of each.

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
import hashlib
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

from dsprior import contract
from tools.measure import provenance
from tools.scratch import ROOT


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
    try:
        usage = run_child(cmd, f"ingest on {raw}")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: {metrics.read_text() if metrics.exists() else ''}") from None
    # CPU (cpu_s) counts the stage and its waited-for worker processes: the work, whatever the load.
    return {**json.loads(metrics.read_text()), **usage}


def pyarrow_baseline(
    paths: list[Path],
    out: Path,
    *,
    fmt: str,
    dim: int,
    dtype: str,
    chunk_rows: int,
    row_group_size: int,
    shard_size: int,
    source: str = "bench",
    negative_rate: float = 1.0,
) -> None:
    """pyarrow alone doing ingest's I/O, without validation: the ceiling ingest is measured by.

    Reads every column of the raw long-layout files in batches of ``chunk_rows`` (Parquet:
    ``ParquetFile.iter_batches``; CSV: ``pyarrow.csv.open_csv``), turns each batch's feature
    columns into one row-major array in the output dtype, cuts it into examples at each
    change of example_id (an example may span batches), and writes the canonical table
    (one row per example, ``contract.encode_features``) with ``contract.writer_options()``
    in row groups of ``row_group_size`` and shards of ``shard_size`` examples, as
    ``DatasetWriter`` does.
    """
    schema = contract.dataset_schema(dim, dtype)
    target = contract.numpy_dtype(dtype)
    out.mkdir(parents=True, exist_ok=True)
    buffer: dict[str, list] = {"ids": [], "groups": [], "labels": [], "rows": []}
    state = {"writer": None, "shard": -1, "in_shard": 0}
    pending: list[Any] | None = None  # [id, group, label, [row blocks]] of an open example

    def add(example: list[Any]) -> None:
        blocks = example[3]
        buffer["ids"].append(example[0])
        buffer["groups"].append(example[1])
        buffer["labels"].append(example[2])
        buffer["rows"].append(blocks[0] if len(blocks) == 1 else np.concatenate(blocks))
        room = shard_size - state["in_shard"] if state["writer"] is not None else shard_size
        if len(buffer["ids"]) >= min(row_group_size, room if room > 0 else shard_size):
            flush()

    def flush() -> None:
        n = len(buffer["ids"])
        if n == 0:
            return
        if state["writer"] is None or state["in_shard"] >= shard_size:
            if state["writer"] is not None:
                state["writer"].close()
            state["shard"] += 1
            state["in_shard"] = 0
            path = out / f"part-{state['shard']:05d}.parquet"
            state["writer"] = pq.ParquetWriter(path, schema, **contract.writer_options())
        columns = [
            pa.array(buffer["ids"], pa.string()),
            pa.array(buffer["groups"], pa.string()),
            pa.array(buffer["labels"], pa.int8()),
            pa.array([source] * n, pa.string()),
            pa.array(np.full(n, negative_rate)),
            pa.nulls(n, pa.int8()),
            pa.array([r.shape[0] for r in buffer["rows"]], pa.int32()),
            contract.encode_features(buffer["rows"], dtype),
        ]
        state["writer"].write_table(pa.Table.from_arrays(columns, schema=schema))
        state["in_shard"] += n
        for values in buffer.values():
            values.clear()

    for path in paths:
        if fmt == "parquet":
            # The reader options ingest uses (memory follows the batch, not the row group).
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            batches: Any = parquet.iter_batches(batch_size=chunk_rows)
        else:
            batches = pacsv.open_csv(
                path, read_options=pacsv.ReadOptions(block_size=chunk_rows * 1024)
            )
        for batch in batches:
            names = batch.schema.names
            features = batch.select([n for n in names if n not in ("example_id", "group", "label")])
            rows = np.asarray(features.to_tensor()).astype(target)
            ids = batch.column("example_id").to_numpy(zero_copy_only=False)
            groups = batch.column("group").to_numpy(zero_copy_only=False)
            labels = batch.column("label").to_numpy(zero_copy_only=False)
            change = np.ones(len(ids), bool)
            change[1:] = ids[1:] != ids[:-1]
            starts = np.flatnonzero(change).tolist() + [len(ids)]
            for s, e in zip(starts[:-1], starts[1:], strict=True):
                if pending is not None and ids[s] == pending[0]:
                    pending[3].append(rows[s:e])
                    continue
                if pending is not None:
                    add(pending)
                pending = [ids[s], groups[s], int(labels[s]), [rows[s:e]]]
            if pending is not None:  # it may go on in the next batch: own its rows
                pending[3] = [np.array(block) for block in pending[3]]
    if pending is not None:
        add(pending)
    flush()
    if state["writer"] is not None:
        state["writer"].close()


def run_child(cmd: list[str], what: str) -> dict[str, float]:
    """Run a command in a fresh process; its wall time, CPU time and peak RSS."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{what} failed")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
    }


def run_baseline(
    paths: list[Path], out: Path, *, fmt: str, dim: int, dtype: str, chunk_rows: int
) -> dict[str, float]:
    """``pyarrow_baseline`` in a fresh process (this script with ``--baseline``)."""
    ingest = yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--baseline", str(out)]
    cmd += ["--formats", fmt, "--dim", str(dim), "--dtype", dtype, "--chunk-rows", str(chunk_rows)]
    cmd += ["--row-group-size", str(ingest["row_group_size"])]
    cmd += ["--shard-size", str(ingest["shard_size"]), "--raw", *map(str, paths)]
    return run_child(cmd, f"pyarrow baseline on {paths[0]}")


def shard_digests(dataset: Path) -> list[str]:
    """sha256 of each shard file, read in blocks.

    The parent holds digests, never datasets: a child's ``ru_maxrss`` starts from its
    parent's resident size at the fork, so a large parent inflates every peak measured.
    """
    digests = []
    for path in contract.shard_paths(dataset):
        with open(path, "rb") as f:
            digests.append(hashlib.file_digest(f, "sha256").hexdigest())
    return digests


def content_digest(dataset: Path) -> str:
    """sha256 of every example's id, group, label, n_rows and features, a batch at a time."""
    columns = [contract.EXAMPLE_ID, contract.GROUP, contract.LABEL, contract.N_ROWS]
    columns.append(contract.FEATURES)
    h = hashlib.sha256()
    for path in contract.shard_paths(dataset):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=128, columns=columns):
            for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                h.update(repr(values[:-1]).encode() + values[-1])
    return h.hexdigest()


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
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best is kept")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.json")
    parser.add_argument("--seed", type=int, default=0)
    # The child process of run_baseline: pyarrow_baseline(--raw ...) into the folder given.
    parser.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=Path, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--row-group-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shard-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline is not None:
        pyarrow_baseline(args.raw, args.baseline, fmt=args.formats[0], dim=args.dim,
                         dtype=args.dtype, chunk_rows=args.chunk_rows,
                         row_group_size=args.row_group_size, shard_size=args.shard_size)  # fmt: skip
        return
    chunk_rows = args.chunk_rows or int(
        yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"]["chunk_rows"]
    )

    results = []
    load_before = os.getloadavg()
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
                results += _measure(args, fmt, scale, raw, paths, work, raw_mb, chunk_rows)
                shutil.rmtree(work)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    _report(args, results, chunk_rows, [load_before, os.getloadavg()])


def _measure(
    args: argparse.Namespace,
    fmt: str,
    scale: int,
    raw: Path,
    paths: list[Path],
    work: Path,
    raw_mb: float,
    chunk_rows: int,
) -> list[dict[str, Any]]:
    """Ingest (each workers value) and the pyarrow baseline in alternating rounds, best of each."""
    best: dict[Any, dict[str, Any]] = {}
    shards: dict[int, list[str]] = {}
    same = True
    for round_ in range(args.rounds):
        runs: list[Any] = [*args.workers, "pyarrow"]
        for what in runs if round_ % 2 == 0 else runs[::-1]:
            print(f"{fmt} {scale}x round {round_ + 1}: {what} ...", file=sys.stderr)
            out = work / f"dataset-{what}"
            shutil.rmtree(out, ignore_errors=True)
            if what == "pyarrow":
                m = run_baseline(paths, out, fmt=fmt, dim=args.dim, dtype=args.dtype,
                                 chunk_rows=chunk_rows)  # fmt: skip
            else:
                m = run_ingest(raw, work, chunk_rows=chunk_rows, dtype=args.dtype, workers=what)
                shutil.rmtree(out, ignore_errors=True)
                (work / "dataset").rename(out)
                shards.setdefault(what, shard_digests(out))
            m["load_1m"] = os.getloadavg()[0]
            if what not in best or m["wall_s"] < best[what]["wall_s"]:
                best[what] = m
        digests = [content_digest(work / f"dataset-{w}") for w in (args.workers[0], "pyarrow")]
        same = same and digests[0] == digests[1]
    ref, first = best["pyarrow"], args.workers[0]
    return [
        {
            "format": fmt,
            "scale": scale,
            "files": len(paths),
            "workers": workers,
            "rounds": args.rounds,
            "speedup_vs_first_workers": best[first]["wall_s"] / best[workers]["wall_s"],
            "identical_to_first_workers": shards[workers] == shards[first],
            "pyarrow_baseline_same_table": same,
            **_row(best[workers], ref, raw_mb),
        }
        for workers in args.workers
    ]


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
        "load_1m": m["load_1m"],
        "pyarrow_s": ref["wall_s"],
        "pyarrow_cpu_s": ref["cpu_s"],
        "pyarrow_peak_rss_mb": ref["peak_rss_mb"],
        "pyarrow_rows_per_s": m["rows_read"] / ref["wall_s"],
        "ingest_vs_pyarrow": ref["wall_s"] / m["wall_s"],
    }


def _report(
    args: argparse.Namespace, results: list[dict[str, Any]], chunk_rows: int, load: list
) -> None:
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
        "load_average_before_after": [list(x) for x in load],
        "baseline": "pyarrow_baseline: the same raw input read, canonical table built and "
        "written with contract.writer_options(), no validation; fresh processes, best of "
        f"{args.rounds} alternating rounds",
        "runs": results,
        "peak_rss_ratio_largest_vs_smallest": ratios,
        "bounded_memory": all(r < 1.5 for r in ratios.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary.update(provenance())
    args.out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")

    print(
        "| format | scale | files | workers | speedup | identical | examples | rows | raw MB "
        "| ingest s | ingest rows/s | peak RSS MB | pyarrow alone s | pyarrow rows/s "
        "| ingest / pyarrow |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['format']} | {r['scale']}x | {r['files']} | {r['workers']} "
            f"| {r['speedup_vs_first_workers']:.2f} | {r['identical_to_first_workers']} "
            f"| {r['examples']} | {r['rows']} | {r['raw_mb']:.0f} "
            f"| {r['ingest_s']:.2f} | {r['ingest_rows_per_s']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['pyarrow_s']:.2f} "
            f"| {r['pyarrow_rows_per_s']:.0f} | {r['ingest_vs_pyarrow']:.2f} |"
        )
    for fmt, ratio in ratios.items():
        print(
            f"\n{fmt}: peak RSS {max(args.scales)}x / {min(args.scales)}x = {ratio:.2f} (bound: < 1.5)"
        )
    print(f"load average before / after: {load[0]} / {load[1]}")
    ok = all(r["identical_to_first_workers"] and r["pyarrow_baseline_same_table"] for r in results)
    if not summary["bounded_memory"] or not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
