"""Pick a model on dev_b, then (and only then) look at test: rank DVC experiments by dev_b's
expected cost at the production prior, name the winner, and show the winner's test numbers.

Why: dev_b exists to choose among models at the production metric; test is kept for the
chosen model alone, so its numbers stay an unbiased estimate of what will ship. Sorting a
sweep by test's numbers (and shipping the best) makes test one more selection set, and its
numbers optimistic. This command prints test numbers for no other experiment unless asked
with ``--spoil-test``, whose name says what it costs.

Usage (after a sweep; docs/own-scores.md, "Choosing a model on dev_b")::

    dvc exp run --queue -S train.model=pooled_logistic
    dvc exp run --queue -S train.model=cnn -S train.filters=64
    dvc exp run --run-all
    python -m tools.select_model                 # or: make select

Experiments are listed with ``dvc exp show --json`` (those derived from ``HEAD``, and the
workspace's own run), and each one's metrics.json is read whole at its revision
(``dvc.api.read``: ``exp show`` drops its intervals). Each row shows dev_b's expected cost per 1,000 production examples
at the threshold evaluate chose there, with a group-bootstrap interval: from metrics.json
when it holds one (``dev_b.prior.expected_cost_ci``), else computed here from the
experiment's ``reports/predictions.parquet`` (read from the DVC cache at its revision) with
evaluate's bootstrap settings. The threshold was fitted on dev_b, so every dev_b cost is a
little optimistic, and equally so for each experiment; the interval shows how much of a gap
between two rows dev_b's size can tell apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsprior import runtime

logger = logging.getLogger(__name__)

METRICS_FILE = "reports/metrics.json"
PREDICTIONS_FILE = "reports/predictions.parquet"
PARAMS_FILE = "params.yaml"
RANK_KEY = ("dev_b", "prior", "expected_cost")
TEST_KEYS = ("precision", "recall", "expected_cost")  # what the winner's test line shows
SPOIL_WARNING = (
    "--spoil-test: test's numbers for every experiment. Choosing among them by these makes "
    "test a selection set: its numbers are then no longer an unbiased estimate."
)

MIXED_WARNING = (
    "Warning: these experiments differ in evaluate.cost or the production prior, so their "
    "expected costs measure different things; rank models at one setting."
)


@dataclass
class Experiment:
    """One finished run: its name, revision, params and metrics.json."""

    name: str
    rev: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    interval: list[float] | None = field(default=None)

    @property
    def dev_b_cost(self) -> float | None:
        return _get(self.metrics, RANK_KEY)


def _get(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _file_data(state: dict[str, Any], kind: str, path: str) -> dict[str, Any] | None:
    entry = ((state.get("data") or {}).get(kind) or {}).get(path) or {}
    return entry.get("data")


def parse_exp_show(rows: list[dict[str, Any]]) -> list[Experiment]:
    """The finished experiments (and baseline runs) of ``dvc exp show --json``'s output.

    A row without metrics.json (queued, failed, or a commit whose pipeline never ran) is
    left out, and said so in the log.
    """
    found: list[Experiment] = []

    def add(state: dict[str, Any], name: str | None) -> None:
        rev = state.get("rev", "")
        label = name or state.get("name") or rev[:7]
        metrics = _file_data(state, "metrics", METRICS_FILE)
        if state.get("error") or metrics is None:
            logger.warning("%s: no %s (not run, or failed); left out", label, METRICS_FILE)
            return
        params = _file_data(state, "params", PARAMS_FILE) or {}
        found.append(Experiment(label, rev, params, metrics))

    for row in rows:
        if row.get("rev") == "workspace":
            add(row, "workspace")
        else:
            add(row, row.get("name") or row.get("rev", "")[:7])
        for group in row.get("experiments") or []:
            for state in group.get("revs") or []:
                add(state, state.get("name") or group.get("name"))
    return found


def read_experiments(repo: Path) -> list[Experiment]:
    """The experiments ``dvc exp show --json`` lists in ``repo``."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ValueError(f"dvc exp show failed in {repo}: {proc.stderr.strip()}")
    return parse_exp_show(json.loads(proc.stdout))


def dedupe(experiments: list[Experiment]) -> list[Experiment]:
    """One row per distinct run: the workspace is left out when a committed run or an
    experiment holds the same metrics (it usually is the last one applied or committed)."""
    named = [e for e in experiments if e.name != "workspace"]
    seen = [json.dumps(e.metrics, sort_keys=True) for e in named]
    return [
        e
        for e in experiments
        if e.name != "workspace" or json.dumps(e.metrics, sort_keys=True) not in seen
    ]


def dev_b_interval(experiment: Experiment, repo: Path) -> list[float] | None:
    """dev_b's expected-cost interval: from metrics.json when it has one, else a group
    bootstrap of the experiment's predictions (evaluate's settings, the threshold it chose)."""
    ci = _get(experiment.metrics, (*RANK_KEY[:2], "expected_cost_ci"))
    if ci is not None:
        return list(ci)
    from dvc.exceptions import DvcException

    try:
        predictions = read_predictions(repo, experiment.rev)
    except (OSError, DvcException) as exc:  # not in the cache here (`dvc exp pull`?)
        logger.warning(
            "%s: no interval (%s unreadable: %s)", experiment.name, PREDICTIONS_FILE, exc
        )
        return None
    return bootstrap_cost_interval(predictions, experiment.metrics)


def read_metrics(repo: Path, rev: str) -> dict[str, Any]:
    """The experiment's whole metrics.json at its revision (``dvc exp show`` drops its
    lists, the intervals among them)."""
    import dvc.api

    return json.loads(
        dvc.api.read(METRICS_FILE, repo=str(repo), rev=None if rev == "workspace" else rev)
    )


def read_predictions(repo: Path, rev: str) -> Any:
    """The experiment's predictions table, from the DVC cache at its revision."""
    import dvc.api
    import pandas as pd

    with dvc.api.open(
        PREDICTIONS_FILE, repo=str(repo), rev=None if rev == "workspace" else rev, mode="rb"
    ) as handle:
        return pd.read_parquet(handle)


def bootstrap_cost_interval(predictions: Any, metrics: dict[str, Any]) -> list[float] | None:
    """Group-bootstrap interval of dev_b's expected cost at the chosen threshold and prior."""
    from dsprior.evaluation.measures import bootstrap_intervals, decisions_at
    from dsprior.priors import Bootstrap, Costs

    frame = predictions[predictions["split"] == "dev_b"]
    threshold, boot = metrics.get("threshold"), metrics.get("bootstrap") or {}
    if frame.empty or threshold is None or not {"resamples", "level", "seed"} <= set(boot):
        return None
    intervals = bootstrap_intervals(
        frame,
        decisions_at(frame, threshold),
        prior=metrics["prior"],
        costs=Costs(metrics["cost"]["false_positive"], metrics["cost"]["false_negative"]),
        bootstrap=Bootstrap(boot["resamples"], boot["level"], boot["seed"]),
    )
    return list(intervals["expected_cost_ci"])


def rank(experiments: list[Experiment]) -> list[Experiment]:
    """Lowest dev_b expected cost first; ties by name. Rows without the number go last."""
    return sorted(
        experiments,
        key=lambda e: (e.dev_b_cost is None, e.dev_b_cost or 0.0, e.name),
    )


def varying_params(experiments: list[Experiment]) -> list[str]:
    """The params that differ between the experiments (``train.model`` always shown)."""
    flat = [_flatten(e.params) for e in experiments]
    keys = sorted({k for f in flat for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]
    return ["train.model", *[k for k in differ if k != "train.model"]]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _interval(ci: list[float] | None) -> str:
    return "n/a" if ci is None else f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def test_line(metrics: dict[str, Any]) -> str:
    """Test's precision, recall and expected cost at the chosen threshold, with intervals."""
    prior = _get(metrics, ("test", "prior")) or {}
    parts = [
        f"{key} {_fmt(prior.get(key))} {_interval(prior.get(f'{key}_ci'))}" for key in TEST_KEYS
    ]
    return "; ".join(parts)


def render(ranked: list[Experiment], *, spoil_test: bool) -> str:
    """The ranking table, the winner, and test's numbers (the winner's, or all with
    ``spoil_test``)."""
    if not ranked or ranked[0].dev_b_cost is None:
        return f"No finished experiment has {'.'.join(RANK_KEY)} in {METRICS_FILE}.\n"
    params = varying_params(ranked)
    level = _get(ranked[0].metrics, ("bootstrap", "level"))
    head = ["rank", "experiment", "dev_b cost", f"{_fmt((level or 0.95) * 100)}% interval"]
    head += params + (["test (spoiled)"] if spoil_test else [])
    rows = []
    for i, e in enumerate(ranked, 1):
        flat = _flatten(e.params)
        row = [str(i), e.name, _fmt(e.dev_b_cost), _interval(e.interval)]
        row += [_fmt(flat.get(k)) for k in params]
        row += [test_line(e.metrics)] if spoil_test else []
        rows.append(row)
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    table = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    winner = ranked[0]
    lines = [
        "Experiments ranked by dev_b's expected cost at the production prior, per 1,000",
        "production examples (lower is better; each at the threshold evaluate chose on dev_b,",
        "so all a little optimistic):",
        "",
        *table,
        "",
        f"Winner: {winner.name} ({winner.rev[:7]}), train.model "
        f"{_fmt(_flatten(winner.params).get('train.model'))}.",
        f"Test, for the winner only (unbiased: test chose nothing): {test_line(winner.metrics)}",
    ]
    settings = {
        json.dumps([e.metrics.get("cost"), e.metrics.get("prior")], sort_keys=True) for e in ranked
    }
    if len(settings) > 1:
        lines += ["", MIXED_WARNING]
    if spoil_test:
        lines += ["", SPOIL_WARNING]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC repository")
    parser.add_argument(
        "--spoil-test",
        action="store_true",
        help="also print test's numbers for every experiment; choosing by them spoils test "
        "as an unbiased estimate",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    experiments = dedupe(read_experiments(args.repo))
    for experiment in experiments:
        experiment.metrics = read_metrics(args.repo, experiment.rev)
        experiment.interval = dev_b_interval(experiment, args.repo)
    sys.stdout.write(render(rank(experiments), spoil_test=args.spoil_test))


if __name__ == "__main__":
    runtime.run_main(main)
