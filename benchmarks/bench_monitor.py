"""Production over time on the simulator: does the monitor see a drifting prior, and when?

Builds a small project (``tools.drift.DRIFT_WORLD`` over the tests' tiny params; bundle at
1:100) with `dvc repro`, then scores two streams of batches drawn from the same world
(``tools.drift.write_stream``: new sources, priors moved by keeping a share of the true
positives), each into its own history with ``score --summary --history``:

- ``drift``: 24 batches, 1:100, then a ramp to 1:30, 1:30 for a while, and back;
- ``jump``: 22 batches, 1:100, then 1:30 from batch 10 on.

After each stream, `dvc repro` must rerun only the monitor stage. Reports, per stream,
each batch's true prior beside its estimate and verdict, the first batch whose true prior
is past the band, and where the alert fired (``benchmarks/results/monitor.json``).

    python benchmarks/bench_monitor.py [--work DIR] [--examples 4000] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ and tools/, run as a script

from dsprior import monitoring
from stages import score
from tests.conftest import TINY_PARAMS
from tools.drift import DRIFT_WORLD, write_stream
from tools.measure import provenance
from tools.scratch import ROOT, deep_merge, make_project, run

RULES = {
    "precision_floor": 0.3,
    "prior_band": {"low": 0.004, "high": 0.02},  # 1:250 to 1:50; the bundle's prior is 1:100
    "consecutive": 3,
    "fail_on_alert": False,
}
STREAMS = {
    "drift": [1 / 100] * 6
    + [1 / 75, 1 / 55, 1 / 40]
    + [1 / 30] * 6
    + [1 / 40, 1 / 55, 1 / 75]
    + [1 / 100] * 6,
    "jump": [1 / 100] * 10 + [1 / 30] * 12,
}


def score_stream(
    project: Path, name: str, priors: list[float], *, examples: int, resamples: int, start: int
):
    generate = yaml.safe_load((project / "params.yaml").read_text())["generate"]
    batches = write_stream(
        generate,
        priors,
        project.parent / f"raw-{name}",
        examples=examples,
        prefix=name,
        start=start,
    )
    history = project / "monitoring" / "history.jsonl"
    history.write_text("")
    out = project.parent / f"scores-{name}"
    out.mkdir(exist_ok=True)
    for batch in batches:
        score.main(
            ["--bundle", str(project / "bundle"), "--input", str(batch["path"])]
            + ["--output", str(out / f"{batch['batch']}.parquet")]
            + ["--summary", str(out / f"{batch['batch']}.json"), "--resamples", str(resamples)]
            + ["--history", str(history), "--batch-name", batch["batch"]]
        )  # fmt: skip
    return batches


def outcome(project: Path, batches: list[dict[str, Any]]) -> dict[str, Any]:
    metrics = json.loads((project / "reports" / "monitor.json").read_text())
    rows = monitoring.read_history(project / "monitoring" / "history.jsonl")
    band = RULES["prior_band"]
    past = [i for i, b in enumerate(batches) if not band["low"] <= b["true_prior"] <= band["high"]]
    names = [b["batch"] for b in batches]
    verdicts = metrics["batch_verdicts"]
    return {
        "batches": [
            {
                "batch": b["batch"],
                "examples": b["examples"],
                "true_prior": round(b["true_prior"], 5),
                "distant_prior": round(b["distant_prior"], 5),
                "estimated_prior": r["estimated_prior"]["value"],
                "ci": r["estimated_prior"]["ci"],
                "precision": r["estimated_at_threshold"]["precision"],
                "breaches": v["breaches"],
            }
            for b, r, v in zip(batches, rows, verdicts, strict=True)
        ],
        "first_batch_past_the_band": names[past[0]] if past else None,
        # false alarms: batches whose true prior was inside the band yet breached a rule
        "breaches_inside_the_band": sum(
            1 for i, v in enumerate(verdicts) if v["breaches"] and i not in past
        ),
        "alerts": metrics["alerts"],
        "fired_after_change": (
            names.index(metrics["alerts"][0]["fired_at"]) - past[0]
            if past and metrics["alerts"]
            else None
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "monitor")
    parser.add_argument("--examples", type=int, default=4000, help="examples drawn per batch")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/monitor.json")
    parser.add_argument(
        "--reuse", action="store_true", help="score with the project a run before built in --work"
    )
    args = parser.parse_args(argv)
    began = time.time()
    project = args.work / "project"
    if not args.reuse:
        shutil.rmtree(project, ignore_errors=True)  # only what this script made there
    if not (project / "bundle").is_dir():
        overrides = deep_merge(deep_merge(TINY_PARAMS, DRIFT_WORLD), {"monitor": RULES})
        make_project(project, overrides)
        run(["dvc", "repro"], project)
    else:  # a project built before: these rules
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["monitor"] = RULES
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    results: dict[str, Any] = {"rules": RULES, "examples_per_batch": args.examples, "streams": {}}
    start = 0  # each stream draws new sources of the world: no example in two streams
    for name, priors in STREAMS.items():
        batches = score_stream(
            project, name, priors, examples=args.examples, resamples=args.resamples, start=start
        )
        start += len(priors)
        again = run(["dvc", "repro"], project).stdout
        ran = [line for line in again.splitlines() if line.startswith("Running stage")]
        report = (project / "reports/monitor.md").read_text()
        # the page's lines, so the docs can quote the report from this file
        results["streams"][name] = {
            "reran": ran,
            **outcome(project, batches),
            "report": report.splitlines(),
        }
        (args.work / f"monitor-{name}.md").write_text(report)
        for plot in ("prior", "precision", "alerts"):
            src = project / "reports" / "monitor" / f"{plot}.json"
            (args.work / f"monitor-{name}-{plot}.json").write_text(src.read_text())
    results["seconds"] = round(time.time() - began)
    runtime_out = args.out
    runtime_out.parent.mkdir(parents=True, exist_ok=True)
    runtime_out.write_text(json.dumps({**results, **provenance()}, indent=2) + "\n")
    for name, stream in results["streams"].items():
        print(
            name,
            "past the band at",
            stream["first_batch_past_the_band"],
            "alerts",
            stream["alerts"],
        )


if __name__ == "__main__":
    main()
