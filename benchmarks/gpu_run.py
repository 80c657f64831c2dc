"""The default pipeline on a GPU, beside the CPU figures: one prepared run for a machine with one.

``make gpu`` builds ``.venv-gpu`` (the lock file with TensorFlow's CUDA wheels,
``requirements-gpu.lock``, in place of ``tensorflow_cpu``) and runs this script there. It

1. checks that TensorFlow sees a GPU (``--allow-cpu`` runs the same path without one: how
   the tests and a CPU-only machine try the script);
2. makes a fresh project in ``--work`` (the code, dvc.yaml, params.yaml with ``--overrides``
   merged in) and runs every stage as ``dvc repro --single-item`` in a child process,
   measured (wall, CPU, peak RSS), as ``make reference`` does;
3. derives the train stage's examples per second (steps x batch size over the stage's wall
   time, start-up included) and evaluate's (the examples it scored over its wall time);
4. compares the run's headline metrics with a CPU run's ``metrics.json`` (``--compare``;
   the checkout's committed default run when no overrides are given): each difference,
   and whether the GPU's value lies inside the CPU run's 95% interval where one exists;
5. optionally (``--bench-train``) runs ``benchmarks/bench_train.py`` for the raw-step
   throughput, into its own results file beside the CPU one.

Results go to ``benchmarks/results/gpu.json`` (``--out``) with the GPU's name and the CPU.
On a GPU, ``precision: auto`` trains in float32 (``dsprior.hardware``), so the CPU's
mixed_bfloat16 run and the GPU's differ by bf16 rounding and by the order of floating-point
sums; the comparison says how far apart they land, not that they are equal.

    make gpu                                             # on the GPU machine
    python benchmarks/gpu_run.py --allow-cpu --overrides my-tiny-params.yaml
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tools import scratch
from tools.measure import cpu_info, run_measured

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
COMMITTED_METRICS = ROOT / "reports" / "metrics.json"
# The numbers a team reads first: test at dev_b's threshold, at the production prior, and
# the cost that chose the threshold.
HEADLINE = (
    ("test", "precision"),
    ("test", "recall"),
    ("test", "average_precision"),
    ("test", "expected_cost"),
    ("dev_b", "expected_cost"),
    ("dev_b", "average_precision"),
)


def tensorflow_devices(python: str = sys.executable) -> dict[str, Any]:
    """The devices TensorFlow sees, asked in a child process so that this one stays light."""
    code = (
        "import json, os; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3');"
        "import tensorflow as tf;"
        "gpus = tf.config.list_physical_devices('GPU');"
        "names = [tf.config.experimental.get_device_details(g).get('device_name', g.name)"
        " for g in gpus];"
        "print(json.dumps({'tensorflow': tf.__version__, 'gpus': names,"
        " 'built_with_cuda': tf.test.is_built_with_cuda()}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_metrics(
    run: dict[str, Any], reference: dict[str, Any], *, keys: tuple = HEADLINE
) -> dict[str, dict[str, Any]]:
    """Each headline metric of ``run`` beside ``reference``'s, at the production prior.

    ``within_interval`` says whether the run's value lies in the reference's own interval
    (``<metric>_ci``), the honest yardstick between two trainings; it is None where the
    reference has no interval (dev_b's metrics chose the threshold and carry none).
    """
    out: dict[str, dict[str, Any]] = {}
    for split, metric in keys:
        ours = run.get(split, {}).get("prior", {}).get(metric)
        theirs = reference.get(split, {}).get("prior", {}).get(metric)
        if ours is None or theirs is None:
            continue
        interval = reference[split]["prior"].get(f"{metric}_ci")
        inside = None if not interval else bool(interval[0] <= ours <= interval[1])
        out[f"{split}.{metric}"] = {
            "run": ours,
            "reference": theirs,
            "difference": ours - theirs,
            "reference_interval": interval,
            "within_interval": inside,
        }
    return out


def throughput(project: Path, stages: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Train and evaluate examples per second, from the run's own records and stage times."""
    train = json.loads((project / "models" / "train.json").read_text())
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    batch = int(train["params"]["batch_size"])
    trained = int(train["steps"]) * batch
    scored = sum(int(metrics[split]["prior"]["examples"]) for split in ("dev_a", "dev_b", "test"))
    return {
        "train_examples": trained,
        "train_examples_per_s": round(trained / stages["train"]["wall_s"], 1),
        "evaluate_examples": scored,
        "evaluate_examples_per_s": round(scored / stages["evaluate"]["wall_s"], 1),
        "compute": train.get("compute"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ds-gpu"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--overrides", type=Path, help="params merged into params.yaml")
    parser.add_argument(
        "--compare",
        type=Path,
        help="a CPU run's metrics.json (default: the committed default run's, without overrides)",
    )
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU")
    parser.add_argument("--bench-train", action="store_true", help="also run bench_train.py")
    parser.add_argument("--keep", action="store_true", help="keep the project afterwards")
    args = parser.parse_args(argv)

    devices = tensorflow_devices()
    if not devices["gpus"] and not args.allow_cpu:
        print(
            f"ERROR: TensorFlow {devices['tensorflow']} sees no GPU (built with CUDA: "
            f"{devices['built_with_cuda']}); run `make gpu` on a machine with an NVIDIA GPU, "
            "or pass --allow-cpu to try the script on this CPU",
            file=sys.stderr,
        )
        return 2
    overrides = yaml.safe_load(args.overrides.read_text()) if args.overrides else {}
    compare = args.compare or (None if overrides else COMMITTED_METRICS)

    if args.work.exists():
        shutil.rmtree(args.work)
    project = scratch.make_project(args.work, overrides)
    log = args.work.parent / f"{args.work.name}.log"
    log.write_text("")
    stages: dict[str, dict[str, float]] = {}
    for name in scratch.stages_in_order(project):
        print(f"{name} ...", flush=True)
        stages[name] = run_measured(["dvc", "repro", "--single-item", name], project, log=log)
    result: dict[str, Any] = {
        "devices": devices,
        "cpu": cpu_info(),
        "params_overrides": overrides,
        "stages": stages,
        "total_wall_s": round(sum(s["wall_s"] for s in stages.values()), 1),
        "throughput": throughput(project, stages),
        "compared_with": str(compare) if compare else None,
        "metrics": compare_metrics(
            json.loads((project / "reports" / "metrics.json").read_text()),
            json.loads(compare.read_text()) if compare else {},
        ),
    }
    if args.bench_train:
        bench_out = args.out.with_name(args.out.stem + "_bench_train.json")
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--out", str(bench_out)],
            check=True,
        )
        result["bench_train"] = str(bench_out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["throughput"]), "->", args.out)
    if not args.keep:
        shutil.rmtree(project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
