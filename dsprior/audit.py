"""The data audit: which of the usual causes of a dev/production gap does the data show?

Reads the manifest and, streaming row group by row group, the dataset's features, and
writes ``audit.md`` (for people) and ``audit.json`` (a DVC metrics file):

- leakage: groups shared between any two splits (kept rows);
- per split: examples, positives, negatives, the ratio, the prior estimated from weights;
- sampling bias: kept versus thinned-away negatives of each thinned split (kept versus
  all, tested on independent samples), by a two-sample KS test on per-example feature
  summaries and the AUC of a cross-validated domain classifier;
- distribution shift: the same comparison between the ratio-adjusted splits (train,
  dev_a) and the production-ratio splits (dev_b, test), per label;
- test size: positives in dev_b and test and the Wilson half-width of precision they allow;
- label noise, where examples carry a gold label (``true_label``): per split, how many
  distant positives gold calls negative and how many gold positives carry no distant
  label, with Wilson intervals;
- a plain-language summary naming the causes found.

A comparison is flagged only when a difference is both large (KS statistic or AUC over
its threshold) and significant (Bonferroni-corrected p-value under ``alpha``), so tiny
samples do not cry wolf and huge ones do not flag trivial differences.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from dsprior import contract, runtime, sampling, settings

log = logging.getLogger(__name__)

SUMMARIES = ("n_rows", "row_mean_mean", "row_mean_std", "row_norm_max")
CAUSES = {
    "test_too_small": "a test set too small",
    "distribution_shift": "a distribution shift",
    "leakage": "leakage",
    "biased_undersampling": "biased undersampling",
    "label_noise": "label noise (gold labels contradict the distant ones)",
}
PROSE = ("summary", "causes")
_SPLITS = settings.ListOf(settings.Choice(*sampling.SPLITS), unique=True)
PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "seed": settings.Integer(minimum=0),
    "alpha": settings.Number(minimum=0, maximum=1, min_open=True, max_open=True),
    "ks_max": settings.Number(minimum=0, min_open=True),
    "domain_auc_max": settings.Number(minimum=0, min_open=True),
    "min_examples": settings.Integer(minimum=1),
    "ci_z": settings.Number(minimum=0, min_open=True),
    "ci_precision": settings.Number(minimum=0, maximum=1, min_open=True),
    "ci_recall": settings.Number(minimum=0, maximum=1, min_open=True),
    "ci_half_width_max": settings.Number(minimum=0, min_open=True),
    "label_noise_max": settings.Number(minimum=0, maximum=1, max_open=True),
    "adjusted_splits": _SPLITS,
    "production_splits": _SPLITS,
}


def summarize_features(
    features: pa.Array | pa.ChunkedArray, *, dim: int, dtype: str = "float16"
) -> np.ndarray:
    """Per example: n_rows, mean and std over rows of the row means, and the largest row norm."""
    rows, offsets = contract.decode_features(features, dim=dim, dtype=dtype)
    values = rows.astype(np.float32)
    n = np.diff(offsets)
    if np.any(n < 1):
        raise ValueError("every example must have at least one row")
    starts = offsets[:-1]
    row_mean = values.mean(axis=1, dtype=np.float64)
    row_norm = np.sqrt(np.einsum("ij,ij->i", values, values, dtype=np.float64))
    mean = np.add.reduceat(row_mean, starts) / n
    var = np.add.reduceat(row_mean**2, starts) / n - mean**2
    return np.column_stack(
        [
            n.astype(np.float64),
            mean,
            np.sqrt(np.maximum(var, 0.0)),
            np.maximum.reduceat(row_norm, starts),
        ]
    )


def feature_summaries(
    dataset_dir: str | Path, example_ids: Sequence[str], *, workers: int | None = None
) -> np.ndarray:
    """Summaries for ``example_ids`` (rows in that order), reading one row group at a time.

    The shards are summarised by ``workers`` threads (default: the cores this process may
    use; pyarrow's reads and numpy's reductions release the GIL), each shard by one thread
    with its own file handle; every summary lands in its example's row, so the result does
    not depend on the number of threads.
    """
    position = {eid: i for i, eid in enumerate(example_ids)}
    out = np.full((len(example_ids), len(SUMMARIES)), np.nan)
    dim, dtype = contract.dataset_dim(dataset_dir), contract.dataset_dtype(dataset_dir)

    def summarize_shard(path: Path) -> int:
        parquet_file = pq.ParquetFile(path)
        for i in range(parquet_file.num_row_groups):
            table = parquet_file.read_row_group(i, columns=[contract.EXAMPLE_ID, contract.FEATURES])
            ids = table.column(contract.EXAMPLE_ID).to_pylist()
            wanted = [(j, position[e]) for j, e in enumerate(ids) if e in position]
            if not wanted:
                continue
            summary = summarize_features(table.column(contract.FEATURES), dim=dim, dtype=dtype)
            rows, targets = map(list, zip(*wanted, strict=True))
            out[targets] = summary[rows]
        return parquet_file.num_row_groups

    shards = contract.shard_paths(dataset_dir)
    workers = runtime.machine_cores() if workers is None else workers
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(shards), desc="audit: feature summaries", unit="shard") as progress,
    ):
        for _ in pool.map(summarize_shard, shards):
            progress.update(1)
    missing = int(np.isnan(out[:, 0]).sum())
    if missing:
        raise ValueError(f"{missing} manifest example ids are not in the dataset {dataset_dir}")
    return out


def compare_samples(
    a: np.ndarray,
    b: np.ndarray,
    *,
    alpha: float,
    ks_max: float,
    domain_auc_max: float,
    min_examples: int,
    seed: int,
) -> dict[str, Any]:
    """Do samples ``a`` and ``b`` (rows: examples, columns: ``SUMMARIES``) differ?

    KS per summary, and the out-of-fold AUC of a logistic regression telling a from b,
    with a one-sided Mann-Whitney p-value on its scores. Flag when a statistic exceeds
    its threshold with a Bonferroni-corrected p-value below ``alpha``.
    """
    result: dict[str, Any] = {"n_a": len(a), "n_b": len(b), "flag": False}
    if min(len(a), len(b)) < min_examples:
        result["skipped"] = f"fewer than {min_examples} examples on one side"
        return result
    n_tests = len(SUMMARIES) + 1
    level = alpha / n_tests
    result["ks"] = {}
    for j, name in enumerate(SUMMARIES):
        test = sps.ks_2samp(a[:, j], b[:, j])
        result["ks"][name] = {"statistic": float(test.statistic), "pvalue": float(test.pvalue)}
    x = np.vstack([a, b])
    y = np.concatenate([np.ones(len(a), dtype=int), np.zeros(len(b), dtype=int)])
    folds = min(5, len(a), len(b))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    score = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, score))
    auc_p = float(sps.mannwhitneyu(score[y == 1], score[y == 0], alternative="greater").pvalue)
    result["domain_auc"] = auc
    result["domain_pvalue"] = auc_p
    worst = max(result["ks"], key=lambda k: result["ks"][k]["statistic"])
    result["largest_ks"] = worst
    result["flag"] = bool(
        any(v["statistic"] > ks_max and v["pvalue"] < level for v in result["ks"].values())
        or (auc > domain_auc_max and auc_p < level)
    )
    return result


def leakage(groups: np.ndarray, splits: np.ndarray) -> dict[str, Any]:
    """Groups shared between each pair of splits, and in total."""
    members = {s: set(groups[splits == s]) for s in sampling.SPLITS}
    pairs = {
        f"{a}-{b}": len(members[a] & members[b])
        for a, b in itertools.combinations(sampling.SPLITS, 2)
    }
    counts: dict[Any, int] = {}
    for s in sampling.SPLITS:
        for g in members[s]:
            counts[g] = counts.get(g, 0) + 1
    shared = {g for g, c in counts.items() if c > 1}
    return {
        "shared_groups": len(shared),
        "examples_in_shared_groups": int(np.isin(groups, list(shared)).sum()) if shared else 0,
        "pairs": pairs,
    }


def split_table(labels: np.ndarray, weights: np.ndarray, splits: np.ndarray) -> dict[str, Any]:
    """Per split (kept rows): counts, the negative:positive ratio and the weighted prior."""
    out = {}
    for s in sampling.SPLITS:
        m = splits == s
        pos = int(np.sum(labels[m] == 1))
        neg = int(np.sum(labels[m] == 0))
        weighted_neg = float(weights[m & (labels == 0)].sum())
        out[s] = {
            "examples": int(m.sum()),
            "positives": pos,
            "negatives": neg,
            "ratio": neg / pos if pos else math.nan,
            "prior": pos / (pos + neg) if pos + neg else math.nan,
            "weighted_negatives": weighted_neg,
            "prior_estimate": pos / (pos + weighted_neg) if pos + weighted_neg else math.nan,
        }
    return out


def precision_resolution(
    positives: Mapping[str, int],
    *,
    z: float,
    precision: float,
    recall: float,
    half_width_max: float,
) -> dict[str, Any]:
    """How precisely the production-ratio splits can measure precision.

    Precision is a proportion over predicted positives; a model with the reference
    ``recall`` and ``precision`` predicts ``positives * recall / precision`` of them.
    """
    smallest = min(positives, key=lambda name: positives[name])
    n_min = positives[smallest]
    predicted = n_min * recall / precision
    half = sampling.wilson_half_width(precision, predicted, z=z)
    needed = math.ceil(
        sampling.trials_for_half_width(precision, half_width_max, z=z) * precision / recall
    )
    return {
        "positives": dict(positives),
        "smallest_split": smallest,
        "smallest_positives": n_min,
        "precision_ci_half_width": half,
        "positives_needed": needed,
        "flag": bool(not half <= half_width_max),  # NaN (no positives) is too small as well
    }


def label_noise(
    labels: np.ndarray,
    gold: np.ndarray,
    splits: np.ndarray,
    *,
    min_examples: int,
    z: float,
    rate_max: float,
) -> dict[str, Any]:
    """Per split with gold labels (NaN where none): how the distant labels err.

    ``false_label_rate`` = P(gold 0 | distant 1), ``missing_label_rate`` = P(distant 0 |
    gold 1), from unweighted counts of the kept rows with Wilson intervals at ``z``. In
    thinned splits distant negatives were thinned away, so there the missing rate reads
    low (the flag errs towards silence); evaluate reports the weighted rates. A split is
    flagged when it has ``min_examples`` gold labels and a rate's lower bound exceeds
    ``rate_max``.
    """
    level = 2 * sps.norm.cdf(z) - 1
    out: dict[str, Any] = {}
    for s in sampling.SPLITS:
        mask = (splits == s) & ~np.isnan(gold)
        if not mask.any():
            continue
        y, distant = gold[mask], labels[mask]
        entry: dict[str, Any] = {"gold_examples": int(mask.sum())}
        lows = []
        for name, given, wrong in (
            ("false_label_rate", distant == 1, y == 0),
            ("missing_label_rate", y == 1, distant == 0),
        ):
            trials, k = int(given.sum()), int((given & wrong).sum())
            if trials == 0:
                entry[name], entry[f"{name}_ci"] = float("nan"), [float("nan")] * 2
                continue
            ci = sps.binomtest(k, trials).proportion_ci(confidence_level=level, method="wilson")
            entry[name], entry[f"{name}_ci"] = k / trials, [float(ci.low), float(ci.high)]
            entry[f"{name}_of"] = trials
            lows.append(float(ci.low))
        entry["flag"] = bool(mask.sum() >= min_examples and any(lo > rate_max for lo in lows))
        out[s] = entry
    return out


@dataclass(frozen=True)
class AuditConfig:
    """The checked ``audit`` section (``PARAMS_SCHEMA`` says what each key allows)."""

    seed: int  # domain-classifier folds
    alpha: float  # significance level, Bonferroni-corrected over a comparison's tests
    ks_max: float
    domain_auc_max: float
    min_examples: int
    ci_z: float
    ci_precision: float
    ci_recall: float
    ci_half_width_max: float
    label_noise_max: float
    adjusted_splits: tuple[str, ...]
    production_splits: tuple[str, ...]


def check_params(params: Mapping[str, Any] | None) -> AuditConfig:
    """The ``audit`` section, every key checked against ``PARAMS_SCHEMA``; else ValueError."""
    p = settings.check_section(params, PARAMS_SCHEMA, "audit")
    splits = {k: tuple(p[k]) for k in ("adjusted_splits", "production_splits")}
    return AuditConfig(**{**p, **splits})


def audit(manifest: pa.Table, summaries: np.ndarray, *, config: AuditConfig) -> dict[str, Any]:
    """All audit numbers and the list of causes found; ``summaries`` align with ``manifest``."""
    p = config
    if len(summaries) != manifest.num_rows:
        raise ValueError(f"summaries have {len(summaries)} rows, manifest {manifest.num_rows}")
    compare = {
        "alpha": p.alpha,
        "ks_max": p.ks_max,
        "domain_auc_max": p.domain_auc_max,
        "min_examples": p.min_examples,
        "seed": p.seed,
    }

    def col(name: str) -> np.ndarray:
        return np.asarray(manifest.column(name).to_numpy(zero_copy_only=False))

    groups = col("group").astype(object)
    splits = col(sampling.SPLIT).astype(object)
    labels = col("label").astype(np.int8)
    kept = col(sampling.KEPT).astype(bool)
    weights = col(sampling.WEIGHT).astype(np.float64)
    rate = col(sampling.DOWNSAMPLE_RATE).astype(np.float64)

    report: dict[str, Any] = {
        "leakage": leakage(groups[kept], splits[kept]),
        "splits": split_table(labels[kept], weights[kept], splits[kept]),
    }
    report["sampling_bias"] = sampling_bias(summaries, splits, labels, kept, rate, compare)
    adjusted = np.isin(splits, p.adjusted_splits)
    production = np.isin(splits, p.production_splits)
    report["shift"] = distribution_shift(summaries, labels, adjusted, production, compare)
    gold = (
        np.asarray(manifest.column(contract.TRUE_LABEL).to_numpy(zero_copy_only=False), float)
        if contract.TRUE_LABEL in manifest.column_names
        else np.full(manifest.num_rows, np.nan)
    )
    report["label_noise"] = label_noise(
        labels[kept],
        gold[kept],
        splits[kept],
        min_examples=p.min_examples,
        z=p.ci_z,
        rate_max=p.label_noise_max,
    )
    report["test_size"] = precision_resolution(
        {s: report["splits"][s]["positives"] for s in p.production_splits},
        z=p.ci_z,
        precision=p.ci_precision,
        recall=p.ci_recall,
        half_width_max=p.ci_half_width_max,
    )
    report["flags"] = flags = cause_flags(report)
    report["causes"] = [c for c in CAUSES if flags[c]]
    report["summary"] = summarize(report)
    return report


def sampling_bias(
    summaries: np.ndarray,
    splits: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    rate: np.ndarray,
    compare: Mapping[str, Any],
) -> dict[str, Any]:
    """Per thinned split: its kept negatives against the thinned-away ones."""
    bias = {}
    for s in sampling.SPLITS:
        neg = (splits == s) & (labels == 0)
        if not np.any(neg & ~kept) and not np.any(neg & (rate < 1)):
            continue
        bias[s] = compare_samples(summaries[neg & kept], summaries[neg & ~kept], **compare)
    return bias


def distribution_shift(
    summaries: np.ndarray,
    labels: np.ndarray,
    adjusted: np.ndarray,
    production: np.ndarray,
    compare: Mapping[str, Any],
) -> dict[str, Any]:
    """Per label: the ratio-adjusted splits' examples against the production splits'."""
    return {
        name: compare_samples(
            summaries[adjusted & (labels == y)], summaries[production & (labels == y)], **compare
        )
        for name, y in (("negatives", 0), ("positives", 1))
    }


def cause_flags(report: Mapping[str, Any]) -> dict[str, bool]:
    """Which of the usual causes (``CAUSES``) the report's numbers show."""
    return {
        "leakage": report["leakage"]["shared_groups"] > 0,
        "biased_undersampling": any(v["flag"] for v in report["sampling_bias"].values()),
        "distribution_shift": any(v["flag"] for v in report["shift"].values()),
        "test_too_small": report["test_size"]["flag"],
        "label_noise": any(v["flag"] for v in report["label_noise"].values()),
    }


def summarize(report: Mapping[str, Any]) -> str:
    """A few plain sentences: which usual causes of a dev/production gap the data shows."""
    found = [CAUSES[c] for c in report["causes"]]
    lines = []
    if found:
        lines.append("The data shows " + ", ".join(found) + ".")
    else:
        lines.append(
            "The data shows none of the usual causes (test set too small, distribution "
            "shift, leakage, biased undersampling, label noise)."
        )
    if report["flags"]["leakage"]:
        lk = report["leakage"]
        lines.append(
            f"{lk['shared_groups']} groups ({lk['examples_in_shared_groups']} examples) "
            "appear in more than one split, so dev scores are optimistic; split by group."
        )
    for s, v in report["sampling_bias"].items():
        if v["flag"]:
            lines.append(
                f"Kept negatives of {s} do not look like all its negatives (largest KS on "
                f"{v['largest_ks']}, domain AUC {v['domain_auc']:.2f}): the sampler is "
                "biased and weighted metrics cannot undo it."
            )
    for name, v in report["shift"].items():
        if v["flag"]:
            lines.append(
                f"The ratio-adjusted {name} differ from the production {name} (largest KS "
                f"on {v['largest_ks']}, domain AUC {v['domain_auc']:.2f}): dev_a results "
                "will not transfer to production even after reweighting."
            )
    for s, v in report["label_noise"].items():
        if v["flag"]:
            lines.append(
                f"Gold labels contradict the distant ones on {s}: "
                f"{100 * v['false_label_rate']:.1f}% of distant positives are false and "
                f"{100 * v['missing_label_rate']:.1f}% of gold positives carry no distant "
                "label, so distant-label precision and recall are off; reports/report.md "
                "sets them beside the gold-label ones."
            )
    ts = report["test_size"]
    if ts["flag"]:
        lines.append(
            f"{ts['smallest_split']} has {ts['smallest_positives']} positives: precision "
            f"is known only to about +/-{ts['precision_ci_half_width']:.2f}; about "
            f"{ts['positives_needed']} positives would be needed for the target width."
        )
    priors = {s: v["prior"] for s, v in report["splits"].items() if v["examples"]}
    estimates = [v["prior_estimate"] for v in report["splits"].values() if v["examples"]]
    if priors and estimates:
        lines.append(
            "Whatever else holds, the splits differ in prior (raw "
            + ", ".join(f"{s} {v:.3f}" for s, v in priors.items())
            + f"; weighted estimates {min(estimates):.4f} to {max(estimates):.4f}): "
            "report precision-type metrics at the production prior, not at the thinned one."
        )
    return " ".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def render_markdown(report: Mapping[str, Any]) -> str:
    """The audit as a short Markdown page."""
    out = ["# Data audit", "", "## Summary", "", report["summary"], ""]
    out += _splits_markdown(report["splits"])
    out += _leakage_markdown(report["leakage"])
    out += _comparison_markdown(
        "Sampling bias: kept vs thinned-away negatives", report["sampling_bias"]
    )
    out += _comparison_markdown(
        "Distribution shift: ratio-adjusted vs production splits", report["shift"]
    )
    if report.get("label_noise"):
        out += _label_noise_markdown(report["label_noise"])
    out += _test_size_markdown(report["test_size"])
    return "\n".join(out)


def _splits_markdown(splits: Mapping[str, Any]) -> list[str]:
    cols = [
        "examples",
        "positives",
        "negatives",
        "ratio",
        "prior",
        "weighted_negatives",
        "prior_estimate",
    ]
    out = ["## Per split (kept rows)", ""]
    out += ["| split | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for s, v in splits.items():
        out.append(f"| {s} | " + " | ".join(_fmt(v[c]) for c in cols) + " |")
    return out


def _leakage_markdown(lk: Mapping[str, Any]) -> list[str]:
    out = [
        "",
        "## Leakage",
        "",
        f"Groups in more than one split: **{lk['shared_groups']}** "
        f"({lk['examples_in_shared_groups']} examples).",
        "",
        "| pair | shared groups |",
        "|---|---|",
    ]
    return out + [f"| {k} | {v} |" for k, v in lk["pairs"].items()]


def _comparison_markdown(title: str, items: Mapping[str, Any]) -> list[str]:
    rows = ["", f"## {title}", ""]
    if not items:
        return rows + ["Nothing to compare."]
    rows += [
        "| compared | n_a | n_b | largest KS | KS p | domain AUC | AUC p | flag |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, v in items.items():
        if "skipped" in v:
            rows.append(f"| {k} | {v['n_a']} | {v['n_b']} | skipped: {v['skipped']} | | | | no |")
            continue
        ks = v["ks"][v["largest_ks"]]
        rows.append(
            f"| {k} | {v['n_a']} | {v['n_b']} | {v['largest_ks']} {_fmt(ks['statistic'])} | "
            f"{_fmt(ks['pvalue'])} | {_fmt(v['domain_auc'])} | {_fmt(v['domain_pvalue'])} | "
            f"{'**yes**' if v['flag'] else 'no'} |"
        )
    return rows


def _label_noise_markdown(noise: Mapping[str, Any]) -> list[str]:
    out = [
        "",
        "## Label noise (where gold labels exist)",
        "",
        "| split | gold-labelled | false labels P(gold 0 \\| distant 1) | "
        "missing labels P(distant 0 \\| gold 1) | flag |",
        "|---|---|---|---|---|",
    ]
    for s, v in noise.items():
        cells = [
            f"{_fmt(v[n])} [{_fmt(v[n + '_ci'][0])}, {_fmt(v[n + '_ci'][1])}]"
            for n in ("false_label_rate", "missing_label_rate")
        ]
        out.append(
            f"| {s} | {v['gold_examples']} | {cells[0]} | {cells[1]} | "
            f"{'**yes**' if v['flag'] else 'no'} |"
        )
    return out


def _test_size_markdown(ts: Mapping[str, Any]) -> list[str]:
    return [
        "",
        "## Test size",
        "",
        "Positives: " + ", ".join(f"{k} {v}" for k, v in ts["positives"].items()) + ".",
        f"Smallest: {ts['smallest_split']} with {ts['smallest_positives']}; precision "
        f"95% CI half-width about {_fmt(ts['precision_ci_half_width'])}; positives needed "
        f"for the target width: {ts['positives_needed']}.",
        "",
    ]
