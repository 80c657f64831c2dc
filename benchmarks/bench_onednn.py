"""oneDNN on or off: training-step time of the reference CNN on this CPU.

``runtime.quiet_tensorflow`` sets ``TF_ENABLE_ONEDNN_OPTS=0`` unless the environment already
sets it. This measures what that choice costs or saves: each setting runs in its own
process (TensorFlow reads the variable once, at import), with the stage's CNN (D = 700,
heights 5-10 x 125 maps, dropout 0.5, L2 0.001, Adam 0.001), op determinism on as in
``stages.train``, batches of 60 examples at five row counts (one warm-up pass to trace
each shape), then ``--passes`` timed passes. Settings alternate, ``--rounds`` times each.

    python benchmarks/bench_onednn.py            # ~6 minutes on 2 cores

Results go to benchmarks/results/onednn.json and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from dsprior import runtime
from tools.measure import provenance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "onednn.json"
ROWS = (40, 55, 70, 85, 100)
BATCH = 60


def child(passes: int) -> dict:
    """Time ``passes`` x len(ROWS) train steps in this process; print nothing else."""
    runtime.quiet_tensorflow()
    import keras
    import numpy as np
    import tensorflow as tf

    from dsprior import cnn

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = cnn.build_cnn(dim=700, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    batches = []
    for rows in ROWS:
        features = rng.standard_normal((BATCH, rows, 700), dtype=np.float32)
        lengths = rng.integers(10, rows + 1, BATCH).astype(np.int32)
        labels = rng.integers(0, 2, (BATCH, 1)).astype(np.float32)
        batches.append(({"features": features, "lengths": lengths}, labels))
    for inputs, labels in batches:  # warm-up: one trace per shape
        model.train_on_batch(inputs, labels)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(passes):
        for inputs, labels in batches:
            model.train_on_batch(inputs, labels)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    checksum = float(sum(np.abs(w).sum(dtype=np.float64) for w in model.get_weights()))
    return {"steps": passes * len(ROWS), "wall_s": wall, "cpu_s": cpu, "weights_checksum": checksum}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.passes)))
        return

    runs: dict[str, list[dict]] = {"0": [], "1": []}
    for _ in range(args.rounds):
        for setting in runs:
            env = {**os.environ, runtime.ONEDNN_ENV: setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--passes", str(args.passes)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {}
    for setting, results in runs.items():
        steps = sum(r["steps"] for r in results)
        per_round = [1000 * r["wall_s"] / r["steps"] for r in results]
        summary[setting] = {
            "ms_per_step_wall_range": [min(per_round), max(per_round)],
            "ms_per_step_wall": 1000 * sum(r["wall_s"] for r in results) / steps,
            "ms_per_step_cpu": 1000 * sum(r["cpu_s"] for r in results) / steps,
            "weights_checksums": sorted({r["weights_checksum"] for r in results}),
        }
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "batch": BATCH,
        "rows": list(ROWS),
        "runs": runs,
        "summary": summary,
        "off_speedup_wall": summary["1"]["ms_per_step_wall"] / summary["0"]["ms_per_step_wall"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**report, **provenance()}, indent=2) + "\n")
    print(
        "| TF_ENABLE_ONEDNN_OPTS | ms/step (wall) | rounds' range | ms/step (CPU) "
        "| weights checksum |"
    )
    print("|---|---|---|---|---|")
    for setting, row in summary.items():
        checksums = ", ".join(f"{c:.6f}" for c in row["weights_checksums"])
        low, high = row["ms_per_step_wall_range"]
        print(
            f"| {setting} | {row['ms_per_step_wall']:.0f} | {low:.0f}-{high:.0f} "
            f"| {row['ms_per_step_cpu']:.0f} | {checksums} |"
        )
    print(f"oneDNN off is {report['off_speedup_wall']:.2f}x faster (wall)")


if __name__ == "__main__":
    main()
