"""The train stage with dev_a scored whole at every evaluation, against an evaluation sample.

Runs ``python -m stages.train`` on the default run's dataset and manifest (``make repro``
first) once per ``--sizes`` value (``null``: all of dev_a at every evaluation, as before
``train.eval_sample``), each in a fresh process, one after the other, on params.yaml's train
section otherwise. Evaluation does not touch training (the same weights at every step in
every run), so the ``null`` run's dev_a curve gives the whole dev_a's value at every
evaluation, and each sampled run's choice is judged on it: the step it kept, that step's
value on the whole of dev_a, and the best any step reached (regret = best - kept).

Per run: wall and CPU seconds of the stage, the seconds spent scoring dev_a (whole and
sample, from the stage's log), the evaluations of each kind, and the choice. On the ``null``
run's curve, also what each ``train.eval_whole`` from 1 to 7 would keep; for a sampled run,
how each of its sample scores ranks the models against all of dev_a (Spearman's rho) and
what the rule before ``eval_whole`` (all of dev_a where the sample's select metric beat the
best model's, and at each epoch end) would have kept.

    python benchmarks/bench_eval_sample.py                    # null and 2000: ~8 minutes
    python benchmarks/bench_eval_sample.py --sizes null 500 2000
    # the reference scale: one null run, then make reference's own run judged on it
    python benchmarks/bench_eval_sample.py --project /tmp/ds-reference --sizes null \
        --work /tmp/evref --out /tmp/null.json
    python benchmarks/bench_eval_sample.py --project /tmp/ds-reference \
        --null-run /tmp/evref/eval_sample_None --out benchmarks/results/eval_sample_reference.json

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
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.measure import dev_a_scoring_seconds, provenance, run_measured  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "eval_sample.json"


def size_arg(text: str) -> int | None:
    return None if text == "null" else int(text)


def train_once(
    size: int | None, work: Path, params: dict[str, Any], project: Path = ROOT
) -> dict[str, Any]:
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
            str(project / params["paths"]["dataset"]),
            "--manifest",
            str(project / params["paths"]["manifest"]),
            "--model-dir",
            str(run_dir / "model"),
            "--live-dir",
            str(run_dir / "live"),
            "--backup-dir",
            str(run_dir / "backup"),
        ],  # fmt: skip
        cwd=project,
        log=log,
    )
    return {**cost, **read_run(run_dir / "model", run_dir / "live", log)}


def read_run(model_dir: Path, live_dir: Path, log: Path) -> dict[str, Any]:
    """A train run's record: its dev_a scorings and seconds, its choice, its curves' folder."""
    record = json.loads((model_dir / "train.json").read_text())
    seconds = dev_a_scoring_seconds(log.read_text(errors="replace")) if log.exists() else None
    return {
        "scoring_seconds": seconds or {"whole": 0.0, "sample": 0.0},
        "evaluations": record["dev_a_evaluations"],
        "best_step": record["best_step"],
        "best_value": record["best_value"],
        "select_metric": record["select_metric"],
        "steps": record["steps"],
        "steps_per_epoch": record["steps_per_epoch"],
        "eval_every": record["params"]["eval_every"],
        "curve": str(live_dir / "plots" / "metrics" / "dev_a" / "prior"),
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
        if "wall_s" in run:
            run["scoring_share_of_stage"] = round(
                sum(run["scoring_seconds"].values()) / run["wall_s"], 3
            )
        sample = Path(run["curve"]) / "sample"
        if (sample / f"{metric}.tsv").exists():
            epochs = set(range(run["steps_per_epoch"], run["steps"] + 1, run["steps_per_epoch"]))
            run["sample_against_whole"] = sample_against_whole(
                sample, values, epoch_steps=epochs, metric=metric
            )
    # all of dev_a's select_metric at every evaluation, and what each eval_whole would have
    # kept, read on it
    reference["whole_curve"] = {str(step): value for step, value in sorted(values.items())}
    reference["eval_whole"] = spread_decisions(
        values,
        steps=reference["steps"],
        steps_per_epoch=reference["steps_per_epoch"],
        eval_every=reference["eval_every"],
        counts=range(1, 8),
    )


def read_curve(folder: Path, name: str) -> dict[int, float]:
    """A DVCLive curve (``<name>.tsv`` in ``folder``) as ``{step: value}``."""
    table = pd.read_csv(folder / f"{name}.tsv", sep="\t")
    return dict(zip(table["step"].astype(int), table[name].astype(float), strict=True))


SAMPLE_SCORES = ("loss", "precision", "recall", "f1", "average_precision")


def previous_rule(
    sample: dict[int, float], whole: dict[int, float], *, decisions: set[int]
) -> dict[str, Any]:
    """The rule before ``train.eval_whole``, replayed: all of dev_a scored where the sample's
    ``metric`` beat the best model's sample value, and at each epoch end and the last step
    (``decisions``); the best of those on all of dev_a kept."""
    best_step, best_sample, scorings = None, None, 0
    for step in sorted(sample):
        if step not in decisions and best_sample is not None and not sample[step] > best_sample:
            continue
        scorings += 1
        if best_step is None or whole[step] > whole[best_step]:
            best_step, best_sample = step, sample[step]
    assert best_step is not None
    return {"kept_step": best_step, "kept_value": whole[best_step], "whole_scorings": scorings}


def sample_against_whole(
    sample_folder: Path, whole: dict[int, float], *, epoch_steps: set[int], metric: str
) -> dict[str, Any]:
    """How the sample's production-prior scores rank the evaluations' models against all of
    dev_a's ``metric`` (Spearman's rho over the steps both scored), and what the previous
    rule would have kept."""
    curves = {name: read_curve(sample_folder, name) for name in SAMPLE_SCORES}
    steps = sorted(set(whole) & set(curves[metric]))
    rho = {
        name: float(spearmanr([curve[s] for s in steps], [whole[s] for s in steps]).statistic)
        for name, curve in curves.items()
    }
    previous = previous_rule(
        {s: curves[metric][s] for s in steps},
        whole,
        decisions=epoch_steps | {steps[-1]},
    )
    best = max(whole[s] for s in steps)
    previous["regret"] = best - previous["kept_value"]
    return {"steps": len(steps), "spearman_with_whole": rho, "previous_rule": previous}


def spread_decisions(
    whole: dict[int, float], *, steps: int, steps_per_epoch: int, eval_every: int, counts: range
) -> dict[str, dict[str, Any]]:
    """For each ``eval_whole`` in ``counts``: the decisions ``train`` would make
    (``CurveSchedule.decision_steps``), the best of them on the whole curve, and its regret."""
    from dsprior.training.callback import CurveSchedule

    best = max(whole.values())
    out = {}
    for count in counts:
        schedule = CurveSchedule(
            log_every=1, eval_every=eval_every, steps_per_epoch=steps_per_epoch,
            checkpoint_every=1, total_steps=steps, select_metric="average_precision",
            patience=None, decisions=count,
        )  # fmt: skip
        decisions = schedule.decision_steps()
        kept = max(decisions, key=lambda s: (whole[s], -s))
        out[str(count)] = {
            "decisions": decisions,
            "kept_step": kept,
            "kept_value": whole[kept],
            "regret": best - whole[kept],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=size_arg, default=[None, 2000])
    parser.add_argument("--work", type=Path, default=None, help="kept when given")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--project",
        type=Path,
        default=ROOT,
        help="the project whose data and params train (default: this one; e.g. make reference's)",
    )
    parser.add_argument(
        "--null-run",
        type=Path,
        help="judge --project's own train run (make reference --keep) on this earlier null run's "
        "folder (--work's eval_sample_None) instead of training",
    )
    args = parser.parse_args()
    if args.null_run is not None:
        runs = {
            "null": read_run(
                args.null_run / "model", args.null_run / "live", args.null_run / "train.log"
            ),
            "project": read_run(
                args.project / "models", args.project / "reports" / "train", Path("/nonexistent")
            ),
        }
        judge(runs)
        for run in runs.values():
            run.pop("curve")
        args.out.write_text(json.dumps({**provenance(), "runs": runs}, indent=2) + "\n")
        print(json.dumps(runs, indent=2))
        return
    params = yaml.safe_load((args.project / "params.yaml").read_text())
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-eval-sample-"))
    runs: dict[str, dict[str, Any]] = {}
    try:
        for size in args.sizes:
            key = "null" if size is None else str(size)
            runs[key] = train_once(size, work, params, args.project)
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
