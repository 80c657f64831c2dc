"""benchmarks/bench_stages.py's train ceiling on a tiny project: the stage's own batches, fit
from memory, scaled to the whole run by the plan's padded rows."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.factories import TINY, make_data
from tools.scratch import ROOT, tool_env


def test_the_train_ceiling_fits_the_first_steps_and_scales_them_to_the_run(tmp_path):
    _, manifest = make_data(tmp_path / "data")
    manifest.to_parquet(tmp_path / "data" / "manifest.parquet", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": TINY}))
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_stages.py"), "--child",
         "train_ceiling", "--project", str(tmp_path), "--steps", "3"],
        cwd=ROOT, env=tool_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    # 2 epochs of the kept training rows in batches of 6
    kept = manifest[(manifest["split"] == "train") & manifest["kept"]]
    assert result["total_steps"] == 2 * -(-len(kept) // TINY["batch_size"])
    assert result["steps"] == 3 and result["steps_seconds"] > 0
    # the whole run has more padded rows than its first 3 steps
    assert result["padded_rows_scale"] > 1
    assert result["ceiling_seconds"] == result["startup_seconds"] + result["all_steps_seconds"]


def test_the_reference_ratios_are_read_from_one_runs_figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference", ROOT / "benchmarks" / "reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    result = {
        "ceilings": {
            "train": {"ceiling_seconds": 400.0},
            "score_raw": {"examples_per_second": 800.0},
        },
        "log_seconds": {
            "evaluate_scoring": {"examples": 64000, "seconds": 90.0},
            "evaluate_metrics_seconds": 30.0,
        },
        "stages": {"train": {"wall_s": 500.0}, "evaluate": {"wall_s": 132.0}},
    }
    got = reference.ratios(result)
    assert got["train_ceiling_over_stage"] == 0.8
    # raw forward: 64,000 examples at 800/s = 80 s; plus 30 s of metrics = 110 s
    assert got["evaluate_over_raw_forward_plus_metrics"] == 1.2
    assert got["evaluate_scoring_over_raw_forward"] == 90.0 / 80.0
    result["log_seconds"]["evaluate_scoring"] = None  # a log without the line: no ratio
    assert reference.ratios(result)["evaluate_over_raw_forward_plus_metrics"] is None
