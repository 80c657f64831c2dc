"""Split stage: no group in two splits, sizes add up, conflicts resolved and counted, stable."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dsprior import contract, sampling, splitting
from stages import split
from tests.conftest import ROOT

SPLIT_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())["split"]

REFERENCE_FEEDS = {"pool": {"train": 0.8, "dev_a": 0.2}, "production": {"dev_b": 0.5, "test": 0.5}}
SINGLE_FEEDS = {"production": {"train": 0.6, "dev_a": 0.1, "dev_b": 0.15, "test": 0.15}}


def make_examples(
    *, n_groups: dict[str, int], shared: int = 0, seed: int = 0, start: int = 0
) -> list[dict]:
    """Examples of groups per source (1-4 each, ~1 in 5 groups has positives).

    ``shared`` groups occur in every source; ``start`` offsets group numbers so a second
    call adds new groups.
    """
    rng = np.random.default_rng(seed)
    rates = {"pool": 0.25, "production": 1.0}
    plan = [(s, f"{s}-g{start + i:04d}") for s, n in n_groups.items() for i in range(n)]
    plan += [(s, f"shared-g{start + i:04d}") for i in range(shared) for s in n_groups]
    examples = []
    for source, group in plan:
        positive_group = rng.random() < 0.2
        for k in range(int(rng.integers(1, 5))):
            examples.append(
                dict(
                    example_id=f"{group}-{source}-{k}",
                    group=group,
                    label=int(positive_group and rng.random() < 0.7),
                    source=source,
                    negative_rate=rates.get(source, 1.0),
                    rows=rng.normal(size=(int(rng.integers(1, 4)), 4)),
                )
            )
    return examples


def write_dataset(path, examples: list[dict], *, dim: int = 4, row_group_size: int = 64):
    with contract.DatasetWriter(path, dim=dim, row_group_size=row_group_size) as writer:
        for ex in examples:
            writer.add(**ex)
    return path


@pytest.fixture
def reference(tmp_path):
    examples = make_examples(n_groups={"pool": 60, "production": 60}, shared=6, seed=1)
    return contract.read_metadata(write_dataset(tmp_path / "ds", examples))


def split_of(manifest) -> dict[str, str]:
    return dict(
        zip(
            manifest.column("example_id").to_pylist(),
            manifest.column("split").to_pylist(),
            strict=True,
        )
    )


def groups_per_split(manifest) -> dict[str, set]:
    groups = np.array(manifest.column("group").to_pylist(), dtype=object)
    splits = np.array(manifest.column("split").to_pylist(), dtype=object)
    return {s: set(groups[splits == s]) for s in sampling.SPLITS}


def assert_no_group_in_two_splits(manifest):
    members = groups_per_split(manifest)
    for a in sampling.SPLITS:
        for b in sampling.SPLITS:
            if a < b:
                assert not members[a] & members[b], (a, b)


def assert_sizes_add_up(metadata, manifest, stats):
    assert stats["read"] == metadata.num_rows
    assert stats["read"] == stats["assigned"] + sum(stats["dropped"].values())
    assert manifest.num_rows == stats["assigned"]
    assert sum(v["examples"] for v in stats["splits"].values()) == stats["assigned"]
    for v in stats["splits"].values():
        assert v["positives"] + v["negatives"] == v["examples"]
    for v in stats["sources"].values():
        assert v["read"] == v["assigned"] + sum(v["dropped"].values())
    # dataset order: the manifest's ids are a subsequence of the dataset's
    position = {e: i for i, e in enumerate(metadata.column("example_id").to_pylist())}
    order = [position[e] for e in manifest.column("example_id").to_pylist()]
    assert order == sorted(order)


def test_reference_setup_is_leak_free_and_adds_up(reference):
    manifest, stats = splitting.assign_splits(reference, seed=7, feeds=REFERENCE_FEEDS)
    assert manifest.schema.equals(sampling.SPLIT_MANIFEST_SCHEMA)
    assert_no_group_in_two_splits(manifest)
    assert_sizes_add_up(reference, manifest, stats)
    sources = np.array(manifest.column("source").to_pylist(), dtype=object)
    splits = np.array(manifest.column("split").to_pylist(), dtype=object)
    assert set(splits[sources == "pool"]) == {"train", "dev_a"}
    assert set(splits[sources == "production"]) == {"dev_b", "test"}
    rate = manifest.column("upstream_rate").to_numpy()
    assert np.all(rate[sources == "pool"] == 0.25) and np.all(rate[sources == "production"] == 1.0)


def test_cross_source_groups_follow_priority_and_are_counted(reference):
    groups = np.array(reference.column("group").to_pylist(), dtype=object)
    sources = np.array(reference.column("source").to_pylist(), dtype=object)
    shared = np.char.startswith(groups.astype(str), "shared-")
    for winner, loser in (("production", "pool"), ("pool", "production")):
        manifest, stats = splitting.assign_splits(
            reference, seed=7, feeds=REFERENCE_FEEDS, priority=[winner, loser]
        )
        assert_no_group_in_two_splits(manifest)
        assert stats["dropped"]["cross_source_conflict"] == int(np.sum(shared & (sources == loser)))
        assert stats["sources"][loser]["dropped"]["cross_source_conflict"] > 0
        assert stats["conflict_units"] == len(set(groups[shared]))
        kept = set(manifest.column("example_id").to_pylist())
        ids = np.array(reference.column("example_id").to_pylist(), dtype=object)
        assert set(ids[shared & (sources == winner)]) <= kept
        assert not set(ids[shared & (sources == loser)]) & kept


def test_default_priority_protects_the_production_sample(reference):
    manifest, stats = splitting.assign_splits(
        reference, seed=7, feeds=REFERENCE_FEEDS, priority=None
    )
    assert stats["params"]["priority"] == ["production", "pool"]
    assert stats["sources"]["production"]["dropped"]["cross_source_conflict"] == 0


def test_shared_groups_move_when_the_winning_source_feeds_their_split(reference):
    feeds = {
        "production": {"train": 0.4, "dev_a": 0.2, "dev_b": 0.2, "test": 0.2},
        "pool": {"dev_a": 0.5, "train": 0.5},  # cut in the other order: half the shared groups move
    }
    manifest, stats = splitting.assign_splits(
        reference, seed=3, feeds=feeds, priority=["production"]
    )
    assert_no_group_in_two_splits(manifest)
    assert_sizes_add_up(reference, manifest, stats)
    assert stats["moved"] == stats["sources"]["pool"]["moved"] > 0
    assert stats["sources"]["production"]["moved"] == 0
    # every moved or dropped pool example belongs to a shared group
    pool_shared = sum(
        1
        for g, s in zip(
            reference.column("group").to_pylist(),
            reference.column("source").to_pylist(),
            strict=True,
        )
        if s == "pool" and g.startswith("shared-")
    )
    pool = stats["sources"]["pool"]
    assert pool["moved"] + pool["dropped"]["cross_source_conflict"] <= pool_shared


def test_single_production_pool_feeds_all_four_splits(tmp_path):
    examples = make_examples(n_groups={"production": 200}, seed=2)
    metadata = contract.read_metadata(write_dataset(tmp_path / "ds", examples))
    manifest, stats = splitting.assign_splits(metadata, seed=11, feeds=SINGLE_FEEDS)
    assert_no_group_in_two_splits(manifest)
    assert_sizes_add_up(metadata, manifest, stats)
    assert stats["assigned"] == metadata.num_rows
    groups = {s: v["groups"] for s, v in stats["splits"].items()}
    total = sum(groups.values())
    for s, fraction in SINGLE_FEEDS["production"].items():
        # binomial sampling error of a hash cut over 200 groups, 4 sd
        assert abs(groups[s] / total - fraction) < 4 * np.sqrt(fraction * (1 - fraction) / total)


def test_reference_priority_list_also_serves_the_single_pool_setup(reference):
    manifest, stats = splitting.assign_splits(
        reference, seed=7, feeds=SINGLE_FEEDS, priority=["production", "pool"]
    )
    assert_no_group_in_two_splits(manifest)
    assert_sizes_add_up(reference, manifest, stats)
    n_pool = sum(s == "pool" for s in reference.column("source").to_pylist())
    assert stats["dropped"]["unfed_source"] == n_pool
    assert set(manifest.column("source").to_pylist()) == {"production"}


def test_dropped_examples_are_counted_by_reason(tmp_path):
    examples = make_examples(n_groups={"production": 100, "other": 10}, seed=4)
    metadata = contract.read_metadata(write_dataset(tmp_path / "ds", examples))
    manifest, stats = splitting.assign_splits(
        metadata, seed=5, feeds={"production": {"train": 0.3, "test": 0.3}}
    )
    assert_sizes_add_up(metadata, manifest, stats)
    n_other = sum(ex["source"] == "other" for ex in examples)
    assert stats["dropped"]["unfed_source"] == n_other
    assert 0 < stats["dropped"]["not_sampled"] < metadata.num_rows - n_other
    assert set(manifest.column("split").to_pylist()) == {"train", "test"}


def test_same_seed_gives_byte_identical_manifest(tmp_path):
    dataset = write_dataset(
        tmp_path / "ds", make_examples(n_groups={"pool": 30, "production": 30}, shared=3)
    )
    params = tmp_path / "params.yaml"
    outputs = []
    for run, seed in enumerate((1, 1, 2)):
        split_params = {**SPLIT_PARAMS, "seed": seed, "feeds": REFERENCE_FEEDS}
        params.write_text(yaml.safe_dump({"split": split_params}))
        out = tmp_path / f"run{run}" / "manifest.parquet"
        metrics = tmp_path / f"run{run}" / "split.json"
        split.main(
            [
                "--params",
                str(params),
                "--dataset",
                str(dataset),
                "--out",
                str(out),
                "--metrics",
                str(metrics),
            ]
        )
        outputs.append(out.read_bytes())
        assert json.loads(metrics.read_text())["read"] == pq.read_metadata(out).num_rows + sum(
            json.loads(metrics.read_text())["dropped"].values()
        )
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_existing_assignments_stay_put_when_data_grows(tmp_path):
    old = make_examples(n_groups={"pool": 40, "production": 40}, shared=4, seed=1)
    new = make_examples(n_groups={"pool": 40, "production": 40}, shared=4, seed=9, start=1000)
    before = splitting.assign_splits(
        contract.read_metadata(write_dataset(tmp_path / "a", old)), seed=7, feeds=REFERENCE_FEEDS
    )[0]
    grown = contract.read_metadata(write_dataset(tmp_path / "b", new[:50] + old + new[50:]))
    after = splitting.assign_splits(grown, seed=7, feeds=REFERENCE_FEEDS)[0]
    assert after.num_rows > before.num_rows
    b, a = split_of(before), split_of(after)
    assert {e: a[e] for e in b} == b


def test_quota_assignment_balances_positive_groups(tmp_path):
    examples = make_examples(n_groups={"production": 150}, seed=6)
    metadata = contract.read_metadata(write_dataset(tmp_path / "ds", examples))
    feeds = {"production": {"train": 0.5, "dev_b": 0.25, "test": 0.25}}
    manifest, stats = splitting.assign_splits(metadata, seed=1, feeds=feeds, assign="quota")
    assert_no_group_in_two_splits(manifest)
    pos = {s: stats["splits"][s]["positive_groups"] for s in feeds["production"]}
    total_pos = sum(pos.values())
    assert total_pos > 10
    for s, fraction in feeds["production"].items():
        assert abs(pos[s] - fraction * total_pos) <= 1, (s, pos)


def test_split_by_example_leaks_groups(reference):
    manifest, _ = splitting.assign_splits(reference, seed=7, feeds=REFERENCE_FEEDS, by="example")
    members = groups_per_split(manifest)
    assert members["train"] & members["dev_a"] or members["dev_b"] & members["test"]
    assert manifest.num_rows == reference.num_rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "entity"}, "split.by must be one of"),
        ({"assign": "random"}, "split.assign must be one of"),
        ({"feeds": {"pool": {"training": 1.0}}}, "unknown split(s) ['training']"),
        ({"feeds": {"pool": {"train": 0.8, "dev_a": 0.3}}}, "sum to at most 1"),
        ({"feeds": {"pool": {"train": -0.1}}}, "must be in [0, 1]"),
        ({"feeds": {}}, "split.feeds must map"),
        ({"priority": ["kb"]}, "neither in feeds"),
    ],
)
def test_bad_params_name_the_value(reference, kwargs, message):
    kwargs = {"feeds": REFERENCE_FEEDS, **kwargs}
    with pytest.raises(ValueError, match=None) as err:
        splitting.assign_splits(reference, seed=1, **kwargs)
    assert message in str(err.value)


def test_stable_uniform_depends_only_on_key_seed_and_salt():
    keys = [f"k{i}" for i in range(2000)]
    u = sampling.stable_uniform(keys, seed=3, salt="split")
    assert np.all((u >= 0) & (u < 1))
    reversed_u = sampling.stable_uniform(keys[::-1], seed=3, salt="split")[::-1]
    np.testing.assert_array_equal(u, reversed_u)
    np.testing.assert_array_equal(u[:10], sampling.stable_uniform(keys[:10], seed=3, salt="split"))
    assert not np.array_equal(u, sampling.stable_uniform(keys, seed=4, salt="split"))
    assert not np.array_equal(u, sampling.stable_uniform(keys, seed=3, salt="downsample"))
    from scipy import stats as sps

    assert sps.kstest(u, "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="seed must be an integer"):
        sampling.stable_uniform(keys, seed=-1, salt="x")


def test_bucket_cuts_by_cumulative_fractions():
    u = np.array([0.0, 0.29, 0.3, 0.59, 0.6, 0.99])
    got = sampling.bucket(u, {"train": 0.3, "dev_a": 0.3})
    assert got.tolist() == ["train", "train", "dev_a", "dev_a", "", ""]


# Fractions whose float sum is exactly 1, and ones whose sum only rounds to 1
# (0.7 + 0.1 + 0.1 + 0.1 == 0.9999999999999999, one ulp short).
FULL_FRACTIONS = [
    {"train": 0.6, "dev_a": 0.1, "dev_b": 0.15, "test": 0.15},
    {"train": 0.7, "dev_a": 0.1, "dev_b": 0.1, "test": 0.1},
    {"train": 0.1, "dev_a": 0.2, "dev_b": 0.3, "test": 0.4},
]


@pytest.mark.parametrize("assign", splitting.ASSIGN)
@pytest.mark.parametrize("fractions", FULL_FRACTIONS, ids=lambda f: "/".join(map(str, f.values())))
def test_fractions_summing_to_one_drop_nothing(tmp_path, monkeypatch, fractions, assign):
    """Every example of a source whose fractions sum to 1 is assigned: not one is not_sampled.

    Random hashes almost never land in the last ulp below 1, so the extreme values the
    hash can take are planted: ``stable_uniform`` is ``int / 2**64`` in float64, and the
    largest 64-bit ints round to ``1 - 2**-53`` and to 1.0 itself.
    """
    extremes = np.asarray([0, 2**64 - 2**11, 2**64 - 1], dtype=np.float64) / 2.0**64
    assert extremes.tolist() == [0.0, np.nextafter(1.0, 0.0), 1.0]
    real_uniform = sampling.stable_uniform

    def with_extremes(keys, *, seed, salt):
        u = real_uniform(keys, seed=seed, salt=salt)
        u[: len(extremes)] = extremes
        return u

    monkeypatch.setattr(sampling, "stable_uniform", with_extremes)
    examples = make_examples(n_groups={"production": 120}, seed=8)
    metadata = contract.read_metadata(write_dataset(tmp_path / "ds", examples))
    manifest, stats = splitting.assign_splits(
        metadata, seed=2, feeds={"production": fractions}, assign=assign
    )
    assert_sizes_add_up(metadata, manifest, stats)
    assert stats["dropped"] == {reason: 0 for reason in splitting.DROP_REASONS}
    assert stats["assigned"] == manifest.num_rows == metadata.num_rows
    assert set(manifest.column("example_id").to_pylist()) == set(
        metadata.column("example_id").to_pylist()
    )
    assert sum(v["groups"] for v in stats["splits"].values()) == 120
    # the planted units (the first three groups) are among the assigned, in a fed split
    first = {f"production-g{i:04d}" for i in range(len(extremes))}
    placed = groups_per_split(manifest)
    assert first <= set().union(*(placed[s] for s in fractions))


# ----------------------------------------------------------------------------- loud feeds
def _run_split(tmp_path, examples, feeds):
    dataset = write_dataset(tmp_path / "ds", examples)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"split": {**SPLIT_PARAMS, "feeds": feeds}}))
    out = tmp_path / "manifest.parquet"
    args = ["--params", str(params), "--dataset", str(dataset), "--out", str(out)]
    with pytest.raises(ValueError) as info:
        split.main([*args, "--metrics", str(tmp_path / "split.json")])
    assert not out.exists() and not (tmp_path / "split.json").exists()  # nothing half-written
    return str(info.value)


def test_a_source_without_a_feed_stops_with_the_line_to_add(tmp_path):
    examples = make_examples(n_groups={"pool": 20, "production": 20, "grouped": 10})
    message = _run_split(tmp_path, examples, REFERENCE_FEEDS)
    assert message.startswith(
        "split.feeds does not feed source(s) ['grouped'] declared in ingest.sources: all their "
        "examples would be dropped. Add to split.feeds: 'grouped: {train: 0.25, dev_a: 0.25, "
        "dev_b: 0.25, test: 0.25}'"
    )


def test_a_feed_naming_an_unknown_source_stops(tmp_path):
    examples = make_examples(n_groups={"pool": 20, "production": 20})
    feeds = {**REFERENCE_FEEDS, "prodution": {"test": 0.1}}
    message = _run_split(tmp_path, examples, feeds)
    assert message.startswith(
        "split.feeds names source(s) ['prodution'] that the dataset does not hold (it holds "
        "['pool', 'production'])"
    )


def test_a_split_left_empty_stops_naming_it(tmp_path):
    examples = make_examples(n_groups={"pool": 20, "production": 20})
    feeds = {"pool": {"train": 0.8, "dev_a": 0.2}, "production": {"test": 1.0}}
    message = _run_split(tmp_path, examples, feeds)
    assert message.startswith("split 'dev_b' gets no example: no source in split.feeds feeds it")
    # Fed, but too little data for the fraction: said so.
    examples = make_examples(n_groups={"pool": 20, "production": 3})
    feeds = {"pool": {"train": 0.8, "dev_a": 0.2}, "production": {"dev_b": 0.001, "test": 0.99}}
    message = _run_split(tmp_path / "small", examples, feeds)
    assert message.startswith(
        "split 'dev_b' gets no example although split.feeds gives it {'production': 0.001}"
    )


def test_quota_assignment_meets_each_sources_quotas(tmp_path):
    """Two sources feeding different splits: each source's quota holds per stratum.

    The strata are (deciding source, group has a positive); were the source left out of
    the key, the pool's and production's groups would be ranked together and each source
    would meet its fractions only in expectation.
    """
    examples = make_examples(n_groups={"pool": 90, "production": 50}, seed=10)
    metadata = contract.read_metadata(write_dataset(tmp_path / "ds", examples))
    manifest, stats = splitting.assign_splits(
        metadata, seed=1, feeds=REFERENCE_FEEDS, assign="quota"
    )
    assert stats["assigned"] == metadata.num_rows  # fractions sum to 1, no group shared
    source_of, positive = {}, {}
    for ex in examples:
        source_of[ex["group"]] = ex["source"]
        positive[ex["group"]] = positive.get(ex["group"], False) or ex["label"] == 1
    split_of_group = dict(
        zip(manifest.column("group").to_pylist(), manifest.column("split").to_pylist(), strict=True)
    )
    for source, fractions in REFERENCE_FEEDS.items():
        for has_positive in (False, True):
            stratum = [
                g for g in source_of if (source_of[g], positive[g]) == (source, has_positive)
            ]
            assert len(stratum) >= 5, (source, has_positive)
            for name, fraction in fractions.items():
                got = sum(split_of_group[g] == name for g in stratum)
                assert abs(got - fraction * len(stratum)) <= 1, (source, has_positive, name, got)


# ----------------------------------------------------------------------------- exact values
def metadata_table(rows: list[tuple]) -> pa.Table:
    """Metadata as ``contract.read_metadata`` gives it, from (id, group, label, source, rate)."""
    ids, groups, labels, sources, rates = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            contract.EXAMPLE_ID: ids,
            contract.GROUP: groups,
            contract.LABEL: pa.array(labels, pa.int8()),
            contract.SOURCE: sources,
            contract.NEGATIVE_RATE: rates,
            contract.TRUE_LABEL: pa.array([None] * len(ids), pa.int8()),
            contract.N_ROWS: pa.array([2] * len(ids), pa.int32()),
        }
    )


TWENTY = metadata_table(
    [(f"e{i}", f"g{i // 2}", int(i % 7 == 0), "production", 1.0) for i in range(20)]
)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "tr tr te te tr tr tr tr da da tr tr da da tr tr db db da da"),
        ({"by": "example"}, "db tr tr tr tr te tr tr te te da tr tr db tr tr db tr te te"),
        ({"assign": "quota"}, "tr tr te te tr tr tr tr tr tr tr tr da da db db db db tr tr"),
    ],
)
def test_assignments_for_a_seed_are_pinned(kwargs, expected):
    """A seed's split of a dataset never changes across versions (hash salt, key, cut order)."""
    short = {"tr": "train", "da": "dev_a", "db": "dev_b", "te": "test"}
    manifest, _ = splitting.assign_splits(TWENTY, seed=7, feeds=SINGLE_FEEDS, **kwargs)
    assert manifest.column("split").to_pylist() == [short[s] for s in expected.split()]


# Fractions of 1 and 0 make every outcome certain whatever the hash: prod (rate 1) sends all
# to test; the pool (0.25) cuts all to train but also feeds test, so its share of the group
# shared with prod moves there; kb (0.5) feeds only dev_a, so its share of gk is a conflict;
# aux samples nothing and nobody feeds other.
EVERY_FATE = metadata_table(
    [
        ("p1", "g1", 1, "prod", 1.0),
        ("q1", "g3", 1, "pool", 0.25),
        ("p2", "g1", 0, "prod", 1.0),
        ("k1", "gk", 1, "kb", 0.5),
        ("p3", "g2", 0, "prod", 1.0),
        ("a1", "g6", 1, "aux", 0.1),
        ("q2", "g3", 0, "pool", 0.25),
        ("p4", "gs", 1, "prod", 1.0),
        ("o1", "g7", 0, "other", 1.0),
        ("q3", "g4", 0, "pool", 0.25),
        ("q4", "gs", 0, "pool", 0.25),
        ("k2", "g5", 0, "kb", 0.5),
        ("p5", "gk", 0, "prod", 1.0),
    ]
)
EVERY_FATE_FEEDS = {
    "prod": {"test": 1.0},
    "pool": {"train": 1.0, "test": 0.0},
    "kb": {"dev_a": 1.0},
    "aux": {"dev_b": 0.0},
}


def split_counts(examples, positives, groups, positive_groups):
    return {
        "examples": examples,
        "positives": positives,
        "negatives": examples - positives,
        "groups": groups,
        "positive_groups": positive_groups,
    }


def source_counts(read, assigned, moved=0, **dropped):
    reasons = {r: dropped.get(r, 0) for r in splitting.DROP_REASONS}
    return {"read": read, "assigned": assigned, "moved": moved, "dropped": reasons}


@pytest.mark.parametrize("assign", splitting.ASSIGN)
def test_every_fate_is_counted_exactly(assign, caplog):
    """Assigned, moved and each drop reason land where the rules say, and the stats count them."""
    with caplog.at_level("WARNING", logger="dsprior.splitting"):
        manifest, stats = splitting.assign_splits(
            EVERY_FATE, seed=3, feeds=EVERY_FATE_FEEDS, assign=assign
        )
    assert split_of(manifest) == {
        "p1": "test", "q1": "train", "p2": "test", "p3": "test", "q2": "train",
        "p4": "test", "q3": "train", "q4": "test", "k2": "dev_a", "p5": "test",
    }  # fmt: skip
    assert manifest.column("upstream_rate").to_pylist() == [1, 0.25, 1, 1, 0.25, 1, 0.25] + [
        0.25,
        0.5,
        1,
    ]
    assert stats == {
        "read": 13,
        "assigned": 10,
        "moved": 1,
        "dropped": {"not_sampled": 1, "unfed_source": 1, "cross_source_conflict": 1},
        "splits": {
            "train": split_counts(3, 1, 2, 1),
            "dev_a": split_counts(1, 0, 1, 0),
            "dev_b": split_counts(0, 0, 0, 0),
            "test": split_counts(6, 2, 4, 2),
        },
        "sources": {
            "aux": source_counts(1, 0, not_sampled=1),
            "kb": source_counts(2, 1, cross_source_conflict=1),
            "other": source_counts(1, 0, unfed_source=1),
            "pool": source_counts(4, 4, moved=1),
            "prod": source_counts(5, 5),
        },
        "conflict_units": 2,
        "params": {
            "by": "group",
            "assign": assign,
            "priority": ["prod", "kb", "pool", "aux"],
            "seed": 3,
        },
    }
    assert list(stats["sources"]) == ["aux", "kb", "other", "pool", "prod"]  # sorted in the JSON
    assert [r.getMessage() for r in caplog.records] == [
        "sources ['other'] are not in split.feeds; their examples are dropped"
    ]


def test_no_conflict_units_without_shared_groups(caplog):
    """Groups that only one source holds are never counted as conflicts; all fed, no warning."""
    with caplog.at_level("WARNING", logger="dsprior.splitting"):
        _, stats = splitting.assign_splits(TWENTY, seed=7, feeds=SINGLE_FEEDS)
    assert not caplog.records
    assert stats["conflict_units"] == 0
    assert stats["moved"] == 0


def test_bucket_all_sends_the_top_hashes_to_the_last_split_with_a_share():
    """With fractions summing to 1, u at or a hair below 1 goes to the last positive fraction."""
    top = np.array([np.nextafter(1.0, 0.0), 1.0])
    fractions = {"train": 0.7, "dev_a": 0.1, "dev_b": 0.1, "test": 0.1}  # float sum < 1
    assert splitting.bucket_all(top, fractions).tolist() == ["test", "test"]
    got = splitting.bucket_all(top, {"train": 0.3, "dev_a": 0.7, "test": 0.0})
    assert got.tolist() == ["dev_a", "dev_a"]
    # fractions short of 1 leave the rest unsampled
    assert splitting.bucket_all(top, {"train": 0.5, "dev_a": 0.4}).tolist() == ["", ""]


def test_source_priority_explicit_then_by_rate():
    """Listed sources first in their order, the other fed ones by name; else by upstream rate.

    A fed source absent from the data ranks last (rate 0); ties in rate go by name.
    """
    meta = metadata_table(
        [("a", "g", 0, "low", 0.2), ("b", "g", 0, "high", 0.9), ("c", "g", 0, "tie", 0.9)]
    )
    feeds = {s: {"train": 1.0} for s in ("low", "tie", "high", "absent", "zz")}
    got = splitting.source_priority(meta, feeds, None)
    assert got == ["high", "tie", "low", "absent", "zz"]
    got = splitting.source_priority(meta, feeds, ["tie"])
    assert got == ["tie", "absent", "high", "low", "zz"]
    with pytest.raises(ValueError) as err:
        splitting.source_priority(meta, feeds, ["kb", "high", "aa"])
    assert str(err.value) == (
        "split.priority names source(s) ['aa', 'kb'] that are neither in feeds "
        "['absent', 'high', 'low', 'tie', 'zz'] nor in the data ['high', 'low', 'tie']"
    )


def test_priority_may_name_an_unfed_source_of_the_data():
    """A priority entry that is only in the data is accepted and left out of the order."""
    meta = metadata_table([("a", "g", 0, "kb", 0.2), ("b", "h", 0, "prod", 1.0)])
    got = splitting.source_priority(meta, {"prod": {"test": 1.0}}, ["kb", "prod"])
    assert got == ["prod"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "entity"}, "split.by must be one of ['group', 'example'], got 'entity'"),
        ({"assign": "random"}, "split.assign must be one of ['hash', 'quota'], got 'random'"),
        ({"feeds": []}, "split.feeds must map source -> {split: fraction}, got []"),
        (
            {"feeds": {"pool": {"train": 2}}},
            "split.feeds.pool.train must be in [0, 1], got 2",
        ),
    ],
)
def test_bad_params_messages_are_exact(kwargs, message):
    kwargs = {"feeds": REFERENCE_FEEDS, **kwargs}
    with pytest.raises(ValueError) as err:
        splitting.assign_splits(TWENTY, seed=1, **kwargs)
    assert str(err.value) == message


def test_check_params_names_the_source_of_a_bad_sum():
    params = {**SPLIT_PARAMS, "feeds": {"pool": {"train": 0.8, "dev_a": 0.3}}}
    with pytest.raises(ValueError) as err:
        splitting.check_params(params)
    assert str(err.value).startswith("split.feeds.pool: fractions must sum to at most 1")


def test_check_feeds_messages_give_the_lines_to_fix():
    """An unfed source gets a line for the splits nobody feeds yet; an unknown feed is named."""
    feeds = {"pool": {"train": 0.8, "dev_a": 0.2}}
    with pytest.raises(ValueError) as err:
        splitting.check_feeds(["pool", "prod", "kb"], feeds)
    assert str(err.value) == (
        "split.feeds does not feed source(s) ['kb', 'prod'] declared in ingest.sources: all "
        "their examples would be dropped. Add to split.feeds: 'kb: {dev_b: 0.5, test: 0.5}'; "
        "'prod: {dev_b: 0.5, test: 0.5}' (fractions of a source sum to at most 1)"
    )
    feeds = {"pool": {"train": 0.8}}
    with pytest.raises(ValueError, match=r"'kb: \{dev_a: 0.33, dev_b: 0.33, test: 0.33\}'"):
        splitting.check_feeds(["pool", "kb"], feeds)
    with pytest.raises(ValueError) as err:
        splitting.check_feeds(["pool"], {**feeds, "prodution": {"test": 1.0}, "kb": {}})
    assert str(err.value) == (
        "split.feeds names source(s) ['kb', 'prodution'] that the dataset does not hold (it "
        "holds ['pool']): declare them in ingest.sources or remove their lines from split.feeds"
    )
    splitting.check_feeds(["pool", "pool"], feeds)  # every source fed, every feed known


def test_check_splits_filled_treats_a_missing_count_as_empty():
    """A split absent from the stats, or without an example count, is an empty split."""
    feeds = {"pool": {"train": 1.0}, "prod": {"dev_a": 0.5, "dev_b": 0.5, "test": 0.0}}
    full = {name: {"examples": 1} for name in sampling.SPLITS}
    splitting.check_splits_filled({"splits": full}, feeds)
    too_few = (
        "split 'dev_b' gets no example although split.feeds gives it {'prod': 0.5}: the "
        "source has too few groups for that fraction; raise the fraction or add data"
    )
    for dev_b in ({}, {"examples": 0}, None):
        splits = {**full, "dev_b": dev_b} if dev_b is not None else {**full}
        splits.pop("dev_b") if dev_b is None else None
        with pytest.raises(ValueError) as err:
            splitting.check_splits_filled({"splits": splits}, feeds)
        assert str(err.value) == too_few
    with pytest.raises(ValueError) as err:  # fed with a zero fraction is not fed
        splitting.check_splits_filled({"splits": {**full, "test": {"examples": 0}}}, feeds)
    assert str(err.value) == (
        f"split 'test' gets no example: no source in split.feeds feeds it (split.feeds: {feeds}); "
        "every split is needed (train and dev_a to train and select, dev_b for the threshold, "
        "test for the estimate): give test a fraction in a source's line of split.feeds"
    )


def test_quota_strata_of_three_sources_stay_apart():
    """With three sources the (source, has a positive) strata are still distinct: exact quotas.

    Strata keyed so that one source's positive groups and another's negative ones share a
    key would be ranked together and meet their quotas only in expectation.
    """
    rates = {"a": 1.0, "b": 0.5, "c": 0.25}
    meta = metadata_table(
        [
            (f"{s}{i}", f"{s}-g{i}", int(i % 2 == 0), s, r)
            for s, r in rates.items()
            for i in range(24)
        ]
    )
    feeds = {s: {"train": 0.5, "test": 0.5} for s in rates}
    for seed in range(4):
        manifest, stats = splitting.assign_splits(meta, seed=seed, feeds=feeds, assign="quota")
        assert stats["params"]["priority"] == ["a", "b", "c"]
        split_of_group = dict(
            zip(
                manifest.column("group").to_pylist(),
                manifest.column("split").to_pylist(),
                strict=True,
            )
        )
        for s in rates:
            for parity in (0, 1):  # even groups hold a positive
                stratum = [f"{s}-g{i}" for i in range(parity, 24, 2)]
                got = sum(split_of_group[g] == "train" for g in stratum)
                assert got == 6, (seed, s, parity, got)


def test_an_empty_dataset_gives_an_empty_manifest():
    """No examples: an empty manifest of the right schema and all counts zero, no error."""
    manifest, stats = splitting.assign_splits(TWENTY.slice(0, 0), seed=7, feeds=SINGLE_FEEDS)
    assert manifest.num_rows == 0 and manifest.schema.equals(sampling.SPLIT_MANIFEST_SCHEMA)
    assert stats["read"] == stats["assigned"] == stats["conflict_units"] == 0
    assert stats["sources"] == {}
