"""Coverage of every interval the project prints, over a grid of simulated worlds (issue #23).

An interval is a claim: "95%" means the truth falls inside it 95 times in 100 over
repetitions of the whole procedure (docs/methods.md, section 12). Each replicate here is a fresh
world (a new ``generate.seed``, so a new relation) drawn with one grid cell's params, run
through the same library functions the stages call, in memory:

1. the simulator draws a thinned pool (train, dev_a: negatives thinned upstream at 0.05,
   then downsampled to 1:2 with weights, as the downsample stage does) and a
   production-ratio source (dev_b, test), split by entity group (a random group split here,
   not the split stage's hash);
2. a small CNN (``dsprior.cnn.build_cnn``: filter heights 5 and 8, 8 filters, 3 epochs,
   Adam 0.003) trains on train's distant labels; beta, the training prior and the
   production prior estimate are computed with ``dsprior.training.weights`` as train records
   them;
3. ``evaluation.pipeline.recalibrated_predictions`` and ``evaluation.metrics.compute_metrics``
   recalibrate and evaluate as the evaluate stage does (the prior from dev_b and test, the
   threshold on dev_b, 1000 group-bootstrap resamples; the prior's own uncertainty from the
   production-ratio rows it was estimated from), gold labels included, so every
   interval of metrics.json's splits is there. Evaluate's own label-free section (batches cut
   from test) is left out: step 5 tests the same estimator on fresh batches;
4. truth for those intervals: the same model, calibration and threshold measured on a large
   fresh source of the same world (new groups; every positive by either label kept, the
   rest thinned at a known rate and weighted back, at least 4x test's size), against distant
   labels, or gold labels for the gold intervals, at the world's own prior;
5. label-free: fresh batches from another source of the same world, moved to 0.25x to 4x the
   bundle's prior by keeping a random share of the true positives or true negatives (the
   distant labels follow through the KB noise), each estimated by ``quantify.estimate_batch``
   as ``score --summary`` does (EM, ACC, PACC and CBPE with intervals; 200 resamples, where
   the command's default is 1000), and by HDy (``dsprior.distribution_matching``, on the
   calibrated log-odds with dev_b as reference; a point estimate only). Truth: the batch's
   own distant-label rate and the threshold's measured precision, recall, alerts and cost
   on it. The same batches through ``noise_shift.estimate_true_shift`` with dev_b's gold
   labels (score --summary's ``estimated_prior_true`` and ``estimated_at_threshold_true``):
   the true prior, precision and recall against the batch's gold labels, and what its
   distant labels measure under the noise-tied shift.

Evaluate refuses a split's intervals below ``evaluate.bootstrap.min_positives``; here every
interval is drawn, with its split's positives recorded, and the summary counts the ones
evaluate would refuse apart, so the page shows both what is printed and why the rest is not.

The model is small on purpose (``dim`` 16, 10-30 rows an example): the estimators, not the
model, are under test; its scores still come from training on the world's distant labels,
so they carry the calibration errors a real model has.

Each replicate appends one JSON line to ``--records`` (the run is resumable: a replicate
already there is skipped, a torn last line ignored); the summary (``--out``, ``--page`` and
its SVG plots) is rewritten after each round of the grid and at the end, and
``--summary-only`` rewrites it from the records without running anything.

    python benchmarks/bench_coverage.py --quick     # a few minutes: one replicate per cell
    python benchmarks/bench_coverage.py             # the full grid (make coverage)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
# this checkout's dsprior, not the one an editable install of another checkout points to
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
LEVEL = 0.95
Z95 = 1.959963984540054
COST_FP, COST_FN = 1.0, 10.0  # params.yaml's evaluate.cost
SEED = 20261206  # the worlds' base seed (world_seed)
FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)  # label-free batches: multiples of the bundle's prior
RATE_METRICS = ("precision", "recall", "f1", "expected_cost")
logger = logging.getLogger("bench_coverage")


# -- the grid ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One world's params: what a user meets, from a benign world to a harsh one."""

    name: str
    ratio: int  # prior 1:ratio
    signal: str  # "weak" (test AP about 0.3) or "strong" (about 0.95), clean labels
    evidence_strength: float
    regime: str
    kb_noise: float  # kb_missing and kb_false_positive both
    dev_b_positives: int  # expected positives in dev_b (and in test, the same size)
    group_size_mean: float
    group_positive_concentration: float

    @property
    def prior(self) -> float:
        return 1.0 / (1.0 + self.ratio)


# evidence_strength; measured at 1:100, benign, dim 16: 0.45 gave test AP 0.20, 0.5 about 0.3,
# 0.8 gave 0.95, 0.9 gave 0.96, 1.3 gave 0.98. Over the full grid (204 worlds) 0.5 gave test
# AP 0.12-0.23 in the benign cells and 0.01-0.06 in the harsh ones; 0.6 gave 0.21-0.75 in
# three benign worlds; 0.55 aims at the lower end, test AP about 0.3
SIGNALS = {"weak": 0.55, "strong": 0.9}
# benign: clean KB, many dev_b positives, small groups that barely differ;
# harsh: 30% KB noise each way, 20 dev_b positives, large groups whose rates differ a lot
REGIMES = {
    "benign": {"kb_noise": 0.0, "dev_b_positives": 100, "group_size_mean": 2.0, "conc": 5.0},
    "harsh": {"kb_noise": 0.3, "dev_b_positives": 20, "group_size_mean": 6.0, "conc": 0.5},
}
RATIOS = (30, 100, 300)


def grid() -> list[Cell]:
    """Prior 1:30, 1:100, 1:300 x weak/strong evidence x benign/harsh: 12 cells."""
    cells = []
    for ratio in RATIOS:
        for signal, strength in SIGNALS.items():
            for regime, r in REGIMES.items():
                cells.append(
                    Cell(
                        name=f"1:{ratio} {signal} {regime}",
                        ratio=ratio,
                        signal=signal,
                        evidence_strength=strength,
                        regime=regime,
                        kb_noise=r["kb_noise"],
                        dev_b_positives=r["dev_b_positives"],
                        group_size_mean=r["group_size_mean"],
                        group_positive_concentration=r["conc"],
                    )
                )
    return cells


@dataclass(frozen=True)
class Scale:
    """Sizes of one replicate; ``quick`` shrinks the truth and the bootstrap."""

    dim: int = 16
    min_rows: int = 10
    max_rows: int = 30
    train_positives: int = 600
    truth_positives: int = 4000  # positives in the truth source (negatives thinned)
    truth_negatives: int = 20_000  # negatives by both labels kept in the truth source: at least
    truth_negative_factor: int = 8  # this many times test's size (the truth's own noise,
    truth_negatives_max: int = 240_000  # variance 1/8 of test's, reads as ~1.5 points less)
    batch_positives: float = 60.0  # expected positives of a fresh batch at 1x the prior
    resamples: int = 1000  # evaluate.bootstrap.resamples (params.yaml's): vectorised, cheap
    # estimate_batch's resamples (score --summary's default is 1000): each refits the
    # recalibration on resampled dev_b, most of a replicate's time; 200 keeps the grid in 2 hours
    batch_resamples: int = 200
    epochs: int = 3
    filters: int = 8
    filter_sizes: tuple[int, ...] = (5, 8)


QUICK = Scale(
    truth_positives=2000,
    truth_negatives=10_000,
    truth_negative_factor=2,
    truth_negatives_max=60_000,
)


# -- bookkeeping ------------------------------------------------------------------------------


def wilson_interval(covered: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``covered / n``; (nan, nan) when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = covered / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def check_interval(
    name: str, ci: Any, truth: float | None, point: float | None = None, **extra: Any
) -> dict[str, Any] | None:
    """One interval's record: whether it holds the truth, and its width; None if either is absent.

    An interval the project did not print (null ends, e.g. a precision with no alerts) or a
    truth that is undefined is left out: it makes no claim to check.
    """
    if ci is None or truth is None or not np.isfinite(truth):
        return None
    low, high = ci
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return None
    return {
        "interval": name,
        "low": float(low),
        "high": float(high),
        "truth": float(truth),
        "point": None if point is None or not np.isfinite(point) else float(point),
        "covered": bool(low <= truth <= high),
        "width": float(high - low),
        **extra,
    }


def evaluate_min_positives(key: str = "min_positives") -> int:
    """params.yaml's ``evaluate.bootstrap.min_positives`` (or ``min_prior_positives``):
    evaluate refuses a split's intervals below it (a projection's, below the prior's rows'
    minimum), so the coverage of what it prints leaves those out."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return int(params["evaluate"]["bootstrap"][key])


# the label-free intervals that assume label shift (quantify.LABEL_SHIFT_INTERVALS): refused
# where dev_b's gold labels show, or cannot rule out, noisy distant labels
# (noise_shift.noisy_labels_reason)
LABEL_SHIFT = (
    "label-free batch prior (em)",
    "label-free batch prior (acc)",
    "label-free batch prior (pacc)",
    "label-free batch precision (CBPE)",
    "label-free batch recall (CBPE)",
    "label-free batch expected_cost (CBPE)",
)


# the label-free estimates whose interval the project refuses where every resample gave one
# value (quantify.COLLAPSE_REFUSED, and noise_shift's true prior, also refused where its point
# is undefined): records made before that rule hold these intervals, so the summary leaves
# them out as the project now does; the same estimates as LABEL_SHIFT's, and the true prior
TRUE_PRIOR = "label-free batch true prior (noise-aware)"
COLLAPSE_REFUSED = (*LABEL_SHIFT, TRUE_PRIOR)


def noisy_world(record: dict[str, Any]) -> bool:
    """Whether the project refuses this world's label-shift intervals: dev_b's missing- or
    false-label rate's interval (evaluate's, as metrics.json holds it) wholly above
    ``noise_shift.NOISE_REFUSAL``, or reaching above ``noise_shift.NOISE_UNRULED``
    (``noise_shift.noisy_labels_reason``). score --summary judges the same rates by its own
    bootstrap of the same rows, so near the cut it may judge otherwise."""
    from dsprior.noise_shift import noisy_labels_reason

    rates = {
        i["interval"]: [i["low"], i["high"]]
        for i in record["intervals"]
        if i["interval"].startswith("dev_b ")
    }
    reason = noisy_labels_reason(
        rates.get("dev_b missing label rate"), rates.get("dev_b false label rate")
    )
    return reason is not None


def refusal(row: dict[str, Any], min_positives: int, min_prior_positives: int = 0) -> str | None:
    """Why the project would not print this interval, or None (it would):

    - ``positives``: its split's positives below ``min_positives``;
    - ``prior_positives``: at a prior estimated from fewer positives than its minimum;
    - ``noisy_labels``: a label-shift interval in a world whose dev_b gold labels show (or
      cannot rule out) noisy distant labels;
    - ``one_value``: a label-free interval of one value (``COLLAPSE_REFUSED``; the true
      prior's also where its point is undefined).
    """
    positives = row.get("positives")
    if positives is not None and positives < min_positives:
        return "positives"
    prior_positives = row.get("prior_positives")
    if prior_positives is not None and prior_positives < min_prior_positives:
        return "prior_positives"
    if row.get("noisy_world") and row["interval"] in LABEL_SHIFT:
        return "noisy_labels"
    if row["interval"] in COLLAPSE_REFUSED and row["low"] == row["high"]:
        return "one_value"
    if row["interval"] == TRUE_PRIOR and row.get("point") is None:
        return "one_value"
    return None


def refused(row: dict[str, Any], min_positives: int, min_prior_positives: int = 0) -> bool:
    """An interval the project would not print (``refusal`` says why)."""
    return refusal(row, min_positives, min_prior_positives) is not None


def summarise_coverage(
    records: list[dict[str, Any]], *, min_positives: int = 0, min_prior_positives: int = 0
) -> dict[str, Any]:
    """Per interval, over all cells and per cell: n, covered, coverage, Wilson CI, median width.

    Of what the project prints: intervals of a split with fewer than ``min_positives``
    positives, intervals at a prior estimated from fewer than ``min_prior_positives``, and
    the label-shift intervals of a world with noisy distant labels (``noisy_world``), and
    label-free intervals of one value, are left out of these counts and summarised under
    ``refused``, and under ``refused_by`` by reason (``refusal``).
    """
    rows = [
        dict(c, cell=r["cell"], noisy_world=noisy_world(r)) for r in records for c in r["intervals"]
    ]
    held_back = [r for r in rows if refused(r, min_positives, min_prior_positives)]
    rows = [r for r in rows if not refused(r, min_positives, min_prior_positives)]
    out: dict[str, Any] = {}
    for name in sorted({r["interval"] for r in rows + held_back}):
        mine = [r for r in rows if r["interval"] == name]
        entry = _coverage_entry(mine)
        entry["cells"] = {
            cell: _coverage_entry([r for r in mine if r["cell"] == cell])
            for cell in sorted({r["cell"] for r in mine})
        }
        entry["cells_short"] = sum(cell_short(c, GOAL_CELL) for c in entry["cells"].values())
        out[name] = entry
        gone = [r for r in held_back if r["interval"] == name]
        if gone:
            entry["refused"] = _coverage_entry(gone)
            reasons = [refusal(r, min_positives, min_prior_positives) for r in gone]
            entry["refused_by"] = {
                reason: _coverage_entry(
                    [r for r, why in zip(gone, reasons, strict=True) if why == reason]
                )
                for reason in sorted(set(reasons))
            }
    return out


def cell_short(entry: dict[str, Any], goal: float) -> bool:
    """A cell clearly below ``goal``: the upper end of its coverage's Wilson interval is.

    With 17 worlds a cell, one miss more or less moves its coverage by six points, and a
    true 95% reads 15/17 (88%) about one time in five: a point below the goal is not, by
    itself, a failure; a Wilson interval wholly below it is."""
    ci = entry.get("coverage_ci")
    return bool(ci) and ci[1] < goal


def _coverage_entry(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    covered = sum(r["covered"] for r in rows)
    low, high = wilson_interval(covered, n)
    widths = [r["width"] for r in rows]
    rel = [r["width"] / abs(r["truth"]) for r in rows if r["truth"] != 0]
    return {
        "n": n,
        "covered": covered,
        "coverage": covered / n if n else None,
        "coverage_ci": [low, high] if n else None,
        "median_width": float(np.median(widths)) if n else None,
        "median_relative_width": float(np.median(rel)) if rel else None,
        "truth_above_interval": sum(r["high"] < r["truth"] for r in rows),
        "truth_below_interval": sum(r["low"] > r["truth"] for r in rows),
        "zero_width": sum(r["width"] == 0 for r in rows),
    }


def summarise_estimates(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Label-free prior estimates: median relative error, by method and factor, overall and at
    1:100 in worlds whose test AP is at least 0.5 (issue #23's goal: below 15%)."""
    rows = [
        dict(e, cell=r["cell"], test_ap=r["world"]["test_ap"])
        for r in records
        for e in r["estimates"]
    ]
    out: dict[str, Any] = {}
    for method in sorted({r["method"] for r in rows}):
        mine = [
            r
            for r in rows
            if r["method"] == method and r["value"] is not None and np.isfinite(r["value"])
        ]
        goal = [r for r in mine if r["ratio"] == 100 and (r["test_ap"] or 0) >= 0.5]
        out[method] = {
            "undefined": sum(r["method"] == method for r in rows) - len(mine),
            "all": _error_entry(mine),
            "by_factor": {
                str(f): _error_entry([r for r in mine if r["factor"] == f]) for f in FACTORS
            },
            "at_1_100_test_ap_0_5": _error_entry(goal),
        }
    return out


def _error_entry(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rel = [abs(r["value"] - r["truth"]) / r["truth"] for r in rows if r["truth"] > 0]
    signed = [(r["value"] - r["truth"]) / r["truth"] for r in rows if r["truth"] > 0]
    return {
        "n": len(rows),
        "median_relative_error": float(np.median(rel)) if rel else None,
        "median_signed_relative_error": float(np.median(signed)) if signed else None,
    }


# -- one world --------------------------------------------------------------------------------


def world_seed(base: int, cell_index: int, replicate: int) -> int:
    """A new relation per replicate: ``generate.seed`` drawn from (base, cell, replicate)."""
    return int(np.random.SeedSequence([base, cell_index, replicate]).generate_state(1)[0])


def _config(cell: Cell, scale: Scale):
    from dsprior.simulator import SimulatorConfig

    config = SimulatorConfig(
        dim=scale.dim,
        prior=cell.prior,
        min_rows=scale.min_rows,
        max_rows=scale.max_rows,
        group_size_mean=cell.group_size_mean,
        group_positive_concentration=cell.group_positive_concentration,
        evidence_strength=cell.evidence_strength,
        decoy_strength=cell.evidence_strength,
        kb_false_positive=cell.kb_noise,
        kb_missing=cell.kb_noise,
    )
    config.validate()
    return config


class World:
    """One world: its config and seed, and its sources drawn one after another (new groups)."""

    def __init__(self, cell: Cell, scale: Scale, seed: int) -> None:
        from dsprior import simulator as sim

        self.sim = sim
        self.config = _config(cell, scale)
        self.seed = seed
        self.next_group = 0
        self.sources = 0
        self.patterns = sim.relation_patterns(self.config, seed=seed)
        self.signatures: dict[int, np.ndarray] = {}

    def draw(self, name: str, examples: int, negative_rate: float):
        """A fresh source of this world (new entity groups): its table and source index."""
        table, self.next_group = self.sim.draw_source(
            self.sim.Population(name, int(examples), float(negative_rate)),
            self.config,
            seed=self.seed,
            source_index=self.sources,
            first_group=self.next_group,
        )
        self.sources += 1
        return table, self.sources - 1

    def rows(self, table, source_index: int, index: np.ndarray) -> list[np.ndarray]:
        return [
            self.sim.draw_rows(
                table,
                int(i),
                self.config,
                patterns=self.patterns,
                seed=self.seed,
                source_index=source_index,
                signatures=self.signatures,
            )
            for i in index
        ]


def split_groups(groups: np.ndarray, fractions: dict[str, float], rng) -> np.ndarray:
    """Each example's split, whole groups at a time, groups in shuffled order by fraction."""
    unique, codes = np.unique(groups, return_inverse=True)
    order = rng.permutation(len(unique))
    edges = np.cumsum([0.0, *fractions.values()]) * len(unique)
    by_group = np.empty(len(unique), dtype=object)
    for name, lo, hi in zip(fractions, edges[:-1], edges[1:], strict=True):
        by_group[order[int(round(lo)) : int(round(hi))]] = name
    return by_group[codes]


def downsample(labels: np.ndarray, ratio: float, rng) -> tuple[np.ndarray, float]:
    """Keep every positive and negatives at ``ratio`` per positive; the kept mask and keep rate."""
    pos, neg = int((labels == 1).sum()), int((labels == 0).sum())
    rate = min(1.0, ratio * pos / neg) if neg else 1.0
    keep = (labels == 1) | (rng.random(len(labels)) < rate)
    return keep, rate


def score_rows(model, rows: list[np.ndarray], *, dim: int, min_rows: int) -> np.ndarray:
    from dsprior.batches import forward, pad_batch

    fn = forward(model)
    out = []
    for start in range(0, len(rows), 1024):
        features, lengths = pad_batch(rows[start : start + 1024], dim=dim, min_rows=min_rows)
        out.append(fn(features, lengths))
    return np.concatenate(out) if out else np.zeros(0)


def train_small_cnn(world_rows, labels, *, scale: Scale, seed: int):
    """The project's CNN, small, trained on distant labels of the downsampled train split."""
    import keras

    from dsprior import cnn
    from dsprior.batches import pad_batch

    keras.utils.set_random_seed(seed % (2**31))
    model = cnn.build_cnn(
        dim=scale.dim,
        filter_sizes=scale.filter_sizes,
        filters=scale.filters,
        dropout=0.5,
        l2=0.001,
        seed=seed % 1000,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003), loss="binary_crossentropy")
    features, lengths = pad_batch(world_rows, dim=scale.dim, min_rows=max(scale.filter_sizes))
    model.fit(
        {cnn.FEATURES_INPUT: features, cnn.LENGTHS_INPUT: lengths},
        labels.astype(np.float32),
        batch_size=32,
        epochs=scale.epochs,
        shuffle=True,
        verbose=0,
    )
    return model


def population_truth(
    y: np.ndarray, gold: np.ndarray, w: np.ndarray, decisions: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The truth each interval claims to hold: rules' metrics on the weighted truth source."""
    from dsprior import priors

    out: dict[str, Any] = {"prior": float(np.sum(w * y) / np.sum(w))}
    out["gold_prior"] = float(np.sum(w * gold) / np.sum(w))
    for rule, d in decisions.items():
        for labels, key in ((y, "distant"), (gold, "gold")):
            cm = priors.confusion(labels, d, w)
            r = priors.rates(cm)
            out[f"{rule}.{key}"] = {
                **{m: r[m] for m in ("precision", "recall", "f1")},
                "expected_cost": priors.expected_cost(cm, cost_fp=COST_FP, cost_fn=COST_FN),
            }
    noise = priors.rates(priors.confusion(gold, y, w))  # distant label as a prediction of gold
    out["false_label_rate"] = 1 - noise["precision"]
    out["missing_label_rate"] = 1 - noise["recall"]
    return out


POOL_RATE = 0.05  # the pool's upstream negative rate


def draw_tables(cell: Cell, scale: Scale, seed: int) -> tuple[World, Any, tuple, tuple]:
    """One world's example tables, split (no rows drawn yet: cheap), and the generator the
    replicate goes on with: the pool (train and dev_a: negatives thinned upstream at
    ``POOL_RATE``) and the production-ratio source (dev_b and test), each with its source
    index and each example's split."""
    rng = np.random.default_rng(seed)
    world = World(cell, scale, seed)
    pool, pool_index = world.draw("pool", scale.train_positives / cell.prior / 0.8, POOL_RATE)
    pool_split = split_groups(pool.group, {"train": 0.8, "dev_a": 0.2}, rng)
    production, prod_index = world.draw("production", 2 * cell.dev_b_positives / cell.prior, 1.0)
    prod_split = split_groups(production.group, {"dev_b": 0.5, "test": 0.5}, rng)
    return world, rng, (pool, pool_index, pool_split), (production, prod_index, prod_split)


def backfill_prior_positives(record: dict[str, Any], *, scale: Scale) -> dict[str, Any]:
    """``record`` (a replicate run before dev_a's and test's intervals carried
    ``prior_positives``) with them: its world's tables redrawn (``draw_tables``, no rows or training), dev_b's and test's
    label-1 examples counted by distant and gold labels. The distant counts must equal the
    recorded ones, or the world is not the one recorded."""
    cells = {c.name: c for c in grid()}
    _, _, _, (production, _, split) = draw_tables(cells[record["cell"]], scale, record["seed"])
    for name in ("dev_b", "test"):
        found = int((production.label[split == name] == 1).sum())
        if found != record["world"][f"{name}_positives"]:
            raise ValueError(
                f"{record['cell']} #{record['replicate']}: {name} redrawn with {found} "
                f"positives, recorded {record['world'][f'{name}_positives']}"
            )
    rows = np.isin(split, ["dev_b", "test"])
    counts = {
        "distant": int((production.label[rows] == 1).sum()),
        "gold": int((production.true_label[rows] == 1).sum()),
    }
    for interval in record["intervals"]:
        if interval["interval"].startswith(("dev_a ", "test ")) and "positives" in interval:
            labels = "gold" if interval["interval"].endswith("against gold") else "distant"
            interval["prior_positives"] = counts[labels]
    return record


def run_replicate(
    cell: Cell, cell_index: int, replicate: int, *, scale: Scale, base_seed: int
) -> dict[str, Any]:
    """One world through training, evaluate and the label-free batches; its interval records."""
    from dsprior import noise_shift, priors, quantify
    from dsprior.distribution_matching import hdy_prior
    from dsprior.evaluation.gold import weighted_gold_prior
    from dsprior.evaluation.inputs import build_predictions
    from dsprior.evaluation.metrics import compute_metrics
    from dsprior.evaluation.pipeline import recalibrated_predictions
    from dsprior.training.weights import training_prior

    started = time.perf_counter()
    seed = world_seed(base_seed, cell_index, replicate)
    world, rng, (pool, pool_index, pool_split), (production, prod_index, prod_split) = draw_tables(
        cell, scale, seed
    )
    pi = cell.prior
    min_rows = max(scale.filter_sizes)

    frames, rows_by_split = [], {}
    for split, table, index, splits, rate in (
        ("train", pool, pool_index, pool_split, POOL_RATE),
        ("dev_a", pool, pool_index, pool_split, POOL_RATE),
        ("dev_b", production, prod_index, prod_split, 1.0),
        ("test", production, prod_index, prod_split, 1.0),
    ):
        idx = np.flatnonzero(splits == split)
        keep_rate = 1.0
        if split in ("train", "dev_a"):
            keep, keep_rate = downsample(table.label[idx], 2.0, rng)
            idx = idx[keep]
        label = table.label[idx]
        weight = np.where(label == 1, 1.0, 1.0 / (rate * keep_rate))
        frames.append(
            pd.DataFrame(
                {
                    "example_id": table.example_id[idx],
                    "split": split,
                    "group": table.group[idx],
                    "label": label.astype(np.int8),
                    "weight": weight,
                    "true_label": table.true_label[idx].astype(np.int8),
                }
            )
        )
        rows_by_split[split] = world.rows(table, index, idx)
    manifest = pd.concat(frames, ignore_index=True)
    train = manifest[manifest["split"] == "train"]
    if train["label"].nunique() < 2 or (manifest.query("split == 'dev_b'")["label"] == 1).sum() < 2:
        return {"skipped": "a split without both labels", "seconds": time.perf_counter() - started}

    model = train_small_cnn(
        rows_by_split["train"], train["label"].to_numpy(), scale=scale, seed=seed
    )
    # what train records: beta (downsample: unit loss weights) and the priors
    labels, m_weight = train["label"].to_numpy(), train["weight"].to_numpy()
    from dsprior.training.weights import effective_beta

    beta = effective_beta(labels, m_weight, np.ones(len(train)))
    model_prior = training_prior(labels, m_weight)
    train_prior = training_prior(labels, np.ones(len(train)))

    rows = manifest[manifest["split"] != "train"].reset_index(drop=True)
    scores = np.concatenate(
        [
            score_rows(model, rows_by_split[s], dim=scale.dim, min_rows=min_rows)
            for s in ("dev_a", "dev_b", "test")
        ]
    )
    production_rows = rows[rows["split"].isin(["dev_b", "test"])]
    prior = priors.estimate_prior(
        production_rows["label"].to_numpy(), production_rows["weight"].to_numpy()
    )
    shift = priors.prior_shift(model_prior=model_prior, prior=prior)
    predictions, calibration, _ = recalibrated_predictions(
        rows, scores, beta=beta, shift=shift, prior=prior, training_prior=train_prior
    )
    # evaluate's metrics and intervals (evaluate_predictions less its label-free section,
    # which re-estimates batches cut from test: the fresh batches below test that estimator)
    gold_prior = weighted_gold_prior(
        production_rows["true_label"].to_numpy(np.float64), production_rows["weight"].to_numpy()
    )
    costs = priors.Costs(COST_FP, COST_FN)
    metrics = compute_metrics(
        predictions,
        prior=prior,
        costs=costs,
        # every interval drawn, whatever the split's positives: the summary applies evaluate's
        # min_positives (and shows the coverage of those it refuses)
        bootstrap=priors.Bootstrap(scale.resamples, LEVEL, seed % (2**31), min_positives=0),
        beta=beta,
        gold_prior=gold_prior,
        gold_prior_source="gold-labelled production-ratio rows",
        threshold_labels="distant",
        prior_rows=production_rows,  # both priors were estimated from them: their uncertainty
    )
    threshold = float(metrics["threshold"])
    evaluated = time.perf_counter()

    # truth: a large fresh source of the same world (new groups). Every example that is a
    # positive by either label is kept; the rest (negatives by both) are thinned at a known
    # rate and weighted back, to at least truth_negative_factor times test's size: the
    # truth's own noise must be small beside test's, or coverage reads low
    test_size = int((manifest["split"] == "test").sum())
    truth_negatives = max(
        scale.truth_negatives,
        min(scale.truth_negatives_max, scale.truth_negative_factor * test_size),
    )
    truth_all, truth_index = world.draw("truth", scale.truth_positives / pi, 1.0)
    either = (truth_all.label == 1) | (truth_all.true_label == 1)
    truth_rate = min(1.0, truth_negatives / max(1, int((~either).sum())))
    kept = np.flatnonzero(either | (rng.random(len(either)) < truth_rate))
    truth_weight = np.where(either[kept], 1.0, 1.0 / truth_rate)
    truth_rows = world.rows(truth_all, truth_index, kept)
    truth_scores = score_rows(model, truth_rows, dim=scale.dim, min_rows=min_rows)
    del truth_rows
    truth_frame = pd.DataFrame(
        {
            "example_id": truth_all.example_id[kept],
            "split": "truth",
            "group": truth_all.group[kept],
            "label": truth_all.label[kept],
            "weight": truth_weight,
        }
    )
    truth_pred = build_predictions(truth_frame, truth_scores, beta=beta, shift=shift)
    truth_z = calibration.map_log_odds(truth_pred["logit_at_prior"].to_numpy())
    truth = population_truth(
        truth_all.label[kept].astype(int),
        truth_all.true_label[kept].astype(int),
        truth_weight,
        {
            "chosen": priors.decide_log_odds(truth_z, threshold=threshold).astype(int),
            "shipped": (truth_scores >= 0.0).astype(int),  # the raw score at 0.5, in log-odds
        },
    )
    truth["examples"] = int(len(kept))
    truth["negatives_over_test"] = truth_negatives / max(1, test_size)

    intervals = evaluate_intervals(metrics, truth)

    # label-free: fresh batches of another source, moved to 0.25x .. 4x the bundle's prior
    estimates: list[dict[str, Any]] = []
    reference = quantify.reference_from_predictions(
        predictions, prior=prior, training_prior=train_prior, calibration=calibration
    )
    dev_b_rows = (predictions["split"] == "dev_b").to_numpy()
    dev_b = predictions[dev_b_rows]
    dev_b_z = calibration.map_log_odds(quantify.prior_corrected_log_odds(predictions)[dev_b_rows])
    # dev_b's gold labels give the noise rates (score --summary's estimated_*_true keys)
    noise_reference = noise_shift.NoiseReference(
        decision=priors.decide_log_odds(dev_b_z, threshold=threshold).astype(np.int8),
        distant=dev_b["label"].to_numpy(),
        gold=manifest.set_index("example_id")
        .loc[dev_b["example_id"], "true_label"]
        .to_numpy(np.float64),
        weight=dev_b["weight"].to_numpy(np.float64),
        group=dev_b["group"].to_numpy(),
    )
    per_batch = scale.batch_positives / pi
    fresh, fresh_index = world.draw("batches", per_batch * len(FACTORS), 1.0)
    fresh_split = split_groups(fresh.group, {str(f): 1 / len(FACTORS) for f in FACTORS}, rng)
    for factor in FACTORS:
        idx = np.flatnonzero(fresh_split == str(factor))
        true = fresh.true_label[idx]
        keep = np.ones(len(idx), dtype=bool)
        if factor < 1:  # keep a share of the true positives: distant labels follow through the KB
            keep = (true == 0) | (rng.random(len(idx)) < factor)
        elif factor > 1:
            keep = (true == 1) | (rng.random(len(idx)) < 1 / factor)
        idx = idx[keep]
        label = fresh.label[idx].astype(int)
        if len(idx) == 0:
            continue
        batch_scores = score_rows(
            model, world.rows(fresh, fresh_index, idx), dim=scale.dim, min_rows=min_rows
        )
        batch_frame = pd.DataFrame(
            {
                "example_id": fresh.example_id[idx],
                "split": "batch",
                "group": fresh.group[idx],
                "label": label,
                "weight": 1.0,
            }
        )
        z_raw = build_predictions(batch_frame, batch_scores, beta=beta, shift=shift)[
            "logit_at_prior"
        ].to_numpy()  # prior-corrected log-odds, before the recalibration
        summary = quantify.estimate_batch(
            log_odds=z_raw,
            prior=prior,
            threshold=threshold,
            costs=costs,
            bootstrap=priors.Bootstrap(
                scale.batch_resamples, LEVEL, seed=seed % (2**31) + int(factor * 100)
            ),
            calibration=calibration,
            reference=reference,
            groups=fresh.group[idx],
        )
        z_cal = calibration.map_log_odds(z_raw)
        measured = quantify.measured_performance(
            label, priors.decide_log_odds(z_cal, threshold=threshold), costs=costs
        )
        rate = float(label.mean())
        est = summary["estimated_prior"]
        extra = {
            "factor": factor,
            "batch_positives": int(label.sum()),
            "batch_examples": int(len(idx)),
        }
        for method, entry in (
            ("em", est),
            ("acc", est["cross_check"]["acc"]),
            ("pacc", est["cross_check"]["pacc"]),
        ):
            found = check_interval(
                f"label-free batch prior ({method})", entry["ci"], rate, entry["value"], **extra
            )
            if found:
                intervals.append(found)
            estimates.append(
                {
                    "method": method,
                    "factor": factor,
                    "ratio": cell.ratio,
                    "value": entry["value"],
                    "truth": rate,
                }
            )
        at = summary["estimated_at_threshold"]
        for m in ("precision", "recall", "alerts_per_1000", "expected_cost"):
            found = check_interval(
                f"label-free batch {m} (CBPE)", at[m]["ci"], measured[m], at[m]["value"], **extra
            )
            if found:
                intervals.append(found)
        if noise_reference.has_gold():
            decision = priors.decide_log_odds(z_cal, threshold=threshold).astype(np.int8)
            true_est = noise_shift.estimate_true_shift(
                decision,
                noise_reference,
                threshold=threshold,
                costs=costs,
                bootstrap=priors.Bootstrap(
                    scale.batch_resamples, LEVEL, seed=seed % (2**31) + int(factor * 100) + 1
                ),
                groups=fresh.group[idx],
            )
            gold_batch = fresh.true_label[idx].astype(int)
            gold_measured = quantify.measured_performance(gold_batch, decision, costs=costs)
            at_true = true_est["estimated_at_threshold_true"]
            for name, entry, value in (
                (
                    "label-free batch true prior (noise-aware)",
                    true_est["estimated_prior_true"],
                    float(gold_batch.mean()),
                ),
                (
                    "label-free batch precision against gold (noise-aware)",
                    at_true["precision"],
                    gold_measured["precision"],
                ),
                (
                    "label-free batch recall against gold (noise-aware)",
                    at_true["recall"],
                    gold_measured["recall"],
                ),
                (
                    "label-free batch precision, distant labels (noise-aware)",
                    at_true["distant_labels"]["precision"],
                    measured["precision"],
                ),
                (
                    "label-free batch recall, distant labels (noise-aware)",
                    at_true["distant_labels"]["recall"],
                    measured["recall"],
                ),
            ):
                found = check_interval(name, entry["ci"], value, entry["value"], **extra)
                if found:
                    intervals.append(found)
        hdy = hdy_prior(dev_b["label"].to_numpy(), dev_b_z, z_cal)
        estimates.append(
            {"method": "hdy", "factor": factor, "ratio": cell.ratio, "value": hdy, "truth": rate}
        )

    test = metrics["test"]["prior"]
    return {
        "cell": cell.name,
        "cell_params": asdict(cell),
        "replicate": replicate,
        "seed": seed,
        "world": {
            "prior_estimated": prior,
            "prior_truth": truth["prior"],
            "truth_examples": truth["examples"],
            "truth_negatives_over_test": truth["negatives_over_test"],
            "test_ap": test.get("average_precision"),
            "test_positives": int(test["positives"]),
            "dev_b_positives": int(metrics["dev_b"]["prior"]["positives"]),
            "train_examples": int(len(train)),
            "threshold": threshold,
            "calibration": calibration.as_dict().get("method"),
            "beta": beta,
        },
        "intervals": intervals,
        "estimates": estimates,
        "seconds": {
            "evaluate": round(evaluated - started, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }


def prior_positive_counts(metrics: dict[str, Any]) -> dict[str, int]:
    """Label-1 examples, by labels, in the rows both priors were estimated from here (dev_b
    and test: ``production_rows``)."""
    counts = {"distant": sum(int(metrics[s]["prior"]["positives"]) for s in ("dev_b", "test"))}
    if all("gold" in metrics[s] for s in ("dev_b", "test")):
        counts["gold"] = sum(
            int(metrics[s]["gold"]["prior"]["positives"]) for s in ("dev_b", "test")
        )
    return counts


def evaluate_intervals(metrics: dict[str, Any], truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Every interval of metrics.json checked against the truth source's value."""
    out: list[dict[str, Any]] = []

    def add(
        name: str, ci: Any, value: float | None, point: float | None = None, **extra: Any
    ) -> None:
        found = check_interval(name, ci, value, point, **extra)
        if found:
            out.append(found)

    # the label-1 examples of the rows each prior was estimated from (dev_b and test), by
    # labels: evaluate refuses the intervals at it below evaluate.bootstrap.min_prior_positives
    prior_positives = prior_positive_counts(metrics)
    for split in ("dev_a", "test"):
        entry = metrics[split]
        label = "projection" if split == "dev_a" else "measurement"
        # the split's label-1 examples, by the labels each interval is against: evaluate
        # refuses the interval below evaluate.bootstrap.min_positives
        distant = {"positives": entry["prior"].get("positives")}
        gold = {"positives": entry["gold"]["prior"].get("positives")} if "gold" in entry else {}
        distant["prior_positives"] = prior_positives.get("distant")
        if gold:
            gold["prior_positives"] = prior_positives.get("gold")
        for m in RATE_METRICS:
            add(
                f"{split} {m} at the prior ({label})",
                entry["prior"].get(f"{m}_ci"),
                truth["chosen.distant"][m],
                entry["prior"][m],
                **distant,
            )
            add(
                f"{split} {m}, shipped rule ({label})",
                entry["shipped"]["prior"].get(f"{m}_ci"),
                truth["shipped.distant"][m],
                entry["shipped"]["prior"][m],
                **distant,
            )
            if "gold" in entry:
                add(
                    f"{split} {m} against gold",
                    entry["gold"]["prior"].get(f"{m}_ci"),
                    truth["chosen.gold"][m],
                    entry["gold"]["prior"][m],
                    **gold,
                )
    for split in ("dev_a", "dev_b", "test"):
        noise = metrics[split].get("label_noise")
        if noise:
            for key in ("false_label_rate", "missing_label_rate"):
                add(
                    f"{split} {key.replace('_', ' ')}",
                    noise.get(f"{key}_ci"),
                    truth[key],
                    noise[key],
                )
    # evaluate's own label-free section: each batch against its own measured values
    for batch, summary in (metrics.get("label_free") or {}).items():
        kind = (
            "dev_b (in sample)"
            if batch == "dev_b"
            else ("test" if batch == "test" else "test resampled")
        )
        measured = summary["measured"]
        est = summary["estimated_prior"]
        add(f"evaluate label-free prior (EM), {kind}", est["ci"], measured["prior"], est["value"])
        for m in ("precision", "recall", "expected_cost"):
            at = summary["estimated_at_threshold"][m]
            add(f"evaluate label-free {m} (CBPE), {kind}", at["ci"], measured[m], at["value"])
    return out


# -- the run ----------------------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    """The replicates done so far; a torn last line (a killed run) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("ignoring a torn line in %s", path)
    return records


def pooled_records(paths: list[Path]) -> list[dict[str, Any]]:
    """The records of several grids, one list: their worlds must be distinct (each grid its
    own ``--seed``), or a world would count twice."""
    records = [r for path in paths for r in read_records(path)]
    seeds = [r["seed"] for r in records if "intervals" in r]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise SystemExit(
            f"ERROR: --pool: worlds in more than one file: {len(repeated)} (seeds {repeated[:3]}): "
            "pool grids run with different --seed, each file once"
        )
    return records


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def append_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record, default=_jsonable) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value)}")


def machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one replicate per cell, small truth and bootstrap"
    )
    parser.add_argument(
        "--replicates", type=int, default=None, help="per cell (default 17, quick 1)"
    )
    parser.add_argument("--cells", nargs="*", default=None, help="cell names to run (default all)")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="worlds' base seed (another: a new set of worlds)"
    )
    parser.add_argument("--records", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--page", type=Path, default=None)
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="add prior_positives to records from before it was recorded (redraws each "
        "world's tables only), then rewrite the summary; run nothing",
    )
    parser.add_argument(
        "--pool",
        type=Path,
        nargs="+",
        default=None,
        metavar="RECORDS",
        help="summarise the records of several grids (each run with its own --seed) together "
        "into --out and --page (default coverage_pooled.*); run nothing",
    )
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite the summary from the records; run nothing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from dsprior import runtime

    runtime.quiet_tensorflow()
    scale = QUICK if args.quick else Scale()
    if args.pool:
        write_summary(
            pooled_records(args.pool),
            scale=scale,
            command="python benchmarks/bench_coverage.py --pool "
            + " ".join(_shown(path) for path in args.pool),
            out=args.out or RESULTS / "coverage_pooled.json",
            page=args.page or RESULTS / "coverage_pooled.md",
        )
        return
    replicates = args.replicates or (1 if args.quick else 17)
    stem = "coverage_quick" if args.quick else "coverage"
    records_path = args.records or RESULTS / f"{stem}.jsonl"
    out = args.out or RESULTS / f"{stem}.json"
    page = args.page or RESULTS / f"{stem}.md"
    cells = [c for c in grid() if args.cells is None or c.name in args.cells]
    done = {(r["cell"], r["replicate"]) for r in read_records(records_path)}
    command = "python benchmarks/bench_coverage.py" + (" --quick" if args.quick else "")
    if args.replicates:
        command += f" --replicates {args.replicates}"
    if args.seed != SEED:
        command += f" --seed {args.seed}"
    todo = [
        (i, c, r)
        for r in range(replicates)
        for i, c in enumerate(grid())
        if c in cells and (c.name, r) not in done
    ]
    logger.info("%d replicates to run, %d already in %s", len(todo), len(done), records_path)

    def summarise() -> None:
        write_summary(
            read_records(records_path),
            scale=scale,
            command=command,
            out=out,
            page=page,
            planned=replicates * len(cells),
        )

    if args.backfill:
        records = [
            r if "intervals" not in r else backfill_prior_positives(r, scale=scale)
            for r in read_records(records_path)
        ]
        tmp = records_path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        for record in records:
            append_record(tmp, record)
        tmp.replace(records_path)
    if args.summary_only or args.backfill:
        todo = []
    for k, (cell_index, cell, replicate) in enumerate(todo, 1):
        record = run_replicate(cell, cell_index, replicate, scale=scale, base_seed=args.seed)
        record.setdefault("cell", cell.name)
        record.setdefault("replicate", replicate)
        record["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        append_record(records_path, record)
        logger.info("%d/%d %s #%d: %s s", k, len(todo), cell.name, replicate, record["seconds"])
        if k % len(cells) == 0:  # a summary after each round of the grid, for a long run
            summarise()
    summarise()


def write_summary(
    records: list[dict[str, Any]],
    *,
    scale: Scale,
    command: str,
    out: Path,
    page: Path,
    planned: int | None = None,
) -> None:
    """coverage.json, the markdown page and its SVG plots, from every record so far."""
    done = [r for r in records if "intervals" in r]
    summary = {
        "command": command,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "level": LEVEL,
        "scale": asdict(scale),
        "grid": [asdict(c) for c in grid()],
        "replicates": len(done),
        "planned": planned,
        "skipped": len(records) - len(done),
        "seconds": {
            "total": round(
                sum(
                    r["seconds"]["total"] if isinstance(r["seconds"], dict) else r["seconds"]
                    for r in records
                ),
                1,
            ),
            "median_per_replicate": float(np.median([r["seconds"]["total"] for r in done]))
            if done
            else None,
        },
        "worlds": {
            cell: {
                "replicates": len(rs),
                "median_test_ap": float(
                    np.median(
                        [r["world"]["test_ap"] for r in rs if r["world"]["test_ap"] is not None]
                    )
                ),
                "median_test_positives": float(
                    np.median([r["world"]["test_positives"] for r in rs])
                ),
                "median_seconds": float(np.median([r["seconds"]["total"] for r in rs])),
            }
            for cell in sorted({r["cell"] for r in done})
            for rs in [[r for r in done if r["cell"] == cell]]
        },
        "min_positives": (minimum := evaluate_min_positives()),
        "min_prior_positives": (prior_minimum := evaluate_min_positives("min_prior_positives")),
        "coverage": summarise_coverage(
            done, min_positives=minimum, min_prior_positives=prior_minimum
        ),
        "label_free_errors": summarise_estimates(done),
    }
    from dsprior import runtime

    runtime.write_json(out, summary)
    render_page(summary, page)


# -- the page ---------------------------------------------------------------------------------

GOAL_OVERALL, GOAL_CELL = 0.93, 0.90  # issue #23, item 3


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def svg_forest(rows: list[tuple[str, float, float, float, int]], *, title: str) -> str:
    """A forest plot: one row per interval, its coverage with the Wilson CI, and the goal lines."""
    left, width, step, top = 430, 360, 18, 40
    height = top + step * len(rows) + 40
    x_min = 0.5

    def x(v: float) -> float:
        return left + (max(v, x_min) - x_min) / (1 - x_min) * width

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="18" font-size="13" font-weight="bold">{_escape(title)}</text>',
    ]
    for v, colour, label in (
        (LEVEL, "#2a7", "95%"),
        (GOAL_OVERALL, "#e90", "93%"),
        (GOAL_CELL, "#d33", "90%"),
    ):
        parts.append(
            f'<line x1="{x(v):.1f}" y1="{top - 8}" x2="{x(v):.1f}" y2="{height - 30}" '
            f'stroke="{colour}" stroke-dasharray="4,3"/>'
            f'<text x="{x(v) - 10:.1f}" y="{top - 12}" fill="{colour}">{label}</text>'
        )
    for tick in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        parts.append(f'<text x="{x(tick) - 8:.1f}" y="{height - 14}">{tick:.1f}</text>')
    for i, (name, cov, low, high, n) in enumerate(rows):
        y = top + step * i + step / 2
        colour = "#d33" if high < LEVEL else ("#333" if low <= LEVEL else "#27c")
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{_escape(name)} (n={n})</text>'
        )
        parts.append(
            f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>'
            f'<circle cx="{x(cov):.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg_errors(errors: dict[str, Any], *, title: str) -> str:
    """Median relative error of the label-free prior, by method (one line each) over the factors."""
    left, width, top, height = 60, 420, 40, 220
    methods = sorted(errors)
    colours = ["#27c", "#e90", "#2a7", "#d33", "#85c"]
    values = [
        errors[m]["by_factor"][str(f)]["median_relative_error"] for m in methods for f in FACTORS
    ]
    finite = [v for v in values if v is not None]
    y_max = max(0.2, min(2.0, max(finite) * 1.1)) if finite else 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i / (len(FACTORS) - 1) * width, top + height - min(v, y_max) / y_max * height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 130}" height="{top + height + 40}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="18" font-size="13" font-weight="bold">{_escape(title)}</text>',
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#999"/>',
    ]
    goal_y = xy(0, 0.15)[1]
    parts.append(
        f'<line x1="{left}" y1="{goal_y:.1f}" x2="{left + width}" y2="{goal_y:.1f}" stroke="#d33" stroke-dasharray="4,3"/>'
        f'<text x="{left + width + 4}" y="{goal_y + 4:.1f}" fill="#d33">15%</text>'
    )
    for frac in (0.0, 0.5, 1.0):
        v = frac * y_max
        parts.append(
            f'<text x="{left - 6}" y="{xy(0, v)[1] + 4:.1f}" text-anchor="end">{v:.2f}</text>'
        )
    for i, f in enumerate(FACTORS):
        parts.append(f'<text x="{xy(i, 0)[0] - 10:.1f}" y="{top + height + 16}">{f:g}x</text>')
    for k, method in enumerate(methods):
        points = [
            xy(i, v)
            for i, f in enumerate(FACTORS)
            if (v := errors[method]["by_factor"][str(f)]["median_relative_error"]) is not None
        ]
        colour = colours[k % len(colours)]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            parts.extend(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points
            )
        parts.append(
            f'<text x="{left + width + 40}" y="{top + 14 * k + 10}" fill="{colour}">{method.upper()}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_page(summary: dict[str, Any], page: Path) -> None:
    """The markdown page beside the JSON, with its SVG plots next to it."""
    cov = summary["coverage"]
    stem = page.stem
    forest = [
        (name, e["coverage"], e["coverage_ci"][0], e["coverage_ci"][1], e["n"])
        for name, e in cov.items()
        if e["n"]
    ]
    (page.parent / f"{stem}_coverage.svg").write_text(
        svg_forest(
            forest,
            title=f"Coverage of the 95% intervals, all cells ({summary['replicates']} worlds)",
        )
    )
    errors = summary["label_free_errors"]
    if errors:
        (page.parent / f"{stem}_prior_error.svg").write_text(
            svg_errors(errors, title="Label-free prior: median relative error by batch prior")
        )
    quick = "quick" in summary["command"]
    label = " (QUICK RUN)" if quick else ""
    if (
        summary.get("planned")
        and len(summary["worlds"])
        and summary["replicates"] < summary["planned"]
    ):
        label += f" (PARTIAL: {summary['replicates']} of {summary['planned']} worlds)"
    lines = [
        f"# Coverage of the project's intervals{label}",
        "",
        f"Made by `{summary['command']}` (summary written {summary['date']} UTC) on {summary['machine']['cpu']} "
        f"({summary['machine']['cores']} cores), {summary['replicates']} worlds "
        f"({summary['skipped']} skipped), {summary['seconds']['total'] / 60:.1f} minutes of replicates "
        f"(median {_fmt(summary['seconds']['median_per_replicate'], 1)} s each). "
        "What is measured and how: `benchmarks/bench_coverage.py`'s docstring.",
        "",
    ]
    if quick:
        lines += [
            "A quick run has one world per cell: a coverage over a dozen worlds has a Wilson "
            "interval tens of points wide. It shows that the machinery works and where the "
            "large failures are, not whether an interval reaches 93%.",
            "",
        ]
    lines += [
        f"![coverage]({stem}_coverage.svg)",
        "",
        "## Coverage per interval (all cells)",
        "",
        f"Goal (issue #23): at least {GOAL_OVERALL:.0%} over the grid and {GOAL_CELL:.0%} in every cell. "
        "A cell counts as short only where its coverage's Wilson 95% interval lies wholly "
        f"below {GOAL_CELL:.0%}: with about 17 worlds a cell, a true 95% reads 15/17 (88%) about "
        "one time in five. Misses: the truth above / below the interval. Zero width: intervals "
        "of one value (a bootstrap with no event to resample, e.g. no alert or no false "
        "positive).",
        "",
        f"Of what the project prints: intervals of a split with fewer than "
        f"{summary.get('min_positives', 0)} positives (`evaluate.bootstrap.min_positives`), "
        "intervals at a prior estimated from fewer than "
        f"{summary.get('min_prior_positives', 0)} positives "
        "(`evaluate.bootstrap.min_prior_positives`), and the label-shift intervals (EM's, "
        "ACC's and PACC's prior, CBPE's precision, recall and cost) where dev_b's gold labels "
        "show, or cannot rule out, noisy distant labels, and label-free intervals of one "
        "value, are refused and counted apart (the table after this one).",
        "",
        "| interval | n | covered | coverage | Wilson 95% | median width | median width / truth "
        "| truth above | truth below | zero width | worst cell | cells short |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in cov.items():
        if not e["n"]:
            continue
        worst = min(e["cells"].items(), key=lambda kv: kv[1]["coverage"])
        short = e["cells_short"]
        lines.append(
            f"| {name} | {e['n']} | {e['covered']} | {_fmt(e['coverage'])} | "
            f"{_fmt(e['coverage_ci'][0])}-{_fmt(e['coverage_ci'][1])} | {_fmt(e['median_width'], 4)} | "
            f"{_fmt(e['median_relative_width'], 2)} | {e['truth_above_interval']} | "
            f"{e['truth_below_interval']} | {e['zero_width']} | "
            f"{worst[0]}: {worst[1]['covered']}/{worst[1]['n']} | {short} of {len(e['cells'])} |"
        )
    gone = {name: e["refused"] for name, e in cov.items() if e.get("refused")}
    if gone:
        lines += [
            "",
            "### Refused by the project",
            "",
            f"Evaluate refuses the intervals of a split with fewer than "
            f"{summary.get('min_positives')} positives, and every interval at a prior "
            f"estimated from fewer than {summary.get('min_prior_positives', 0)} positives (dev_b's "
            "and test's together); evaluate and `score --summary` refuse "
            "the label-shift intervals where dev_b's gold labels show noisy distant labels (a "
            "missing- or false-label rate's interval wholly above 5%) or cannot rule them out "
            "(one reaching above 20%); `score --summary` refuses a label-free interval of one "
            "value (every resample agreed: a prior, precision, recall or cost at a bound), "
            "and the true prior's where the adjusted count is undefined. Their coverage, "
            "had they been printed, is why (`interval_refused`). Reasons: `positives`, "
            "`prior_positives`, `noisy_labels`, `one_value`.",
            "",
            "| interval | why | n | covered | coverage | Wilson 95% | truth above | truth below |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, total in gone.items():
            by = cov[name].get("refused_by") or {"": total}
            for why, e in by.items():
                lines.append(
                    f"| {name} | {why} | {e['n']} | {e['covered']} | {_fmt(e['coverage'])} | "
                    f"{_fmt(e['coverage_ci'][0])}-{_fmt(e['coverage_ci'][1])} | "
                    f"{e['truth_above_interval']} | {e['truth_below_interval']} |"
                )
    cells = [c.name for c in grid() if any(c.name in e["cells"] for e in cov.values())]
    if cells:
        lines += [
            "",
            "## Coverage per cell",
            "",
            "Covered / checked, per interval and cell (bold: short, the Wilson interval of the "
            "cell's coverage wholly below 90%; italic: below 90% but not clearly so).",
            "",
            "| interval | " + " | ".join(cells) + " |",
            "|---|" + "---|" * len(cells),
        ]
        for name, e in cov.items():
            row = []
            for cell in cells:
                c = e["cells"].get(cell)
                if not c:
                    row.append("-")
                    continue
                text = f"{c['covered']}/{c['n']}"
                if cell_short(c, GOAL_CELL):
                    text = f"**{text}**"
                elif c["coverage"] < GOAL_CELL:
                    text = f"*{text}*"
                row.append(text)
            lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += [
        "",
        "## Label-free prior estimates (fresh batches at 0.25x to 4x the bundle's prior)",
        "",
        "Truth: the batch's own distant-label rate. Median relative error; the goal is below 15% "
        "at 1:100 in worlds whose test AP is at least 0.5. HDy has no interval in the project: "
        "its point error only.",
        "",
    ]
    if errors:
        lines += [
            "![prior error](" + f"{stem}_prior_error.svg)",
            "",
            "| method | n | all | "
            + " | ".join(f"{f:g}x" for f in FACTORS)
            + " | 1:100, test AP >= 0.5 (n) |",
            "|---|---|---|" + "---|" * len(FACTORS) + "---|",
        ]
        for method, e in errors.items():
            by = [_fmt(e["by_factor"][str(f)]["median_relative_error"], 2) for f in FACTORS]
            goal = e["at_1_100_test_ap_0_5"]
            lines.append(
                f"| {method.upper()} | {e['all']['n']} | {_fmt(e['all']['median_relative_error'], 2)} | "
                + " | ".join(by)
                + f" | {_fmt(goal['median_relative_error'], 2)} ({goal['n']}) |"
            )
    lines += [
        "",
        "## The worlds",
        "",
        "| cell | worlds | median test AP | median test positives | median seconds |",
        "|---|---|---|---|---|",
    ]
    for cell, w in summary["worlds"].items():
        lines.append(
            f"| {cell} | {w['replicates']} | {_fmt(w['median_test_ap'], 2)} | "
            f"{w['median_test_positives']:.0f} | {w['median_seconds']:.0f} |"
        )
    lines += [
        "",
        "Cells: prior "
        + ", ".join(f"1:{r}" for r in RATIOS)
        + "; evidence "
        + ", ".join(f"{k} (evidence_strength {v})" for k, v in SIGNALS.items())
        + "; "
        + "; ".join(
            f"{name}: KB noise {r['kb_noise']:.0%} each way, dev_b about {r['dev_b_positives']} "
            f"positives, groups of {r['group_size_mean']:g} on average with concentration {r['conc']:g}"
            for name, r in REGIMES.items()
        )
        + ". Per-cell coverage of every interval: `"
        + page.with_suffix(".json").name
        + "`, key `coverage.<interval>.cells`.",
        "",
    ]
    page.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
