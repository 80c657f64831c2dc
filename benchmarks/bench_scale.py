"""Scale measurements behind docs/scale.md: every stage at a few sizes, fitted and extrapolated.

For each scale factor ``s`` a fresh project (``tools.scratch.make_project``) is made
in a temporary folder with the default params (D = 700) except the simulator's
source sizes, which are multiplied by ``s`` (``s = 1`` is the default run: about
1,800 training examples after thinning to 1:2 and an 8,000-example production
sample at 1:100). Each stage's command from dvc.yaml is run in a child process
and measured: wall time, CPU time and peak RSS (``os.wait4``). Then ``dvc commit``
stores every output in the DVC cache, and ``du`` gives raw, dataset and cache
sizes (``du`` counts a hardlinked file once, so ``workspace+cache`` shows whether
the cache copied).

Per stage, wall time, peak RSS and disk are fitted by least squares against the
size the stage works on (rows drawn and written by ingest, examples for
split/downsample/audit, training examples x epochs for train, scored examples
for evaluate); the fit, its largest relative residual and the extrapolation to
the reference scale go to benchmarks/results/scale.json.

    python benchmarks/bench_scale.py                      # 0.125, 0.25, 0.5: ~10 minutes on 2 cores
    python benchmarks/bench_scale.py --scales 0.1 0.2 --keep /tmp/scale-runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from tools.measure import du_bytes, provenance, run_measured
from tools.scratch import ROOT, foreach_items, make_project

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
STAGES = ("source@pool", "source@production", "ingest", "split", "downsample", "audit", "train",
          "evaluate")  # fmt: skip
# Reference: 100k training examples at 1:2, i.e. the default run's training set x this factor.
REFERENCE_TRAIN_EXAMPLES = 100_000


def default_params() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def overrides_for(scale: float) -> dict[str, Any]:
    """Default params (undo the tiny test params) with the simulator's sources scaled."""
    params = default_params()
    gen = params["generate"]
    sources = {
        name: {**spec, "examples": max(1, round(spec["examples"] * scale))}
        for name, spec in gen["sources"].items()
    }
    return {
        "generate": {**gen, "sources": sources},
        "ingest": params["ingest"],
        "train": params["train"],
        "evaluate": params["evaluate"],
    }


def stage_commands(project: Path) -> dict[str, str]:
    """Each stage's cmd from dvc.yaml with ``${paths.x}`` filled in from params.yaml."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text())
    params = yaml.safe_load((project / "params.yaml").read_text())

    def fill(match: re.Match) -> str:
        value: Any = params
        for key in match.group(1).split("."):
            value = value[key]
        return str(value)

    commands = {}
    for name, stage in spec["stages"].items():
        if "foreach" in stage:  # source@<name>: one per declared source (and so on)
            for key, item in foreach_items(stage, params).items():
                cmd = (
                    stage["do"]["cmd"].replace("${key}", key).replace("${item.path}", item["path"])
                )
                commands[f"{name}@{key}"] = re.sub(r"\$\{([^}]+)\}", fill, " ".join(cmd.split()))
            continue
        commands[name] = re.sub(r"\$\{([^}]+)\}", fill, " ".join(stage["cmd"].split()))
    return commands


def sizes_of(project: Path) -> dict[str, int]:
    """How much each stage works on, read from its outputs."""
    ingest = json.loads((project / "reports" / "ingest.json").read_text())
    manifest = pq.read_table(project / "data" / "manifest.parquet").to_pandas()
    kept = manifest[manifest["kept"]]
    params = yaml.safe_load((project / "params.yaml").read_text())
    train = int((kept["split"] == "train").sum())
    return {
        "examples": int(ingest["examples_written"]),
        "rows": int(ingest["rows_written"]),
        "train_examples": train,
        "train_positives": int(((kept["split"] == "train") & (kept["label"] == 1)).sum()),
        "train_example_epochs": train * int(params["train"]["epochs"]),
        "scored_examples": int(kept["split"].isin(["dev_a", "dev_b", "test"]).sum()),
        "production_examples": int(kept["split"].isin(["dev_b", "test"]).sum()),
    }


def measure(scale: float, work: Path) -> dict[str, Any]:
    project = make_project(work / f"scale-{scale:g}", overrides_for(scale))
    tool = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run(
        [*tool, "config", "cache.type", "reflink,hardlink,copy"], cwd=project, check=True
    )
    commands = stage_commands(project)
    stages: dict[str, Any] = {}
    for name in STAGES:
        print(f"  scale {scale:g}: {name} ...", flush=True)
        load = os.getloadavg()[0]
        stages[name] = run_measured(commands[name], project, shell=True)
        stages[name]["load_1m_before"] = round(load, 2)
        print(f"    {stages[name]}", flush=True)
    commit = run_measured(f"{tool[0]} commit -f {' '.join(STAGES)}", project, shell=True)
    # Per-stage CPU/RSS of `dvc commit` is DVC's hashing + linking into the cache.
    disk = {
        "raw": du_bytes(project / "data" / "raw"),
        "dataset": du_bytes(project / "data" / "dataset"),
        "manifest": du_bytes(project / "data" / "manifest.parquet"),
        "models": du_bytes(project / "models"),
        "predictions": du_bytes(project / "reports" / "predictions.parquet"),
        "cache": du_bytes(project / ".dvc" / "cache"),
        "workspace_plus_cache": du_bytes(project / "data", project / "models", project / ".dvc"),
        "workspace": du_bytes(project / "data", project / "models"),
    }
    # under reflink,hardlink,copy where reflinks fail, `dvc repro`/`dvc commit` copy outputs
    # into the cache (the workspace file keeps link count 1; DVC links on commit only when
    # hardlink comes first, tools/dvc_local.py); `dvc checkout --relink` swaps in links.
    relink = run_measured(f"{tool[0]} checkout --relink {' '.join(STAGES)}", project, shell=True)
    disk["workspace_plus_cache_relinked"] = du_bytes(
        project / "data", project / "models", project / ".dvc"
    )
    return {
        "scale": scale,
        "sizes": sizes_of(project),
        "stages": stages,
        "dvc_commit": commit,
        "dvc_checkout_relink": relink,
        "disk_bytes": disk,
    }


def fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Least-squares line y = a + b x with its largest relative residual."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    b, a = np.polyfit(x, y, 1)
    pred = a + b * x
    rel = np.abs(pred - y) / np.maximum(np.abs(y), 1e-12)
    return {"intercept": float(a), "slope": float(b), "max_rel_residual": float(rel.max())}


# Which size each stage's cost follows.
DRIVER = {
    "source@pool": "rows",
    "source@production": "rows",
    "ingest": "rows",
    "split": "examples",
    "downsample": "examples",
    "audit": "examples",
    "train": "train_example_epochs",
    "evaluate": "scored_examples",
    "dvc_commit": "rows",
}


def analyse(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Fits per stage and metric, and the reference-scale extrapolation."""
    base = next((r for r in runs if r["scale"] == max(r["scale"] for r in runs)), runs[-1])
    factor = REFERENCE_TRAIN_EXAMPLES / base["sizes"]["train_examples"] * base["scale"]
    reference = {
        key: value / base["scale"] * factor for key, value in base["sizes"].items()
    }  # every size is proportional to the scale factor
    fits: dict[str, Any] = {}
    for stage in (*STAGES, "dvc_commit"):
        driver = DRIVER[stage]
        xs = [r["sizes"][driver] for r in runs]
        per = {}
        for metric in ("wall_s", "cpu_s", "peak_rss_mb"):
            ys = [(r["stages"].get(stage) or r["dvc_commit"])[metric] for r in runs]
            f = fit(xs, ys)
            f["points"] = list(zip(xs, ys, strict=True))
            f["reference"] = f["intercept"] + f["slope"] * reference[driver]
            per[metric] = f
        fits[stage] = {"driver": driver, **per}
    disk = {}
    for key in sorted(set.intersection(*(set(r["disk_bytes"]) for r in runs))):
        xs = [r["sizes"]["rows"] for r in runs]
        ys = [r["disk_bytes"][key] for r in runs]
        f = fit(xs, ys)
        f["points"] = list(zip(xs, ys, strict=True))
        f["reference"] = f["intercept"] + f["slope"] * reference["rows"]
        disk[key] = f
    return {"reference_factor_vs_scale_1": factor, "reference_sizes": reference,
            "fits": fits, "disk": disk}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.125, 0.25, 0.5])
    parser.add_argument("--keep", type=Path, help="keep the projects in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--from-runs", type=Path, help="re-analyse saved runs (the .runs.json)")
    args = parser.parse_args()
    runs_path = args.out.with_suffix(".runs.json")
    if args.from_runs:
        runs = json.loads(args.from_runs.read_text())
        args.scales = []
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs = [] if not args.from_runs else runs
    try:
        for scale in sorted(args.scales):
            runs.append(measure(scale, work))
            runs_path.write_text(json.dumps(runs, indent=2) + "\n")  # kept if analysis fails
            if not args.keep:
                shutil.rmtree(work / f"scale-{scale:g}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "filesystem_note": "measured in a temporary folder on the same disk as the repo",
        },
        "load_average_end": os.getloadavg(),
        "minutes": round((time.time() - started) / 60, 1),
        "runs": runs,
        **analyse(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**result, **provenance()}, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    print(render_markdown(result))


def render_markdown(result: dict[str, Any]) -> str:
    """The tables of docs/scale.md: measured points, fits and the reference extrapolation."""
    runs = result["runs"]
    scales = " | ".join(f"s={r['scale']:g}" for r in runs)
    lines = [
        f"| stage | driver | {scales} | CPU s per 1k driver | max resid | reference CPU h "
        f"| reference wall h (as measured) | peak RSS MB ({scales}) |",
        "|---|---|" + "---|" * len(runs) + "---|---|---|---|---|",
    ]
    for stage, f in result["fits"].items():
        points = " | ".join(
            f"{x:,.0f}: {y:.1f} s" for (x, y) in f["cpu_s"]["points"]
        )  # driver size: CPU seconds
        rss = ", ".join(f"{y:.0f}" for (_, y) in f["peak_rss_mb"]["points"])
        lines.append(
            f"| {stage} | {f['driver']} | {points} | {f['cpu_s']['slope'] * 1000:.2f} "
            f"| {f['cpu_s']['max_rel_residual']:.2f} | {f['cpu_s']['reference'] / 3600:.2f} "
            f"| {f['wall_s']['reference'] / 3600:.2f} | {rss} |"
        )
    lines += ["", "| disk | " + scales + " | bytes per row | max resid | reference GB |",
              "|---|" + "---|" * len(runs) + "---|---|---|"]  # fmt: skip
    for key, f in result["disk"].items():
        points = " | ".join(f"{y / 1e6:,.1f} MB" for (_, y) in f["points"])
        lines.append(
            f"| {key} | {points} | {f['slope']:,.0f} | {f['max_rel_residual']:.2f} "
            f"| {f['reference'] / 1e9:,.1f} |"
        )
    ref = result["reference_sizes"]
    lines += ["", "reference sizes: " + ", ".join(f"{k} {v:,.0f}" for k, v in ref.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
