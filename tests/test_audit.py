"""Audit: flags a planted leak, a planted biased sampler and a planted shift; quiet on clean data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from scipy import stats as sps

from dsprior import audit, contract, downsampling, sampling, splitting
from stages import audit as audit_stage
from tests.conftest import ROOT

# Every audit key is required; the tests' folds were drawn with seed 0.
AUDIT_PARAMS = {**yaml.safe_load((ROOT / "params.yaml").read_text())["audit"], "seed": 0}

DIM = 16
FEEDS = {"pool": {"train": 0.8, "dev_a": 0.2}, "production": {"dev_b": 0.5, "test": 0.5}}
QUIET = {"ci_half_width_max": 0.49}  # tiny data: do not let the test-size check speak


def write_dataset(path, *, seed: int = 0, shift: float = 0.0, groups: int = 70):
    """Pool and production groups drawn alike; ``shift`` scales production rows."""
    rng = np.random.default_rng(seed)
    with contract.DatasetWriter(path, dim=DIM, row_group_size=32) as writer:
        for source, rate in (("pool", 0.5), ("production", 1.0)):
            for g in range(groups):
                positive_group = rng.random() < 0.3
                for k in range(int(rng.integers(1, 5))):
                    n_rows = int(rng.integers(2, 16))
                    scale = 1.0 + (shift if source == "production" else 0.0)
                    writer.add(
                        example_id=f"{source}-{g:03d}-{k}",
                        group=f"{source}-g{g:03d}",
                        label=int(positive_group and rng.random() < 0.6),
                        source=source,
                        negative_rate=rate,
                        rows=rng.normal(size=(n_rows, DIM)) * scale,
                    )
    return path


def build_manifest(dataset, *, by: str = "group", ratio=2):
    split_manifest, _ = splitting.assign_splits(
        contract.read_metadata(dataset), seed=3, feeds=FEEDS, by=by
    )
    manifest, _ = downsampling.downsample(
        split_manifest, seed=4, ratio=ratio, splits=["train", "dev_a"]
    )
    return manifest


def run_audit(dataset, manifest, **params):
    summaries = audit.feature_summaries(dataset, manifest.column("example_id").to_pylist())
    return audit.audit(manifest, summaries, config=audit.check_params({**AUDIT_PARAMS, **params}))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("clean") / "ds")


def test_feature_summaries_stream_and_match_a_direct_computation(clean):
    table = contract.read_metadata(clean, [contract.EXAMPLE_ID])
    ids = table.column(contract.EXAMPLE_ID).to_pylist()[::-1][:50]  # any order, any subset
    got = audit.feature_summaries(clean, ids)
    import pyarrow.dataset as pads

    full = pads.dataset([str(p) for p in contract.shard_paths(clean)]).to_table()
    position = {e: i for i, e in enumerate(full.column(contract.EXAMPLE_ID).to_pylist())}
    for row, eid in zip(got, ids, strict=True):
        rows, offsets = contract.decode_features(
            full.column(contract.FEATURES), dim=contract.dataset_dim(clean), dtype="float16"
        )
        i = position[eid]
        x = rows[offsets[i] : offsets[i + 1]].astype(np.float32)
        means = x.mean(axis=1)
        expected = [len(x), means.mean(), means.std(), np.linalg.norm(x, axis=1).max()]
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-6)


def test_feature_summaries_are_the_same_whatever_the_number_of_threads(tmp_path):
    # several shards, so that threads really summarise different files at once
    path = tmp_path / "ds"
    rng = np.random.default_rng(5)
    with contract.DatasetWriter(path, dim=DIM, row_group_size=4, shard_size=8) as writer:
        for i in range(60):
            writer.add(
                example_id=f"e{i:03d}",
                group=f"g{i // 3}",
                label=i % 2,
                source="pool",
                negative_rate=1.0,
                rows=rng.normal(size=(int(rng.integers(1, 9)), DIM)),
            )
    assert len(contract.shard_paths(path)) > 3
    ids = [f"e{i:03d}" for i in rng.permutation(60)]
    one = audit.feature_summaries(path, ids, workers=1)
    assert not np.isnan(one).any()
    for workers in (2, 5):
        np.testing.assert_array_equal(audit.feature_summaries(path, ids, workers=workers), one)
    with pytest.raises(ValueError, match="1 manifest example ids are not in the dataset"):
        audit.feature_summaries(path, [*ids, "missing"], workers=2)


def test_summarize_features_respects_sliced_arrays(clean):
    table = contract.read_metadata(clean, [contract.EXAMPLE_ID])  # ensure dataset exists
    import pyarrow.dataset as pads

    features = (
        pads.dataset([str(p) for p in contract.shard_paths(clean)])
        .to_table(columns=[contract.FEATURES])
        .column(0)
        .combine_chunks()
    )
    dim = contract.dataset_dim(clean)
    whole = audit.summarize_features(features, dim=dim)
    np.testing.assert_allclose(audit.summarize_features(features.slice(5, 7), dim=dim), whole[5:12])
    assert whole.shape == (table.num_rows, len(audit.SUMMARIES))


def test_clean_data_is_quiet(clean):
    manifest = build_manifest(clean)
    report = run_audit(clean, manifest, **QUIET)
    assert report["leakage"]["shared_groups"] == 0
    assert report["causes"] == [], report["summary"]
    assert "none of the usual causes" in report["summary"]
    assert set(report["sampling_bias"]) == {"train", "dev_a"}
    assert "domain_auc" in report["sampling_bias"]["train"]  # the comparison ran, not skipped
    assert "domain_auc" in report["shift"]["negatives"]


def test_per_split_counts_and_weighted_prior(clean):
    manifest = build_manifest(clean)
    report = run_audit(clean, manifest, **QUIET)
    kept = manifest.filter(manifest.column("kept"))
    for name, row in report["splits"].items():
        part = kept.filter(pc.equal(kept.column("split"), name))
        labels = part.column("label").to_numpy()
        weights = part.column("weight").to_numpy()
        assert row["examples"] == part.num_rows
        assert row["positives"] == int(labels.sum())
        assert row["negatives"] + row["positives"] == row["examples"]
        pos = labels.sum()
        assert row["prior_estimate"] == pytest.approx(pos / (pos + weights[labels == 0].sum()))
    # the pool's thinning (0.5 upstream, then to 1:2) is undone by the weights
    assert report["splits"]["train"]["prior"] > report["splits"]["train"]["prior_estimate"]


def test_planted_leak_is_flagged(clean):
    report = run_audit(clean, build_manifest(clean, by="example"), **QUIET)
    assert report["leakage"]["shared_groups"] > 0
    assert report["leakage"]["pairs"]["train-dev_a"] > 0
    assert "leakage" in report["causes"]
    assert "appear in more than one split" in report["summary"]
    assert "leakage" in audit.render_markdown(report)


def test_planted_biased_sampler_is_flagged(clean):
    manifest = build_manifest(clean)
    # a sampler that keeps only the short negatives of train
    label = manifest.column("label").to_numpy()
    n_rows = manifest.column("n_rows").to_numpy()
    in_train = np.asarray(manifest.column("split").to_pylist()) == "train"
    kept = manifest.column("kept").to_numpy(zero_copy_only=False).copy()
    neg = in_train & (label == 0)
    kept[neg] = n_rows[neg] <= np.median(n_rows[neg])
    i = manifest.schema.get_field_index("kept")
    biased = manifest.set_column(i, manifest.schema.field(i), [kept.tolist()])
    report = run_audit(clean, biased, **QUIET)
    assert report["sampling_bias"]["train"]["flag"]
    assert report["sampling_bias"]["train"]["largest_ks"] == "n_rows"
    assert not report["sampling_bias"]["dev_a"]["flag"]
    assert report["causes"] == ["biased_undersampling"]


def test_planted_shift_is_flagged(tmp_path):
    dataset = write_dataset(tmp_path / "ds", shift=0.5)
    report = run_audit(dataset, build_manifest(dataset), **QUIET)
    assert report["shift"]["negatives"]["flag"]
    assert "distribution_shift" in report["causes"]
    assert "biased_undersampling" not in report["causes"]


def test_small_test_set_is_flagged_with_the_interval_it_allows(clean):
    report = run_audit(clean, build_manifest(clean))  # default: half-width <= 0.05
    ts = report["test_size"]
    assert ts["flag"] and "test_too_small" in report["causes"]
    assert ts["smallest_positives"] == min(
        report["splits"][s]["positives"] for s in ("dev_b", "test")
    )
    assert ts["positives_needed"] > ts["smallest_positives"]
    assert ts["precision_ci_half_width"] > 0.05


def test_precision_resolution_needs_enough_positives():
    res = audit.precision_resolution(
        {"dev_b": 400, "test": 100}, z=1.96, precision=0.5, recall=0.5, half_width_max=0.05
    )
    assert res["smallest_split"] == "test" and res["flag"]
    needed = res["positives_needed"]
    ok = audit.precision_resolution(
        {"test": needed}, z=1.96, precision=0.5, recall=0.5, half_width_max=0.05
    )
    short = audit.precision_resolution(
        {"test": needed - 1}, z=1.96, precision=0.5, recall=0.5, half_width_max=0.05
    )
    assert not ok["flag"] and short["flag"]
    assert audit.precision_resolution(
        {"test": 0}, z=1.96, precision=0.5, recall=0.5, half_width_max=0.05
    )["flag"]


@pytest.mark.parametrize("k,n", [(5, 20), (50, 100), (1, 40)])
def test_wilson_half_width_matches_scipy(k, n):
    ci = sps.binomtest(k, n).proportion_ci(method="wilson")
    assert sampling.wilson_half_width(k / n, n) == pytest.approx((ci.high - ci.low) / 2, rel=1e-3)


def test_bad_params_name_the_value(clean):
    manifest = build_manifest(clean)
    summaries = np.zeros((manifest.num_rows, len(audit.SUMMARIES)))
    with pytest.raises(ValueError, match=r"audit.ks_limit: unknown key .*'ks_max'"):
        audit.check_params({**AUDIT_PARAMS, "ks_limit": 0.1})
    with pytest.raises(ValueError, match=r"audit.production_splits\[0\] must be one of"):
        audit.check_params({**AUDIT_PARAMS, "production_splits": ["prod"]})
    with pytest.raises(ValueError, match="audit.alpha is required"):
        audit.check_params({"seed": 0})
    with pytest.raises(ValueError, match="summaries have 3 rows"):
        audit.audit(manifest, summaries[:3], config=audit.check_params(AUDIT_PARAMS))


def test_main_writes_markdown_and_json_metrics(tmp_path, clean):
    manifest_path = tmp_path / "manifest.parquet"
    sampling.write_table_atomic(build_manifest(clean), manifest_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"audit": {**AUDIT_PARAMS, "seed": 1}}))
    report, metrics = tmp_path / "r" / "audit.md", tmp_path / "r" / "audit.json"
    audit_stage.main(
        [
            "--params",
            str(params),
            "--dataset",
            str(clean),
            "--manifest",
            str(manifest_path),
            "--report",
            str(report),
            "--metrics",
            str(metrics),
        ]
    )
    data = json.loads(metrics.read_text())
    assert data["leakage"]["shared_groups"] == 0
    assert data["flags"]["leakage"] is False
    text = report.read_text()
    assert text.startswith("# Data audit") and "## Summary" in text
    assert "summary" not in data and set(data["flags"]) == set(audit.CAUSES)


def with_gold(manifest, gold):
    """The manifest with its ``true_label`` column replaced (None where unlabelled)."""
    index = manifest.column_names.index(contract.TRUE_LABEL)
    return manifest.set_column(index, contract.TRUE_LABEL, pa.array(gold, type=pa.int8()))


def test_label_noise_is_named_when_gold_labels_show_it(clean):
    manifest = build_manifest(clean)
    label = manifest.column("label").to_numpy()
    split_of = manifest.column("split").to_numpy(zero_copy_only=False)
    # gold agrees with distant except on production splits, where a third of distant
    # negatives are true relations the knowledge base lacks; dev_a carries no gold label
    rng = np.random.default_rng(0)
    gold = [
        None if s == "dev_a" else int(y or (s in ("dev_b", "test") and rng.random() < 0.33))
        for y, s in zip(label, split_of, strict=True)
    ]
    report = run_audit(clean, with_gold(manifest, gold), **QUIET)
    assert "label_noise" in report["causes"] and "dev_a" not in report["label_noise"]
    kept = manifest.column("kept").to_numpy()
    for s in ("dev_b", "test"):
        noise = report["label_noise"][s]
        mask = kept & (split_of == s)
        g, d = np.array(gold, dtype=float)[mask], label[mask]
        assert noise["gold_examples"] == int(mask.sum())
        assert noise["false_label_rate"] == 0.0
        assert noise["missing_label_rate"] == pytest.approx(((d == 0) & (g == 1)).sum() / g.sum())
        low, high = noise["missing_label_rate_ci"]
        assert 0.05 < low < noise["missing_label_rate"] < high
    assert report["label_noise"]["train"]["flag"] is False  # gold agrees there
    assert "Gold labels contradict the distant ones on" in report["summary"]
    assert "## Label noise" in audit.render_markdown(report)
    # agreeing gold labels, or none at all (the clean manifest's column is all null): quiet
    quiet = run_audit(clean, with_gold(manifest, label.tolist()), **QUIET)
    assert "label_noise" not in quiet["causes"]
    assert run_audit(clean, manifest, **QUIET)["label_noise"] == {}
