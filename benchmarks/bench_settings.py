"""The default run under other settings, side by side: what the docs' experiment tables read.

Each variant is the default pipeline (``params.yaml``) with a few params changed, run whole
with ``dvc repro`` in a scratch project of its own (``tools.scratch``: the code, dvc.yaml and
params in a fresh git + DVC repository; nothing touches the checkout's data or cache), one
after another on the same machine, so their wall times compare:

- ``default``: params.yaml as it is (on a CPU with native bf16, ``auto`` trains and scores in
  mixed_bfloat16 with oneDNN on);
- ``float32``: train and evaluate in float32 with oneDNN off (what ``auto`` picks on a CPU
  without native bf16), the quality and speed beside the default's (docs/scaling.md);
- ``kb_missing_0.3``: the simulator's knowledge base missing 30% of the true relations
  instead of 10% (``generate.kb_missing``), what heavier missing labels do to the
  distant- and gold-label measurements (docs/evaluation.md).

For each: every stage's wall and CPU seconds (``dvc repro --single-item``, in order), the compute train and evaluate chose, and
test's numbers at the production prior from its ``reports/metrics.json`` (distant and gold
labels, the chosen threshold with its interval and the shipped rule, the label-noise rates),
dev_a's selected value from ``models/train.json``.

    python benchmarks/bench_settings.py                   # about 15 minutes on 2 cores
    python benchmarks/bench_settings.py --variants default float32

Results: benchmarks/results/settings.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import scratch  # noqa: E402
from tools.measure import cpu_info, provenance, run_measured  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "settings.json"
FLOAT32 = {"precision": "float32", "onednn": "off"}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "float32": {"train": FLOAT32, "evaluate": FLOAT32},
    "kb_missing_0.3": {"generate": {"kb_missing": 0.3}},
}


def test_numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the docs' tables read from a run's metrics.json: test at the production prior."""
    test = metrics["test"]
    out: dict[str, Any] = {
        "prior": metrics.get("prior"),
        "threshold": metrics.get("threshold"),
        "distant": {
            "average_precision": test["prior"].get("average_precision"),
            "precision": test["prior"].get("precision"),
            "precision_ci": test["prior"].get("precision_ci"),
            "recall": test["prior"].get("recall"),
            "shipped_precision": test["shipped"]["prior"].get("precision"),
        },
    }
    if "gold" in test:
        gold = test["gold"]
        out["gold_prior"] = metrics.get("gold_prior")
        out["gold"] = {
            "precision": gold["prior"].get("precision"),
            "precision_ci": gold["prior"].get("precision_ci"),
            "recall": gold["prior"].get("recall"),
            "shipped_precision": gold["shipped"]["prior"].get("precision"),
        }
        noise = test.get("label_noise") or {}
        out["label_noise"] = {
            key: noise.get(key) for key in ("missing_label_rate", "false_label_rate")
        }
    return out


def run_variant(name: str, work: Path, *, log: Path) -> dict[str, Any]:
    """One variant through ``dvc repro`` in its own scratch project; its record."""
    project = work / name
    if project.exists():
        shutil.rmtree(project)
    overrides = VARIANTS[name]
    scratch.make_project(project, overrides)
    with log.open("a") as out:
        out.write(f"\n== {name}: {json.dumps(overrides)}\n")
    stages = {
        stage: run_measured(["dvc", "repro", "--single-item", stage], project, log=log)
        for stage in scratch.stages_in_order(project)
    }
    metrics = json.loads((project / "reports/metrics.json").read_text())
    train = json.loads((project / "models/train.json").read_text())
    return {
        "overrides": overrides,
        "stages": stages,
        "total_wall_s": round(sum(stage["wall_s"] for stage in stages.values()), 1),
        "train_steps": train.get("steps"),
        "dev_a_selected": train.get("best_value"),
        "compute": {
            "train": (train.get("compute") or {}).get("precision"),
            "evaluate": ((metrics.get("compute") or {}).get("evaluate") or {}).get("precision"),
        },
        "test": test_numbers(metrics),
    }


def compare(runs: dict[str, Any]) -> dict[str, float]:
    """Ratios the docs quote, measured side by side: each variant's train and evaluate wall
    seconds over the default's (above 1: slower than the default)."""
    base = runs.get("default")
    if not base:
        return {}
    return {
        f"{name}_{stage}_over_default": round(
            run["stages"][stage]["wall_s"] / base["stages"][stage]["wall_s"], 3
        )
        for name, run in runs.items()
        if name != "default"
        for stage in ("train", "evaluate")
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/ds-settings"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch projects")
    parser.add_argument(
        "--summary-only", action="store_true", help="recompute the ratios of --out; run nothing"
    )
    args = parser.parse_args(argv)
    if args.summary_only:
        result = json.loads(args.out.read_text())
        result["compare"] = compare(result["variants"])
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "settings.log"
    runs: dict[str, Any] = {}
    for name in args.variants:
        print(f"{name} ...", flush=True)
        runs[name] = run_variant(name, args.work, log=log)
        print(f"  {runs[name]['total_wall_s']} s", flush=True)
        if not args.keep:
            shutil.rmtree(args.work / name)
    result = {**provenance(), "cpu": cpu_info(), "variants": runs, "compare": compare(runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("->", args.out)


if __name__ == "__main__":
    main()
