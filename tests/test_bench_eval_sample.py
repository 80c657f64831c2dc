"""benchmarks/bench_eval_sample.py's judgement: each run's kept step read on the curve of the
run that scored all of dev_a at every evaluation, and the scoring share of the stage."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tools.scratch import ROOT

spec = importlib.util.spec_from_file_location(
    "bench_eval_sample", ROOT / "benchmarks" / "bench_eval_sample.py"
)
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_eval_sample"] = bench
spec.loader.exec_module(bench)


def run(tmp_path, name, best_step, *, wall=100.0, whole=20.0, sample=5.0):
    curve = tmp_path / name
    curve.mkdir()
    (curve / "average_precision.tsv").write_text(
        "step\taverage_precision\n100\t0.80\n200\t0.83\n300\t0.82\n"
    )
    return {
        "best_step": best_step,
        "select_metric": "average_precision",
        "curve": str(curve),
        "wall_s": wall,
        "scoring_seconds": {"whole": whole, "sample": sample},
        "steps": 300,
        "steps_per_epoch": 300,
        "eval_every": 100,
    }


def test_each_choice_is_read_on_the_whole_dev_a_curve(tmp_path):
    runs = {"null": run(tmp_path, "null", 200), "500": run(tmp_path, "500", 300, wall=50.0)}
    bench.judge(runs)
    assert runs["null"]["choice"]["regret"] == 0.0
    assert runs["null"]["choice"]["same_step_as_null"] is True
    sampled = runs["500"]["choice"]
    assert sampled["kept_value_on_whole_dev_a"] == 0.82
    assert sampled["regret"] == pytest.approx(0.01)
    assert sampled["same_step_as_null"] is False and sampled["evaluation_steps"] == 3
    assert runs["500"]["scoring_share_of_stage"] == 0.5


def test_sizes_parse_null_as_all_of_dev_a():
    assert bench.size_arg("null") is None and bench.size_arg("2000") == 2000


def test_each_eval_whole_is_judged_on_the_null_curve(tmp_path):
    runs = {"null": run(tmp_path, "null", 200)}
    bench.judge(runs)
    # evaluations at 100, 200, 300 (the epoch's end, the last): one decision is the last
    # step, two are the first and the last, and three or more are all of them
    spread = runs["null"]["eval_whole"]
    assert spread["1"] == {
        "decisions": [300],
        "kept_step": 300,
        "kept_value": 0.82,
        "regret": pytest.approx(0.01),
    }
    assert spread["2"]["decisions"] == [100, 300] and spread["2"]["kept_step"] == 300
    assert spread["3"]["kept_step"] == 200 and spread["3"]["regret"] == 0.0
    assert spread["3"]["decisions"] == [100, 200, 300] == spread["7"]["decisions"]


def test_the_sample_is_set_against_the_whole_and_the_previous_rule_replayed(tmp_path):
    folder = tmp_path / "sample"
    folder.mkdir()
    steps = [100, 200, 300, 400]
    sample = {"loss": [4, 3, 2, 1], "average_precision": [0.5, 0.7, 0.6, 0.65]}
    for name in bench.SAMPLE_SCORES:
        values = sample.get(name, [1, 2, 3, 4])
        rows = "".join(f"{s}\t{v}\n" for s, v in zip(steps, values, strict=True))
        (folder / f"{name}.tsv").write_text(f"step\t{name}\n{rows}")
    whole = {100: 0.80, 200: 0.78, 300: 0.83, 400: 0.81}
    got = bench.sample_against_whole(folder, whole, epoch_steps={400}, metric="average_precision")
    assert got["steps"] == 4
    assert got["spearman_with_whole"]["recall"] == pytest.approx(0.6)  # ranks 1234 vs 2143
    assert got["spearman_with_whole"]["loss"] == pytest.approx(-0.6)
    # previous rule: 100 (first), 200 (sample 0.7 above 0.5; worse on whole, best stays 100),
    # 300 (0.6 above the best's 0.5: new best 0.83), 400 (the last): four scorings, 300 kept
    assert got["previous_rule"] == {
        "kept_step": 300,
        "kept_value": 0.83,
        "whole_scorings": 4,
        "regret": 0.0,
    }
