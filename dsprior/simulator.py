"""A distant-supervision simulator: the project's built-in data.

It models what makes the real problem hard:

- entity groups, several examples each, sharing a group signature in their
  rows and a group-specific relation rate, so a split that ignores groups leaks;
- a true relation prior of about 1:100;
- distant-supervision label noise: KB-labelled positives whose sentences do not
  express the relation, and true relations missing from the KB;
- relation evidence as a short run of consecutive rows (what a filter of height
  5 to 10 finds), and decoy runs in negatives: the same rows in reverse order,
  which look like evidence to a model that has not learnt the order yet;
- sources with their own upstream negative sampling rate (a thinned pool and a
  production-ratio sample), optionally sharing some groups.

Everything here is pure: functions take a config and a seed and return arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from dsprior import settings
from dsprior.settings import check_number

# The raw file formats generate writes (python -m stages.generate).
RAW_FORMATS = ("parquet", "csv", "csv.gz", "jsonl")


@dataclass(frozen=True)
class SimulatorConfig:
    """The generative process; every field is a ``generate`` param."""

    dim: int = 700
    prior: float = 0.01
    min_rows: int = 10
    max_rows: int = 100
    group_size_mean: float = 4.0
    group_positive_concentration: float = 0.5
    group_signal: float = 0.6
    evidence_min_len: int = 5
    evidence_max_len: int = 8
    evidence_strength: float = 1.2
    decoy_rate: float = 0.15
    decoy_strength: float = 1.2
    kb_false_positive: float = 0.1
    kb_missing: float = 0.1

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SimulatorConfig:
        """Build from the ``generate`` params section, ignoring its non-model keys."""
        names = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in params.items() if k in names})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first wrong-typed or out-of-range value."""
        for f in fields(self):  # a number of the field's kind first, so the ranges compare
            check_number(
                getattr(self, f.name), f"generate.{f.name}", integer=f.type in ("int", int)
            )
        checks = [
            ("dim", self.dim >= 1, ">= 1"),
            ("prior", 0 < self.prior < 1, "in (0, 1)"),
            ("min_rows", self.min_rows >= 1, ">= 1"),
            ("max_rows", self.max_rows >= self.min_rows, ">= min_rows"),
            ("group_size_mean", self.group_size_mean >= 1, ">= 1"),
            ("group_positive_concentration", self.group_positive_concentration > 0, "> 0"),
            ("evidence_min_len", self.evidence_min_len >= 1, ">= 1"),
            (
                "evidence_max_len",
                self.evidence_max_len >= self.evidence_min_len,
                ">= evidence_min_len",
            ),
            ("decoy_rate", 0 <= self.decoy_rate <= 1, "in [0, 1]"),
            ("kb_false_positive", 0 <= self.kb_false_positive < 1, "in [0, 1)"),
            ("kb_missing", 0 <= self.kb_missing < 1, "in [0, 1)"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"generate.{name} must be {allowed}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Population:
    """A simulated source's population: its size before thinning and its upstream negative rate.

    (A raw source as ingest declares it is ``dsprior.rawio.SourceSpec``.)
    """

    name: str
    examples: int
    negative_rate: float

    def validate(self) -> None:
        check_number(self.examples, f"generate.sources.{self.name}.examples", integer=True)
        check_number(self.negative_rate, f"generate.sources.{self.name}.negative_rate")
        if self.examples < 0:
            raise ValueError(
                f"generate.sources.{self.name}.examples must be >= 0, got {self.examples}"
            )
        if not 0 < self.negative_rate <= 1:
            raise ValueError(
                f"generate.sources.{self.name}.negative_rate must be in (0, 1], "
                f"got {self.negative_rate}"
            )


@dataclass
class ExampleTable:
    """Metadata of one source's examples (features are drawn later, lazily)."""

    example_id: np.ndarray  # str
    group: np.ndarray  # str
    group_index: np.ndarray  # int, global group number (drives the signature)
    label: np.ndarray  # int8, distant-supervision label
    true_label: np.ndarray  # int8, whether the sentences express the relation
    n_rows: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.example_id)


def relation_patterns(config: SimulatorConfig, *, seed: int) -> np.ndarray:
    """The ordered run of row patterns that expresses the relation: ``(max_len, dim)``."""
    rng = np.random.default_rng([seed, 1])
    return rng.standard_normal((config.evidence_max_len, config.dim)).astype(np.float32)


def group_signature(group_index: int, *, dim: int, seed: int) -> np.ndarray:
    """A group's signature, a function of the group and the seed only."""
    return (
        np.random.default_rng([seed, 2, int(group_index)]).standard_normal(dim).astype(np.float32)
    )


def group_relation_rate(
    group_index: np.ndarray, config: SimulatorConfig, *, seed: int
) -> np.ndarray:
    """Each group's own relation rate, Beta-distributed with mean ``prior``.

    A small concentration makes groups differ a lot, so labels cluster by group
    and a model can learn group identity: the reason a random split leaks.
    """
    c = config.group_positive_concentration
    a, b = config.prior * c, (1 - config.prior) * c
    return np.array(
        [np.random.default_rng([seed, 3, int(g)]).beta(a, b) for g in group_index], dtype=np.float64
    )


def draw_group_sizes(n_examples: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Group sizes ``1 + Poisson(mean - 1)`` that add up to exactly ``n_examples``."""
    sizes: list[int] = []
    total = 0
    while total < n_examples:
        batch = 1 + rng.poisson(mean - 1, size=max(16, int((n_examples - total) / mean) + 16))
        for s in batch:
            s = int(min(s, n_examples - total))
            sizes.append(s)
            total += s
            if total >= n_examples:
                break
    return np.array(sizes, dtype=np.int64)


def draw_source(
    spec: Population,
    config: SimulatorConfig,
    *,
    seed: int,
    source_index: int,
    first_group: int,
    shared_groups: np.ndarray | None = None,
    shared_fraction: float = 0.0,
) -> tuple[ExampleTable, int]:
    """Draw one source's population, label it, thin its negatives upstream.

    ``shared_groups`` are global group numbers of another source; a fraction
    ``shared_fraction`` of this source's groups reuse them (the cross-source overlap a
    split must not leak through). Returns the kept examples and the next free
    group number.
    """
    spec.validate()
    rng = np.random.default_rng([seed, 10, source_index])
    sizes = draw_group_sizes(spec.examples, config.group_size_mean, rng)
    group_index = np.arange(first_group, first_group + len(sizes))
    next_group = first_group + len(sizes)
    if shared_groups is not None and len(shared_groups) and shared_fraction > 0:
        reuse = np.flatnonzero(rng.random(len(sizes)) < shared_fraction)
        reuse = reuse[: len(shared_groups)]
        group_index[reuse] = rng.choice(shared_groups, size=len(reuse), replace=False)
    ex_group = np.repeat(group_index, sizes)
    n = len(ex_group)

    rates = group_relation_rate(group_index, config, seed=seed)
    true_label = (rng.random(n) < np.repeat(rates, sizes)).astype(np.int8)
    label = true_label.copy()
    # True relations missing from the KB: labelled negative.
    label[(true_label == 1) & (rng.random(n) < config.kb_missing)] = 0
    # KB-labelled positives whose sentences do not express the relation, at a rate
    # that makes them kb_false_positive of all KB positives.
    n_tp_labelled = int(((true_label == 1) & (label == 1)).sum())
    true_neg = np.flatnonzero(true_label == 0)
    if len(true_neg) and config.kb_false_positive > 0:
        expected = n_tp_labelled * config.kb_false_positive / (1 - config.kb_false_positive)
        if n_tp_labelled == 0:
            expected = config.prior * n * config.kb_false_positive
        flip = true_neg[rng.random(len(true_neg)) < expected / len(true_neg)]
        label[flip] = 1
    # Upstream thinning of distant-supervision negatives.
    keep = (label == 1) | (rng.random(n) < spec.negative_rate)
    n_rows = rng.integers(config.min_rows, config.max_rows + 1, size=n).astype(np.int32)
    idx = np.flatnonzero(keep)
    ids = np.array([f"{spec.name}-{i:07d}" for i in idx], dtype=object)
    table = ExampleTable(
        example_id=ids,
        group=np.array([f"entity-{g:06d}" for g in ex_group[idx]], dtype=object),
        group_index=ex_group[idx],
        label=label[idx],
        true_label=true_label[idx],
        n_rows=n_rows[idx],
    )
    return table, next_group


def draw_rows(
    table: ExampleTable,
    index: int,
    config: SimulatorConfig,
    *,
    patterns: np.ndarray,
    seed: int,
    source_index: int,
    signatures: dict[int, np.ndarray],
) -> np.ndarray:
    """The sentence rows of one example, a ``(n_rows, dim)`` float32 array.

    Noise plus the group signature; a true relation adds the ordered evidence
    run, and a decoy (only in examples that do not express the relation) adds
    the same rows in reverse order. Each example has its own random stream, so
    its rows do not depend on which other examples were drawn.
    """
    rng = np.random.default_rng([seed, 20, source_index, index])
    n = int(table.n_rows[index])
    g = int(table.group_index[index])
    if g not in signatures:
        signatures[g] = group_signature(g, dim=config.dim, seed=seed)
    rows = rng.standard_normal((n, config.dim), dtype=np.float32)
    rows += config.group_signal * signatures[g]
    length = int(rng.integers(config.evidence_min_len, config.evidence_max_len + 1))
    length = min(length, n)
    start = int(rng.integers(0, n - length + 1))
    if table.true_label[index] == 1:
        rows[start : start + length] += config.evidence_strength * patterns[:length]
    elif rng.random() < config.decoy_rate:
        rows[start : start + length] += config.decoy_strength * patterns[:length][::-1]
    return rows


def iter_examples(
    table: ExampleTable,
    config: SimulatorConfig,
    *,
    seed: int,
    source_index: int,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, rows)`` for the examples ``start:stop`` of a drawn source, in order.

    Each example has its own random stream, so a range gives the same rows as the whole.
    """
    patterns = relation_patterns(config, seed=seed)
    signatures: dict[int, np.ndarray] = {}
    for i in range(start, len(table) if stop is None else stop):
        yield (
            i,
            draw_rows(
                table,
                i,
                config,
                patterns=patterns,
                seed=seed,
                source_index=source_index,
                signatures=signatures,
            ),
        )


def draw_sources(
    config: SimulatorConfig,
    sources: list[Population],
    *,
    seed: int,
    shared_fraction: float,
    until: str | None = None,
) -> dict[str, ExampleTable]:
    """Draw the sources in order; the later ones share groups with the first.

    Each source's table depends on those before it (group numbers, shared groups),
    so drawing one source draws the ones before it too (tables only: cheap).
    ``until`` stops after that source.
    """
    tables: dict[str, ExampleTable] = {}
    next_group = 0
    first_groups: np.ndarray | None = None
    for source_index, spec in enumerate(sources):
        table, next_group = draw_source(
            spec,
            config,
            seed=seed,
            source_index=source_index,
            first_group=next_group,
            shared_groups=first_groups,
            shared_fraction=shared_fraction,
        )
        if first_groups is None:
            first_groups = np.unique(table.group_index)
        tables[spec.name] = table
        if spec.name == until:
            break
    return tables


def part_bounds(n_examples: int, parts: int) -> np.ndarray:
    """Where each of ``parts`` files (or parts) of a source starts and ends."""
    return np.linspace(0, n_examples, max(1, parts) + 1).astype(int)


def sources_from_params(params: dict[str, Any]) -> list[Population]:
    """The simulator's sources (``generate.sources``), in order."""
    return [
        Population(name, int(p["examples"]), float(p["negative_rate"]))
        for name, p in params["sources"].items()
    ]


_FRACTION = {"minimum": 0, "maximum": 1}
_BELOW_ONE = {"minimum": 0, "maximum": 1, "max_open": True}
PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "seed": settings.Integer(minimum=0),
    # SimulatorConfig's fields; SimulatorConfig.validate adds the checks across fields
    "dim": settings.Integer(minimum=1),
    "prior": settings.Number(minimum=0, maximum=1, min_open=True, max_open=True),
    "min_rows": settings.Integer(minimum=1),
    "max_rows": settings.Integer(minimum=1),
    "group_size_mean": settings.Number(minimum=1),
    "group_positive_concentration": settings.Number(minimum=0, min_open=True),
    "group_signal": settings.Number(),
    "evidence_min_len": settings.Integer(minimum=1),
    "evidence_max_len": settings.Integer(minimum=1),
    "evidence_strength": settings.Number(),
    "decoy_rate": settings.Number(**_FRACTION),
    "decoy_strength": settings.Number(),
    "kb_false_positive": settings.Number(**_BELOW_ONE),
    "kb_missing": settings.Number(**_BELOW_ONE),
    # the raw files
    "shared_groups": settings.Number(**_FRACTION),
    "format": settings.Choice(*RAW_FORMATS),
    "files_per_source": settings.Integer(minimum=1),
    "sources": settings.MapOf(
        settings.Section(
            {
                "examples": settings.Integer(minimum=0),
                "negative_rate": settings.Number(minimum=0, maximum=1, min_open=True),
            }
        )
    ),
}


def check_params(params: dict[str, Any]) -> SimulatorConfig:
    """The simulator config of a ``generate`` section with every key checked; else ValueError."""
    settings.check_section(params, PARAMS_SCHEMA, "generate")
    return SimulatorConfig.from_params(params)
