"""benchmarks/mutation_report.py's merge of a scoped run into an earlier report: each earlier
survivor judged again, modules checked whole replaced, the counts kept consistent."""

from __future__ import annotations

import importlib.util
import sys

from tools.scratch import ROOT

spec = importlib.util.spec_from_file_location(
    "mutation_report", ROOT / "benchmarks" / "mutation_report.py"
)
report = importlib.util.module_from_spec(spec)
sys.modules["mutation_report"] = report
spec.loader.exec_module(report)


def survivor(module, name, change, status="survived"):
    return {"mutant": name, "module": module, "status": status, "diff": f"--- a\n+++ b\n{change}"}


PREVIOUS = {
    "modules": {
        "a.py": {"killed": 10, "survived": 3},
        "b.py": {"killed": 5, "survived": 1},
    },
    "runs": {"a.py": "old", "b.py": "old"},
    "survivors": [
        survivor("a.py", "m.x_f__mutmut_1", "-x = 1\n+x = 2"),  # the scoped run kills it
        survivor("a.py", "m.x_f__mutmut_2", "-y = 1\n+y = 2"),  # still survives there
        survivor("a.py", "m.x_g__mutmut_1", "-z = 1\n+z = 2"),  # not rechecked, now listed
        survivor("b.py", "n.x_h__mutmut_1", "-w = 1\n+w = 2"),  # b.py is rerun whole
    ],
}


def test_a_scoped_run_rejudges_the_survivors_of_the_functions_it_checked():
    results = {
        "a.py": {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_g__mutmut_1": None},
        "b.py": {"n.x_h__mutmut_1": 1, "n.x_h__mutmut_2": 1},
    }
    fresh = {
        "modules": {"a.py": {"killed": 1, "survived": 1, "not checked": 1}, "b.py": {"killed": 2}},
        "survivors": [survivor("a.py", "m.x_f__mutmut_2", "-y = 1\n+y = 2")],
    }
    equivalent = {("m.x_g", "-z = 1\n+z = 2"): "never differs"}
    got = report.carry_forward(PREVIOUS, results, fresh, equivalent)
    assert got["modules"]["a.py"] == {"equivalent": 1, "killed": 11, "survived": 1}
    assert got["modules"]["b.py"] == {"killed": 2}  # checked whole: the run's row
    assert got["total"] == {"equivalent": 1, "killed": 13, "survived": 1}
    statuses = {e["mutant"]: e["status"] for e in got["survivors"]}
    assert statuses == {"m.x_f__mutmut_2": "survived", "m.x_g__mutmut_1": "equivalent"}
    assert got["rechecked"]["modules"] == {"a.py": fresh["modules"]["a.py"]}
    assert sum(sum(c.values()) for c in got["modules"].values()) == 15  # 13 + 2: none lost


def test_a_run_of_the_functions_left_unchecked_fills_the_modules_count():
    """The earlier report left some of a.py's mutants unchecked; a run scoped to those
    functions replaces the count with its own verdicts, and its survivors are listed."""
    previous = {
        "modules": {"a.py": {"killed": 10, "equivalent": 1, "not checked": 4}},
        "survivors": [survivor("a.py", "m.x_g__mutmut_1", "-z = 1\n+z = 2", "equivalent")],
    }
    results = {"a.py": {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_g__mutmut_1": None}}
    fresh = {
        "modules": {"a.py": {"killed": 1, "survived": 1, "not checked": 1}},
        "survivors": [survivor("a.py", "m.x_f__mutmut_2", "-y = 1\n+y = 2")],
    }
    got = report.carry_forward(previous, results, fresh, {}, frozenset({"a.py"}))
    assert got["modules"]["a.py"] == {"equivalent": 1, "killed": 11, "survived": 1}
    assert [e["mutant"] for e in got["survivors"]] == ["m.x_g__mutmut_1", "m.x_f__mutmut_2"]
    assert got["rechecked"] == {"modules": {}, "survivors": []}
    plain = report.carry_forward(previous, results, fresh, {})  # not said: kept apart
    assert plain["modules"]["a.py"] == previous["modules"]["a.py"]
    assert plain["rechecked"]["modules"] == {"a.py": fresh["modules"]["a.py"]}


def test_survivors_killed_by_later_tests_count_as_killed_and_are_listed():
    merged = {
        "modules": {"a.py": {"killed": 10, "survived": 2, "equivalent": 1}},
        "survivors": [
            survivor("a.py", "m.x_f__mutmut_1", "-x = 1\n+x = 2"),
            survivor("a.py", "m.x_f__mutmut_2", "-y = 1\n+y = 2"),
            survivor("a.py", "m.x_f__mutmut_3", "-z = 1\n+z = 2", status="equivalent"),
        ],
        "rechecked": {
            "modules": {"c.py": {"killed": 1, "survived": 1}},
            "survivors": [survivor("c.py", "k.x_q__mutmut_4", "-v = 1\n+v = 2")],
        },
    }
    verdicts = {
        "m.x_f__mutmut_1": "killed",
        "m.x_f__mutmut_2": "survived",
        "m.x_f__mutmut_3": "killed",  # equivalent stays equivalent whatever a script says
        "k.x_q__mutmut_4": "killed",
    }
    assert report.apply_rejudged(merged, verdicts, "by a script") == 2
    assert merged["modules"]["a.py"] == {"equivalent": 1, "killed": 11, "survived": 1}
    assert merged["total"] == {"equivalent": 1, "killed": 11, "survived": 1}
    assert merged["rechecked"]["modules"]["c.py"] == {"killed": 2}
    assert [e["mutant"] for e in merged["survivors"]] == ["m.x_f__mutmut_2", "m.x_f__mutmut_3"]
    assert merged["rejudged"]["killed"] == ["m.x_f__mutmut_1", "k.x_q__mutmut_4"]
    assert "Killed by tests written after the run" in report.markdown(
        {
            **merged,
            "date": "d",
            "commit": "c",
            "mutmut": "3",
            "machine": "m",
            "note": "",
            "seconds": 1,
        }
    )
