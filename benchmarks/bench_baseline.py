"""Does the CNN earn its cost? Both models on the default run's data, side by side.

In a scratch clone of this repository (its DVC cache shared, so ingest, split, downsample
and audit are the committed run's, restored rather than rerun), the train stage runs once
per model (``train.model: cnn`` and ``pooled_logistic``) in a fresh process each, measured
(wall and CPU seconds), then evaluate and bundle. Each model's dev_b expected cost at the
production prior (what selection ranks by) and its test precision, recall and cost at the
threshold chosen on dev_b are read from its metrics.json. Results, with the command, the
machine and the date: ``benchmarks/results/baseline.json``.

    python benchmarks/bench_baseline.py   # after make repro (or dvc pull); ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from tools import scratch
from tools.measure import provenance, run_measured

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "baseline.json"
MODELS = ("cnn", "pooled_logistic")


def clone(work: Path) -> Path:
    """A clone of HEAD sharing this checkout's DVC cache, its pipeline outputs restored."""
    if work.exists():
        shutil.rmtree(work)
    scratch.run(["git", "clone", "-q", str(ROOT), str(work)], ROOT)
    scratch.run(["dvc", "cache", "dir", str(ROOT / ".dvc" / "cache")], work)
    scratch.run(["dvc", "checkout", "-q"], work)
    return work


def set_model(project: Path, model: str) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["model"] = model
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a team compares: dev_b's cost (selection) and test at dev_b's threshold."""
    test, dev_b = metrics["test"]["prior"], metrics["dev_b"]["prior"]
    return {
        "dev_b_expected_cost": dev_b["expected_cost"],
        "test_precision": test["precision"],
        "test_precision_ci": test.get("precision_ci"),
        "test_recall": test["recall"],
        "test_expected_cost": test["expected_cost"],
        "test_expected_cost_ci": test.get("expected_cost_ci"),
        "test_average_precision": test["average_precision"],
        "threshold": metrics["threshold"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ds-baseline"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    project = clone(args.work)
    log = args.work.parent / f"{args.work.name}.log"
    log.write_text("")
    models: dict[str, Any] = {}
    for model in MODELS:
        set_model(project, model)
        print(f"{model}: train ...", flush=True)
        # --force: the CNN's committed run would otherwise be restored, not trained and timed
        train = run_measured(
            ["dvc", "repro", "--single-item", "--force", "train"], project, log=log
        )
        rest = run_measured(["dvc", "repro", "bundle"], project, log=log)
        metrics = json.loads((project / "reports" / "metrics.json").read_text())
        models[model] = {"train_stage": train, "evaluate_and_bundle": rest, **headline(metrics)}
        print(f"  {json.dumps(models[model])}", flush=True)
    result = {
        **provenance(),
        "models": models,
        "train_seconds_ratio_cnn_to_baseline": round(
            models["cnn"]["train_stage"]["wall_s"]
            / models["pooled_logistic"]["train_stage"]["wall_s"],
            1,
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("->", args.out)
    shutil.rmtree(project)


if __name__ == "__main__":
    main()
