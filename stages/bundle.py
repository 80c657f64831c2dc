"""bundle stage: one versioned folder holding everything needed to score new examples.

Reads train's model folder, evaluate's ``metrics.json`` and ``predictions.parquet``,
and the dataset (for its dimension and dtype only); writes ``bundle/``
(``paths.bundle``): the model (``model.keras``, or ``pooled_logistic.json`` for the
baseline), ``bundle.json`` and ``reference.parquet``, as
``dsprior.bundle`` describes them.

The stage checks what it writes: mapping evaluate's own raw scores
(``reports/predictions.parquet``) through the bundle's prior correction must
give evaluate's probabilities, and the model must load in safe mode with the
recorded dimension; otherwise it fails.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path

import pandas as pd

from dsprior import bundle, contract, external, modeldir, runtime, settings
from dsprior import calibration as cal
from dsprior.evaluation.record import read_metrics

logger = logging.getLogger(__name__)


def check_model(model_path: Path, dim: int) -> None:
    """ValueError unless the model loads in safe mode and takes the dataset's dimension."""
    model = modeldir.load_model(model_path)  # the CNN's brings TensorFlow in, quietly
    if modeldir.model_dim(model) != dim:
        raise ValueError(
            f"{model_path} takes dim {modeldir.model_dim(model)}, the dataset has {dim}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True, help="for its dim and dtype only")
    parser.add_argument("--metrics", type=Path, required=True, help="evaluate's metrics.json")
    parser.add_argument("--predictions", type=Path, required=True, help="evaluate's predictions")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()

    evaluate_params = copy.deepcopy(settings.load_params(args.params, "evaluate"))
    train_record = modeldir.read_train_record(args.model_dir)
    metrics = read_metrics(args.metrics)
    scores_only = external.is_external(train_record)  # scores made elsewhere: no model
    model_path = args.model_dir / modeldir.model_file(train_record)
    predictions = pd.read_parquet(args.predictions)
    calibration_record = metrics.get("calibration") or {}
    table = bundle.reference_table(
        predictions,
        prior=float(metrics["prior"]),
        training_prior=calibration_record.get("training_prior", train_record.get("training_prior")),
        calibration=cal.Calibration.from_dict(calibration_record.get("chosen", {})),
    )
    reference = bundle.reference_bytes(table)
    spec = bundle.build_spec(
        train_record=train_record,
        metrics=metrics,
        evaluate_params=evaluate_params,
        dataset_dim=contract.dataset_dim(args.dataset),
        dataset_dtype=contract.dataset_dtype(args.dataset),
        model_sha256=None if scores_only else bundle.file_sha256(model_path),
        reference=bundle.reference_record(table, reference),
        model=external.bundle_model_record(train_record) if scores_only else None,
    )
    checked = bundle.check_against_predictions(spec, predictions)
    if not scores_only:
        check_model(model_path, spec["dim"])
    bundle.write_bundle(
        args.out, model_path=None if scores_only else model_path, spec=spec, reference=reference
    )
    logger.info(
        "wrote %s: dim %d, beta %.5g, shift %s, threshold %.5g on %s (checked on %d predictions)",
        args.out,
        spec["dim"],
        spec["prior_correction"]["beta"],
        spec["prior_correction"]["shift"],
        spec["threshold"]["value"],
        bundle.THRESHOLD_APPLIES_TO,
        checked["examples"],
    )


if __name__ == "__main__":
    runtime.run_main(main)
