"""The reference scale, measured: one real `dvc repro`, stage by stage, in a fresh project.

A project is made in ``--work`` (the code, dvc.yaml and params.yaml with
benchmarks/params-reference.yaml merged in; git and DVC initialised), then every
stage runs in pipeline order as ``dvc repro --single-item <stage>`` in a child
process, measured with ``os.wait4``: wall seconds, CPU seconds (user + system of
the whole process tree) and peak RSS. The sum is the end-to-end `dvc repro`.
Then ``dvc checkout --relink`` and ``du`` give the disk. Results, with the CPU
model and flags, go to benchmarks/results/reference.json.

    make reference                                   # about 40 minutes on 2 cores
    python benchmarks/reference.py --work /data/ref  # somewhere with ~60 GB free
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tools import dvc_local, scratch
from tools.measure import (
    cpu_info,
    curve_range,
    dev_a_scoring_seconds,
    du_bytes,
    provenance,
    run_measured,
    stage_log_seconds,
)
from tools.scratch import tool_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "reference.json"
OVERRIDES = ROOT / "benchmarks" / "params-reference.yaml"
BIN = Path(sys.executable).parent
CURVES = Path("reports/train/plots/metrics/dev_a/prior")  # the train stage's dev_a curves


def sh(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, env=tool_env(), check=True, capture_output=True)


def make_project(work: Path) -> Path:
    """A fresh git + DVC repository holding the code and the reference params."""
    if work.exists():
        shutil.rmtree(work)
    project = scratch.make_project(work, yaml.safe_load(OVERRIDES.read_text()))
    # the repository's cache.type, then what `make setup` chooses for this disk and CPU
    scratch.run(["dvc", "config", "cache.type", dvc_local.REFLINK_FIRST], project)
    dvc_local.configure(project)
    return project


def bench_child(project: Path, *args: str) -> dict[str, Any]:
    """A child of benchmarks/bench_stages.py on ``project``'s data: its RESULT line."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_stages.py"), "--project", str(project),
         "--child", *args],
        cwd=ROOT, env=tool_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.split("RESULT ", 1)[1].splitlines()[0])


def measure_ceilings(
    project: Path, *, steps: int = 300, examples: int = 6000, rounds: int = 3
) -> dict[str, Any]:
    """The train stage's ceiling (TensorFlow's start-up plus the run's steps on batches built
    in memory, its first ``steps`` timed and scaled by padded rows) and the raw forward pass's
    speed on ``examples`` of dev_b and test from memory: benchmarks/bench_stages.py's
    ``train_ceiling`` and ``score_raw``, each in a fresh process, the best of ``rounds``
    (the same 300 steps took 54 s in one fresh process and 84 s in another on this shared
    machine; every round's seconds are kept)."""
    train = [bench_child(project, "train_ceiling", "--steps", str(steps)) for _ in range(rounds)]
    score = [
        bench_child(project, "score_raw", "--score-examples", str(examples)) for _ in range(rounds)
    ]
    return {
        "rounds": rounds,
        "train": {
            **min(train, key=lambda r: r["ceiling_seconds"]),
            "steps_seconds_by_round": [r["steps_seconds"] for r in train],
        },
        "score_raw": {
            **max(score, key=lambda r: r["examples_per_second"]),
            "examples_per_second_by_round": [r["examples_per_second"] for r in score],
        },
    }


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    """The targets' ratios, each measured in this run: train's wall over its ceiling, and
    evaluate's wall over the raw forward pass of its examples plus its metrics."""
    train = result["ceilings"]["train"]
    forward = result["ceilings"]["score_raw"]["examples_per_second"]
    logged = result["log_seconds"]
    scoring, metrics = logged["evaluate_scoring"], logged["evaluate_metrics_seconds"]
    raw_forward = None if scoring is None else scoring["examples"] / forward
    return {
        "train_ceiling_over_stage": train["ceiling_seconds"] / result["stages"]["train"]["wall_s"],
        "evaluate_over_raw_forward_plus_metrics": None
        if raw_forward is None or metrics is None
        else result["stages"]["evaluate"]["wall_s"] / (raw_forward + metrics),
        "evaluate_scoring_over_raw_forward": None
        if raw_forward is None
        else scoring["seconds"] / raw_forward,
    }


def du_gb(*paths: Path) -> float:
    return round(du_bytes(*paths) / 1e9, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ds-reference"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the project afterwards")
    parser.add_argument(
        "--resume", action="store_true", help="go on in --work after the stages --out holds"
    )
    parser.add_argument(
        "--ceilings-only",
        action="store_true",
        help="measure the ceilings again on --work (a run kept with --keep) into --out",
    )
    args = parser.parse_args()
    if args.ceilings_only:
        result = json.loads(args.out.read_text())
        result["ceilings"] = measure_ceilings(args.work)
        result["ratios"] = ratios(result)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["ratios"]), "->", args.out)
        return
    log = args.work.parent / f"{args.work.name}.log"
    stages: dict[str, Any] = {}
    if args.resume:
        project = args.work
        stages = json.loads(args.out.read_text())["stages"]
    else:
        project = make_project(args.work)
        log.write_text("")
    for name in scratch.stages_in_order(project):
        if name in stages:
            continue
        print(f"{name} ...", flush=True)
        stages[name] = run_measured(["dvc", "repro", "--single-item", name], project, log=log)
        print(f"  {stages[name]}", flush=True)
        with log.open("a") as out:  # the stages' own log lines carry times: DVC's share shows
            out.write(f"[reference] {name} ended {time.strftime('%H:%M:%S')}: {stages[name]}\n")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"complete": False, "stages": stages}, indent=2) + "\n")
    relink = run_measured(["dvc", "checkout", "--relink"], project, log=log)
    ceilings = measure_ceilings(project)
    ingest = json.loads((project / "reports/ingest.json").read_text())
    train = json.loads((project / "models/train.json").read_text())
    audit = json.loads((project / "reports/audit.json").read_text())
    downsample = json.loads((project / "reports/downsample.json").read_text())
    result = {
        **provenance(),
        "complete": True,
        "cpu": cpu_info(),
        # how DVC put the outputs into its cache and hashed them (tools.dvc_local, as
        # `make setup` sets them)
        "dvc_cache_type": scratch.run(["dvc", "config", "cache.type"], project).stdout.strip(),
        "dvc_checksum_jobs": int(
            scratch.run(["dvc", "config", "core.checksum_jobs"], project).stdout.strip()
        ),
        "params_overrides": yaml.safe_load(OVERRIDES.read_text()),
        "sizes": {
            "examples": ingest["examples_written"],
            "rows": ingest["rows_written"],
            "dim": ingest["dim"],
            "training_steps": train.get("step") or train.get("steps"),
            "positives": audit.get("test_size", {}).get("positives"),
            # each split as downsampling left it: what the docs quote for the reference data
            "splits": {
                name: {
                    "examples": split["positives"] + split["kept_negatives"],
                    "positives": split["positives"],
                }
                for name, split in downsample["splits"].items()
            },
        },
        "compute": train.get("compute"),
        # how often train scored dev_a, and the seconds it spent doing so (from its log)
        "train_dev_a": {
            **(train.get("dev_a_evaluations") or {}),
            "scoring_seconds": dev_a_scoring_seconds(log.read_text(errors="replace")),
            # how far the select metric moved: all of dev_a at its scorings, and the sample
            "average_precision_at_prior": {
                name: curve_range(project / CURVES / f"{folder}average_precision.tsv")
                for name, folder in (("whole", ""), ("sample", "sample/"))
            },
        },
        "stages": stages,
        # what train and evaluate are measured against, in fresh processes after the run
        "ceilings": ceilings,
        # train's fit seconds, and evaluate's scoring and metrics seconds, from their logs
        "log_seconds": stage_log_seconds(log.read_text(errors="replace")),
        "total": {
            "wall_s": round(sum(s["wall_s"] for s in stages.values()), 1),
            "cpu_s": round(sum(s["cpu_s"] for s in stages.values()), 1),
            "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values()),
        },
        "dvc_checkout_relink": relink,
        "disk_gb": {
            "dataset": du_gb(project / "data" / "dataset"),
            "cache": du_gb(project / ".dvc" / "cache"),
            "workspace_plus_cache": du_gb(project / "data", project / "models", project / ".dvc"),
        },
    }
    result["ratios"] = ratios(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["total"]), json.dumps(result["ratios"]), "->", args.out)
    if not args.keep:
        shutil.rmtree(project)


if __name__ == "__main__":
    main()
