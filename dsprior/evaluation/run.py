"""The evaluate stage's work, from its files to its files: the model scores the evaluated
rows, the production prior is chosen, and ``pipeline`` measures the predictions.

``evaluate_model`` is what ``stages/evaluate.py`` calls once its arguments and params are
read; ``score_examples`` loads the model in the precision this machine resolves.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsprior import external, hardware, modeldir, priors, runtime, sampling
from dsprior.evaluation.config import check_params
from dsprior.evaluation.gold import GOLD
from dsprior.evaluation.inputs import (
    SPLITS,
    choose_prior,
    estimate_gold_prior,
    estimate_production_prior,
    evaluation_rows,
    production_prior_rows,
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
    hardware.start_tensorflow(precision=precision, onednn=onednn)
    from dsprior import cnn  # registers the custom layers before loading
    from dsprior.batches import predict_scores

    trained = cnn.load_model(model_dir / modeldir.MODEL_FILE)
    model, compute = cnn.for_this_machine(trained, precision=precision, onednn=onednn)
    if compute_record is not None:
        compute_record.update(compute.record(), model_trained_in=cnn.model_precision(trained))
    return predict_scores(model, dataset_dir, example_ids, batch_size=batch_size, min_rows=min_rows)


@dataclass(frozen=True)
class PriorChoice:
    """The production prior evaluate works at, where it came from, and the model's shift."""

    prior: float
    source: str
    estimated: float
    gold_prior: float | None
    gold_source: str | None
    model_prior: float | None
    shift: Any


def choose_production_prior(
    manifest: pd.DataFrame, train_info: Mapping[str, Any], *, configured: Any
) -> PriorChoice:
    """The prior from the manifest (or ``configured``), the gold-label prior where there are
    gold labels, and the shift from the prior train's weights describe to it."""
    estimated, source = estimate_production_prior(manifest)
    gold_prior, gold_source = estimate_gold_prior(manifest) if GOLD in manifest else (None, None)
    prior, source = choose_prior(estimated, source, configured=configured)
    # beta restores the prior of the population train's weights describe; when that differs
    # from the production prior used here, move the probabilities on (Saerens et al. 2002)
    model_prior = train_info.get("production_prior_estimate")
    shift = priors.prior_shift(model_prior=model_prior, prior=prior)
    return PriorChoice(prior, source, estimated, gold_prior, gold_source, model_prior, shift)


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


def evaluate_model(
    params: dict[str, Any], *, dataset: Path, manifest: Path, model_dir: Path, reports: Path
) -> Metrics:
    """Score the evaluated splits with the trained model, measure them at the production
    prior (``params``: the ``evaluate`` section) and write ``reports``; metrics.json's content."""
    config = check_params(params)
    table = read_manifest(manifest)
    rows = evaluation_rows(table)
    train_info = modeldir.read_train_record(model_dir)
    beta = float(train_info["beta"])
    choice = choose_production_prior(table, train_info, configured=config.prior)
    logger.info(
        "production prior %.5f (%s); beta %.5f; shift %s",
        choice.prior,
        choice.source,
        beta,
        choice.shift,
    )

    scoring: dict[str, Any] = {}
    started = time.perf_counter()
    if external.is_external(train_info):  # scores made elsewhere, checked by train
        logits = external.read_model_scores(model_dir, rows["example_id"].tolist())
        scoring = {"external_scores": train_info[external.RECORD_KEY]}
    else:
        logits = score_examples(
            model_dir,
            dataset,
            rows["example_id"].tolist(),
            batch_size=config.batch_size,
            min_rows=int(train_info.get("min_rows", 1)),  # pad as train did when it scored
            precision=config.compute.precision,
            onednn=config.compute.onednn,
            compute_record=scoring,
        )
    # seconds in the log only (outputs stay the same bytes): what the benchmarks compare with
    # the raw forward pass
    scored = time.perf_counter()
    logger.info(
        "scored %d examples in %.1f s (%.0f examples/s)",
        len(rows),
        scored - started,
        len(rows) / max(scored - started, 1e-9),
    )
    training_prior = train_info.get("training_prior")
    predictions, calibration, calibration_record = recalibrated_predictions(
        rows,
        logits,
        beta=beta,
        shift=choice.shift,
        prior=choice.prior,
        training_prior=training_prior,
    )
    metrics, plots, report = evaluate_predictions(
        predictions,
        config=config,
        prior=choice.prior,
        prior_source=choice.source,
        beta=beta,
        gold_prior=choice.gold_prior,
        gold_prior_source=choice.gold_source,
        calibration=calibration,
        training_prior=training_prior,
        # the rows the estimated priors came from: their uncertainty goes into the intervals
        prior_rows=production_prior_rows(table)[0],
        extra={
            "calibration": calibration_record,
            "prior_estimated": choice.estimated,
            "prior_of_model": choice.model_prior,
            # what trained the model and what scored it (dsprior.hardware)
            "compute": {"train": train_info.get("compute"), "evaluate": scoring},
        },
    )
    write_outputs(reports, predictions, metrics, plots, report)
    logger.info("measured and wrote the reports in %.1f s", time.perf_counter() - scored)
    log_precisions(metrics)
    return metrics
