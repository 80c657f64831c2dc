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
