"""benchmarks/bench_settings.py: its variants are valid params, and it reads what the docs'
experiment tables need from a run's metrics.json."""

from __future__ import annotations

import importlib.util
import json

import yaml

from tools.scratch import ROOT, deep_merge

spec = importlib.util.spec_from_file_location(
    "bench_settings", ROOT / "benchmarks" / "bench_settings.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_every_variant_is_a_valid_params_file():
    from dsprior.evaluation.config import check_params as check_evaluate
    from dsprior.simulator import check_params as check_generate
    from dsprior.training.params import resolve_params

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, overrides in bench.VARIANTS.items():
        params = deep_merge(base, overrides)
        check_evaluate(params["evaluate"])
        resolve_params(params["train"])
        check_generate(params["generate"])
        assert (params != base) == (name != "default"), name


def test_the_tables_numbers_are_read_from_the_committed_run():
    metrics = json.loads((ROOT / "reports" / "metrics.json").read_text())
    got = bench.test_numbers(metrics)
    test = metrics["test"]
    assert got["prior"] == metrics["prior"] and got["gold_prior"] == metrics["gold_prior"]
    assert got["distant"]["precision_ci"] == test["prior"]["precision_ci"]
    assert got["distant"]["shipped_precision"] == test["shipped"]["prior"]["precision"]
    assert got["gold"]["recall"] == test["gold"]["prior"]["recall"]
    assert got["label_noise"]["missing_label_rate"] == test["label_noise"]["missing_label_rate"]
    no_gold = {k: v for k, v in test.items() if k not in ("gold", "label_noise")}
    assert "gold" not in bench.test_numbers({**metrics, "test": no_gold})


def test_ratios_are_each_variants_seconds_over_the_defaults():
    def run(train, evaluate):
        return {"stages": {"train": {"wall_s": train}, "evaluate": {"wall_s": evaluate}}}

    got = bench.compare({"default": run(40.0, 20.0), "float32": run(60.0, 25.0)})
    assert got == {"float32_train_over_default": 1.5, "float32_evaluate_over_default": 1.25}
    assert bench.compare({"float32": run(1.0, 1.0)}) == {}
