"""A simulated production stream: batches drawn from the simulator's world at chosen priors.

Each batch is a new source of the same world (the project's ``generate`` params, the same
seed, a new source name, so new examples and entity groups from the same relation), drawn
at the production ratio; its prior is then moved the way the world moves it (docs/methods.md,
section 12): a random share of its true positives is kept (or of its true negatives, to
raise the prior above the world's). Distant labels follow through the knowledge base's
noise. Written as Parquet raw files that ``stages.score`` reads, with ``label`` and
``true_label`` columns, for ``benchmarks/bench_monitor.py`` and the monitor's end-to-end test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from dsprior import simulator
from dsprior.generation import long_table

# A small world (over tests.conftest.TINY_PARAMS) whose model is good enough for a batch's
# prior to be told from 1:100 to 1:30: stronger evidence, more examples, evaluate's prior
# set to 1:100 (the bundle's). About 90 s of `dvc repro` on 2 cores.
DRIFT_WORLD: dict[str, Any] = {
    "generate": {
        "evidence_strength": 3.0,
        "sources": {
            "pool": {"examples": 12000, "negative_rate": 0.2},
            "production": {"examples": 4000, "negative_rate": 1.0},
        },
    },
    "evaluate": {"prior": 0.01},
    "train": {"epochs": 3},
}


def keep_for_prior(true_label: np.ndarray, prior: float, rng: np.random.Generator) -> np.ndarray:
    """Indices kept so that about ``prior`` of them are true positives: a random share of
    the positives (prior below the batch's own) or of the negatives (above it)."""
    if not 0 < prior < 1:
        raise ValueError(f"prior must be in (0, 1), got {prior!r}")
    positive = true_label == 1
    own = positive.mean()
    if not 0 < own < 1:
        raise ValueError(f"the drawn batch has a prior of {own}; draw more examples")
    odds, own_odds = prior / (1 - prior), own / (1 - own)
    keep = np.ones(len(true_label), dtype=bool)
    if odds < own_odds:
        keep[positive] = rng.random(positive.sum()) < odds / own_odds
    else:
        keep[~positive] = rng.random((~positive).sum()) < own_odds / odds
    return np.flatnonzero(keep)


def write_stream(
    generate: dict[str, Any],
    priors: list[float],
    out: Path,
    *,
    examples: int,
    prefix: str = "batch",
    seed: int = 0,
    start: int = 0,
) -> list[dict[str, Any]]:
    """Write one raw Parquet file per prior into ``out``; each batch's name, path, size and
    true prior (share of true positives) and distant-label prior, in order.

    The batches are the world's new sources ``start``, ``start + 1``, ...: a second stream
    drawn with ``start`` past the first one's batches shares none of its examples.
    """
    config = simulator.check_params(generate)
    world_seed = int(generate["seed"])
    names = [f"{prefix}_{k:03d}" for k in range(len(priors))]
    skipped = [f"{prefix}_skipped_{k:03d}" for k in range(start)]
    specs = simulator.sources_from_params(generate) + [
        simulator.Population(name, examples, 1.0) for name in skipped + names
    ]
    tables = simulator.draw_sources(
        config, specs, seed=world_seed, shared_fraction=float(generate["shared_groups"])
    )
    patterns = simulator.relation_patterns(config, seed=world_seed)
    out.mkdir(parents=True, exist_ok=True)
    batches = []
    first = len(specs) - len(names)
    for k, (name, prior) in enumerate(zip(names, priors, strict=True)):
        table = tables[name]
        kept = keep_for_prior(table.true_label, prior, np.random.default_rng([seed, start + k]))
        signatures: dict[int, np.ndarray] = {}
        rows = [
            simulator.draw_rows(
                table,
                int(i),
                config,
                patterns=patterns,
                seed=world_seed,
                source_index=first + k,
                signatures=signatures,
            )
            for i in kept
        ]
        path = out / f"{name}.parquet"
        pq.write_table(long_table(table, list(kept), rows), path)
        batches.append(
            {
                "batch": name,
                "path": path,
                "examples": len(kept),
                "target_prior": prior,
                "true_prior": float(table.true_label[kept].mean()),
                "distant_prior": float(table.label[kept].mean()),
            }
        )
    return batches
