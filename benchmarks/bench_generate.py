"""Generate benchmark: rows/s of ``python -m stages.generate`` against an earlier commit's.

Runs the stage at two sizes (``--examples`` and ``--scale`` times that, one source at
negative rate 1, the rest of the ``generate`` params as in params.yaml: D = 700) with
this checkout's code and with the code of ``--base`` (its ``stages`` package taken
out with ``git archive`` into a temporary folder), each in a fresh process, in
alternating rounds, best of ``--rounds``. Records wall time, CPU time, peak RSS
(``ru_maxrss`` from ``os.wait4``), sentence rows/s and the bytes written.

    python benchmarks/bench_generate.py                      # ~3 minutes on 2 cores
    python benchmarks/bench_generate.py --formats parquet csv --examples 500

Results go to benchmarks/results/generate.json and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tools.measure import provenance
from tools.scratch import ROOT

BASE = "8ad7361"  # before generate wrote feature columns plain (issue 13, item 4)


def checkout_base(commit: str, into: Path) -> Path:
    """The ``stages`` package of ``commit``, extracted under ``into``; returns ``into``."""
    archive = subprocess.run(
        ["git", "archive", commit, "stages"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def write_params(path: Path, *, fmt: str, examples: int) -> None:
    """params.yaml's ``generate`` section with one source of ``examples`` examples."""
    generate = yaml.safe_load((ROOT / "params.yaml").read_text())["generate"]
    generate.update(format=fmt, sources={"pool": {"examples": examples, "negative_rate": 1.0}})
    path.write_text(yaml.safe_dump({"generate": generate}))


def run_generate(code: Path, params: Path, out: Path) -> dict[str, Any]:
    """``python -m stages.generate`` of the code under ``code``, in a fresh process."""
    cmd = [sys.executable, "-m", "stages.generate", "--params", str(params), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=code, env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"generate ({code}) failed with {params}")
    summary = json.loads((out / "simulation.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
        "rows": sum(s["rows"] for s in summary["sources"].values()),
        "examples": sum(s["examples"] for s in summary["sources"].values()),
        "bytes": sum(p.stat().st_size for p in out.rglob("part-*")),
        "load_1m": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples at 1x")
    parser.add_argument("--scale", type=int, default=4, help="the larger size, in times 1x")
    parser.add_argument("--formats", nargs="+", default=["parquet"])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best is kept")
    parser.add_argument("--base", default=BASE, help="the commit to compare with")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "generate.json"
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    results = []
    try:
        codes = {"new": ROOT, "base": checkout_base(args.base, work / "base")}
        for fmt in args.formats:
            for scale in (1, args.scale):
                params = work / f"params-{fmt}-{scale}.yaml"
                write_params(params, fmt=fmt, examples=args.examples * scale)
                best: dict[str, dict[str, Any]] = {}
                for round_ in range(args.rounds):
                    order = ["base", "new"] if round_ % 2 == 0 else ["new", "base"]
                    for name in order:
                        print(f"{fmt} {scale}x round {round_ + 1}: {name} ...", file=sys.stderr)
                        out = work / "out"
                        m = run_generate(codes[name], params, out)
                        shutil.rmtree(out)
                        if name not in best or m["wall_s"] < best[name]["wall_s"]:
                            best[name] = m
                new, base = best["new"], best["base"]
                results.append(
                    {
                        "format": fmt,
                        "scale": scale,
                        "examples": new["examples"],
                        "rows": new["rows"],
                        "new": {**new, "rows_per_s": new["rows"] / new["wall_s"]},
                        "base": {**base, "rows_per_s": base["rows"] / base["wall_s"]},
                        "speedup_rows_per_s": base["wall_s"] / new["wall_s"],
                        "speedup_cpu": base["cpu_s"] / new["cpu_s"],
                    }
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _report(args, results, [load_before, os.getloadavg()])


def _report(args: argparse.Namespace, results: list[dict[str, Any]], load: list) -> None:
    ratios = {}
    for fmt in args.formats:
        peaks = {r["scale"]: r["new"]["peak_rss_mb"] for r in results if r["format"] == fmt}
        ratios[fmt] = peaks[max(peaks)] / peaks[min(peaks)]
    summary = {
        "base": args.base,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [list(x) for x in load],
        "runs": results,
        "peak_rss_ratio_largest_vs_smallest": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary.update(provenance())
    args.out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(
        f"| format | scale | rows | {args.base} rows/s | new rows/s | speedup (wall) "
        f"| speedup (CPU) | {args.base} MB | new MB | {args.base} peak RSS MB | new peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        new, base = r["new"], r["base"]
        print(
            f"| {r['format']} | {r['scale']}x | {r['rows']} | {base['rows_per_s']:.0f} "
            f"| {new['rows_per_s']:.0f} | {r['speedup_rows_per_s']:.2f} | {r['speedup_cpu']:.2f} "
            f"| {base['bytes'] / 1e6:.0f} | {new['bytes'] / 1e6:.0f} "
            f"| {base['peak_rss_mb']:.0f} | {new['peak_rss_mb']:.0f} |"
        )
    for fmt, ratio in ratios.items():
        print(f"\n{fmt}: peak RSS {args.scale}x / 1x = {ratio:.2f}")
    print(f"load average before / after: {load[0]} / {load[1]}")


if __name__ == "__main__":
    main()
