"""Training throughput at the reference settings: Parquet bucketed stream vs in-memory feeds.

Reference: D = 700, filter heights 5..10 x 125 maps, batch 60, lengths uniform in
10..100. Measures examples/s of full training steps for

- ``parquet_bucketed``: the train stage's pipeline (``TrainingStream``: Parquet
  row groups, length buckets, background prefetch);
- ``padded_baseline``: every example padded to 100 rows, in-memory arrays;
- ``memory_bucketed``: the same batches as ``parquet_bucketed``, pre-built in memory;
- ``parquet_bucketed_bf16``: the Parquet pipeline under ``mixed_bfloat16``;

plus achieved FLOP/s against a large float32 matmul, and the input pipeline's
peak resident memory at two dataset sizes (child processes, no model).
Writes ``benchmarks/results/train.json`` and prints a markdown table.

    python benchmarks/bench_train.py [--examples 1200] [--steps 19] [--rounds 2] [--skip-bf16]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dsprior import batches, contract, runtime
from tools.measure import provenance

DIM, SIZES, FILTERS, BATCH, MIN_LEN, MAX_LEN = 700, (5, 6, 7, 8, 9, 10), 125, 60, 10, 100
POOL = 300  # examples per length-sorting pool in the memory test, below both dataset sizes
RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def write_dataset(path: Path, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=n)
    with (
        runtime.atomic_directory(path) as tmp,
        contract.DatasetWriter(
            tmp, dim=DIM, dtype="float16", row_group_size=128, shard_size=2048
        ) as writer,
    ):
        for i, n_rows in enumerate(lengths):
            label = int(i % 3 == 0)
            rows = rng.standard_normal((n_rows, DIM), dtype=np.float32)
            writer.add(
                example_id=f"ex{i:06d}",
                group=f"g{i}",
                label=label,
                source="bench",
                negative_rate=1.0,
                rows=rows,
            )
    return lengths


def memory_child(dataset: str) -> None:
    """Stream one epoch of batches (no model) and print the peak RSS in MiB."""
    index = batches.index_dataset(dataset)
    reader = batches.BatchReader(index, np.arange(len(index.n_rows)), min_rows=max(SIZES))
    plan = batches.plan_batches(
        reader.row_group,
        reader.n_rows,
        batch_size=BATCH,
        pool_size=1200,
        rng=np.random.default_rng(0),
    )
    for _ in reader.iter_batches(plan):
        pass
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child would report its parent's
    status = Path("/proc/self/status").read_text().splitlines()
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024)


def peak_memory(dataset: Path) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(dataset)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def time_fit(model, make_dataset, *, steps: int, warmup: int) -> tuple[float, float]:
    """Wall and process-CPU seconds per step over ``steps`` steps after ``warmup`` steps.

    ``make_dataset(start, stop)`` gives the batches of steps ``start .. stop - 1``.
    CPU seconds (all threads of this process, the input pipeline's included) are
    robust to other processes competing for the cores; wall seconds are not.
    """
    model.fit(make_dataset(0, warmup), epochs=1, steps_per_epoch=warmup, verbose=0)
    dataset = make_dataset(warmup, warmup + steps)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def matmul_flops(tf, n: int = 2048, repeats: int = 10, rounds: int = 5) -> float:
    """FLOP/s of a large float32 matmul, best of ``rounds`` (wall time, like the feeds)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            c = tf.matmul(a, b)
        c.numpy()
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1200)  # one pool of the stage default
    parser.add_argument("--steps", type=int, default=19)  # warmup + steps = one epoch
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    # both above the 1,200-example pool, so the pool (not the data) bounds memory
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=[1500, 6000])
    parser.add_argument("--skip-bf16", action="store_true")
    parser.add_argument("--memory-child")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    runtime.quiet_tensorflow()
    import keras
    import tensorflow as tf

    from dsprior import cnn
    from dsprior.training.stream import TrainingStream

    keras.utils.set_random_seed(0)
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "onednn": os.environ.get(runtime.ONEDNN_ENV),
        },
        "settings": {"dim": DIM, "filter_sizes": SIZES, "filters": FILTERS, "batch_size": BATCH,
                     "lengths": [MIN_LEN, MAX_LEN], "examples": args.examples, "steps": args.steps, "rounds": args.rounds, "memory_pool_size": POOL},
    }  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench_train."))
    t0 = time.perf_counter()
    lengths = write_dataset(work / "dataset", args.examples)
    results["write_seconds"] = time.perf_counter() - t0
    labels = (np.arange(args.examples) % 3 == 0).astype(np.float32)

    index = batches.index_dataset(work / "dataset")
    reader = batches.BatchReader(index, np.arange(args.examples), min_rows=max(SIZES))
    stream = TrainingStream(
        reader, labels, np.ones(args.examples), batch_size=BATCH, pool_size=1200, seed=0
    )
    needed = args.steps + args.warmup
    total = needed

    def parquet_dataset(start: int, stop: int):
        return stream.dataset(start_step=start, total_steps=stop, prefetch=2)

    # the same batches, built in memory beforehand
    prebuilt = list(stream.iterate(start_step=0, total_steps=total))
    spec = parquet_dataset(0, 1).element_spec

    def memory_dataset(start: int, stop: int):
        return tf.data.Dataset.from_generator(
            lambda: iter(prebuilt[start:stop]), output_signature=spec
        ).prefetch(2)

    # padded baseline: every example padded to MAX_LEN rows, plain in-memory arrays
    everything = np.arange(args.examples)
    _, padded, padded_lengths = next(
        batches.BatchReader(index, everything).iter_batches([everything])
    )
    padded_x = np.zeros((args.examples, MAX_LEN, DIM), np.float32)
    padded_x[:, : padded.shape[1]] = padded
    del padded

    def padded_dataset(start: int, stop: int):
        rows = slice(start * BATCH, stop * BATCH)
        return (
            tf.data.Dataset.from_tensor_slices(
                (
                    {cnn.FEATURES_INPUT: padded_x[rows], cnn.LENGTHS_INPUT: padded_lengths[rows]},
                    labels[rows],
                )
            )
            .batch(BATCH)
            .prefetch(2)
        )

    def fresh_model(policy: str = "float32"):
        keras.mixed_precision.set_dtype_policy(policy)
        model = cnn.build_cnn(
            dim=DIM, filter_sizes=SIZES, filters=FILTERS, dropout=0.5, l2=0.001, seed=0
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        return model

    feeds = {
        "parquet_bucketed": (parquet_dataset, "float32"),
        "memory_bucketed": (memory_dataset, "float32"),
        "padded_baseline": (padded_dataset, "float32"),
    }
    if not args.skip_bf16:
        feeds["parquet_bucketed_bf16"] = (parquet_dataset, "mixed_bfloat16")

    plan = stream.plan(0)[:needed]
    measured_lengths = np.concatenate([lengths[b] for b in plan[args.warmup : needed]])
    batch_rows = [max(lengths[b].max(), max(SIZES)) for b in plan[args.warmup : needed]]
    useful = sum(
        cnn.flops_per_example(n_rows=int(n), dim=DIM, filter_sizes=SIZES, filters=FILTERS)
        for n in measured_lengths
    )
    train_flops_per_example = 3 * useful / len(measured_lengths)  # forward + 2x backward
    results["mean_rows"] = float(measured_lengths.mean())
    results["padding_overhead_bucketed"] = float(
        sum(len(b) * r for b, r in zip(plan[args.warmup : needed], batch_rows, strict=True))
        / measured_lengths.sum()
        - 1
    )
    # rounds alternate between feeds so that load from other processes hits all of them;
    # the best round of each feed is reported
    speeds: dict[str, float] = {}
    cpu_speeds: dict[str, float] = {}
    models: dict = {}
    results["load_average_before"] = os.getloadavg()
    for round_ in range(args.rounds):
        for name, (make_dataset, policy) in feeds.items():
            if policy != "float32" and round_ > 0:
                continue
            if name not in models:  # one model per feed, traced once, reused across rounds
                models[name] = fresh_model(policy)
            keras.mixed_precision.set_dtype_policy(policy)
            model = models[name]
            seconds, cpu_seconds = time_fit(
                model, make_dataset, steps=args.steps, warmup=args.warmup
            )
            speeds[name] = max(speeds.get(name, 0.0), BATCH / seconds)
            cpu_speeds[name] = max(cpu_speeds.get(name, 0.0), BATCH / cpu_seconds)
            print(
                f"round {round_} {name}: {BATCH / seconds:.1f} examples/s wall, "
                f"{BATCH / cpu_seconds:.1f} examples per CPU-second",
                flush=True,
            )
    keras.mixed_precision.set_dtype_policy("float32")
    results["load_average_after"] = os.getloadavg()
    results["examples_per_second"] = speeds
    results["examples_per_cpu_second"] = cpu_speeds
    results["speedup_vs_padded"] = speeds["parquet_bucketed"] / speeds["padded_baseline"]
    results["ratio_vs_memory_bucketed"] = speeds["parquet_bucketed"] / speeds["memory_bucketed"]
    results["cpu_speedup_vs_padded"] = (
        cpu_speeds["parquet_bucketed"] / cpu_speeds["padded_baseline"]
    )
    results["cpu_ratio_vs_memory_bucketed"] = (
        cpu_speeds["parquet_bucketed"] / cpu_speeds["memory_bucketed"]
    )
    results["achieved_flops"] = speeds["parquet_bucketed"] * train_flops_per_example
    results["matmul_flops"] = matmul_flops(tf)
    results["flops_fraction_of_matmul"] = results["achieved_flops"] / results["matmul_flops"]

    memory = {}
    for n in args.memory_sizes:
        path = work / f"mem_{n}"
        write_dataset(path, n, seed=n)
        memory[n] = peak_memory(path)
        print(f"peak RSS streaming {n} examples: {memory[n]:.0f} MiB", flush=True)
    results["peak_rss_mib_by_examples"] = memory
    results["dataset_mib_by_examples"] = {
        n: sum(p.stat().st_size for p in (work / f"mem_{n}").glob("*.parquet")) / 2**20
        for n in args.memory_sizes
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    runtime.write_json(args.out, {**results, **provenance()})
    print()
    print("| feed | examples/s (wall, best round) | vs padded | examples/CPU-s | vs padded |")
    print("|---|---:|---:|---:|---:|")
    for name, v in speeds.items():
        c = cpu_speeds[name]
        print(
            f"| {name} | {v:.1f} | {v / speeds['padded_baseline']:.2f}x | {c:.1f} | "
            f"{c / cpu_speeds['padded_baseline']:.2f}x |"
        )
    print()
    print(
        f"Parquet vs in-memory bucketed: {results['ratio_vs_memory_bucketed']:.2f}x wall, "
        f"{results['cpu_ratio_vs_memory_bucketed']:.2f}x CPU"
    )
    print(
        f"Achieved {results['achieved_flops'] / 1e9:.1f} GFLOP/s "
        f"({100 * results['flops_fraction_of_matmul']:.0f}% of a 2048^2 matmul, "
        f"{results['matmul_flops'] / 1e9:.1f} GFLOP/s)"
    )
    print(f"Peak RSS of the input pipeline: {memory} MiB for dataset sizes (examples)")


if __name__ == "__main__":
    main()
