"""Downsampling: thin negatives in the ratio-adjusted splits and weight every example.

In each split of ``downsample.splits`` (train and dev_a) every positive is kept and
each negative is kept with probability ``q = min(1, ratio * positives / negatives)``,
decided by a seeded hash of its ``example_id``: the kept set depends only on the id,
the seed and ``q``, and a smaller ``q`` keeps a subset of what a larger one kept.

Every row carries ``weight = 1 / (upstream_rate * downsample_rate)`` for negatives and
1 for positives, so the weights of a split's kept negatives sum to an estimate of its
production negative count. ``ratio: null`` keeps everything; the weights still carry
the upstream rate (the weighted-loss alternative). Thinned rows stay in the manifest
with ``kept = False`` so the audit can compare kept with all negatives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from dsprior import sampling, settings

log = logging.getLogger(__name__)

PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "seed": settings.Integer(minimum=0),
    "ratio": settings.Number(minimum=0, min_open=True, none=True),  # negatives kept per positive
    "splits": settings.ListOf(settings.Choice(*sampling.SPLITS), unique=True),
}


@dataclass(frozen=True)
class DownsampleConfig:
    """The checked ``downsample`` section."""

    seed: int
    ratio: float | None  # negatives kept per positive; None keeps every example
    splits: tuple[str, ...]  # the splits thinned


def check_params(params: Mapping[str, Any] | None) -> DownsampleConfig:
    """The ``downsample`` section, every key checked against ``PARAMS_SCHEMA``; else ValueError."""
    p = settings.check_section(params, PARAMS_SCHEMA, "downsample")
    return DownsampleConfig(seed=p["seed"], ratio=p["ratio"], splits=tuple(p["splits"]))


def downsample(
    manifest: pa.Table, *, seed: int, ratio: float | None, splits: Sequence[str]
) -> tuple[pa.Table, dict[str, Any]]:
    """Add ``downsample_rate``, ``kept`` and ``weight`` to a split manifest; return it and counts."""
    unknown = sorted(set(splits) - set(sampling.SPLITS))
    if unknown:
        raise ValueError(
            f"downsample.splits: unknown split(s) {unknown}; allowed are {list(sampling.SPLITS)}"
        )
    sampling.keep_probability(1, 1, ratio=ratio)  # validates ratio before any work
    split = np.asarray(manifest.column(sampling.SPLIT).to_numpy(zero_copy_only=False), dtype=object)
    labels = manifest.column("label").to_numpy().astype(np.int8)
    ids = manifest.column("example_id").to_pylist()
    u = sampling.stable_uniform(ids, seed=seed, salt="downsample")

    rate = np.ones(len(labels), dtype=np.float64)
    stats: dict[str, Any] = {"ratio": ratio, "splits": {}}
    for name in sampling.SPLITS:
        in_split = split == name
        n_pos = int(np.sum(labels[in_split] == 1))
        n_neg = int(np.sum(labels[in_split] == 0))
        q = sampling.keep_probability(n_pos, n_neg, ratio=ratio) if name in splits else 1.0
        if name in splits and n_pos == 0 and n_neg > 0 and ratio is not None:
            log.warning("split %s has no positives; its negatives are kept unthinned", name)
        rate[in_split & (labels == 0)] = q
        stats["splits"][name] = {"keep_probability": q, "positives": n_pos, "negatives": n_neg}
    kept = (labels == 1) | (u < rate)
    upstream = manifest.column(sampling.UPSTREAM_RATE).to_numpy()
    weight = sampling.example_weights(labels, upstream, rate)

    for name in sampling.SPLITS:
        in_split = split == name
        neg = in_split & (labels == 0) & kept
        entry = stats["splits"][name]
        entry["kept_negatives"] = int(neg.sum())
        entry["kept_ratio"] = (
            entry["kept_negatives"] / entry["positives"] if entry["positives"] else None
        )
        entry["weighted_negatives"] = float(weight[neg].sum())

    out = manifest.append_column(
        pa.field(sampling.DOWNSAMPLE_RATE, pa.float64(), nullable=False), pa.array(rate)
    )
    out = out.append_column(pa.field(sampling.KEPT, pa.bool_(), nullable=False), pa.array(kept))
    out = out.append_column(
        pa.field(sampling.WEIGHT, pa.float64(), nullable=False), pa.array(weight)
    )
    return out.cast(sampling.MANIFEST_SCHEMA), stats
