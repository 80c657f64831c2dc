"""Splitting: assign every example to train, dev_a, dev_b or test, by entity group.

Each source feeds some splits with given fractions (``split.feeds``): in the reference
setup the thinned distant-supervision pool feeds train and dev_a, and the
production-ratio sample feeds dev_b and test; in the single-pool setup one
production-ratio source feeds all four and the downsample stage thins train and dev_a.

A unit (a group, or an example with ``split.by: example``) gets a uniform number from a
seeded hash of its key and is cut into a split by the fractions of its deciding source.

Cross-source conflict rule. A group can occur in several sources that feed different
splits (an entity pair in the KB pool and in the production sample). The whole group
goes where its highest-priority source sends it (``split.priority``; default: the
production-ratio sources first, i.e. the source with the highest upstream negative rate).
Examples of the group from other sources follow it if their source feeds that split
(counted as ``moved`` when their own source would have sent them elsewhere) and are
dropped otherwise (``cross_source_conflict``). Dropping from the pool rather than from
the production sample keeps dev_b and test a random sample of production.

Every example read is either assigned or dropped for one reason (``not_sampled`` when
the fractions of its source sum to less than 1, ``unfed_source`` for a source that
``feeds`` does not list, ``cross_source_conflict``); the metrics say how many of each.

Only metadata is read; the manifest points into the dataset and copies no features.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from dsprior import contract, sampling, settings

log = logging.getLogger(__name__)

BY = ("group", "example")
ASSIGN = ("hash", "quota")
DROP_REASONS = ("not_sampled", "unfed_source", "cross_source_conflict")
PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "seed": settings.Integer(minimum=0),
    "by": settings.Choice(*BY),
    "assign": settings.Choice(*ASSIGN),
    # source -> {split: fraction}; assign_splits checks that a source's fractions sum to <= 1
    "feeds": settings.MapOf(
        settings.MapOf(settings.Number(minimum=0, maximum=1), keys=sampling.SPLITS)
    ),
    "priority": settings.ListOf(settings.Text(), unique=True, none=True),  # null: by upstream rate
}


@dataclass(frozen=True)
class SplitConfig:
    """The checked ``split`` section."""

    seed: int
    by: str  # group | example
    assign: str  # hash | quota
    feeds: Mapping[str, Mapping[str, float]]  # source -> {split: fraction}
    priority: tuple[str, ...] | None  # None: by upstream rate


def check_params(params: Mapping[str, Any] | None) -> SplitConfig:
    """The ``split`` section, every key checked (``PARAMS_SCHEMA``, feeds' sums); else ValueError."""
    p = settings.check_section(params, PARAMS_SCHEMA, "split")
    for source, fractions in p["feeds"].items():
        sampling.validate_fractions(fractions, name=f"split.feeds.{source}")
    priority = p["priority"]
    return SplitConfig(
        seed=p["seed"],
        by=p["by"],
        assign=p["assign"],
        feeds=p["feeds"],
        priority=None if priority is None else tuple(priority),
    )


def source_priority(
    metadata: pa.Table, feeds: Mapping[str, Mapping[str, float]], priority: Sequence[str] | None
) -> list[str]:
    """Fed sources, most authoritative first: ``priority`` if given, else by upstream rate.

    Without an explicit order, a source with a higher upstream negative rate (closer to
    production) wins, ties broken by name, so the production sample keeps its groups.
    ``priority`` may name sources that the data has but ``feeds`` does not (their
    examples are dropped anyway, so one priority list serves both setups); a name found
    in neither is a typo and raises.
    """
    sources = np.asarray(
        metadata.column(contract.SOURCE).to_numpy(zero_copy_only=False), dtype=object
    )
    if priority is not None:
        unknown = sorted(set(priority) - set(feeds) - set(sources))
        if unknown:
            raise ValueError(
                f"split.priority names source(s) {unknown} that are neither in feeds "
                f"{sorted(feeds)} nor in the data {sorted(set(sources))}"
            )
        listed = [s for s in priority if s in feeds]
        return listed + sorted(s for s in feeds if s not in listed)
    rates = metadata.column(contract.NEGATIVE_RATE).to_numpy()
    rate_of = {s: float(rates[sources == s].max()) if np.any(sources == s) else 0.0 for s in feeds}
    return sorted(feeds, key=lambda s: (-rate_of[s], s))


def bucket_all(u: np.ndarray, fractions: Mapping[str, float]) -> np.ndarray:
    """``sampling.bucket``, except that fractions summing to 1 leave no unit unsampled.

    Their float cumulative sum can end a hair below 1 (0.7 + 0.1 + 0.1 + 0.1 is
    0.9999999999999999) and ``stable_uniform`` rounds the largest hashes to
    ``1 - 2**-53`` or to 1.0, past the last cut; such units go to the last split
    with a positive fraction instead of being dropped as ``not_sampled``.
    """
    out = sampling.bucket(u, fractions)
    if abs(sum(fractions.values()) - 1.0) <= 1e-9:  # validate_fractions' tolerance
        out[out == ""] = [name for name, f in fractions.items() if f > 0][-1]
    return out


def assign_splits(
    metadata: pa.Table,
    *,
    seed: int,
    feeds: Mapping[str, Mapping[str, float]],
    by: str = "group",
    assign: str = "hash",
    priority: Sequence[str] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Assign examples to splits; return the split manifest (dataset order) and counts.

    ``assign: hash`` cuts the raw hash: stable (a unit's split never changes when units
    are added) and stratified in expectation. ``assign: quota`` cuts the hash rank
    within strata (deciding source, group has a positive), giving exact quotas per
    stratum but letting units near the cuts move when the data grows.
    """
    feeds = _checked_feeds(feeds, by=by, assign=assign)
    order = source_priority(metadata, feeds, priority)

    def col(name: str) -> np.ndarray:
        return np.asarray(metadata.column(name).to_numpy(zero_copy_only=False), dtype=object)

    sources = col(contract.SOURCE)
    labels = metadata.column(contract.LABEL).to_numpy().astype(np.int8)
    unit_keys = col(contract.GROUP if by == "group" else contract.EXAMPLE_ID)
    codes, uniques = pd.factorize(pd.Series(unit_keys, dtype=object), sort=False)
    fed = np.array([s in feeds for s in sources], dtype=bool)
    u = unit_uniforms(uniques, codes, sources, labels, order, seed=seed, by=by, assign=assign)

    split = unit_splits(u, codes, sources, order, feeds)[codes]
    own = np.full(len(codes), "", dtype=object)
    for source in feeds:
        mask = sources == source
        own[mask] = bucket_all(u[codes[mask]], feeds[source])
    reason = drop_reasons(sources, split, fed, feeds)
    assigned = reason == ""
    moved = assigned & (own != split)
    if np.any(~fed):
        log.warning(
            "sources %s are not in split.feeds; their examples are dropped",
            sorted(set(sources[~fed])),
        )

    manifest = split_manifest(metadata, split, np.flatnonzero(assigned))
    stats = split_stats(
        groups=col(contract.GROUP),
        labels=labels,
        sources=sources,
        split=split,
        assigned=assigned,
        reason=reason,
        moved=moved,
    )
    # Groups whose sources disagree: the conflicts the priority rule had to resolve.
    unit_own = pd.DataFrame({"unit": codes[fed], "own": own[fed]}).drop_duplicates()
    stats["conflict_units"] = int((unit_own.groupby("unit").size() > 1).sum())
    stats["params"] = {"by": by, "assign": assign, "priority": order, "seed": seed}
    return manifest, stats


def _checked_feeds(
    feeds: Mapping[str, Mapping[str, float]], *, by: str, assign: str
) -> dict[str, dict[str, float]]:
    """``feeds`` with every fraction checked, after ``by`` and ``assign``; else ValueError."""
    if by not in BY:
        raise ValueError(f"split.by must be one of {list(BY)}, got {by!r}")
    if assign not in ASSIGN:
        raise ValueError(f"split.assign must be one of {list(ASSIGN)}, got {assign!r}")
    if not isinstance(feeds, Mapping) or not feeds:
        raise ValueError(f"split.feeds must map source -> {{split: fraction}}, got {feeds!r}")
    return {s: sampling.validate_fractions(f, name=f"split.feeds.{s}") for s, f in feeds.items()}


def unit_uniforms(
    uniques: np.ndarray,
    codes: np.ndarray,
    sources: np.ndarray,
    labels: np.ndarray,
    order: Sequence[str],
    *,
    seed: int,
    by: str,
    assign: str,
) -> np.ndarray:
    """Each unit's uniform number: its seeded hash, or (quota) its rank within its stratum."""
    u = sampling.stable_uniform(uniques, seed=seed, salt=f"split:{by}")
    if assign != "quota":
        return u
    rank_of = {s: i for i, s in enumerate(order)}
    src_rank = np.array([rank_of.get(s, len(order)) for s in sources], dtype=np.int64)
    decider_rank = np.full(len(uniques), len(order), dtype=np.int64)
    np.minimum.at(decider_rank, codes, src_rank)
    has_positive = np.zeros(len(uniques), dtype=np.int8)
    np.maximum.at(has_positive, codes, labels)
    return sampling.stratified_uniform(u, decider_rank * 2 + has_positive)


def unit_splits(
    u: np.ndarray,
    codes: np.ndarray,
    sources: np.ndarray,
    order: Sequence[str],
    feeds: Mapping[str, Mapping[str, float]],
) -> np.ndarray:
    """Each unit takes the split of the first source, in priority order, that samples it."""
    unit_split = np.full(len(u), "", dtype=object)
    for source in order:
        present = np.zeros(len(u), dtype=bool)
        present[codes[sources == source]] = True
        open_ = present & (unit_split == "")
        unit_split[open_] = bucket_all(u[open_], feeds[source])
    return unit_split


def drop_reasons(
    sources: np.ndarray,
    split: np.ndarray,
    fed: np.ndarray,
    feeds: Mapping[str, Mapping[str, float]],
) -> np.ndarray:
    """Per example, why it is dropped (``DROP_REASONS``), or "" when it is assigned."""
    allowed = np.array(
        [s in feeds and sp in feeds[s] for s, sp in zip(sources, split, strict=True)], dtype=bool
    )
    reason = np.full(len(sources), "", dtype=object)
    reason[~fed] = "unfed_source"
    reason[fed & (split == "")] = "not_sampled"
    reason[fed & (split != "") & ~allowed] = "cross_source_conflict"
    return reason


def split_manifest(metadata: pa.Table, split: np.ndarray, idx: np.ndarray) -> pa.Table:
    """The split manifest of the assigned examples ``idx``, in dataset order."""
    kept = metadata.take(pa.array(idx, type=pa.int64()))
    return pa.table(
        {
            "example_id": kept.column(contract.EXAMPLE_ID),
            "group": kept.column(contract.GROUP),
            "label": kept.column(contract.LABEL),
            "source": kept.column(contract.SOURCE),
            "n_rows": kept.column(contract.N_ROWS),
            "true_label": kept.column(contract.TRUE_LABEL),
            sampling.SPLIT: pa.array(split[idx].tolist(), type=pa.string()),
            sampling.UPSTREAM_RATE: kept.column(contract.NEGATIVE_RATE),
        }
    ).cast(sampling.SPLIT_MANIFEST_SCHEMA)


def split_stats(
    *,
    groups: np.ndarray,
    labels: np.ndarray,
    sources: np.ndarray,
    split: np.ndarray,
    assigned: np.ndarray,
    reason: np.ndarray,
    moved: np.ndarray,
) -> dict[str, Any]:
    """Counts for the metrics file: read = assigned + sum of dropped, per split and source."""
    frame = pd.DataFrame(
        {
            "group": groups,
            "label": labels,
            "source": sources,
            "split": split,
            "assigned": assigned,
            "reason": reason,
            "moved": moved,
        }
    )
    per_split = {}
    for name in sampling.SPLITS:
        part = frame[frame["assigned"] & (frame["split"] == name)]
        positive_groups = part.loc[part["label"] == 1, "group"].nunique()
        per_split[name] = {
            "examples": len(part),
            "positives": int((part["label"] == 1).sum()),
            "negatives": int((part["label"] == 0).sum()),
            "groups": int(part["group"].nunique()),
            "positive_groups": int(positive_groups),
        }
    per_source = {}
    for source, part in frame.groupby("source", sort=True):
        per_source[str(source)] = {
            "read": len(part),
            "assigned": int(part["assigned"].sum()),
            "moved": int(part["moved"].sum()),
            "dropped": {r: int((part["reason"] == r).sum()) for r in DROP_REASONS},
        }
    return {
        "read": len(frame),
        "assigned": int(frame["assigned"].sum()),
        "moved": int(frame["moved"].sum()),
        "dropped": {r: int((frame["reason"] == r).sum()) for r in DROP_REASONS},
        "splits": per_split,
        "sources": per_source,
    }


def _feed_line(source: str, feeds: Mapping[str, Mapping[str, float]]) -> str:
    """A split.feeds line to add for ``source``: the splits nothing feeds yet, or all four."""
    fed = {sp for fractions in feeds.values() for sp in fractions}
    missing = [sp for sp in sampling.SPLITS if sp not in fed] or list(sampling.SPLITS)
    share = round(1 / len(missing), 2)
    return f"{source}: {{{', '.join(f'{sp}: {share}' for sp in missing)}}}"


def check_feeds(sources: Sequence[str], feeds: Mapping[str, Mapping[str, float]]) -> None:
    """Every source of the dataset is fed, and every fed source is in the dataset; else ValueError.

    A source nobody feeds would be dropped whole; a feed naming no source is a typo or a
    source that was never ingested. Both stop the pipeline with the line to fix.
    """
    unfed = sorted(set(sources) - set(feeds))
    if unfed:
        lines = "; ".join(repr(_feed_line(s, feeds)) for s in unfed)
        raise ValueError(
            f"split.feeds does not feed source(s) {unfed} declared in ingest.sources: all their "
            f"examples would be dropped. Add to split.feeds: {lines} (fractions of a source "
            "sum to at most 1)"
        )
    unknown = sorted(set(feeds) - set(sources))
    if unknown:
        raise ValueError(
            f"split.feeds names source(s) {unknown} that the dataset does not hold (it holds "
            f"{sorted(set(sources))}): declare them in ingest.sources or remove their lines "
            "from split.feeds"
        )


def check_splits_filled(stats: Mapping[str, Any], feeds: Mapping[str, Mapping[str, float]]) -> None:
    """Every split holds at least one example; else ValueError naming the split and its feeds."""
    for name in sampling.SPLITS:
        if stats["splits"].get(name, {}).get("examples", 0):
            continue
        feeding = {s: f[name] for s, f in feeds.items() if f.get(name)}
        if not feeding:
            raise ValueError(
                f"split {name!r} gets no example: no source in split.feeds feeds it "
                f"(split.feeds: {dict(feeds)}); every split is needed (train and dev_a to "
                f"train and select, dev_b for the threshold, test for the estimate): give "
                f"{name} a fraction in a source's line of split.feeds"
            )
        raise ValueError(
            f"split {name!r} gets no example although split.feeds gives it {feeding}: the "
            "source has too few groups for that fraction; raise the fraction or add data"
        )
