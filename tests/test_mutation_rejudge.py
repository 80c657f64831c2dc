"""benchmarks/mutation_rejudge.py: a survivor's diff applied to a scratch copy is killed by a
failing test, survives a passing one, is put back either way, and a diff that no longer
applies is said to be so, not judged."""

from __future__ import annotations

import importlib.util
import sys

from tools.scratch import ROOT

spec = importlib.util.spec_from_file_location(
    "mutation_rejudge", ROOT / "benchmarks" / "mutation_rejudge.py"
)
rejudge = importlib.util.module_from_spec(spec)
sys.modules["mutation_rejudge"] = rejudge
spec.loader.exec_module(rejudge)

SOURCE = "def double(x):\n    return 2 * x\n\n\ndef name():\n    return 'a'\n"


def diff(old: str, new: str) -> str:
    return (
        "--- pkg/mod.py\n+++ pkg/mod.py\n@@ -1,2 +1,2 @@\n"
        f" def {old.split('(')[0]}(x):\n-    {old.split(': ')[1]}\n+    {new}\n"
    )


def test_a_mutant_is_killed_by_a_failing_test_and_survives_an_untested_change(
    tmp_path, monkeypatch
):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(SOURCE)
    (tmp_path / "test_mod.py").write_text(
        "import sys\nsys.path.insert(0, '.')\nfrom pkg.mod import double\n\n\n"
        "def test_double():\n    assert double(3) == 6\n"
    )
    monkeypatch.setitem(rejudge.TESTS, "pkg/mod.py", ["test_mod.py"])
    killed = diff("double(x): return 2 * x", "return 3 * x")
    assert rejudge.judge(tmp_path, killed, timeout=120) == "killed"
    assert (tmp_path / "pkg" / "mod.py").read_text() == SOURCE  # put back
    harmless = diff("double(x): return 2 * x", "return x + x")
    assert rejudge.judge(tmp_path, harmless, timeout=120) == "survived"
    stale = diff("double(x): return 4 * x", "return 5 * x")  # the code changed since
    assert rejudge.judge(tmp_path, stale, timeout=120) == "diff no longer applies"
    assert (tmp_path / "pkg" / "mod.py").read_text() == SOURCE
    assert rejudge.judge(tmp_path, "", timeout=120) == "no diff"


def test_a_hunk_is_applied_where_its_old_lines_occur_once():
    text = "def f():\n    try:\n        return g()\n    except ValueError:\n        return 1\n\nx = 2\n"
    # mutmut's shape: context before the change, none after, numbered from the function
    diff = (
        "--- m.py\n+++ m.py\n@@ -3,3 +3,3 @@\n"
        "         return g()\n     except ValueError:\n-        return 1\n+        return 0\n"
    )
    assert rejudge.apply_diff(text, diff) == text.replace("return 1", "return 0")
    assert rejudge.apply_diff(text + text, diff) is None  # twice: not known which
    assert rejudge.apply_diff(text.replace("return 1", "return 5"), diff) is None  # changed


def test_diffs_come_from_a_report_where_the_run_is_gone(tmp_path):
    import json

    report = tmp_path / "mutation.json"
    report.write_text(
        json.dumps(
            {
                "survivors": [
                    {"mutant": "pkg.mod.x_double__mutmut_1", "diff": "--- pkg/mod.py\n..."},
                    {"mutant": "pkg.mod.x_name__mutmut_2", "diff": ""},
                ]
            }
        )
    )
    assert rejudge.report_diffs(report) == {"pkg.mod.x_double__mutmut_1": "--- pkg/mod.py\n..."}
