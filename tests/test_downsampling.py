"""Downsample stage: positives kept, target ratio reached, weights restore production negatives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import yaml

from dsprior import downsampling, sampling
from stages import downsample
from tests.conftest import ROOT

DOWNSAMPLE_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())["downsample"]


def split_manifest(
    *, n: int, prior: float, upstream: dict[str, float], seed: int = 0, population: bool = False
) -> tuple[pa.Table, dict[str, int]]:
    """A synthetic split manifest: ``n`` population examples per split, negatives thinned upstream.

    The pool feeds train/dev_a at ``upstream['pool']``, production feeds dev_b/test. Returns
    the manifest and the population negative count of each split (what weights must restore).
    """
    rng = np.random.default_rng(seed)
    feeds = {"train": "pool", "dev_a": "pool", "dev_b": "production", "test": "production"}
    columns: dict[str, list] = {name: [] for name in sampling.SPLIT_MANIFEST_SCHEMA.names}
    population_negatives = {}
    for split, source in feeds.items():
        label = (rng.random(n) < prior).astype(np.int8)
        survive = (label == 1) | (rng.random(n) < upstream[source])
        population_negatives[split] = int(np.sum(label == 0))
        for i in np.flatnonzero(survive):
            columns["example_id"].append(f"{split}-{i:06d}")
            columns["group"].append(f"{split}-g{i // 3}")
            columns["label"].append(int(label[i]))
            columns["source"].append(source)
            columns["n_rows"].append(int(rng.integers(1, 50)))
            columns["true_label"].append(None)
            columns["split"].append(split)
            columns["upstream_rate"].append(upstream[source])
    table = pa.table(columns, schema=sampling.SPLIT_MANIFEST_SCHEMA)
    return table, population_negatives


@pytest.fixture
def reference():
    return split_manifest(n=20000, prior=0.01, upstream={"pool": 0.05, "production": 1.0}, seed=1)


def column(table, name):
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False))


def test_every_positive_kept_and_target_ratio_reached(reference):
    manifest, _ = reference
    out, stats = downsampling.downsample(manifest, seed=3, ratio=2, splits=["train", "dev_a"])
    assert out.schema.equals(sampling.MANIFEST_SCHEMA)
    assert out.num_rows == manifest.num_rows  # thinned rows stay, with kept = False
    label, kept, split = column(out, "label"), column(out, "kept"), column(out, "split")
    rate, weight = column(out, "downsample_rate"), column(out, "weight")
    assert kept[label == 1].all()
    assert np.all(weight[label == 1] == 1.0) and np.all(rate[label == 1] == 1.0)
    for name in ("train", "dev_a"):
        m = split == name
        n_pos = int(np.sum(m & (label == 1)))
        kept_neg = int(np.sum(m & (label == 0) & kept))
        q = stats["splits"][name]["keep_probability"]
        expected = q * np.sum(m & (label == 0))
        assert abs(expected - 2 * n_pos) < 1e-6
        assert abs(kept_neg - expected) < 4 * np.sqrt(expected * (1 - q))  # binomial, 4 sd
        assert np.all(rate[m & (label == 0)] == q) and q < 1
    for name in ("dev_b", "test"):
        m = split == name
        assert kept[m].all() and np.all(rate[m] == 1.0)
        assert stats["splits"][name]["keep_probability"] == 1.0


@pytest.mark.parametrize("ratio", [2, None])
def test_weights_restore_production_negative_totals(reference, ratio):
    manifest, population = reference
    out, stats = downsampling.downsample(manifest, seed=5, ratio=ratio, splits=["train", "dev_a"])
    label, kept, split = column(out, "label"), column(out, "kept"), column(out, "split")
    weight = column(out, "weight")
    upstream, rate = column(out, "upstream_rate"), column(out, "downsample_rate")
    for name in sampling.SPLITS:
        neg = (split == name) & (label == 0) & kept
        estimate = weight[neg].sum()
        assert stats["splits"][name]["weighted_negatives"] == pytest.approx(estimate)
        p = (upstream * rate)[neg][0]
        sd = np.sqrt(population[name] * (1 / p - 1))  # Horvitz-Thompson standard error
        assert abs(estimate - population[name]) < 4 * sd + 1e-9, (name, estimate, population[name])
    thinned = (split == "train") & (label == 0)
    if ratio is None:
        assert kept.all()
        np.testing.assert_allclose(weight[thinned], 1 / 0.05)
    else:
        assert not kept[thinned].all()
        beta = 0.05 * stats["splits"]["train"]["keep_probability"]
        np.testing.assert_allclose(weight[thinned], 1 / beta)


def test_kept_depends_only_on_example_id_and_is_nested(reference):
    manifest, _ = reference
    out, _ = downsampling.downsample(manifest, seed=3, ratio=2, splits=["train"])
    ids = column(out, "example_id")
    shuffled = manifest.take(np.random.default_rng(0).permutation(manifest.num_rows))
    out_shuffled, _ = downsampling.downsample(shuffled, seed=3, ratio=2, splits=["train"])
    a = dict(zip(ids, column(out, "kept"), strict=True))
    b = dict(zip(column(out_shuffled, "example_id"), column(out_shuffled, "kept"), strict=True))
    assert a == b
    sparser, _ = downsampling.downsample(manifest, seed=3, ratio=1, splits=["train"])
    assert np.all(column(out, "kept")[column(sparser, "kept")])  # ratio 1 keeps a subset of ratio 2
    other_seed, _ = downsampling.downsample(manifest, seed=4, ratio=2, splits=["train"])
    assert not np.array_equal(column(out, "kept"), column(other_seed, "kept"))


def test_split_without_positives_is_not_thinned():
    table, _ = split_manifest(n=200, prior=0.0, upstream={"pool": 0.5, "production": 1.0})
    out, stats = downsampling.downsample(table, seed=1, ratio=2, splits=["train"])
    assert column(out, "kept").all()
    assert stats["splits"]["train"]["keep_probability"] == 1.0


def test_main_writes_byte_identical_manifest(tmp_path, reference):
    manifest, _ = reference
    source = tmp_path / "split.parquet"
    sampling.write_table_atomic(manifest, source)
    params = tmp_path / "params.yaml"
    values = {**DOWNSAMPLE_PARAMS, "seed": 1, "ratio": 2, "splits": ["train"]}
    params.write_text(yaml.safe_dump({"downsample": values}))
    outputs = []
    for run in range(2):
        out = tmp_path / f"run{run}.parquet"
        downsample.main(
            [
                "--params",
                str(params),
                "--split-manifest",
                str(source),
                "--out",
                str(out),
                "--metrics",
                str(tmp_path / "m.json"),
            ]
        )
        outputs.append(out.read_bytes())
        assert sampling.read_manifest(out).num_rows == manifest.num_rows
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 0}, "ratio must be a positive number"),
        ({"ratio": -2}, "ratio must be a positive number"),
        ({"ratio": "two"}, "ratio must be a positive number"),
        ({"splits": ["training"]}, "unknown split(s) ['training']"),
    ],
)
def test_bad_params_name_the_value(reference, kwargs, message):
    kwargs = {"ratio": 2, "splits": ["train"], **kwargs}
    with pytest.raises(ValueError) as err:
        downsampling.downsample(reference[0], seed=1, **kwargs)
    assert message in str(err.value)


def test_keep_probability_and_weights():
    assert sampling.keep_probability(10, 100, ratio=2) == pytest.approx(0.2)
    assert sampling.keep_probability(10, 15, ratio=2) == 1.0  # already sparser than the target
    assert sampling.keep_probability(10, 100, ratio=None) == 1.0
    w = sampling.example_weights(
        np.array([0, 1, 0]), np.array([0.05, 0.05, 1.0]), np.array([0.4, 1.0, 1.0])
    )
    np.testing.assert_allclose(w, [50.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="sampling rates must be in"):
        sampling.example_weights(np.array([0]), np.array([0.0]), np.array([1.0]))
