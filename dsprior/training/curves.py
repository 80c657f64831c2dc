"""The DVCLive curve files, kept with the backup so that a resumed run writes them whole.

Every checkpoint also writes the rows logged since the previous one
(``curves/<step>.json``, before the checkpoint is renamed into place), and a resumed run
replays the rows up to its checkpoint into a fresh DVCLive directory, because ``dvc
repro`` deletes the stage's curve files before it reruns the stage. The curves of a resumed run
equal an uninterrupted run's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from dvclive.live import Live

from dsprior import runtime


def trim_curves(live_dir: Path, *, after_step: int) -> None:
    """Drop curve rows logged after the checkpoint a resumed run restarts from."""
    for path in Path(live_dir, "plots", "metrics").rglob("*.tsv"):
        frame = pd.read_csv(path, sep="\t")
        frame[frame["step"] <= after_step].to_csv(path, sep="\t", index=False)


def save_curve_rows(rows_dir: Path, *, step: int, rows: list[list]) -> None:
    """Write the curve rows ``[step, name, value]`` logged up to checkpoint ``step`` since
    the previous checkpoint, atomically, as ``rows_dir/<step>.json`` (NaN kept as NaN)."""
    rows_dir = Path(rows_dir)
    rows_dir.mkdir(parents=True, exist_ok=True)
    runtime.write_atomic(rows_dir / f"{step:012d}.json", json.dumps({"step": step, "rows": rows}))


def load_curve_rows(rows_dir: Path, *, after_step: int) -> list[list] | None:
    """The saved curve rows up to ``after_step``, in the order they were logged; None when
    the backup holds none (made before rows were saved). Saved rows past ``after_step``
    (logged by the killed run after its last complete checkpoint) are deleted."""
    rows_dir = Path(rows_dir)
    pieces = sorted(rows_dir.glob("*.json")) if rows_dir.is_dir() else []
    rows: list[list] = []
    found = False
    for path in pieces:
        piece = json.loads(path.read_text())
        if piece["step"] > after_step:
            path.unlink()
            continue
        found = True
        rows.extend(row for row in piece["rows"] if row[0] <= after_step)
    return rows if found else None


def open_live(live_dir: str | Path, replay: list[list] | None) -> Live:
    """A DVCLive logger on ``live_dir`` holding exactly the rows of ``replay``.

    A fresh folder (``resume=False`` clears it) with the rows logged up to the checkpoint
    replayed through DVCLive, so the files are as it writes them; ``replay`` None (a backup
    without saved rows) keeps what the folder holds.
    """
    live = Live(
        str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=replay is None, report=None
    )
    for step, name, value in replay or []:
        live.step = step
        live.log_metric(name, value)
    return live


def _key_sorted(value: Any) -> Any:
    """``value`` with every mapping's keys in sorted order, nested ones too."""
    if isinstance(value, dict):
        return {key: _key_sorted(value[key]) for key in sorted(value)}
    return value


def write_summary(live: Live, state: dict[str, Any], *, select_metric: str) -> None:
    """DVCLive's ``metrics.json``: the best step, its ``select_metric`` and its dev_a scores.

    The scores' keys are sorted: a resumed run reads them back from its saved state (written
    with sorted keys), and must write the same bytes as a run that was never stopped.
    """
    live.summary = {
        "best_step": state["best_step"],
        f"best_{select_metric}": state["best_value"],
        "dev_a": _key_sorted(state["best_scores"]),
    }
    live.step = state["best_step"] or 0
    live.make_summary()
