"""How well the label-free estimates do on the committed run's test split, labels hidden.

Reads evaluate's predictions (``reports/predictions.parquet``: raw scores, labels,
groups, weights), ``models/train.json`` and ``reports/metrics.json`` of a finished
run; scores nothing. For each recalibration (the prior correction alone, and the
one evaluate chooses by dev_b's log loss) and each target prior 1:N, it draws
``--replicates`` batches of ``--batch-size`` examples from test at that prior
(positives and negatives drawn with replacement from test's own), estimates each
with ``dsprior.quantify.estimate_batch`` as ``score --summary`` does (dev_b as the
reference), and reports the mean absolute and relative error of the prior and the
interval coverage, for EM and the ACC/PACC cross-checks.

The batches reuse test's 167 positives, so their errors share test's own
calibration error: this measures the estimator with this model's calibration,
not fresh simulator draws (see docs/benchmarks.md, "Label-free estimates").

    python benchmarks/bench_label_free.py   # after `make repro` (or `dvc pull`)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dsprior import calibration as cal
from dsprior import priors, quantify, runtime
from dsprior.evaluation.measures import view_weights
from dsprior.evaluation.recalibration import calibration_offset, fit_recalibration
from tools.measure import provenance
from tools.scratch import ROOT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT, help="a repo with a finished run")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "label_free.json"
    )
    parser.add_argument("--ratios", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--replicates", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)

    predictions = pd.read_parquet(args.run / "reports" / "predictions.parquet")
    train = json.loads((args.run / "models" / "train.json").read_text())
    metrics = json.loads((args.run / "reports" / "metrics.json").read_text())
    prior, beta = float(metrics["prior"]), float(train["beta"])
    shift = priors.prior_shift(model_prior=train.get("production_prior_estimate"), prior=prior)
    # the model's log-odds (a run before issue 23 has only the saturated sigmoid ``score``)
    logits = (
        predictions["logit"].to_numpy(np.float64)
        if "logit" in predictions.columns
        else cal.log_odds(predictions["score"].to_numpy())
    )
    predictions["logit_at_prior"] = priors.log_odds_at_prior(logits, beta=beta, shift=shift)
    predictions["probability"] = priors.sigmoid(predictions["logit_at_prior"].to_numpy())
    chosen, record = fit_recalibration(
        predictions,
        prior=prior,
        training_prior=train.get("training_prior"),
        offset=calibration_offset(beta=beta, shift=shift),
    )
    cost_fp = float(metrics["cost"]["false_positive"])
    cost_fn = float(metrics["cost"]["false_negative"])
    test = predictions[predictions["split"] == "test"]
    y = test["label"].to_numpy()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    p_test = test["probability"].to_numpy(np.float64)
    results: dict[str, object] = {
        "run": str(args.run),
        "prior": prior,
        "calibration": record,
        "batches": {"replicates": args.replicates, "examples": args.batch_size},
        "resamples": args.resamples,
        "test_positives": int(len(pos)),
        "rows": [],
    }
    started = time.perf_counter()
    for name, calibration in (("prior correction only", cal.IDENTITY), ("recalibrated", chosen)):
        dev_b = predictions[predictions["split"] == "dev_b"]
        # the threshold evaluate would choose on dev_b with these log-odds
        z_b = calibration.map_log_odds(dev_b["logit_at_prior"].to_numpy(np.float64))
        cut, _ = priors.cost_minimising_threshold(
            dev_b["label"].to_numpy(),
            z_b,
            view_weights(dev_b, view="prior", prior=prior),
            cost_fp=cost_fp,
            cost_fn=cost_fn,
        )
        threshold = priors.threshold_probability(cut, z_b)
        reference = quantify.reference_from_rows(
            predictions["split"].to_numpy(),
            predictions["group"].to_numpy(),
            predictions["label"].to_numpy(),
            predictions["weight"].to_numpy(np.float64),
            predictions["probability"].to_numpy(np.float64),
            prior=prior,
            training_prior=train.get("training_prior"),
            calibration=calibration,
        )
        for ratio in args.ratios:
            target = 1.0 / (1.0 + ratio)
            rng = np.random.default_rng([args.seed, ratio])
            found: dict[str, list[tuple[float, float, bool, float]]] = {
                "em": [],
                "acc": [],
                "pacc": [],
            }
            for replicate in range(args.replicates):
                k = rng.binomial(args.batch_size, target)
                rows = np.concatenate([rng.choice(pos, k), rng.choice(neg, args.batch_size - k)])
                truth = k / args.batch_size
                out = quantify.estimate_batch(
                    p_test[rows],
                    prior=prior,
                    threshold=threshold,
                    costs=priors.Costs(cost_fp, cost_fn),
                    bootstrap=priors.Bootstrap(args.resamples, 0.95, seed=replicate),
                    calibration=calibration,
                    reference=reference,
                )
                est = out["estimated_prior"]
                entries = {"em": est, **{m: est["cross_check"][m] for m in ("acc", "pacc")}}
                for method, entry in entries.items():
                    low, high = entry["ci"]
                    found[method].append(
                        (entry["value"] - truth, truth, low <= truth <= high, (high - low) / truth)
                    )
            for method, values in found.items():
                err = np.array([v[0] for v in values])
                truth = np.array([v[1] for v in values])
                row = {
                    "calibration": name,
                    "ratio": f"1:{ratio}",
                    "method": method,
                    "mean_abs_error": float(np.mean(np.abs(err))),
                    "mean_rel_error": float(np.mean(np.abs(err) / truth)),
                    "mean_signed_rel_error": float(np.mean(err / truth)),
                    "coverage": float(np.mean([v[2] for v in values])),
                    "mean_ci_width_rel": float(np.mean([v[3] for v in values])),
                }
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    runtime.write_json(args.out, {**results, **provenance()})


if __name__ == "__main__":
    main()
