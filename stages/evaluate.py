"""Evaluate stage: metrics at the production prior, a threshold from dev_b, test with error bars.

Scores ``dev_a``, ``dev_b`` and ``test`` once with the trained model, then hands the
predictions table to the library (``dsprior.evaluation``, whose docstring says what is
measured) and writes what it returns: ``predictions.parquet``, ``metrics.json``,
``report.md`` and one ``evaluate_plots/*.json`` file per picture.

Usage::

    python -m stages.evaluate --params params.yaml --dataset data/dataset \
        --manifest data/manifest.parquet --model-dir models --reports reports
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsprior import external, hardware, modeldir, priors, runtime, sampling, settings
from dsprior.evaluation.config import check_params
from dsprior.evaluation.gold import GOLD
from dsprior.evaluation.inputs import (
    SPLITS,
    choose_prior,
    estimate_gold_prior,
    estimate_production_prior,
    evaluation_rows,
)
from dsprior.evaluation.pipeline import evaluate_predictions, recalibrated_predictions
from dsprior.evaluation.record import Metrics, write_metrics

logger = logging.getLogger(__name__)


def read_manifest(path: Path) -> pd.DataFrame:
    """The manifest as ``sampling.MANIFEST_SCHEMA`` declares it; ``true_label`` may be absent.

    A manifest without gold labels has no ``true_label`` column at all, and evaluates
    without the gold keys.
    """
    return sampling.read_manifest(path, optional=(GOLD,)).to_pandas()


def score_examples(
    model_dir: Path,
    dataset_dir: Path,
    example_ids: list[str],
    *,
    batch_size: int,
    min_rows: int = 1,
    precision: str = "auto",
    onednn: str = "auto",
    compute_record: dict[str, Any] | None = None,
) -> np.ndarray:
    """Load the model folder's model (safe mode) and score ``example_ids`` streaming from Parquet:
    the model's log-odds, float64 (``batches.predict_scores``).

    ``precision``/``onednn`` as in ``dsprior.hardware``: a model trained in bf16 scores in
    bf16 only where the CPU has it natively, in float32 elsewhere. The resolved choice is
    stored into ``compute_record`` when given.
    """
    kind = modeldir.model_kind(modeldir.read_train_record(model_dir))
    if kind != "cnn":  # the baseline scores through the same batches, without TensorFlow
        from dsprior.batches import predict_scores

        if compute_record is not None:
            compute_record.update(model=kind, framework="numpy")
        model = modeldir.load_model(model_dir / modeldir.MODEL_FILES[kind][0])
        return predict_scores(model, dataset_dir, example_ids, batch_size=batch_size)
    hardware.apply_onednn(hardware.machine_compute(precision, onednn))  # before TF's import
    runtime.quiet_tensorflow()
    from dsprior import cnn  # registers the custom layers before loading
    from dsprior.batches import predict_scores

    trained = cnn.load_model(model_dir / modeldir.MODEL_FILE)
    model, compute = cnn.for_this_machine(trained, precision=precision, onednn=onednn)
    if compute_record is not None:
        compute_record.update(compute.record(), model_trained_in=cnn.model_precision(trained))
    return predict_scores(model, dataset_dir, example_ids, batch_size=batch_size, min_rows=min_rows)


def write_outputs(
    reports: Path,
    predictions: pd.DataFrame,
    metrics: Metrics,
    plots: dict[str, list[dict[str, Any]]],
    report: str,
) -> None:
    """Rewrite the stage's outputs under ``reports`` (and nothing else there)."""
    reports.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(reports / "predictions.parquet", index=False)
    write_metrics(reports / "metrics.json", metrics)
    (reports / "report.md").write_text(report)
    plot_dir = reports / "evaluate_plots"
    shutil.rmtree(plot_dir, ignore_errors=True)
    for name, records in plots.items():  # one file per picture: evaluate_plots/cost.json
        runtime.write_json(plot_dir / f"{name}.json", records)


def log_precisions(metrics: Metrics) -> None:
    """Each split's precision as sampled and at the prior, in the log."""
    for split in SPLITS:
        logger.info(
            "%s precision sampled %s, at prior %s",
            split,
            metrics[split]["sample"]["precision"],
            metrics[split]["prior"]["precision"],
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--reports", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime.setup_logging()

    params = settings.load_params(args.params, "evaluate")
    config = check_params(params)
    manifest = read_manifest(args.manifest)
    rows = evaluation_rows(manifest)
    train_info = modeldir.read_train_record(args.model_dir)
    beta = float(train_info["beta"])

    estimated, source = estimate_production_prior(manifest)
    gold_prior, gold_source = estimate_gold_prior(manifest) if GOLD in manifest else (None, None)
    prior, source = choose_prior(estimated, source, configured=config.prior)
    # beta restores the prior of the population train's weights describe; when that differs
    # from the production prior used here, move the probabilities on (Saerens et al. 2002)
    model_prior = train_info.get("production_prior_estimate")
    shift = priors.prior_shift(model_prior=model_prior, prior=prior)
    logger.info("production prior %.5f (%s); beta %.5f; shift %s", prior, source, beta, shift)

    scoring: dict[str, Any] = {}
    if external.is_external(train_info):  # scores made elsewhere, checked by train
        logits = external.read_model_scores(args.model_dir, rows["example_id"].tolist())
        scoring = {"external_scores": train_info[external.RECORD_KEY]}
    else:
        logits = score_examples(
            args.model_dir,
            args.dataset,
            rows["example_id"].tolist(),
            batch_size=config.batch_size,
            min_rows=int(train_info.get("min_rows", 1)),  # pad as train did when it scored
            precision=config.compute.precision,
            onednn=config.compute.onednn,
            compute_record=scoring,
        )
    training_prior = train_info.get("training_prior")
    predictions, calibration, calibration_record = recalibrated_predictions(
        rows, logits, beta=beta, shift=shift, prior=prior, training_prior=training_prior
    )
    metrics, plots, report = evaluate_predictions(
        predictions,
        config=config,
        prior=prior,
        prior_source=source,
        beta=beta,
        gold_prior=gold_prior,
        gold_prior_source=gold_source,
        calibration=calibration,
        training_prior=training_prior,
        extra={
            "calibration": calibration_record,
            "prior_estimated": estimated,
            "prior_of_model": model_prior,
            # what trained the model and what scored it (dsprior.hardware)
            "compute": {"train": train_info.get("compute"), "evaluate": scoring},
        },
    )
    write_outputs(args.reports, predictions, metrics, plots, report)
    log_precisions(metrics)


if __name__ == "__main__":
    runtime.run_main(main)
