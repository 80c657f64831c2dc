"""The train stage with dev_a scored whole at every evaluation, against an evaluation sample.

Runs ``python -m stages.train`` on the default run's dataset and manifest (``make repro``
first) once per ``--sizes`` value (``null``: all of dev_a at every evaluation, as before
``train.eval_sample``), each in a fresh process, one after the other, on params.yaml's train
section otherwise. Evaluation does not touch training (the same weights at every step in
every run), so the ``null`` run's dev_a curve gives the whole dev_a's value at every
evaluation, and each sampled run's choice is judged on it: the step it kept, that step's
value on the whole of dev_a, and the best any step reached (regret = best - kept).

Per run: wall and CPU seconds of the stage, the seconds spent scoring dev_a (whole and
sample, from the stage's log), the evaluations of each kind, and the choice.

    python benchmarks/bench_eval_sample.py                    # null and 2000: ~8 minutes
    python benchmarks/bench_eval_sample.py --sizes null 500 2000

Results go to benchmarks/results/eval_sample.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.measure import dev_a_scoring_seconds, provenance, run_measured  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "eval_sample.json"


def size_arg(text: str) -> int | None:
    return None if text == "null" else int(text)


def train_once(size: int | None, work: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One train stage run with ``eval_sample: size``; what it cost and what it chose."""
    run_dir = work / f"eval_sample_{size}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    section = {**params["train"], "eval_sample": size}
    (run_dir / "params.yaml").write_text(yaml.safe_dump({**params, "train": section}))
    log = run_dir / "train.log"
    cost = run_measured(
        [
            sys.executable,
            "-m",
            "stages.train",
            "--params",
            str(run_dir / "params.yaml"),
            "--dataset",
            str(ROOT / params["paths"]["dataset"]),
            "--manifest",
            str(ROOT / params["paths"]["manifest"]),
            "--model-dir",
            str(run_dir / "model"),
            "--live-dir",
            str(run_dir / "live"),
            "--backup-dir",
            str(run_dir / "backup"),
        ],  # fmt: skip
        cwd=ROOT,
        log=log,
    )
    record = json.loads((run_dir / "model" / "train.json").read_text())
    seconds = dev_a_scoring_seconds(log.read_text(errors="replace"))
    return {
        **cost,
        "scoring_seconds": seconds or {"whole": 0.0, "sample": 0.0},
        "evaluations": record["dev_a_evaluations"],
        "best_step": record["best_step"],
        "best_value": record["best_value"],
        "select_metric": record["select_metric"],
        "curve": str(run_dir / "live" / "plots" / "metrics" / "dev_a" / "prior"),
    }


def judge(runs: dict[str, dict[str, Any]]) -> None:
    """Each run's choice on the whole-dev_a curve of the run that scored it at every step."""
    reference = runs.get("null")
    if reference is None:
        return
    metric = reference["select_metric"]
    curve = pd.read_csv(Path(reference["curve"]) / f"{metric}.tsv", sep="\t")
    values = dict(zip(curve["step"], curve[metric], strict=True))
    best = max(values.values()) if metric != "loss" else min(values.values())
    for run in runs.values():
        kept = values.get(run["best_step"])
        run["choice"] = {
            "kept_step": run["best_step"],
            "kept_value_on_whole_dev_a": kept,
            "best_value_on_whole_dev_a": best,
            "regret": None if kept is None else abs(best - kept),
            "same_step_as_null": run["best_step"] == reference["best_step"],
            "evaluation_steps": len(values),
        }
    for run in runs.values():
        run["scoring_share_of_stage"] = round(
            sum(run["scoring_seconds"].values()) / run["wall_s"], 3
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=size_arg, default=[None, 2000])
    parser.add_argument("--work", type=Path, default=None, help="kept when given")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-eval-sample-"))
    runs: dict[str, dict[str, Any]] = {}
    try:
        for size in args.sizes:
            key = "null" if size is None else str(size)
            runs[key] = train_once(size, work, params)
            print(key, {k: v for k, v in runs[key].items() if k != "curve"}, flush=True)
        judge(runs)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for run in runs.values():
        run.pop("curve")
    result = {**provenance(), "runs": runs}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
