"""Sampling primitives: pinned hashes, exact ranks, fraction checks, keep rates, weights, Wilson."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsprior import sampling


def test_stable_uniform_values_are_pinned():
    """The hash of a key is fixed across versions and machines: these values never change."""
    got = sampling.stable_uniform(["a", "g1"], seed=0, salt="s")
    assert got.tolist() == [0.7768230797689328, 0.39538556239143957]
    assert sampling.stable_uniform(["a"], seed=2**64 - 1, salt="split:group").tolist() == [
        0.587523203314068
    ]
    # keys are hashed as their str(): an int key and its text agree
    assert sampling.stable_uniform([7], seed=5, salt="").tolist() == [0.893616604228871]


@pytest.mark.parametrize("seed", [-1, 2**64, True, 1.0, "1"])
def test_stable_uniform_refuses_a_seed_outside_64_bits(seed):
    """A seed that is not an int in [0, 2**64) is refused, naming it."""
    with pytest.raises(ValueError) as err:
        sampling.stable_uniform(["a"], seed=seed, salt="s")
    assert str(err.value) == f"seed must be an integer in [0, 2**64), got {seed!r}"


def test_stratified_uniform_is_the_centred_rank_within_each_stratum():
    """Each value becomes (rank + 0.5) / n of its stratum; strata are ranked separately."""
    u = np.array([0.9, 0.1, 0.5, 0.3, 0.2])
    strata = np.array([0, 0, 0, 1, 1])
    got = sampling.stratified_uniform(u, strata)
    np.testing.assert_allclose(got, [5 / 6, 1 / 6, 3 / 6, 3 / 4, 1 / 4])


def test_stratified_uniform_breaks_ties_by_position():
    """Equal hashes are ranked in input order (a stable sort), so ties are deterministic."""
    u = np.random.default_rng(0).integers(0, 3, size=3000) / 4
    got = sampling.stratified_uniform(u, np.zeros(len(u), dtype=int))
    np.testing.assert_array_equal(np.sort(got), (np.arange(len(u)) + 0.5) / len(u))
    for value in np.unique(u):
        assert np.all(np.diff(got[u == value]) > 0)


def test_stratified_uniform_of_integer_keys_is_still_fractional():
    """Integer or list input gives the same float ranks as float input."""
    got = sampling.stratified_uniform([3, 1, 2], [0, 0, 0])
    np.testing.assert_allclose(got, [5 / 6, 1 / 6, 3 / 6])


def test_stratified_uniform_refuses_mismatched_shapes():
    with pytest.raises(ValueError) as err:
        sampling.stratified_uniform(np.zeros(3), np.zeros(2))
    assert str(err.value) == "u and strata must have the same shape, got (3,) and (2,)"


def test_bucket_gives_writable_python_strings():
    """Split names come back as an object array of str, so a longer name can be written in."""
    got = sampling.bucket([0.1, 0.9], {"test": 0.5})
    assert got.dtype == object and got.tolist() == ["test", ""]
    got[1] = "dev_a-and-more"
    assert got[1] == "dev_a-and-more"


def test_validate_fractions_accepts_the_closed_range_and_a_float_sum_of_one():
    """0 and 1 are valid fractions; a sum a hair over 1 (float error) passes, as floats."""
    assert sampling.validate_fractions({"train": 0, "test": 1}) == {"train": 0.0, "test": 1.0}
    got = sampling.validate_fractions({"train": 0.5, "test": 0.5 + 1e-10})
    assert got == {"train": 0.5, "test": 0.5 + 1e-10}
    assert all(type(v) is float for v in got.values())


def test_validate_fractions_tolerance_is_inclusive():
    """A sum of exactly 1 + 1e-9 (the float tolerance) is still accepted."""
    at_edge = {"train": 0.5, "test": (1.0 + 1e-9) - 0.5}
    assert sum(at_edge.values()) == 1.0 + 1e-9
    assert sampling.validate_fractions(at_edge) == at_edge


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({}, "fractions must be a non-empty mapping of split -> fraction, got {}"),
        ([("train", 1.0)], "fractions must be a non-empty mapping of split -> fraction, got "),
        (
            {"training": 0.5, "tests": 0.1},
            "fractions: unknown split(s) ['tests', 'training']; allowed are "
            "['train', 'dev_a', 'dev_b', 'test']",
        ),
        ({"train": True}, "fractions.train must be a number in [0, 1], got True"),
        ({"train": "0.5"}, "fractions.train must be a number in [0, 1], got '0.5'"),
        ({"train": 1.5}, "fractions.train must be in [0, 1], got 1.5"),
        ({"train": -0.1}, "fractions.train must be in [0, 1], got -0.1"),
        (
            {"train": 0.5, "test": 0.5 + 1e-8},
            "fractions: fractions must sum to at most 1 (the rest is dropped), got 1.00000001",
        ),
    ],
)
def test_validate_fractions_names_the_bad_value(fractions, message):
    """Each kind of bad fractions mapping is refused with its own message under ``name``."""
    with pytest.raises(ValueError) as err:
        sampling.validate_fractions(fractions)
    assert str(err.value).startswith(message)


def test_validate_fractions_messages_use_the_given_name():
    with pytest.raises(ValueError) as err:
        sampling.validate_fractions({"train": 2}, name="split.feeds.pool")
    assert str(err.value) == "split.feeds.pool.train must be in [0, 1], got 2"


def test_keep_probability_edges():
    """Nothing to thin (no positives, no negatives) keeps all; bad ratios and counts are refused."""
    assert sampling.keep_probability(0, 50, ratio=2) == 1.0
    assert sampling.keep_probability(5, 0, ratio=2) == 1.0
    assert sampling.keep_probability(1, 4, ratio=0.5) == 0.125
    assert sampling.keep_probability(2, 4, ratio=2) == 1.0  # exactly at the target
    for ratio in (0, -1, True, "2"):
        with pytest.raises(ValueError) as err:
            sampling.keep_probability(1, 4, ratio=ratio)
        assert str(err.value) == (
            f"ratio must be a positive number of negatives per positive or null, got {ratio!r}"
        )
    for counts in ((-1, 4), (1, -4)):
        with pytest.raises(ValueError) as err:
            sampling.keep_probability(*counts, ratio=2)
        assert str(err.value) == (
            f"counts must be >= 0, got {counts[0]} positives, {counts[1]} negatives"
        )


def test_example_weights_accept_a_rate_of_one_and_name_the_first_bad_rate():
    """Rates in (0, 1]: 1 is valid (weight 1); the message gives the first rate out of range."""
    w = sampling.example_weights(np.array([0, 0, 1]), np.array([1.0, 0.5, 0.5]), np.ones(3))
    np.testing.assert_array_equal(w, [1.0, 2.0, 1.0])
    with pytest.raises(ValueError) as err:
        sampling.example_weights(np.zeros(3), np.array([1.0, 0.5, 0.25]), np.array([1, 4, 8]))
    assert str(err.value) == "sampling rates must be in (0, 1], got a combined rate of 2.0"


def test_example_weights_are_float64_whatever_the_rate_dtype():
    """Rates are multiplied in float64: extended-precision input gives float64 weights."""
    rate = np.array([0.3], dtype=np.longdouble)
    w = sampling.example_weights(np.array([0]), rate, rate)
    assert w.dtype == np.float64
    assert w[0] == 1.0 / (0.3 * 0.3)


def test_wilson_half_width_of_no_trials_is_nan():
    assert np.isnan(sampling.wilson_half_width(0.5, 0))
    assert sampling.wilson_half_width(0.5, 1, z=1.0) == pytest.approx(0.5 * np.sqrt(0.5) / 2 * 2)


@pytest.mark.parametrize(
    ("p", "half_width"), [(0.5, 0.1), (0.1, 0.02), (0.5, 0.45), (0.01, 0.3), (0.3, 0.05)]
)
def test_trials_for_half_width_is_the_smallest_n_that_fits(p, half_width):
    """The answer's interval fits, and one trial fewer does not (or the answer is 1)."""
    n = sampling.trials_for_half_width(p, half_width)
    assert sampling.wilson_half_width(p, n) <= half_width
    assert n == 1 or sampling.wilson_half_width(p, n - 1) > half_width


def test_trials_for_half_width_inverts_the_half_width():
    """Asking for exactly the half-width of n trials gives back n (and an int)."""
    for p in (0.5, 0.1):
        for n in range(1, 300):
            got = sampling.trials_for_half_width(p, sampling.wilson_half_width(p, n))
            assert got == n and type(got) is int, (p, n, got)


def test_trials_for_half_width_known_values_and_range():
    assert sampling.trials_for_half_width(0.5, 0.1) == 93
    assert sampling.trials_for_half_width(0.5, 0.1, z=1.0) == 24
    for bad in (0, 0.5):
        with pytest.raises(ValueError) as err:
            sampling.trials_for_half_width(0.5, bad)
        assert str(err.value) == f"half_width must be in (0, 0.5), got {bad!r}"


def test_write_table_atomic_creates_parents_overwrites_and_leaves_no_temp(tmp_path):
    """Missing folders are made, an existing file is replaced, and only the target remains."""
    path = tmp_path / "a" / "b" / "t.parquet"
    sampling.write_table_atomic(pa.table({"x": [1, 2]}), path)
    sampling.write_table_atomic(pa.table({"x": [3]}), path)
    assert pq.read_table(path).column("x").to_pylist() == [3]
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def _manifest_table(drop: tuple[str, ...] = ()) -> pa.Table:
    columns = {
        "example_id": ["e0"],
        "group": ["g0"],
        "label": [1],
        "source": ["s"],
        "n_rows": [3],
        "true_label": [None],
        "split": ["train"],
        "upstream_rate": [1.0],
    }
    table = pa.table({k: v for k, v in columns.items() if k not in drop})
    return table


def test_read_manifest_casts_to_the_schema_and_leaves_out_optional_columns(tmp_path):
    """Columns come back in schema order and types; an optional one may be missing."""
    path = tmp_path / "m.parquet"
    sampling.write_table_atomic(_manifest_table(), path)
    table = sampling.read_manifest(path, schema=sampling.SPLIT_MANIFEST_SCHEMA)
    assert table.schema.equals(sampling.SPLIT_MANIFEST_SCHEMA)
    sampling.write_table_atomic(_manifest_table(drop=("true_label",)), path)
    table = sampling.read_manifest(
        path, schema=sampling.SPLIT_MANIFEST_SCHEMA, optional=("true_label",)
    )
    assert table.column_names == [
        n for n in sampling.SPLIT_MANIFEST_SCHEMA.names if n != "true_label"
    ]


def test_read_manifest_names_the_missing_columns(tmp_path):
    path = tmp_path / "m.parquet"
    sampling.write_table_atomic(_manifest_table(drop=("true_label", "n_rows")), path)
    with pytest.raises(ValueError) as err:
        sampling.read_manifest(path, schema=sampling.SPLIT_MANIFEST_SCHEMA)
    assert str(err.value) == (
        f"{path}: manifest lacks column(s) ['n_rows', 'true_label']; "
        f"expected {sampling.SPLIT_MANIFEST_SCHEMA.names}"
    )
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['n_rows'\]"):
        sampling.read_manifest(
            path, schema=sampling.SPLIT_MANIFEST_SCHEMA, optional=("true_label",)
        )
