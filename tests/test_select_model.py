"""Model selection on dev_b (tools/select_model.py): ranked by dev_b's expected cost, test shown for
the winner only, unless --spoil-test; once on made-up runs, once on a real queued sweep."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import make_project, run
from tools import select_model as select


def experiment(name: str, dev_b_cost: float, test_precision: float) -> select.Experiment:
    metrics = {
        "dev_b": {"prior": {"expected_cost": dev_b_cost}},
        "test": {
            "prior": {
                "precision": test_precision,
                "precision_ci": [test_precision - 0.1, test_precision + 0.1],
                "recall": 0.5,
                "expected_cost": 20.0,
            }
        },
        "bootstrap": {"level": 0.9},
    }
    params = {"train": {"model": "cnn" if "cnn" in name else "pooled_logistic", "seed": 1}}
    return select.Experiment(name, f"{name}-rev", params, metrics, interval=[1.0, 2.0])


RUNS = [
    experiment("cnn-a", 30.0, 0.7771),
    experiment("lr-b", 10.0, 0.6662),
    experiment("lr-c", 20.0, 0.5553),
]


def test_ranked_by_dev_b_cost_with_test_for_the_winner_only():
    text = select.render(select.rank(RUNS), spoil_test=False)
    names = [line.split()[1] for line in text.splitlines() if re.match(r"^[0-9]+\s", line)]
    assert names == ["lr-b", "lr-c", "cnn-a"]
    assert "Winner: lr-b" in text and "90% interval" in text and "[1, 2]" in text
    assert "precision 0.6662 [0.5662, 0.7662]" in text  # the winner's test, with its interval
    assert "0.5553" not in text and "0.7771" not in text  # nobody else's test
    assert text.index("Winner") < text.index("precision 0.6662")  # test only after the winner


def test_spoil_test_shows_every_test_and_says_what_it_costs():
    text = select.render(select.rank(RUNS), spoil_test=True)
    assert "0.5553" in text and "0.7771" in text
    assert "no longer an unbiased estimate" in text


def test_runs_at_different_costs_or_priors_are_flagged_as_not_comparable():
    assert select.MIXED_WARNING not in select.render(RUNS, spoil_test=False)
    other = experiment("lr-d", 5.0, 0.9)
    other.metrics["prior"] = 0.02
    assert select.MIXED_WARNING in select.render([*RUNS, other], spoil_test=False)


def test_a_run_without_dev_b_cost_ranks_last_and_nothing_to_rank_says_so():
    unfinished = select.Experiment("queued", "r", {}, {})
    assert select.rank([unfinished, *RUNS])[-1] is unfinished
    assert "No finished experiment" in select.render([unfinished], spoil_test=False)


@pytest.mark.slow
def test_a_queued_sweep_is_ranked_on_dev_b_and_test_printed_for_the_winner_only(tmp_path: Path):
    project = make_project(tmp_path / "project", {"train": {"epochs": 1}})
    sweep = [
        ["-S", "train.model=cnn"],
        ["-S", "train.model=pooled_logistic"],
        ["-S", "train.model=pooled_logistic", "-S", "train.pooled_logistic.C=0.01"],
    ]
    for overrides in sweep:
        run(["dvc", "exp", "run", "--queue", *overrides], project)
    run(["dvc", "exp", "run", "--run-all"], project)

    # each experiment's own numbers, as DVC holds them
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    runs = {
        state["name"]: state["data"]["metrics"]["reports/metrics.json"]["data"]
        for group in shown[1]["experiments"]
        for state in group["revs"]
    }
    assert len(runs) == 3

    out = run(["python", "-m", "tools.select_model"], project).stdout
    table = [line.split() for line in out.splitlines() if re.match(r"^[0-9]+\s", line)]
    names = [row[1] for row in table]
    assert sorted(names) == sorted(runs)  # the un-run HEAD is left out
    costs = [runs[n]["dev_b"]["prior"]["expected_cost"] for n in names]
    assert costs == sorted(costs)
    assert [row[2] for row in table] == [select._fmt(c) for c in costs]
    assert all(re.fullmatch(r"\[[0-9.e+-]+,", row[3]) for row in table)  # an interval each
    winner = names[0]
    assert f"Winner: {winner} " in out
    test_lines = [line for line in out.splitlines() if "precision" in line]
    assert (
        len(test_lines) == 1
        and select._fmt(runs[winner]["test"]["prior"]["precision"]) in (test_lines[0])
    )
    for name in names[1:]:
        assert select._fmt(runs[name]["test"]["prior"]["precision"]) not in out

    spoiled = run(["python", "-m", "tools.select_model", "--spoil-test"], project).stdout
    for name in names:
        row = next(line for line in spoiled.splitlines() if f" {name} " in line)
        assert select._fmt(runs[name]["test"]["prior"]["precision"]) in row
    assert "no longer an unbiased estimate" in spoiled
