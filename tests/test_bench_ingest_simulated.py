"""benchmarks/bench_ingest_simulated.py at a tiny scale: both worker counts run in fresh
processes, write the same bytes, and the result records the ratio it is read for."""

from __future__ import annotations

import importlib.util
import json
import sys

from tools.scratch import ROOT

spec = importlib.util.spec_from_file_location(
    "bench_ingest_simulated", ROOT / "benchmarks" / "bench_ingest_simulated.py"
)
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_ingest_simulated"] = bench
spec.loader.exec_module(bench)


def test_scaled_params_scale_every_source_and_set_the_workers():
    import yaml

    real = yaml.safe_load((ROOT / "params.yaml").read_text())["generate"]["sources"]
    params = bench.scaled_params(0.5, 2)
    assert params["ingest"]["workers"] == 2
    for name, source in params["generate"]["sources"].items():
        assert source["examples"] == round(real[name]["examples"] * 0.5)


def test_tiny_run_records_both_worker_counts_with_identical_bytes(tmp_path):
    out = tmp_path / "ingest_simulated.json"
    bench.main(["--scale", "0.004", "--rounds", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["best"]) == {"1", "2"} and result["examples"] > 0
    assert result["best"]["2"]["identical_bytes"] is True
    assert result["best"]["1"]["speedup"] == 1.0
    assert result["command"].startswith("python benchmarks/bench_ingest_simulated.py")
