"""Train the CNN from the Parquet dataset and the manifest, with step-level DVCLive curves.

Reads the kept ``train`` and ``dev_a`` rows of the manifest; writes
``model.keras`` and ``train.json`` (what evaluation needs: dim, beta, the
training prior, sampling rates, params) into ``--model-dir``, and DVCLive curves
into ``--live-dir``. The backup a killed run resumes from (``--backup-dir``, not a
DVC output) is removed after success.

The training itself is ``dsprior.training``: the curves and model selection
(``callback``), balancing and beta (``weights``), resuming (``stream``, ``resume``,
``curves``), distribution (``strategy``) and reproducibility (``loop``) are described
where their code is.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from dsprior import hardware, modeldir, runtime, sampling, settings
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()

    params = settings.load_params(args.params, "train")
    config = resolve_params(params)  # before any reading
    # TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import: set it from train.onednn and
    # this machine (dsprior.hardware) before the imports below bring TensorFlow in.
    hardware.apply_onednn(hardware.machine_compute("float32", config.compute.onednn))
    runtime.quiet_tensorflow()
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


if __name__ == "__main__":
    runtime.run_main(main)
