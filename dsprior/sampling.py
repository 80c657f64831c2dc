"""Sampling primitives shared by split, downsample and audit: stable hashes, quotas, weights.

Everything random here is a seeded hash of a key (a group or an example id), never a
draw from a global stream, so an example's fate depends only on its own key, the seed
and the stage's salt. Adding examples therefore never changes what happens to the
examples already there (see ``stable_uniform``).

The manifest schemas live here too: the split stage writes ``SPLIT_MANIFEST_SCHEMA``,
the downsample stage extends it to ``MANIFEST_SCHEMA``; both are sorted in dataset order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dsprior import runtime

SPLITS = ("train", "dev_a", "dev_b", "test")
SPLIT = "split"
UPSTREAM_RATE = "upstream_rate"
DOWNSAMPLE_RATE = "downsample_rate"
KEPT = "kept"
WEIGHT = "weight"

SPLIT_MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("group", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("n_rows", pa.int32(), nullable=False),
        pa.field("true_label", pa.int8(), nullable=True),
        pa.field(SPLIT, pa.string(), nullable=False),
        pa.field(UPSTREAM_RATE, pa.float64(), nullable=False),
    ]
)
MANIFEST_SCHEMA = pa.schema(
    list(SPLIT_MANIFEST_SCHEMA)
    + [
        pa.field(DOWNSAMPLE_RATE, pa.float64(), nullable=False),
        pa.field(KEPT, pa.bool_(), nullable=False),
        pa.field(WEIGHT, pa.float64(), nullable=False),
    ]
)

_TWO_64 = float(2**64)


def stable_uniform(keys: Iterable[str], *, seed: int, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) per key: a keyed BLAKE2b hash of ``salt`` and the key.

    The value of a key depends on nothing else, so it is the same on every machine, in
    every run, and whatever other keys are present. ``salt`` separates independent uses
    (the split hash of a group must not correlate with the downsample hash of an id).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    key = seed.to_bytes(8, "little")
    prefix = salt.encode() + b"\x00"
    values = [
        int.from_bytes(
            hashlib.blake2b(prefix + str(k).encode(), digest_size=8, key=key).digest(), "little"
        )
        for k in keys
    ]
    return np.asarray(values, dtype=np.float64) / _TWO_64


def stratified_uniform(u: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Replace each hash by its evenly spaced rank within its stratum, ``(rank + 0.5) / n``.

    Cutting the result at cumulative fractions gives every stratum its quota to within
    one unit, instead of only in expectation. The price is stability: a new unit shifts
    the ranks after it, so units near a cut can move when the data grows.
    """
    u = np.asarray(u, dtype=np.float64)
    strata = np.asarray(strata)
    if u.shape != strata.shape:
        raise ValueError(f"u and strata must have the same shape, got {u.shape} and {strata.shape}")
    out = np.empty_like(u)
    for stratum in np.unique(strata):
        idx = np.flatnonzero(strata == stratum)
        order = idx[np.argsort(u[idx], kind="stable")]
        out[order] = (np.arange(len(order)) + 0.5) / len(order)
    return out


def validate_fractions(fractions: Mapping[str, float], *, name: str = "fractions") -> dict:
    """Check a {split: fraction} mapping: known split names, fractions >= 0, sum <= 1."""
    if not isinstance(fractions, Mapping) or not fractions:
        raise ValueError(
            f"{name} must be a non-empty mapping of split -> fraction, got {fractions!r}"
        )
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise ValueError(f"{name}: unknown split(s) {unknown}; allowed are {list(SPLITS)}")
    clean = {}
    for split, fraction in fractions.items():
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise ValueError(f"{name}.{split} must be a number in [0, 1], got {fraction!r}")
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"{name}.{split} must be in [0, 1], got {fraction!r}")
        clean[split] = float(fraction)
    total = sum(clean.values())
    if total > 1.0 + 1e-9:
        raise ValueError(
            f"{name}: fractions must sum to at most 1 (the rest is dropped), got {total}"
        )
    return clean


def bucket(u: np.ndarray, fractions: Mapping[str, float]) -> np.ndarray:
    """Map uniforms to split names by cumulative fractions; ``""`` past their sum (not sampled).

    Splits are cut in the order of ``fractions``, so growing one split's fraction only
    takes units from past the cut, never reshuffles the others.
    """
    u = np.asarray(u, dtype=np.float64)
    names = list(fractions)
    edges = np.cumsum([fractions[n] for n in names])
    index = np.searchsorted(edges, u, side="right")
    labels = np.array(names + [""], dtype=object)
    return labels[index]


def keep_probability(n_positives: int, n_negatives: int, *, ratio: float | None) -> float:
    """Probability of keeping a negative so that kept negatives / positives is about ``ratio``.

    ``ratio=None`` keeps everything. So does a split without positives (there is no ratio
    to reach) or one that is already sparser than the target.
    """
    if ratio is None:
        return 1.0
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ValueError(
            f"ratio must be a positive number of negatives per positive or null, got {ratio!r}"
        )
    if n_positives < 0 or n_negatives < 0:
        raise ValueError(
            f"counts must be >= 0, got {n_positives} positives, {n_negatives} negatives"
        )
    if n_positives == 0 or n_negatives == 0:
        return 1.0
    return float(min(1.0, ratio * n_positives / n_negatives))


def example_weights(
    labels: np.ndarray, upstream_rate: np.ndarray, downsample_rate: np.ndarray
) -> np.ndarray:
    """``1 / (upstream_rate * downsample_rate)`` for negatives, 1 for positives.

    A kept negative stands for that many production negatives, so the weights of a
    split's kept negatives sum to an unbiased estimate of its production negative count.
    """
    labels = np.asarray(labels)
    rate = np.asarray(upstream_rate, dtype=np.float64) * np.asarray(
        downsample_rate, dtype=np.float64
    )
    if np.any(~(rate > 0) | (rate > 1)):
        bad = rate[~(rate > 0) | (rate > 1)][0]
        raise ValueError(f"sampling rates must be in (0, 1], got a combined rate of {bad}")
    return np.where(labels == 1, 1.0, 1.0 / rate)


def wilson_half_width(p: float, n: float, *, z: float = 1.96) -> float:
    """Half-width of the Wilson score interval for a proportion ``p`` seen on ``n`` trials."""
    if n <= 0:
        return math.nan
    return z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def trials_for_half_width(p: float, half_width: float, *, z: float = 1.96) -> int:
    """Smallest number of trials whose Wilson interval at ``p`` is at most ``half_width`` wide."""
    if not 0 < half_width < 0.5:
        raise ValueError(f"half_width must be in (0, 0.5), got {half_width!r}")
    hi = 1
    while wilson_half_width(p, hi, z=z) > half_width:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # the half-width decreases with n: bisect for the first n that fits
        mid = (lo + hi) // 2
        if wilson_half_width(p, mid, z=z) > half_width:
            lo = mid + 1
        else:
            hi = mid
    return hi


def write_table_atomic(table: pa.Table, path: str | Path) -> None:
    """Write a Parquet file deterministically (same table -> same bytes) and atomically."""
    with runtime.atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest(
    path: str | Path, *, schema: pa.Schema = MANIFEST_SCHEMA, optional: Collection[str] = ()
) -> pa.Table:
    """Read a manifest and check it has the columns and types of ``schema``.

    Fields named in ``optional`` (``true_label`` for a manifest without gold labels) may be
    missing from the file; they are then left out of the table, not added as nulls.
    """
    table = pq.read_table(path)
    schema = pa.schema(
        [f for f in schema if f.name in table.column_names or f.name not in optional]
    )
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {missing}; expected {schema.names}")
    return table.select(schema.names).cast(schema)
