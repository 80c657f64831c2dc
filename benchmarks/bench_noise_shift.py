"""Issue #23, item 4: label-free precision when the *true* relation's prior moves.

Draws a fresh production source from the default run's world (the same
``generate.seed`` and settings, a new source name, so new examples and entity groups
from the same relation), scores it once with a finished run's bundle (cached under
``benchmarks/work/``), cuts its entity groups into five disjoint parts, and thins each
part to a distant-label prior of 1:226 .. 1:22 by keeping a random share of its *true*
positives or *true* negatives (the distant labels follow through the KB noise, as
docs/methods.md, section 12, describes a prior moving in the world). Each batch is then
estimated, labels hidden, two ways:

- ``dsprior.quantify.estimate_batch`` as ``score --summary`` does (EM and CBPE on
  the distant labels the bundle's threshold was chosen with);
- ``dsprior.noise_shift.estimate_true_shift``: the true prior moves, the distant
  labels follow through noise rates measured on dev_b's gold labels.

dev_b's gold labels and log-odds come from the run's ``reports/predictions.parquet``. Each row of the table
gives the batch's prior, its gold and distant precision at the bundle's threshold, both
estimates with their intervals, and whether the intervals cover.

    python benchmarks/bench_noise_shift.py --run /path/to/a/finished/run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dsprior import noise_shift, priors, quantify, runtime, simulator
from dsprior.bundle import HASH_KEY, Bundle, read_spec
from tools.measure import provenance
from tools.scratch import ROOT

FRESH_SOURCE = "fresh_noise_shift"  # a name the default params do not use: a new random stream
RATIOS = (226, 113, 68, 45, 22)  # distant-label negatives per positive, one batch each


def draw_fresh(params: dict, *, examples: int) -> tuple[simulator.ExampleTable, int]:
    """A new source of the run's simulated world (its seed and settings), and its index."""
    sim = dict(params["generate"])
    sources = dict(sim["sources"])
    sources[FRESH_SOURCE] = {"examples": int(examples), "negative_rate": 1.0}
    sim["sources"] = sources
    config = simulator.check_params(sim)
    tables = simulator.draw_sources(
        config,
        simulator.sources_from_params(sim),
        seed=int(sim["seed"]),
        shared_fraction=float(sim["shared_groups"]),
    )
    return tables[FRESH_SOURCE], list(sources).index(FRESH_SOURCE)


def fresh_scores(
    run: Path, params: dict, *, examples: int, cache: Path, chunk: int = 500
) -> pd.DataFrame:
    """The fresh source's examples with the model's log-odds by the run's bundle (cached)."""
    if cache.is_file():
        frame = pd.read_parquet(cache)
        if len(frame) and frame.attrs.get("examples", str(examples)) == str(examples):
            return frame
    from dsprior.scoring.command import load_compute_bundle

    table, source_index = draw_fresh(params, examples=examples)
    bundle = load_compute_bundle(run / "bundle", precision="auto", onednn="auto")
    from dsprior.scoring.apply import score_arrays

    config = simulator.check_params(dict(params["generate"]))
    seed = int(params["generate"]["seed"])
    scores = np.empty(len(table), dtype=np.float64)
    started = time.perf_counter()
    for lo in range(0, len(table), chunk):
        hi = min(lo + chunk, len(table))
        arrays = [
            rows
            for _, rows in simulator.iter_examples(
                table, config, seed=seed, source_index=source_index, start=lo, stop=hi
            )
        ]
        scores[lo:hi] = score_arrays(
            bundle.model,
            arrays,
            dim=bundle.dim,
            batch_size=64,
            dtype=bundle.spec["dtype"],
            min_rows=int(bundle.spec.get("min_rows", 1)),
        )
        rate = hi / (time.perf_counter() - started)
        print(f"scored {hi}/{len(table)} ({rate:.0f} examples/s)", flush=True)
    frame = pd.DataFrame(
        {
            "example_id": table.example_id.astype(str),
            "group": table.group.astype(str),
            "label": table.label.astype(np.int8),
            "true_label": table.true_label.astype(np.int8),
            "logit": scores,
        }
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(cache, index=False)
    return frame


def thinned_to(part: pd.DataFrame, distant_prior: float, rng: np.random.Generator) -> pd.DataFrame:
    """``part`` with a random share of its true positives (or true negatives) dropped so that
    its distant-label prior is ``distant_prior``: the world's prior moves, labels follow."""
    t, d = part["true_label"].to_numpy(), part["label"].to_numpy()
    n_pos, n_neg = int((t == 1).sum()), int((t == 0).sum())
    pos_d, neg_d = int(((t == 1) & (d == 1)).sum()), int(((t == 0) & (d == 1)).sum())
    q = distant_prior
    pos, neg = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    if (pos_d + neg_d) / len(part) > q:  # too many: keep a share of the true positives
        share = (q * n_neg - neg_d) / (pos_d - q * n_pos)
        pos = rng.choice(pos, size=int(round(share * n_pos)), replace=False)
    else:
        share = (pos_d - q * n_pos) / (q * n_neg - neg_d)
        neg = rng.choice(neg, size=int(round(share * n_neg)), replace=False)
    return part.iloc[np.sort(np.concatenate([pos, neg]))]


def gold_reference(predictions: pd.DataFrame, bundle: Bundle) -> noise_shift.NoiseReference:
    """dev_b's rows with their gold labels, the bundle's decisions on them."""
    dev_b = predictions[predictions["split"] == "dev_b"]
    return noise_shift.NoiseReference(
        decision=bundle.decide(dev_b["logit"].to_numpy(np.float64)),
        distant=dev_b["label"].to_numpy(),
        gold=dev_b["true_label"].to_numpy(np.float64),
        weight=dev_b["weight"].to_numpy(np.float64),
        group=dev_b["group"].to_numpy(),
    )


def reference_counts(ref: noise_shift.NoiseReference) -> dict[str, int]:
    """dev_b's counts behind the true-shift estimate's limits: how many alerts are false
    against gold (what the false positive rate rests on), how many gold positives it flags."""
    labelled = ref.gold_labelled
    gold, alert = ref.gold[labelled], ref.decision[labelled] == 1
    return {
        "gold_labelled": int(labelled.sum()),
        "alerts": int(alert.sum()),
        "false_alerts_gold": int((alert & (gold == 0)).sum()),
        "gold_positives": int((gold == 1).sum()),
        "gold_positives_flagged": int((alert & (gold == 1)).sum()),
    }


def covered_in(rows: list[dict]) -> dict[str, int]:
    """For each interval, in how many of the batches it held."""
    return {key: sum(bool(row["covered"][key]) for row in rows) for key in rows[0]["covered"]}


def _covers(entry: dict, value: float) -> bool:
    low, high = entry["ci"]
    return low is not None and low <= value <= high


def batch_row(
    name: str,
    batch: pd.DataFrame,
    bundle: Bundle,
    noise_ref: noise_shift.NoiseReference,
    *,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
) -> dict:
    """One batch: what its labels say, and both estimates with their intervals."""
    scores = batch["logit"].to_numpy(np.float64)
    decision = bundle.decide(scores)
    groups = batch["group"].to_numpy()
    t, d = batch["true_label"].to_numpy(), batch["label"].to_numpy()
    alerts = decision == 1
    measured = {
        "prior_true": float(t.mean()),
        "prior_distant": float(d.mean()),
        "precision_gold": float(t[alerts].mean()),
        "precision_distant": float(d[alerts].mean()),
        "recall_gold": float(decision[t == 1].mean()),
        "recall_distant": float(decision[d == 1].mean()),
    }
    em = quantify.estimate_batch(
        bundle.prior_corrected(scores),
        prior=bundle.prior,
        threshold=bundle.threshold,
        calibration=bundle.calibration,
        reference=bundle.reference(),
        groups=groups,
        costs=costs,
        bootstrap=bootstrap,
    )
    true = noise_shift.estimate_true_shift(
        decision,
        noise_ref,
        threshold=bundle.threshold,
        groups=groups,
        costs=costs,
        bootstrap=bootstrap,
    )
    at_true = true["estimated_at_threshold_true"]
    estimates = {
        "distant_EM_CBPE": {
            "prior": em["estimated_prior"],
            "precision": em["estimated_at_threshold"]["precision"],
            "recall": em["estimated_at_threshold"]["recall"],
        },
        "true_shift": {
            "prior_true": true["estimated_prior_true"],
            "precision_true": at_true["precision"],
            "recall_true": at_true["recall"],
            "prior_distant": at_true["distant_labels"]["prior"],
            "precision_distant": at_true["distant_labels"]["precision"],
            "recall_distant": at_true["distant_labels"]["recall"],
        },
    }
    for entry in estimates.values():
        for v in entry.values():
            v.pop("method", None), v.pop("interval", None), v.pop("cross_check", None)
    ts, dist = estimates["true_shift"], estimates["distant_EM_CBPE"]
    covered = {
        "true_shift.prior_true": _covers(ts["prior_true"], measured["prior_true"]),
        "true_shift.precision_true": _covers(ts["precision_true"], measured["precision_gold"]),
        "true_shift.precision_distant": _covers(
            ts["precision_distant"], measured["precision_distant"]
        ),
        "true_shift.recall_true": _covers(ts["recall_true"], measured["recall_gold"]),
        "true_shift.recall_distant": _covers(ts["recall_distant"], measured["recall_distant"]),
        "distant_EM_CBPE.precision": _covers(dist["precision"], measured["precision_distant"]),
        "distant_EM_CBPE.prior": _covers(dist["prior"], measured["prior_distant"]),
    }
    return {
        "batch": name,
        "examples": len(batch),
        "alerts": int(alerts.sum()),
        "true_positives": int(t.sum()),
        "measured": measured,
        "estimates": estimates,
        "covered": covered,
        "label_noise": true["label_noise"],
    }


def table_lines(rows: list[dict]) -> list[str]:
    """The acceptance table in markdown."""

    def ci(entry: dict) -> str:
        low, high = entry["ci"]
        return f"{entry['value']:.3f} [{low:.3f}, {high:.3f}]"

    lines = [
        "| batch | examples | true prior | distant prior | gold precision | distant precision "
        "| EM/CBPE precision (distant) | true-shift precision (gold) "
        "| true-shift precision (distant) | covered: EM/CBPE, gold, distant |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m, e, c = row["measured"], row["estimates"], row["covered"]
        lines.append(
            f"| {row['batch']} | {row['examples']} | {m['prior_true']:.4f} | "
            f"{m['prior_distant']:.4f} | {m['precision_gold']:.3f} | "
            f"{m['precision_distant']:.3f} | {ci(e['distant_EM_CBPE']['precision'])} | "
            f"{ci(e['true_shift']['precision_true'])} | "
            f"{ci(e['true_shift']['precision_distant'])} | "
            f"{c['distant_EM_CBPE.precision']}, {c['true_shift.precision_true']}, "
            f"{c['true_shift.precision_distant']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT, help="a repo with a finished run")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "noise_shift.json"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="scores of the fresh source (default: benchmarks/work/, one file per bundle)",
    )
    parser.add_argument("--examples", type=int, default=40_000, help="the fresh source's size")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--score-only", action="store_true", help="fill the cache and stop")
    args = parser.parse_args(argv)
    params = yaml.safe_load((args.run / "params.yaml").read_text())
    spec = read_spec(args.run / "bundle")
    # scores belong to one bundle: a rebuilt bundle never reads another's cache
    cache = args.cache or ROOT / "benchmarks" / "work" / (
        f"noise_shift_scores-{spec[HASH_KEY].split(':')[-1][:16]}.parquet"
    )
    frame = fresh_scores(args.run, params, examples=args.examples, cache=cache)
    if args.score_only:
        return
    started = time.perf_counter()
    bundle = Bundle(args.run / "bundle", spec, model=None)
    predictions = pd.read_parquet(args.run / "reports" / "predictions.parquet")
    noise_ref = gold_reference(predictions, bundle)
    bootstrap = priors.Bootstrap(resamples=args.resamples, level=0.95, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    groups = np.unique(frame["group"].to_numpy())
    part_of = dict(zip(groups, rng.permutation(len(groups)) % len(RATIOS), strict=True))
    parts = frame["group"].map(part_of).to_numpy()
    rows = []
    for k, ratio in enumerate(RATIOS):
        batch = thinned_to(frame[parts == k], 1.0 / (1.0 + ratio), rng)
        row = batch_row(
            f"1:{ratio}", batch, bundle, noise_ref, costs=bundle.costs, bootstrap=bootstrap
        )
        rows.append(row)
        print(json.dumps({"batch": row["batch"], **row["measured"], **row["covered"]}), flush=True)
    lines = table_lines(rows)
    print("\n".join(lines))
    runtime.write_json(
        args.out,
        {
            **provenance(),
            "run": str(args.run),
            "bundle_content_hash": spec.get("content_hash"),
            "fresh_source": {"name": FRESH_SOURCE, "examples": len(frame), "parts": len(RATIOS)},
            "resamples": args.resamples,
            "seed": args.seed,
            "dev_b": reference_counts(noise_ref),
            "covered_in": covered_in(rows),
            "rows": rows,
            "table": lines,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
