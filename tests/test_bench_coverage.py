"""The coverage benchmark's bookkeeping (benchmarks/bench_coverage.py), and one tiny world."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace

import numpy as np
import pytest

from tools.scratch import ROOT

_SPEC = importlib.util.spec_from_file_location(
    "bench_coverage", ROOT / "benchmarks" / "bench_coverage.py"
)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_coverage"] = bench  # dataclasses look their module up there
_SPEC.loader.exec_module(bench)


def test_wilson_interval_known_values():
    low, high = bench.wilson_interval(95, 100)
    assert (round(low, 3), round(high, 3)) == (0.888, 0.978)
    assert bench.wilson_interval(0, 10)[0] == 0.0
    assert bench.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(np.isnan(bench.wilson_interval(0, 0)))


def test_two_hundred_replicates_at_95_read_about_92_to_98():
    """docs/methods.md section 12's yardstick: 190 of 200 covered reads between about 92% and 98%."""
    low, high = bench.wilson_interval(190, 200)
    assert 0.90 < low < 0.92 and 0.97 < high < 0.98


def test_check_interval_covers_at_the_ends_and_skips_what_makes_no_claim():
    assert bench.check_interval("x", [0.1, 0.3], 0.1)["covered"]
    assert bench.check_interval("x", [0.1, 0.3], 0.3)["covered"]
    found = bench.check_interval("x", [0.1, 0.3], 0.31, 0.2, factor=2.0)
    assert not found["covered"] and found["width"] == pytest.approx(0.2) and found["factor"] == 2.0
    assert bench.check_interval("x", [None, None], 0.2) is None
    assert bench.check_interval("x", [0.1, 0.3], None) is None
    assert bench.check_interval("x", [0.1, 0.3], float("nan")) is None


def _record(cell, covered):
    return {
        "cell": cell,
        "intervals": [
            {
                "interval": "a",
                "low": 0.0,
                "high": 1.0,
                "truth": 0.5 if c else 2.0,
                "covered": c,
                "width": 1.0,
            }
            for c in covered
        ],
    }


def test_summarise_coverage_counts_per_interval_and_per_cell():
    records = [_record("one", [True, True, False]), _record("two", [True])]
    entry = bench.summarise_coverage(records)["a"]
    assert (entry["n"], entry["covered"], entry["coverage"]) == (4, 3, 0.75)
    assert entry["coverage_ci"] == list(bench.wilson_interval(3, 4))
    assert entry["truth_above_interval"] == 1 and entry["truth_below_interval"] == 0  # 2.0 > [0, 1]
    assert entry["cells"]["one"]["covered"] == 2 and entry["cells"]["two"]["coverage"] == 1.0
    assert entry["median_width"] == 1.0


def test_intervals_evaluate_refuses_are_counted_apart():
    """Below min_positives (evaluate's refusal) an interval leaves the printed counts for
    ``refused``; at exactly the minimum, or with no positives recorded, it stays."""
    records = [_record("one", [True, False, True])]
    for row, positives in zip(records[0]["intervals"], (9, 9, 10), strict=True):
        row["positives"] = positives
    records.append(_record("two", [False]))  # no positives recorded: never refused
    entry = bench.summarise_coverage(records, min_positives=10)["a"]
    assert (entry["n"], entry["covered"]) == (2, 1)
    assert (entry["refused"]["n"], entry["refused"]["covered"]) == (2, 1)
    assert "refused" not in bench.summarise_coverage(records, min_positives=9)["a"]
    assert bench.evaluate_min_positives() >= 1  # params.yaml's


def test_intervals_at_a_prior_from_too_few_positives_are_counted_apart():
    """Below min_prior_positives in the prior's rows, an interval at that prior (dev_a's and
    test's record ``prior_positives``) leaves the printed counts; at exactly the minimum it
    stays."""
    records = [_record("one", [True, False, True])]
    for row, prior_positives in zip(records[0]["intervals"], (29, 29, 30), strict=True):
        row["prior_positives"] = prior_positives
    entry = bench.summarise_coverage(records, min_prior_positives=30)["a"]
    assert (entry["n"], entry["covered"]) == (1, 1)
    assert (entry["refused"]["n"], entry["refused"]["covered"]) == (2, 1)
    assert "refused" not in bench.summarise_coverage(records, min_prior_positives=29)["a"]
    assert bench.evaluate_min_positives("min_prior_positives") >= 1  # params.yaml's


def test_label_free_intervals_of_one_value_are_counted_apart():
    """A label-free estimate's interval of one value (every resample agreed) leaves the printed
    counts, as the project refuses it; alerts per 1,000 keep theirs (a known count); the
    true prior is also refused where its point is undefined."""

    def row(name, low, high, point=0.1):
        return {
            "interval": name,
            "low": low,
            "high": high,
            "truth": 0.2,
            "point": point,
            "covered": low <= 0.2 <= high,
            "width": high - low,
        }

    prior, alerts = "label-free batch prior (em)", "label-free batch alerts_per_1000 (CBPE)"
    true = "label-free batch true prior (noise-aware)"
    records = [
        {
            "cell": "c",
            "intervals": [
                row(prior, 0.0, 0.0),
                row(prior, 0.1, 0.3),
                row(alerts, 0.2, 0.2),
                row(true, 0.0, 0.0),
                row(true, 0.1, 0.3, point=None),
                row(true, 0.1, 0.3),
            ],
        }
    ]
    out = bench.summarise_coverage(records)
    assert (out[prior]["n"], out[prior]["refused"]["n"]) == (1, 1)
    assert out[alerts]["n"] == 1 and "refused" not in out[alerts]
    assert (out[true]["n"], out[true]["refused"]["n"]) == (1, 2)
    assert out[true]["refused_by"]["one_value"]["n"] == 2
    noisy = [{"interval": "dev_b missing label rate", "low": 0.3, "high": 0.5, "truth": 0.4,
              "point": 0.4, "covered": True, "width": 0.2}]  # fmt: skip
    records.append({"cell": "c", "intervals": noisy + [row(prior, 0.0, 0.0)]})
    by = bench.summarise_coverage(records)[prior]["refused_by"]  # noisy first, as the project
    assert (by["one_value"]["n"], by["noisy_labels"]["n"]) == (1, 1)
    assert set(bench.COLLAPSE_REFUSED) <= set(bench.LABEL_SHIFT) | {true}


def test_grids_pool_only_when_their_worlds_are_distinct(tmp_path):
    """--pool reads several grids' records as one; a world in two files (the same seed) would
    count twice, so it is refused."""
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    for path, seeds in ((one, (1, 2)), (two, (3,))):
        for seed in seeds:
            bench.append_record(path, {**_record("c", [True]), "seed": seed})
    assert [r["seed"] for r in bench.pooled_records([one, two])] == [1, 2, 3]
    with pytest.raises(SystemExit, match=r"worlds in more than one file: 1 \(seeds \[3\]\)"):
        bench.pooled_records([one, two, two])
    assert bench.pooled_records([one]) == bench.read_records(one)


def test_a_cell_is_short_only_when_its_wilson_interval_is_below_the_goal():
    assert not bench.cell_short({"coverage_ci": list(bench.wilson_interval(15, 17))}, 0.9)
    assert bench.cell_short({"coverage_ci": list(bench.wilson_interval(10, 17))}, 0.9)
    assert not bench.cell_short({"coverage_ci": None}, 0.9)
    records = [_record("one", [False] * 9 + [True]), _record("two", [True] * 10)]
    assert bench.summarise_coverage(records)["a"]["cells_short"] == 1


def test_summarise_estimates_goal_subset():
    records = [
        {
            "cell": "c",
            "world": {"test_ap": ap},
            "estimates": [
                {"method": "em", "factor": 1.0, "ratio": ratio, "value": 0.011, "truth": 0.01}
            ],
        }
        for ap, ratio in ((0.9, 100), (0.2, 100), (0.9, 30))
    ]
    out = bench.summarise_estimates(records)["em"]
    assert out["all"]["n"] == 3
    assert out["at_1_100_test_ap_0_5"]["n"] == 1
    assert out["at_1_100_test_ap_0_5"]["median_relative_error"] == pytest.approx(0.1)


def test_records_resume_after_a_torn_line(tmp_path):
    path = tmp_path / "r.jsonl"
    bench.append_record(path, {"cell": "a", "replicate": 0, "x": np.float64(1.5)})
    with path.open("a") as f:
        f.write('{"cell": "a", "repl')  # a run killed mid-write
    records = bench.read_records(path)
    assert records == [{"cell": "a", "replicate": 0, "x": 1.5}]


def test_grid_spans_the_issue_ranges():
    cells = bench.grid()
    assert len(cells) == len({c.name for c in cells}) == 12
    assert {c.ratio for c in cells} == {30, 100, 300}
    assert {c.kb_noise for c in cells} == {0.0, 0.3}
    assert min(c.dev_b_positives for c in cells) == 20


def test_split_groups_keeps_groups_whole():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(50), 3).astype(str)
    split = bench.split_groups(groups, {"a": 0.5, "b": 0.5}, rng)
    for g in np.unique(groups):
        assert len(set(split[groups == g])) == 1
    assert set(split) == {"a", "b"}


def test_one_tiny_world_end_to_end():
    """A tiny world through training, evaluate's intervals, truth and the label-free batches
    (about 10 s, most of it importing TensorFlow)."""
    cell = replace(bench.grid()[1], dev_b_positives=20)  # 1:30
    scale = bench.Scale(
        train_positives=100,
        truth_positives=200,
        truth_negatives=1000,
        truth_negatives_max=2000,
        batch_positives=20,
        resamples=20,
        batch_resamples=10,
        epochs=1,
    )
    record = bench.run_replicate(cell, 1, 0, scale=scale, base_seed=7)
    json.dumps(record, default=bench._jsonable)
    names = {i["interval"] for i in record["intervals"]}
    assert any(n.startswith("test recall") for n in names)
    assert any(n.startswith("label-free batch prior (em)") for n in names)
    assert "label-free batch precision against gold (noise-aware)" in names
    assert all(
        isinstance(i["positives"], int)
        for i in record["intervals"]
        if i["interval"].startswith("test") and "label rate" not in i["interval"]
    )
    assert {e["method"] for e in record["estimates"]} == {"em", "acc", "pacc", "hdy"}
    for i in record["intervals"]:
        assert i["low"] <= i["high"] and i["covered"] == (i["low"] <= i["truth"] <= i["high"])
    # dev_a's and test's intervals carry the positives of the rows the prior came from
    # (dev_b and test), by their labels; a record without them gets the same counts by
    # redrawing its world's tables, and a record of another world is refused
    at_prior = [i for i in record["intervals"] if "prior_positives" in i]
    distant = record["world"]["dev_b_positives"] + record["world"]["test_positives"]
    assert {i["interval"].split()[0] for i in at_prior} == {"dev_a", "test"}
    assert {i["prior_positives"] for i in at_prior if "gold" not in i["interval"]} == {distant}
    bare = json.loads(json.dumps(record, default=bench._jsonable))
    for i in bare["intervals"]:
        i.pop("prior_positives", None)
    redrawn = bench.backfill_prior_positives(bare, scale=scale)
    assert [i.get("prior_positives") for i in redrawn["intervals"]] == [
        i.get("prior_positives") for i in record["intervals"]
    ]
    bare["world"]["test_positives"] += 1
    with pytest.raises(ValueError, match="test redrawn with"):
        bench.backfill_prior_positives(bare, scale=scale)


def test_write_summary_renders_page_and_plots(tmp_path):
    record = {
        "cell": "1:30 weak benign",
        "replicate": 0,
        "world": {"test_ap": 0.6, "test_positives": 50},
        "seconds": {"evaluate": 1.0, "total": 2.0},
        **_record("1:30 weak benign", [True, False]),
        "estimates": [
            {"method": m, "factor": f, "ratio": 100, "value": 0.012, "truth": 0.01}
            for m in ("em", "hdy")
            for f in bench.FACTORS
        ],
    }
    out, page = tmp_path / "c.json", tmp_path / "c.md"
    bench.write_summary(
        [record], scale=bench.QUICK, command="python x --quick", out=out, page=page, planned=12
    )
    summary = json.loads(out.read_text())
    assert summary["coverage"]["a"]["n"] == 2 and summary["replicates"] == 1
    text = page.read_text()
    assert "QUICK RUN" in text and "PARTIAL: 1 of 12 worlds" in text
    assert (tmp_path / "c_coverage.svg").read_text().startswith("<svg")
    assert (tmp_path / "c_prior_error.svg").exists()
