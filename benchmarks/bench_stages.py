"""The train and scoring stages against their ceilings, on the default run's data.

Needs the default run's dataset and manifest (``make repro``). Every variant runs in
a fresh child process; rounds alternate between variants and the best round of each
is reported (other processes on the machine slow some rounds). Under the machine's
``auto`` compute (``dsprior.hardware``), except the padded baseline (TensorFlow's
defaults, float32).

Train, one data epoch of the default run's ``train`` rows (and its ``dev_a``):

- ``train_stage``: ``python -m stages.train`` as ``dvc repro`` runs it (curves every
  ``log_every`` steps, dev_a every ``eval_every`` steps and at the epoch's end,
  checkpoints), whole-process wall seconds;
- ``train_raw``: the same batches built in memory first, then ``model.fit`` over them:
  TensorFlow's start-up (imports, model build and compile) plus the steps alone; the
  batch building is left out;
- ``train_padded``: the straightforward Keras baseline as a user writes it: every
  example padded to ``max_rows`` rows in float32 arrays, ``model.fit(batch_size=60)``
  with dev_a as ``validation_data``, TensorFlow's defaults; whole process, reading
  included.

Scoring, ``--score-examples`` production-ratio rows (dev_b and test), model
``models/model.keras``:

- ``score_raw``: the traced forward pass on the same batches built in memory first;
- ``score_stream``: ``batches.predict_scores`` (the evaluate stage's path, streamed
  from Parquet);
- ``score_arrays``: ``scoring.score_arrays`` on the examples' arrays in memory (the
  ``ds-score`` path after parsing);
- ``score_keras_predict``: ``model.predict`` on the streamed batches (the path before).

Writes ``benchmarks/results/stages.json`` and prints the ratios.

``--child train_ceiling --project P`` (what ``make reference`` runs after its pipeline, with
``--child score_raw --project P``): the train stage's ceiling on another project's data and
params, its first ``--steps`` batches fit from memory and scaled to the run by padded rows.

    python benchmarks/bench_stages.py [--rounds 2] [--score-examples 6000] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dsprior import hardware
from tools.measure import provenance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stages.json"
DATASET = ROOT / "data" / "dataset"
MANIFEST = ROOT / "data" / "manifest.parquet"
MODEL = ROOT / "models" / "model.keras"
STARTED = time.perf_counter()


def train_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = 1
    return params


def kept(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    return manifest[(manifest["split"] == split) & manifest["kept"].astype(bool)]


def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- children


def child_train_raw(work: Path) -> None:
    from dsprior.training.params import resolve_params

    p = resolve_params(train_params()["train"])
    hardware.start_tensorflow(precision="float32", onednn=p.compute.onednn)  # as stages.train
    import keras
    import tensorflow as tf

    from dsprior import batches, cnn
    from dsprior.training.strategy import resolve_compute
    from dsprior.training.stream import TrainingStream

    keras.utils.set_random_seed(p.seed)
    tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_dtype_policy(resolve_compute(p.compute).precision)
    model = cnn.build_cnn(
        dim=700, filter_sizes=list(p.filter_sizes), filters=p.filters, dropout=p.dropout,
        l2=p.l2, seed=p.seed,
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(p.learning_rate), loss="binary_crossentropy")
    startup = time.perf_counter() - STARTED
    built = time.perf_counter()
    manifest = pd.read_parquet(MANIFEST)
    rows = kept(manifest, "train")
    index = batches.index_dataset(DATASET)
    reader = batches.BatchReader(
        index, index.positions(rows["example_id"].tolist()), min_rows=max(p.filter_sizes)
    )
    labels = rows["label"].to_numpy().astype(np.float32)
    stream = TrainingStream(
        reader, labels, np.ones(len(labels)), batch_size=p.batch_size,
        pool_size=p.pool_size, seed=p.seed,
    )  # fmt: skip
    steps = stream.steps_per_epoch
    prebuilt = list(stream.iterate(start_step=0, total_steps=steps))
    build_seconds = time.perf_counter() - built
    spec = stream.dataset(start_step=0, total_steps=1, prefetch=1).element_spec
    data = tf.data.Dataset.from_generator(lambda: iter(prebuilt), output_signature=spec)
    t = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    emit({"startup_seconds": startup, "steps_seconds": time.perf_counter() - t, "steps": steps,
          "batch_build_seconds": build_seconds})  # fmt: skip


def child_train_ceiling(project: Path, steps: int) -> None:
    """The train stage's ceiling on ``project``'s data and params (``make reference``'s):
    TensorFlow's start-up, then ``fit`` over the run's first ``steps`` batches built in memory
    first (the stage's own stream, labels, weights, model and metrics). The steps' seconds
    are scaled to the whole run by padded rows (what the convolutions cost): every batch's
    length is known from the plan without reading a feature."""
    from dsprior import settings
    from dsprior.training.params import resolve_params

    p = resolve_params(settings.load_params(project / "params.yaml", "train"))
    hardware.start_tensorflow(precision=p.compute.precision, onednn=p.compute.onednn)
    import tensorflow as tf

    from dsprior import batches, cnn
    from dsprior.training import loop

    loop.configure_run(p)
    index = batches.index_dataset(project / "data" / "dataset")
    model = loop.compile_model(
        tf.distribute.get_strategy(), loop.model_architecture(p, dim=index.dim), p
    )
    startup = time.perf_counter() - STARTED
    manifest = pd.read_parquet(project / "data" / "manifest.parquet")
    rows = loop.training_rows(manifest, p)
    min_rows = max(p.filter_sizes)
    stream = loop.training_stream(index, rows, p, min_rows=min_rows, num_shards=1)
    total = p.epochs * stream.steps_per_epoch
    steps = min(steps, total)

    def padded(batch: np.ndarray) -> int:
        return len(batch) * max(int(stream.reader.n_rows[batch].max()), min_rows)

    plans = [b for epoch in range(p.epochs) for b in stream.plan(epoch)][:total]
    built = time.perf_counter()
    prebuilt = list(stream.iterate(start_step=0, total_steps=steps))
    build_seconds = time.perf_counter() - built
    sampled_rows = sum(int(np.prod(x[cnn.FEATURES_INPUT].shape[:2])) for x, _, _ in prebuilt)
    assert sampled_rows == sum(
        padded(b) for b in plans[:steps]
    )  # the plan's lengths are the batches'
    spec = stream.dataset(start_step=0, total_steps=1, prefetch=1).element_spec
    data = tf.data.Dataset.from_generator(lambda: iter(prebuilt), output_signature=spec)
    t = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    steps_seconds = time.perf_counter() - t
    scale = sum(padded(b) for b in plans) / sampled_rows
    emit({"startup_seconds": startup, "steps": steps, "steps_seconds": steps_seconds,
          "total_steps": total, "padded_rows_scale": scale,
          "all_steps_seconds": steps_seconds * scale, "batch_build_seconds": build_seconds,
          "ceiling_seconds": startup + steps_seconds * scale})  # fmt: skip


def child_train_padded(work: Path) -> None:
    os.environ.pop(hardware.ONEDNN_ENV, None)  # TensorFlow's own default
    from dsprior import runtime

    runtime.quiet_tensorflow()
    import keras

    from dsprior import batches, cnn

    p = train_params()["train"]
    max_rows = int(yaml.safe_load((ROOT / "params.yaml").read_text())["generate"]["max_rows"])
    manifest = pd.read_parquet(MANIFEST)
    index = batches.index_dataset(DATASET)

    def padded(split: str) -> tuple[dict, np.ndarray]:
        rows = kept(manifest, split)
        reader = batches.BatchReader(index, index.positions(rows["example_id"].tolist()))
        x = np.zeros((len(rows), max_rows, index.dim), dtype=np.float32)
        lengths = np.zeros(len(rows), dtype=np.int32)
        for i, example_rows in reader.iter_examples():
            x[i, : len(example_rows)] = example_rows
            lengths[i] = len(example_rows)
        return {cnn.FEATURES_INPUT: x, cnn.LENGTHS_INPUT: lengths}, rows["label"].to_numpy(
            np.float32
        )

    x, y = padded("train")
    dev = padded("dev_a")
    keras.utils.set_random_seed(p["seed"])
    model = cnn.build_cnn(
        dim=index.dim, filter_sizes=p["filter_sizes"], filters=p["filters"],
        dropout=p["dropout"], l2=p["l2"], seed=p["seed"],
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(p["learning_rate"]), loss="binary_crossentropy")
    model.fit(x, y, batch_size=p["batch_size"], epochs=1, validation_data=dev, verbose=0)
    emit({"examples": len(y)})


def score_ids(n: int) -> list[str]:
    """The first ``n`` dev_b and test examples in dataset order: whole row groups, as the
    evaluate stage reads them (it scores every example of those row groups)."""
    manifest = pd.read_parquet(MANIFEST, columns=["example_id", "split"])
    ids = set(manifest[manifest["split"].isin(["dev_b", "test"])]["example_id"])
    from dsprior import contract

    order = contract.read_metadata(DATASET, columns=[contract.EXAMPLE_ID])
    in_order = [e for e in order.column(0).to_pylist() if e in ids]
    return in_order[:n]


def child_score(variant: str, n: int) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]
    hardware.start_tensorflow(precision=params["precision"], onednn=params["onednn"])
    import keras
    import tensorflow as tf

    from dsprior import batches, cnn, scoring

    model = keras.saving.load_model(MODEL, safe_mode=True)
    compute = hardware.machine_compute(
        params["precision"], params["onednn"], model_precision=cnn.model_precision(model)
    )
    model = cnn.with_precision(model, compute.precision)
    ids = score_ids(n)
    index = batches.index_dataset(DATASET)
    min_rows = 10
    size = int(params["batch_size"])
    reader = batches.BatchReader(index, index.positions(ids), min_rows=min_rows)
    plan = batches.plan_batches(
        reader.row_group, reader.n_rows, batch_size=size, pool_size=20 * size
    )
    warm = [np.zeros((1, min_rows, index.dim), np.float32), np.full(1, min_rows, np.int32)]
    batches.forward(model)(*warm)  # the trace, outside every timing
    if variant == "score_raw":
        prebuilt = list(reader.iter_batches(plan))
        call = batches.forward(model)
        t = time.perf_counter()
        for _, features, lengths in prebuilt:
            call(features, lengths)
    elif variant == "score_stream":
        t = time.perf_counter()
        batches.predict_scores(model, DATASET, ids, batch_size=size, min_rows=min_rows, index=index)
    elif variant == "score_arrays":
        arrays = [rows for _, rows in sorted(reader.iter_examples(), key=lambda item: item[0])]
        t = time.perf_counter()
        scoring.score_arrays(model, arrays, dim=index.dim, batch_size=size, min_rows=min_rows)
    elif variant == "score_keras_predict":
        model.predict(
            {cnn.FEATURES_INPUT: warm[0], cnn.LENGTHS_INPUT: warm[1]}, verbose=0
        )  # its own trace, outside the timing

        def features_only():
            for _, features, lengths in reader.iter_batches(plan):
                yield {cnn.FEATURES_INPUT: features, cnn.LENGTHS_INPUT: lengths}

        data = tf.data.Dataset.from_generator(
            features_only,
            output_signature={
                cnn.FEATURES_INPUT: tf.TensorSpec((None, None, index.dim), tf.float32),
                cnn.LENGTHS_INPUT: tf.TensorSpec((None,), tf.int32),
            },
        ).prefetch(2)
        t = time.perf_counter()
        model.predict(data, steps=len(plan), verbose=0)
    else:
        raise ValueError(variant)
    seconds = time.perf_counter() - t
    emit({"examples": len(ids), "seconds": seconds, "examples_per_second": len(ids) / seconds,
          "precision": compute.precision, "onednn": compute.onednn_env})  # fmt: skip


# ----------------------------------------------------------------------------- parent


def run_child(args: list[str], *, cwd: Path = ROOT) -> tuple[float, dict]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    return wall, (json.loads(lines[-1][7:]) if lines else {})


def train_stage(work: Path) -> tuple[float, dict]:
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(train_params()))
    for name in ("models", "live", "backup"):
        subprocess.run(["rm", "-rf", str(work / name)], check=True)
    return run_child(
        [sys.executable, "-m", "stages.train", "--params", str(params), "--dataset",
         str(DATASET), "--manifest", str(MANIFEST), "--model-dir", str(work / "models"),
         "--live-dir", str(work / "live"), "--backup-dir", str(work / "backup")]
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--score-examples", type=int, default=6000)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-score", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--work", type=Path)
    parser.add_argument(
        "--project", type=Path, help="a child's project (default: this one), e.g. the reference's"
    )
    parser.add_argument("--steps", type=int, default=300, help="train_ceiling: steps to run")
    args = parser.parse_args()
    if args.project is not None:  # the children read that project's data and model
        global DATASET, MANIFEST, MODEL
        DATASET = args.project / "data" / "dataset"
        MANIFEST = args.project / "data" / "manifest.parquet"
        MODEL = args.project / "models" / "model.keras"
    if args.child == "train_ceiling":
        return child_train_ceiling(args.project, args.steps)
    if args.child == "train_raw":
        return child_train_raw(args.work)
    if args.child == "train_padded":
        return child_train_padded(args.work)
    if args.child:
        return child_score(args.child, args.score_examples)
    for path in (DATASET, MANIFEST, MODEL):
        if not path.exists():
            sys.exit(f"{path} is missing: run `make repro` (or `dvc pull`) first")

    work = Path(tempfile.mkdtemp(prefix="bench_stages."))
    me = [sys.executable, str(Path(__file__).resolve())]
    variants: dict = {}
    if not args.skip_score:
        for name in ("score_raw", "score_stream", "score_arrays", "score_keras_predict"):
            variants[name] = lambda n=name: run_child(
                [*me, "--child", n, "--score-examples", str(args.score_examples)]
            )
    if not args.skip_train:
        variants["train_stage"] = lambda: train_stage(work)
        variants["train_raw"] = lambda: run_child(
            [*me, "--child", "train_raw", "--work", str(work)]
        )
        variants["train_padded"] = lambda: run_child(
            [*me, "--child", "train_padded", "--work", str(work)]
        )
    best: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for name, run in variants.items():
            wall, result = run()
            result["wall_seconds"] = wall
            key = "seconds" if name.startswith("score") else "wall_seconds"
            print(f"round {round_} {name}: {wall:.1f} s whole process, {result}", flush=True)
            if name not in best or result[key] < best[name][key]:
                best[name] = result

    results: dict = {
        "machine": {"cpu_model": hardware.cpu_model(), "cpus": os.cpu_count(),
                    "cpu_flags": sorted(set(hardware.read_cpu_flags()) & set(hardware.REPORTED_FLAGS)),
                    "platform": platform.platform()},
        "rounds": args.rounds,
        "best": best,
    }  # fmt: skip
    if not args.skip_score:
        raw = best["score_raw"]["examples_per_second"]
        results["scoring_ratio_raw_over"] = {
            name: raw / best[name]["examples_per_second"]
            for name in ("score_stream", "score_arrays", "score_keras_predict")
        }
        print("scoring: raw forward / path (target <= 1.5):", results["scoring_ratio_raw_over"])
    if not args.skip_train:
        raw = best["train_raw"]
        reference = raw["startup_seconds"] + raw["steps_seconds"]
        results["train_reference_seconds"] = reference
        results["train_stage_over_raw"] = best["train_stage"]["wall_seconds"] / reference
        results["padded_over_train_stage"] = (
            best["train_padded"]["wall_seconds"] / best["train_stage"]["wall_seconds"]
        )
        print(
            f"train: stage {best['train_stage']['wall_seconds']:.1f} s, raw start-up + steps "
            f"{reference:.1f} s -> {results['train_stage_over_raw']:.2f}x (target <= 1.4); "
            f"padded baseline {best['train_padded']['wall_seconds']:.1f} s -> stage is "
            f"{results['padded_over_train_stage']:.2f}x faster (target >= 2)"
        )
    # a partial run (--skip-train / --skip-score) keeps the other part's last results
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["best"] = {**previous.get("best", {}), **best}
    results = {**previous, **results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**results, **provenance()}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
