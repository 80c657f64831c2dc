"""Train the model (``train.model``) from the Parquet dataset and the manifest, with DVCLive curves.

Reads the kept ``train`` and ``dev_a`` rows of the manifest; writes
``model.keras`` and ``train.json`` (what evaluation needs: dim, beta, the
training prior, sampling rates, params) into ``--model-dir``, and DVCLive curves
into ``--live-dir``. The backup a killed run resumes from (``--backup-dir``, not a
DVC output) is removed after success.

With ``train.external_scores`` declared, nothing is trained: the scores file is checked
against the manifest and written into ``--model-dir`` as the model's log-odds
(``dsprior.external``), for evaluate and bundle to use as they would the CNN's.

The training itself is ``dsprior.training``: the curves and model selection
(``callback``), balancing and beta (``weights``), resuming (``stream``, ``resume``,
``curves``), distribution (``strategy``) and reproducibility (``loop``) are described
where their code is. ``train.model: pooled_logistic`` trains the baseline instead
(``dsprior.training.pooled_logistic``, no TensorFlow), into ``pooled_logistic.json``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from dsprior import contract, external, hardware, modeldir, runtime, sampling, settings
from dsprior.evaluation.inputs import estimate_production_prior, evaluation_rows
from dsprior.training.params import resolve_params

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--live-dir", required=True)
    parser.add_argument(
        "--backup-dir", default=".cache/train_backup", help="not a DVC output; removed on success"
    )
    return parser.parse_args(argv)


def write_external_scores(args: argparse.Namespace, params: dict, name: str, entry: dict) -> None:
    """The model folder for a declared scores file: its checked log-odds and train.json."""
    manifest = sampling.read_manifest(args.manifest, optional=(contract.TRUE_LABEL,)).to_pandas()
    prior, _ = estimate_production_prior(manifest)  # as evaluate estimates it
    table, record = external.import_scores(
        name,
        entry,
        known_ids=[  # the manifest's examples, and the dataset's that split dropped
            *manifest["example_id"].astype(str),
            *contract.read_metadata(args.dataset, columns=[contract.EXAMPLE_ID])
            .column(contract.EXAMPLE_ID)
            .to_pylist(),
        ],
        evaluated_ids=evaluation_rows(manifest)["example_id"].astype(str).tolist(),
        production_prior=prior,
        params=params,
        dim=contract.dataset_dim(args.dataset),
    )
    with runtime.atomic_directory(args.model_dir) as tmp:
        sampling.write_table_atomic(table, tmp / external.SCORES_FILE)
        runtime.write_json(tmp / modeldir.TRAIN_RECORD, record)
    # the stage's other outputs: no training curves (empty folders), what was read as metrics
    shutil.rmtree(args.live_dir, ignore_errors=True)
    for folder in external.LIVE_PLOT_FOLDERS:
        Path(args.live_dir, folder).mkdir(parents=True)
    runtime.write_json(Path(args.live_dir, "metrics.json"), external.live_metrics(record))
    logger.info(
        "wrote %s: external scores %r (%d examples, beta %.5g); nothing trained",
        args.model_dir,
        name,
        table.num_rows,
        record["beta"],
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()

    params = settings.load_params(args.params, "train")
    config = resolve_params(params)  # before any reading
    declared = external.declared_scores(config.external_scores)
    if declared is not None:
        write_external_scores(args, params, *declared)
        return
    if config.model == "pooled_logistic":  # the baseline: scikit-learn, no TensorFlow
        train_baseline(args, params)
        return
    # TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import: set it from train.onednn and
    # this machine (dsprior.hardware) before the imports below bring TensorFlow in.
    hardware.start_tensorflow(precision="float32", onednn=config.compute.onednn)
    from dsprior import cnn
    from dsprior.training import loop, resume

    manifest = sampling.read_manifest(args.manifest).to_pandas()
    model, record = loop.train_model(
        dataset_dir=args.dataset,
        manifest=manifest,
        config=config,
        live_dir=args.live_dir,
        backup_dir=args.backup_dir,
    )
    if not record["distribution"]["chief"]:
        # TF's multi-worker guidance: every worker saves (saving may need collective
        # ops), the non-chief ones into a temporary folder that is then deleted.
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / modeldir.MODEL_FILE)
        logger.info("worker done; the chief writes %s", args.model_dir)
        return
    with runtime.atomic_directory(args.model_dir) as tmp:
        cnn.save_model(model, tmp / modeldir.MODEL_FILE)
        modeldir.write_train_record(tmp, record)
    resume.remove_backup(args.backup_dir)
    logger.info(
        "wrote %s (beta %.4f, best step %s)", args.model_dir, record["beta"], record["best_step"]
    )


def train_baseline(args: argparse.Namespace, params: dict) -> None:
    """``train.model: pooled_logistic``: fit the baseline and write its model folder."""
    from dsprior import pooled_logistic
    from dsprior.training.pooled_logistic import train_pooled_logistic

    manifest = sampling.read_manifest(args.manifest).to_pandas()
    model, record = train_pooled_logistic(
        dataset_dir=args.dataset, manifest=manifest, params=params, live_dir=args.live_dir
    )
    with runtime.atomic_directory(args.model_dir) as tmp:
        pooled_logistic.save_model(model, tmp / modeldir.model_file(record))
        runtime.write_json(tmp / modeldir.TRAIN_RECORD, record)
    logger.info("wrote %s (pooled logistic, beta %.4f)", args.model_dir, record["beta"])


if __name__ == "__main__":
    runtime.run_main(main)
