"""Judge a mutmut run's survivors again against today's tests, without a new mutmut run.

A scoped ``mutmut run`` takes hours here; tests written after it (to kill its survivors)
are only proven by running each survivor against them. This copies the repository's
tracked files into a scratch folder, and for each survivor applies its diff (``mutmut show
NAME`` in the run's folder; ``apply_diff``), runs the fast tests of its module
(``TESTS``; not the slow ones, nor those that read the shared tiny pipeline run), and puts
the file back. A failing test session kills the mutant; a diff that no longer applies (the
function changed since the run) is reported as such, not judged.

    python benchmarks/mutation_rejudge.py --run /work/wt/mut --names survivors.txt \\
        --out rejudged.json
    python benchmarks/mutation_rejudge.py --report benchmarks/results/mutation.json \\
        --names survivors.txt --out rejudged.json   # diffs from the report instead
    python benchmarks/mutation_report.py --mutants /work/wt/mut/mutants --rejudged rejudged.json

``survivors.txt``: one mutant name a line (``mutmut results`` lines work as they are).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "not slow and not uses_pipeline", "-x", "-q", "-p", "no:cacheprovider"]
# each mutated module's tests (the same files as [tool.mutmut]'s selection, per module)
TESTS = {
    "dsprior/evaluation/measures.py": [
        "tests/test_evaluation_measures.py", "tests/test_evaluation_gold.py",
    ],
    "dsprior/calibration.py": ["tests/test_calibration.py"],
    "dsprior/hardware.py": ["tests/test_hardware.py"],
    "dsprior/rawio/csvrecords.py": [
        "tests/test_rawio_csvrecords.py", "tests/test_rawio_csv.py", "tests/test_rawio_properties.py",
    ],
    "dsprior/rawio/rejects.py": ["tests/test_rawio_rejects.py"],
    "dsprior/bundle/validate.py": ["tests/test_bundle_validate.py"],
    "dsprior/quantify.py": ["tests/test_quantify.py", "tests/test_evaluation_label_free.py"],
    "dsprior/evaluation/gold.py": [
        "tests/test_evaluation_gold.py", "tests/test_evaluate.py", "tests/test_evaluation_inputs.py",
        "tests/test_evaluation_metrics.py", "tests/test_evaluation_pipeline.py",
        "tests/test_evaluation_label_free.py", "tests/test_evaluation_measures.py",
        "tests/test_evaluation_config.py",
    ],
}  # fmt: skip


def mutant_diff(run: Path, name: str) -> str:
    """The unified diff of mutant ``name`` (from ``--- <path>`` on)."""
    shown = subprocess.run(
        [str(run / ".venv" / "bin" / "mutmut"), "show", name],
        cwd=run,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return shown[shown.index("--- ") :] if "--- " in shown else ""


def report_diffs(report: Path) -> dict[str, str]:
    """Each listed mutant's diff, as mutation_report.py kept it in ``report``."""
    entries = json.loads(report.read_text()).get("survivors", [])
    return {e["mutant"]: e["diff"] for e in entries if e.get("diff")}


def copy_tracked(work: Path) -> None:
    """The repository's tracked files, as they are in the working tree, into ``work``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = work / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (work / ".venv").symlink_to(ROOT / ".venv")


def apply_diff(text: str, diff: str) -> str | None:
    """``text`` with the diff's hunks applied, each where its old lines occur exactly once;
    None where a hunk's old lines are not there (the code changed since) or not only once.

    mutmut's diffs are of one function, with line numbers counted from the function, and
    often with no context after the change, which ``patch`` would anchor at the end of the
    file; finding the old lines is what applying them means here.
    """
    hunks: list[tuple[list[str], list[str]]] = []
    for line in diff.splitlines()[2:]:
        if line.startswith("@@"):
            hunks.append(([], []))
        elif hunks:
            old, new = hunks[-1]
            if not line.startswith("+"):
                old.append(line[1:])
            if not line.startswith("-"):
                new.append(line[1:])
    for old, new in hunks:
        before, after = "\n".join(old) + "\n", "\n".join(new) + "\n"
        if text.count(before) != 1:
            return None
        text = text.replace(before, after)
    return text


def judge(work: Path, diff: str, *, timeout: int) -> str:
    """``killed``, ``survived`` or why it was not judged, for one mutant's ``diff``."""
    if not diff:
        return "no diff"
    module = diff.splitlines()[0].split()[1]
    tests = TESTS.get(module)
    if tests is None:
        return f"no tests listed for {module}"
    original = (work / module).read_text()
    mutated = apply_diff(original, diff)
    if mutated is None:
        return "diff no longer applies"
    try:
        (work / module).write_text(mutated)
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pytest", *FAST, *tests],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return "timeout"
        return {0: "survived", 1: "killed"}.get(run.returncode, f"pytest exit {run.returncode}")
    finally:
        (work / module).write_text(original)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="the mutmut run's folder (mutmut show)")
    source.add_argument(
        "--report",
        type=Path,
        help="a mutation.json whose survivors carry their diffs (runs whose folder is gone)",
    )
    parser.add_argument("--names", type=Path, required=True, help="survivors, one a line")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=int, default=900, help="seconds a test session")
    args = parser.parse_args(argv)
    names = [
        line.split(":")[0].strip() for line in args.names.read_text().splitlines() if line.strip()
    ]
    diffs = report_diffs(args.report) if args.report else {}
    verdicts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="rejudge-") as tmp:
        work = Path(tmp)
        copy_tracked(work)
        for name in names:
            diff = diffs.get(name, "") if args.report else mutant_diff(args.run, name)
            verdicts[name] = judge(work, diff, timeout=args.timeout)
            print(name, verdicts[name], flush=True)
            args.out.write_text(json.dumps(verdicts, indent=1) + "\n")


if __name__ == "__main__":
    main()
