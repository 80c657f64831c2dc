"""Ingest of the built-in simulated sources with one worker and with several, side by side.

The default run's ingest draws its examples in memory (``format: simulated``): drawing the
rows, not reading files, is most of the work, and each source is cut into
``generate.files_per_source`` parts that parallel ingest hands to its workers like files.
This runs ``python -m stages.ingest`` on params.yaml's own ingest and generate sections,
each source's population scaled by ``--scale``, once per ``--workers`` value in fresh processes, in
alternating rounds (best wall time of each kept), and checks that every run wrote the
one-worker run's bytes. It decides ``ingest.workers``' default: ``auto`` (every core this
process may use) is only worth it where it is faster than one worker here.

    python benchmarks/bench_ingest_simulated.py                 # ~5 minutes on 2 cores
    python benchmarks/bench_ingest_simulated.py --scale 1 --rounds 1

Results go to benchmarks/results/ingest_simulated.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.measure import provenance, run_measured  # noqa: E402


def dataset_digest(dataset: Path) -> str:
    """One digest of every shard's bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted(dataset.iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def scaled_params(scale: float, workers: int) -> dict[str, Any]:
    """params.yaml with every simulated source's population scaled and ``ingest.workers`` set."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for source in params["generate"]["sources"].values():
        source["examples"] = int(round(source["examples"] * scale))
    params["ingest"]["workers"] = workers
    return {"generate": params["generate"], "ingest": params["ingest"]}


def run_once(work: Path, scale: float, workers: int) -> dict[str, Any]:
    """One ingest in a fresh process: wall, CPU (all its processes), peak RSS and digest."""
    run_dir = work / f"w{workers}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    params = run_dir / "params.yaml"
    params.write_text(yaml.safe_dump(scaled_params(scale, workers), sort_keys=False))
    cmd = [
        sys.executable, "-m", "stages.ingest", "--params", str(params),
        "--out", str(run_dir / "dataset"), "--rejects", str(run_dir / "rejects.jsonl"),
        "--metrics", str(run_dir / "ingest.json"),
    ]  # fmt: skip
    measured = run_measured(cmd, ROOT)
    metrics = json.loads((run_dir / "ingest.json").read_text())
    return {
        **measured,
        "examples": metrics["examples_written"],
        "digest": dataset_digest(run_dir / "dataset"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25, help="each source's population x this")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best is kept")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest_simulated.json"
    )
    args = parser.parse_args(argv)
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in args.workers}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-sim-", dir=ROOT) as tmp:
        for _ in range(args.rounds):
            for workers in args.workers:
                runs[workers].append(run_once(Path(tmp), args.scale, workers))
                print(workers, runs[workers][-1], flush=True)
    best = {w: min(rs, key=lambda r: r["wall_s"]) for w, rs in runs.items()}
    one = best[args.workers[0]]
    result = {
        **provenance(None if argv is None else [__file__, *argv]),
        "scale": args.scale,
        "rounds": args.rounds,
        "examples": one["examples"],
        "runs": {str(w): rs for w, rs in runs.items()},
        "best": {
            str(w): {
                **{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")},
                "speedup": round(one["wall_s"] / r["wall_s"], 3),
                "cpu_ratio": round(r["cpu_s"] / one["cpu_s"], 3),
                "identical_bytes": r["digest"] == one["digest"],
            }
            for w, r in best.items()
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["best"], indent=2))


if __name__ == "__main__":
    main()
