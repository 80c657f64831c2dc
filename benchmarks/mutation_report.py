"""Summarise a `mutmut run` (``make mutation``) into benchmarks/results/mutation.{json,md}.

mutmut keeps one ``mutants/<path>.meta`` file per mutated module with each mutant's exit code.
This script reads them, counts per module (killed, killed only by a timeout, survived, no test
calls the function, other), applies the hand-kept list of equivalent mutants
(``benchmarks/mutation-equivalent.yaml``: the function, the changed lines and why no input can
tell the change from the original; keyed by the change, not by mutmut's mutant number, which
is not stable between two generations of the same code) and writes the score:
killed / (all - equivalent). Every survivor is listed with its diff, so a reader can judge it.

Run from the repository root after ``mutmut run``; ``make mutation`` does both.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import platform
import subprocess
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "benchmarks" / "mutation-equivalent.yaml"
OUT = ROOT / "benchmarks" / "results"

# mutmut's exit codes (mutmut.stats.status_by_exit_code), folded into the report's columns.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests"}
TIMEOUT_CODES = {36, 24, -24, 152, 255}


def status_of(code: int | None) -> str:
    if code in (-9, 137):
        # SIGKILL from outside: a worker that hung without using CPU (a forked test session
        # deadlocked on a thread it inherited) and was stopped; no verdict on the mutant
        return "hung"
    if code in TIMEOUT_CODES:
        return "timeout"  # killed, but only by running past its time: not a test of a property
    if code is None:
        return "not checked"
    return STATUS.get(code, "other")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "")
    bf16 = "with avx512_bf16" if "avx512_bf16" in flags else "without avx512_bf16"
    return (
        f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, {bf16}"
    )


def read_results(mutants: Path) -> dict[str, dict[str, int | None]]:
    """Exit code of every mutant, by the module path it mutates (``dsprior/x.py``)."""
    results = {}
    for meta in sorted(mutants.glob("dsprior/**/*.py.meta")):
        path = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        results[path] = json.loads(meta.read_text())["exit_code_by_key"]
    return results


def combine(runs: list[Path]) -> tuple[dict[str, dict[str, int | None]], dict[str, Path]]:
    """Each module's results from the run (a ``mutants/`` folder) that checked most of them.

    One ``make mutation`` gives one run; runs scoped to a few modules each (a local edit of
    ``[tool.mutmut]``, as when several people share the work) combine into one report.
    """
    results: dict[str, dict[str, int | None]] = {}
    source: dict[str, Path] = {}
    for run in runs:
        for path, codes in read_results(run).items():
            checked = sum(code is not None for code in codes.values())
            best = results.get(path)
            if best is None or checked > sum(c is not None for c in best.values()):
                results[path], source[path] = codes, run
    return dict(sorted(results.items())), source


def diff_of(name: str, path: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    try:
        return get_diff_for_mutant(name, path=path)
    except Exception as exc:  # a diff is a courtesy; the counts stand without it
        return f"(no diff: {exc})"


def change_of(diff: str) -> str:
    """The changed lines of a mutant's diff: what identifies it across generations."""
    return "\n".join(
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def function_of(name: str) -> str:
    return name.rsplit("__mutmut_", 1)[0]


def read_equivalent(path: Path) -> dict[tuple[str, str], str]:
    """(function, changed lines) -> reason, from the hand-kept list."""
    if not path.exists():
        return {}
    entries = yaml.safe_load(path.read_text()) or []
    return {(e["function"], e["change"].strip("\n")): e["reason"] for e in entries}


def summarise(
    results: dict[str, dict[str, int | None]],
    equivalent: dict[tuple[str, str], str],
    source: dict[str, Path] | None = None,
) -> dict[str, Any]:
    modules, survivors = {}, []
    for path, codes in results.items():
        counts = Counter()
        for name, code in codes.items():
            status = status_of(code)
            if status in ("survived", "no tests"):
                # mutmut finds a mutant's code under ./mutants: read it where that run left it
                where = (source or {}).get(path, Path("mutants")).resolve().parent
                with contextlib.chdir(where):
                    diff = diff_of(name, path)
                entry = {"mutant": name, "module": path, "status": status, "diff": diff}
                reason = equivalent.get((function_of(name), change_of(diff)))
                if reason is not None:
                    entry.update(status="equivalent", reason=reason)
                status = entry["status"]
                survivors.append(entry)
            counts[status] += 1
        modules[path] = dict(sorted(counts.items()))
    total = Counter()
    for counts in modules.values():
        total.update(counts)
    return {"modules": modules, "total": dict(sorted(total.items())), "survivors": survivors}


def carry_forward(
    previous: dict[str, Any],
    results: dict[str, dict[str, int | None]],
    fresh: dict[str, Any],
    equivalent: dict[tuple[str, str], str],
    fills_unchecked: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Merge a run scoped to some functions (``results``/``fresh``) into the ``previous``
    report: a module the run checked whole takes the run's row; every other module keeps
    its previous row, each previous survivor re-judged by the run's verdict on the same
    change (function and changed lines) or by the equivalent list, and marked
    ``rechecked``. The scoped run's own mutants in functions it checked (new code included)
    are summarised per module under ``rechecked``.

    A module in ``fills_unchecked`` was scoped to the functions the previous report left
    unchecked there: its row drops the previous ``not checked`` count and adds the run's
    checked mutants, whose survivors join the report's.
    """
    whole = {path for path, codes in results.items() if None not in codes.values()}
    verdicts: dict[tuple[str, str], str] = {}
    for entry in fresh["survivors"]:
        verdicts[(function_of(entry["mutant"]), change_of(entry["diff"]))] = entry["status"]
    checked_functions = {
        function_of(name)
        for codes in results.values()
        for name, code in codes.items()
        if code is not None
    }
    modules = {p: dict(c) for p, c in previous["modules"].items() if p not in whole}
    survivors = []
    for entry in previous["survivors"]:
        path = entry["module"]
        if path in whole:
            continue
        entry = dict(entry)
        key = (function_of(entry["mutant"]), change_of(entry["diff"]))
        old = entry["status"]
        new = old
        if old != "equivalent" and key in equivalent:
            new, entry["reason"] = "equivalent", equivalent[key]
        elif old != "equivalent" and key[0] in checked_functions:
            new = verdicts.get(key, "killed")  # not among the run's survivors: killed
            entry["rechecked"] = f"{new} in the scoped run"
        if new != old:
            counts = Counter(modules[path])
            counts[old] -= 1
            counts[new] += 1
            modules[path] = dict(sorted((k, v) for k, v in counts.items() if v))
            entry["status"] = new
        if new in ("survived", "no tests", "equivalent"):
            survivors.append(entry)
    for path in whole:
        modules[path] = fresh["modules"][path]
    filled = {p for p in fills_unchecked if p not in whole and p in fresh["modules"]}
    for path in filled:
        counts = Counter({k: v for k, v in modules.get(path, {}).items() if k != "not checked"})
        counts.update({k: v for k, v in fresh["modules"][path].items() if k != "not checked"})
        modules[path] = dict(sorted(counts.items()))
    survivors += [e for e in fresh["survivors"] if e["module"] in whole | filled]
    rechecked = {
        path: fresh["modules"][path]
        for path in results
        if path not in whole | filled and path in fresh["modules"]
    }
    total: Counter[str] = Counter()
    for counts in modules.values():
        total.update(counts)
    return {
        "modules": dict(sorted(modules.items())),
        "total": dict(sorted(total.items())),
        "survivors": survivors,
        "rechecked": {
            "modules": rechecked,
            "survivors": [e for e in fresh["survivors"] if e["module"] not in whole | filled],
        },
    }


def apply_rejudged(report: dict[str, Any], verdicts: dict[str, str], how: str) -> int:
    """Count the survivors that ``verdicts`` (``mutation_rejudge.py``: each survivor run
    against today's tests) found killed as killed, in the report's rows and in the scoped
    run's ``rechecked`` rows, and list them under ``rejudged`` with ``how``; the rest stay
    as they were. Returns how many changed."""
    killed: list[str] = []
    parts = [report, *([report["rechecked"]] if report.get("rechecked") else [])]
    for part in parts:
        modules, kept = part["modules"], []
        for entry in part["survivors"]:
            if entry["status"] == "survived" and verdicts.get(entry["mutant"]) == "killed":
                counts = Counter(modules[entry["module"]])
                counts["survived"] -= 1
                counts["killed"] += 1
                modules[entry["module"]] = dict(sorted((k, v) for k, v in counts.items() if v))
                killed.append(entry["mutant"])
            else:
                kept.append(entry)
        part["survivors"] = kept
    total: Counter[str] = Counter()
    for counts in report["modules"].values():
        total.update(counts)
    report["total"] = dict(sorted(total.items()))
    report["rejudged"] = {"how": how, "killed": killed}
    return len(killed)


def score(counts: dict[str, int], *, timeouts_kill: bool = True) -> float | None:
    """Killed (by tests, and by a timeout unless ``timeouts_kill`` is off) over the mutants a
    test could tell apart."""
    undecided = counts.get("not checked", 0) + counts.get("hung", 0)
    considered = sum(counts.values()) - counts.get("equivalent", 0) - undecided
    killed = counts.get("killed", 0) + (counts.get("timeout", 0) if timeouts_kill else 0)
    return round(killed / considered, 4) if considered else None


# a mutant's verdicts, in the report's column order
STATUSES = (
    "killed", "timeout", "survived", "no tests", "equivalent", "not checked", "hung", "other",
)  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    columns = list(STATUSES)
    lines = [
        "# Mutation testing",
        "",
        f"`make mutation` on {report['date']}, commit {report['commit']}, mutmut "
        f"{report['mutmut']}, {report['machine']}"
        + (f"; {report['seconds']} s." if report["seconds"] is not None else "."),
        "",
        *([report["note"], ""] if report.get("note") else []),
        "Score = killed (by a failing test, or by a timeout) / (all - equivalent - not checked -",
        "hung). Hung: a worker that sat idle (a forked test session deadlocked) and was stopped.",
        "A timeout kill means the mutant ran past its time (a loop that no longer ends), not that",
        "a test checked a property (here some were forked sessions that deadlocked); the last",
        "column counts timeouts as survivors.",
        "",
        "| module | " + " | ".join(columns) + " | score | by tests alone |",
        "|---" * (len(columns) + 3) + "|",
    ]
    rows = [*report["modules"].items(), ("**all**", report["total"])]
    for path, counts in rows:
        cells = [str(counts.get(c, 0)) for c in columns]
        alone = score(counts, timeouts_kill=False)
        lines.append(f"| {path} | " + " | ".join(cells) + f" | {score(counts)} | {alone} |")
    rechecked = report.get("rechecked") or {}
    if rechecked.get("modules"):
        lines += [
            "",
            "## Rechecked functions (the scoped run)",
            "",
            "The modules above that the scoped run did not check whole keep their row from "
            "the earlier runs, each earlier survivor judged again by the scoped run's verdict "
            "on the same change or by the equivalent list. The scoped run's own counts, over "
            "the functions it checked (mutants of code changed since included; the rest of "
            "the module not checked):",
            "",
            "| module | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for path, counts in rechecked["modules"].items():
            lines.append(f"| {path} | " + " | ".join(str(counts.get(c, 0)) for c in columns) + " |")
    rejudged = report.get("rejudged") or {}
    if rejudged.get("killed"):
        lines += [
            "",
            "## Killed by tests written after the run",
            "",
            f"Counted as killed above: {len(rejudged['killed'])} survivors of the run, "
            f"{rejudged['how']}:",
            "",
            *(f"- `{name}`" for name in rejudged["killed"]),
        ]
    entries = [*report["survivors"], *rechecked.get("survivors", [])]
    lines += ["", "## Survivors and equivalent mutants", ""]
    for entry in entries:
        lines.append(f"### `{entry['mutant']}`: {entry['status']}")
        if "reason" in entry:
            lines.append(f"Equivalent: {entry['reason']}")
        if entry.get("diff"):
            lines += ["```diff", entry["diff"], "```"]
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mutants",
        type=Path,
        action="append",
        help="a mutmut run's mutants/ folder (repeat to combine scoped runs; default ./mutants)",
    )
    parser.add_argument("--seconds", type=int, default=None, help="wall time of the run")
    parser.add_argument("--note", default="", help="how the run was made, for the report")
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="an earlier mutation.json: modules this run did not check whole keep its rows, "
        "their survivors judged again (a run scoped to the functions a fix touched)",
    )
    parser.add_argument(
        "--fills-unchecked",
        action="append",
        default=[],
        metavar="MODULE",
        help="with --previous: this run checked the functions the earlier report left "
        "unchecked in MODULE (dsprior/...py); its mutants there replace that count",
    )
    parser.add_argument(
        "--rejudged",
        type=Path,
        default=None,
        help="mutation_rejudge.py's verdicts: survivors killed by tests written after the run",
    )
    args = parser.parse_args(argv)
    runs = args.mutants or [ROOT / "mutants"]
    results, source = combine(runs)
    if not results:
        raise SystemExit(f"ERROR: no mutmut results under {runs}: run `mutmut run` first")
    equivalent = read_equivalent(EQUIVALENT)
    previous = json.loads(args.previous.read_text()) if args.previous else None
    report = {
        "date": dt.date.today().isoformat(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "mutmut": version("mutmut"),
        "machine": cpu_model(),
        "seconds": args.seconds,
        "note": args.note,
        "runs": {
            **((previous or {}).get("runs") or {}),
            **{path: str(run) for path, run in source.items()},
        },
        **(
            carry_forward(
                previous,
                results,
                summarise(results, equivalent, source),
                equivalent,
                frozenset(args.fills_unchecked),
            )
            if previous is not None
            else summarise(results, equivalent, source)
        ),
    }
    if args.rejudged is not None:
        apply_rejudged(
            report,
            json.loads(args.rejudged.read_text()),
            "each survivor's diff applied to the code of this commit and its module's fast "
            "tests run (benchmarks/mutation_rejudge.py); a failing session kills it",
        )
    # every status, 0 included: what the docs read stays there when a count falls to 0
    report["total"] = {status: report["total"].get(status, 0) for status in STATUSES} | {
        k: v for k, v in report["total"].items() if k not in STATUSES
    }
    report["score"] = score(report["total"])
    report["score_tests_only"] = score(report["total"], timeouts_kill=False)
    report["module_scores"] = {path: score(c) for path, c in report["modules"].items()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "mutation.json").write_text(json.dumps(report, indent=1) + "\n")
    (OUT / "mutation.md").write_text(markdown(report))
    print(f"mutation score {report['score']} over {sum(report['total'].values())} mutants")
    for path, value in report["module_scores"].items():
        print(f"  {path}: {value}  {report['modules'][path]}")


if __name__ == "__main__":
    main()
