"""Measure what the benchmarks report: a child's wall time, CPU time and peak RSS; disk use; the CPU.

Every benchmark times a stage or a command in a fresh process, so that start-up is
counted and nothing warm is shared; ``run_measured`` is that one place.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.scratch import tool_env


def run_measured(
    cmd: str | list[str], cwd: Path, *, log: Path | None = None, shell: bool = False
) -> dict[str, float]:
    """Run ``cmd`` to the end; its wall seconds, CPU seconds and peak RSS (MB).

    Output goes to ``log`` (appended; kept) or to a temporary file shown on failure: a
    file, not a pipe, so that a chatty child never blocks. ``wait4`` on the child (the
    shell, with ``shell=True``) gives the largest RSS of its waited-for descendants.
    """
    keep = log is not None
    path = log or Path(tempfile.mkstemp(prefix=".bench-", suffix=".log", dir=cwd)[1])
    start = time.perf_counter()
    with open(path, "ab") as out:
        proc = subprocess.Popen(
            cmd, shell=shell, cwd=cwd, env=tool_env(), stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    text = path.read_text(errors="replace") if code != 0 and not keep else ""
    if not keep:
        path.unlink()
    if code != 0:
        where = f"; see {log}" if keep else f":\n{text[-3000:]}"
        raise RuntimeError(f"{cmd} exited {code}{where}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def du_bytes(*paths: Path) -> int:
    """Disk usage in bytes of the paths together (a hardlinked file counts once)."""
    existing = [str(p) for p in paths if p.exists()]
    if not existing:
        return 0
    out = subprocess.run(["du", "-scb", *existing], capture_output=True, text=True, check=True)
    return int(out.stdout.splitlines()[-1].split()[0])


def cpu_info() -> dict[str, Any]:
    """The CPU model, core count and the instruction sets that decide TensorFlow's speed."""
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("Flags")),
        [],
    )
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """What a results file records about itself: the command that made it (this process's,
    from the repository's root), the date and the machine. The docs print it beside every
    figure read from the file (``tools/docs_figures.py``)."""
    args = sys.argv if argv is None else argv
    script = Path(args[0])
    if script.is_absolute():
        try:
            script = script.relative_to(Path(__file__).resolve().parents[1])
        except ValueError:
            pass
    command = " ".join(["python", str(script), *args[1:]])
    return {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": cpu_info()}


# the train stage's last log line (dsprior.training.callback.StepCurves.on_train_end)
_SCORED = re.compile(
    r"dev_a scored (\d+) times whole \(([\d.]+) s\) and (\d+) times as its sample \(([\d.]+) s\)"
    r"(?:; its rows copied from Parquet once, in the first of these \(([\d.]+) s\))?"
)


def curve_rows(tsv: Path) -> list[dict[str, Any]]:
    """A DVCLive curve (a header, then ``step`` and the value per row) as its rows, read as
    the training code reads them (pandas); ValueError where a cell is not a number."""
    import pandas as pd

    frame = pd.read_csv(tsv, sep="\t")
    if frame.empty:  # a header only: its columns are not typed
        return []
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(f"column {column!r} holds a value that is not a number")
    return frame.to_dict("records")


def curve_range(tsv: Path) -> list[float] | None:
    """The lowest and highest value of a DVCLive curve (``step`` and one value a row), or
    None where the file is missing or holds no row."""
    if not tsv.is_file():
        return None
    values = [row[name] for row in curve_rows(tsv) for name in row if name != "step"]
    return [float(min(values)), float(max(values))] if values else None


_EVALUATE_SCORED = re.compile(r"scored (\d+) examples in ([\d.]+) s \(")
_EVALUATE_MEASURED = re.compile(r"measured and wrote the reports in ([\d.]+) s")
_TRAINED = re.compile(r"trained (\d+) steps in ([\d.]+) s \(")


def stage_log_seconds(log_text: str) -> dict[str, Any]:
    """What the train and evaluate stages' logs say about their seconds (the last of each
    line; None where the log has none): train's fit, and evaluate's scoring and the rest."""
    found = {
        name: pattern.findall(log_text)
        for name, pattern in (
            ("trained", _TRAINED),
            ("scored", _EVALUATE_SCORED),
            ("measured", _EVALUATE_MEASURED),
        )
    }
    trained, scored, measured = (found[k][-1] if found[k] else None for k in found)
    return {
        "train_fit": None
        if trained is None
        else {"steps": int(trained[0]), "seconds": float(trained[1])},
        "evaluate_scoring": None
        if scored is None
        else {"examples": int(scored[0]), "seconds": float(scored[1])},
        "evaluate_metrics_seconds": None if measured is None else float(measured),
    }


def dev_a_scoring_seconds(log_text: str) -> dict[str, float] | None:
    """The seconds a train stage's log says it spent scoring dev_a, whole and as its sample,
    and (where the line says) copying its rows, within those (its last such line; None when
    it has none)."""
    found = _SCORED.findall(log_text)
    if not found:
        return None
    _, whole, _, sample, copy = found[-1]
    seconds = {"whole": float(whole), "sample": float(sample)}
    return {**seconds, "copy": float(copy)} if copy else seconds
