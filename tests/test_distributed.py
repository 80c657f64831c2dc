"""train.strategy: sharded Parquet input, mirrored on CPU, and two loopback workers vs one.

The two-worker test runs ``python -m stages.train`` twice with ``TF_CONFIG`` set
per process (MultiWorkerMirroredStrategy, RING/AUTO collectives on CPU). The
reference is one process with ``strategy: default`` and ``input_shards: 2``, which
builds every global batch from the same two Parquet shards the workers read.
With equal replica batches, synchronous all-reduce of ``loss / replicas`` gives
the same gradient as the mean over the global batch, so the two runs follow the
same trajectory up to float32 summation order; the tolerance below (1e-4
relative on weights and curves) covers that round-off. Dropout is 0: each
replica draws its own dropout mask for its half-batch, which one process cannot
reproduce.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml

from dsprior import batches, contract
from dsprior.runtime import atomic_directory
from dsprior.training.loop import train_model
from dsprior.training.params import resolve_params
from dsprior.training.rows import select_rows
from dsprior.training.strategy import is_chief, make_strategy, resolve_input_shards
from dsprior.training.stream import TrainingStream

ROOT = Path(__file__).resolve().parents[1]
DIM = 16
UPSTREAM = 0.05
N_TRAIN, N_DEV, ROW_GROUP = 48, 16, 8

TINY = {
    **yaml.safe_load((ROOT / "params.yaml").read_text())["train"],  # every key is required
    "seed": 3,
    "filter_sizes": [2, 3],
    "filters": 8,
    "dropout": 0.0,
    "l2": 0.001,
    "learning_rate": 0.01,
    "batch_size": 8,
    "epochs": 2,
    "log_every": 2,
    "eval_every": 4,
    "eval_batch_size": 8,
    "pool_size": 16,
    "checkpoint_every": 4,
    # float32 everywhere: the workers must match a replay to float round-off, which bfloat16
    # (what precision: auto picks on a CPU with native bf16) would swamp.
    "precision": "float32",
    "onednn": "off",
}


def make_data(root: Path) -> tuple[Path, pd.DataFrame]:
    """Train rows fill 6 row groups of 8 (no partial shard batches), then 2 of dev_a."""
    rng = np.random.default_rng(0)
    records = []
    with (
        atomic_directory(root / "dataset") as tmp,
        contract.DatasetWriter(
            tmp, dim=DIM, dtype="float32", row_group_size=ROW_GROUP, shard_size=32
        ) as writer,
    ):
        for i in range(N_TRAIN + N_DEV):
            label = int(i % 3 == 0)
            n_rows = int(rng.integers(1, 10))
            rows = rng.normal(size=(n_rows, DIM))
            if label:
                rows[: min(3, n_rows), :4] += 2.0
            eid = f"ex{i:03d}"
            writer.add(
                example_id=eid,
                group=f"g{i}",
                label=label,
                source="pool",
                negative_rate=UPSTREAM,
                rows=rows,
            )
            records.append(
                {
                    "example_id": eid,
                    "group": f"g{i}",
                    "label": label,
                    "source": "pool",
                    "n_rows": n_rows,
                    "split": "train" if i < N_TRAIN else "dev_a",
                    "upstream_rate": UPSTREAM,
                    "downsample_rate": 1.0,
                    "kept": True,
                    "weight": 1.0 if label else 1 / UPSTREAM,
                    "true_label": None,  # no gold labels: a complete manifest all the same
                }
            )
    return root / "dataset", pd.DataFrame(records)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("dist_data"))


def curve(live_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(live_dir / "plots" / "metrics" / f"{name}.tsv", sep="\t")


# --------------------------------------------------------------------------- input sharding


def test_two_workers_read_disjoint_row_groups_that_cover_the_training_rows(data):
    dataset, manifest = data
    rows = select_rows(manifest, "train")
    index = batches.index_dataset(dataset)
    positions = index.positions(rows.example_id.tolist())
    seen_ids, seen_groups = [], []
    for shard in range(2):
        reader = batches.BatchReader(index, positions)
        members = batches.shard_examples(reader.row_group, num_shards=2, shard=shard)
        plan = [members[b] for b in batches.plan_batches(
            reader.row_group[members], reader.n_rows[members], batch_size=4, pool_size=8,
            rng=np.random.default_rng(shard),
        )]  # fmt: skip
        ids = [rows.example_id[i] for b, _, _ in reader.iter_batches(plan) for i in b]
        seen_ids.append(set(ids))
        seen_groups.append(set(reader.row_group[members].tolist()))
        assert len(ids) == len(set(ids)) == len(members)
        # a worker touches only its own row groups: half of them, never the whole dataset
        assert reader.row_groups_read == len(seen_groups[-1]) == N_TRAIN // ROW_GROUP // 2
    assert not seen_ids[0] & seen_ids[1]
    assert seen_ids[0] | seen_ids[1] == set(rows.example_id)
    assert not seen_groups[0] & seen_groups[1]


def test_shards_alternate_over_the_selected_row_groups():
    row_group = np.array([5, 5, 7, 9, 9, 9, 12, 15])  # selected rows skip most groups
    first = batches.shard_examples(row_group, num_shards=2, shard=0)
    second = batches.shard_examples(row_group, num_shards=2, shard=1)
    assert row_group[first].tolist() == [5, 5, 9, 9, 9, 15]
    assert row_group[second].tolist() == [7, 12]
    np.testing.assert_array_equal(np.sort(np.concatenate([first, second])), np.arange(8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_shards": 0, "shard": 0}, "num_shards must be a positive integer, got 0"),
        ({"num_shards": 2, "shard": 2}, r"shard must be an integer in \[0, 2\), got 2"),
        ({"num_shards": 4, "shard": 0}, "3 row groups cannot feed 4 input shards"),
    ],
)
def test_bad_shards_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        batches.shard_examples(np.array([0, 0, 1, 2]), **kwargs)


def test_global_batch_is_the_concatenation_of_the_shard_batches(data):
    dataset, manifest = data
    rows = select_rows(manifest, "train")
    index = batches.index_dataset(dataset)
    labels = rows.label.to_numpy()

    def stream():
        reader = batches.BatchReader(index, index.positions(rows.example_id.tolist()))
        return TrainingStream(
            reader, labels, np.ones(len(rows)), batch_size=8, pool_size=16, seed=1, num_shards=2
        )

    total = 9  # crosses the shards' data-epoch boundary at step 6
    whole = list(stream().iterate(start_step=0, total_steps=total))
    worker = [list(stream().iterate_replicas(start_step=0, total_steps=total, shards=[s]))
              for s in (0, 1)]  # fmt: skip
    for step, (x, y, _) in enumerate(whole):
        parts = [worker[0][step], worker[1][step]]
        assert [len(p[1]) for p in parts] == [4, 4]
        np.testing.assert_array_equal(y, np.concatenate([p[1] for p in parts]))
        np.testing.assert_array_equal(
            x["lengths"], np.concatenate([p[0]["lengths"] for p in parts])
        )
        for i, (px, _, _) in enumerate(parts):
            block = x["features"][4 * i : 4 * i + 4, : px["features"].shape[1]]
            np.testing.assert_array_equal(block, px["features"])
    # resuming mid-stream gives the same batches as running through
    resumed = list(stream().iterate(start_step=5, total_steps=total))
    for a, b in zip(resumed, whole[5:], strict=True):
        np.testing.assert_array_equal(a[0]["features"], b[0]["features"])


# --------------------------------------------------------------------------- params and strategies


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"strategy": "horovod"}, r"train.strategy must be one of \['default', 'mirrored', "),
        ({"input_shards": 3}, r"batch_size \(8\) must be a multiple of train.input_shards \(3\)"),
        ({"input_shards": 0}, "train.input_shards must be null or an integer >= 1, got 0"),
        ({"strategy": "multi_worker", "patience": 2}, "train.patience must be null with strategy"),
    ],
)
def test_bad_strategy_params_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_params({**TINY, **override})


def test_multi_worker_without_tf_config_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="strategy multi_worker needs TF_CONFIG"):
        make_strategy("multi_worker")


def test_chief_is_task_chief_else_worker_zero():
    workers = {"worker": ["a:1", "b:2"]}
    assert is_chief(workers, "worker", 0)
    assert not is_chief(workers, "worker", 1)
    with_chief = {"chief": ["c:0"], **workers}
    assert is_chief(with_chief, "chief", 0)
    assert not is_chief(with_chief, "worker", 0)
    assert is_chief({}, None, None)


def test_input_shards_follow_the_replicas_under_multi_worker():
    assert resolve_input_shards(None, strategy="multi_worker", replicas=4) == 4
    assert resolve_input_shards(None, strategy="default", replicas=1) == 1
    assert resolve_input_shards(2, strategy="mirrored", replicas=1) == 2
    with pytest.raises(ValueError, match="must be null or 4 .* got 2"):
        resolve_input_shards(2, strategy="multi_worker", replicas=4)


def test_mirrored_on_cpu_runs_one_replica_and_matches_default(data, tmp_path):
    # No GPU here: MirroredStrategy falls back to one CPU replica.
    dataset, manifest = data
    results = {}
    for strategy in ("default", "mirrored"):
        model, record = train_model(
            dataset_dir=dataset,
            manifest=manifest,
            config=resolve_params({**TINY, "epochs": 1, "strategy": strategy}),
            live_dir=tmp_path / strategy / "live",
            backup_dir=tmp_path / strategy / "backup",
        )
        results[strategy] = (model.get_weights(), record)
    record = results["mirrored"][1]
    gpus = tf.config.list_logical_devices("GPU")
    assert record["distribution"]["replicas"] == max(len(gpus), 1)
    assert record["distribution"]["replica_batch"] == TINY["batch_size"]
    assert record["best_value"] == pytest.approx(results["default"][1]["best_value"], rel=1e-5)
    for a, b in zip(*(results[s][0] for s in ("default", "mirrored")), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- two workers


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_loopback_workers_match_one_worker_on_the_same_global_batches(data, tmp_path):
    dataset, manifest = data
    manifest.to_parquet(tmp_path / "manifest.parquet")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {**TINY, "strategy": "multi_worker"}}))
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(2)]}
    out = tmp_path / "workers"
    procs = []
    for task in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": task}}
            ),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        cmd = [
            sys.executable, "-m", "stages.train", "--params", str(params),
            "--dataset", str(dataset), "--manifest", str(tmp_path / "manifest.parquet"),
            "--model-dir", str(out / "models"), "--live-dir", str(out / "live"),
            "--backup-dir", str(out / "backup"),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log
    assert "input pipeline 0 of 2 reads shards [0]" in logs[0]
    assert "input pipeline 1 of 2 reads shards [1]" in logs[1]
    assert "worker done" in logs[1]

    # one worker, same global batches: default strategy reading both shards itself
    ref_model, ref = train_model(
        dataset_dir=dataset,
        manifest=manifest,
        config=resolve_params({**TINY, "input_shards": 2}),
        live_dir=tmp_path / "ref" / "live",
        backup_dir=tmp_path / "ref" / "backup",
    )
    record = json.loads((out / "models" / "train.json").read_text())
    assert record["distribution"] | {"chief": True} == {
        "strategy": "multi_worker", "replicas": 2, "workers": 2, "input_shards": 2,
        "global_batch": 8, "replica_batch": 4, "chief": True,
    }  # fmt: skip
    assert record["steps"] == ref["steps"] == 2 * N_TRAIN // TINY["batch_size"]
    assert record["best_step"] == ref["best_step"]
    assert record["best_value"] == pytest.approx(ref["best_value"], rel=1e-4)
    assert not (out / "backup").exists()  # the chief removed its backup after success

    model = keras.models.load_model(out / "models" / "model.keras", safe_mode=True)
    for a, b in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("train/loss", "train/f1", "dev_a/prior/loss"):
        got, want = curve(out / "live", name), curve(tmp_path / "ref" / "live", name)
        assert got["step"].tolist() == want["step"].tolist()
        np.testing.assert_allclose(got.iloc[:, -1], want.iloc[:, -1], rtol=1e-4, atol=1e-6)
    # ... and a differently sharded single run (one shard) really is a different trajectory
    _, unsharded = train_model(
        dataset_dir=dataset,
        manifest=manifest,
        config=resolve_params(TINY),
        live_dir=tmp_path / "one" / "live",
        backup_dir=tmp_path / "one" / "backup",
    )
    assert not np.allclose(
        curve(tmp_path / "one" / "live", "train/loss")["loss"],
        curve(out / "live", "train/loss")["loss"],
        rtol=1e-3,
    )
