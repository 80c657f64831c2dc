"""Curve rows saved with the backup: a checkpoint's rows round-trip, later ones are dropped."""

from __future__ import annotations

import json
import math

import pandas as pd

from dsprior.training.curves import (
    load_curve_rows,
    open_live,
    save_curve_rows,
    trim_curves,
    write_summary,
)


def test_rows_up_to_the_checkpoint_come_back_in_order_and_later_ones_are_deleted(tmp_path):
    rows_dir = tmp_path / "curves"
    save_curve_rows(rows_dir, step=4, rows=[[2, "train/loss", 0.7], [4, "train/loss", math.nan]])
    save_curve_rows(rows_dir, step=8, rows=[[6, "train/loss", 0.5], [8, "train/loss", 0.4]])
    rows = load_curve_rows(rows_dir, after_step=4)
    assert rows[0] == [2, "train/loss", 0.7] and rows[1][0] == 4 and math.isnan(rows[1][2])
    assert [p.name for p in rows_dir.iterdir()] == ["000000000004.json"]  # step 8 is gone


def test_a_backup_without_rows_says_so(tmp_path):
    assert load_curve_rows(tmp_path / "absent", after_step=4) is None
    (tmp_path / "empty").mkdir()
    assert load_curve_rows(tmp_path / "empty", after_step=4) is None


def test_trim_drops_rows_after_the_step(tmp_path):
    path = tmp_path / "plots" / "metrics" / "train" / "loss.tsv"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"step": [2, 4, 6], "loss": [0.7, 0.6, 0.5]}).to_csv(path, sep="\t", index=False)
    trim_curves(tmp_path, after_step=4)
    assert pd.read_csv(path, sep="\t")["step"].tolist() == [2, 4]


def test_the_summary_is_the_same_bytes_whatever_order_the_scores_arrived_in(tmp_path):
    """A run that was never stopped builds dev_a's scores as sampled, then prior; a resumed
    one reads them back from its saved state in sorted order. Both write one summary."""
    scores = {"sampled": {"recall": 0.9, "f1": 0.8}, "prior": {"recall": 0.9, "f1": 0.4}}
    restored = json.loads(json.dumps(scores, sort_keys=True))
    written = []
    for name, best in (("fresh", scores), ("resumed", restored)):
        live = open_live(tmp_path / name, replay=[])
        state = {"best_step": 100, "best_value": 0.81, "best_scores": best}
        write_summary(live, state, select_metric="average_precision")
        written.append((tmp_path / name / "metrics.json").read_text())
    assert written[0] == written[1]
    assert list(json.loads(written[0])["dev_a"]) == ["prior", "sampled"]
