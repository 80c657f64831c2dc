"""The Python API: what the pipeline's stages and ``score`` do, in memory, for notebooks and
services. Stable: these names and their keyword arguments keep their meaning across releases.

- :func:`load_bundle` reads a model bundle (``bundle/``); :func:`score_frame` and
  :func:`score_arrays` score examples in memory with it, through ``score``'s own reader, so the
  same examples are refused with the same messages;
- :func:`estimate_batch` is ``score --summary`` for scores already in hand (any model's,
  with the bundle built from them); :func:`estimate_prior` the same estimate without a
  bundle, from a prior, a threshold and costs;
- :func:`evaluate_scores` is evaluate's measurement of one labelled production-ratio set
  (dev_b, test) at the production prior: the cost-minimising threshold, the metrics at it,
  and group-bootstrap intervals.

Every function wraps the pipeline's own code; nothing is computed a second way here. Only
:func:`load_bundle` of a bundle with a model, and the scoring functions, import TensorFlow.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsprior import external, priors
from dsprior.bundle import Bundle, load_bundle_spec
from dsprior.contract import EXAMPLE_ID

__all__ = [
    "Bundle",
    "estimate_batch",
    "estimate_prior",
    "evaluate_scores",
    "load_bundle",
    "score_arrays",
    "score_frame",
]


def load_bundle(path: str | Path, *, model: bool = True) -> Bundle:
    """A model bundle, verified (its fields, content hash and files' sha256).

    ``model=False`` reads it without its model and without TensorFlow: enough for
    :func:`estimate_batch`, and the only way to load a bundle built from external scores
    (which holds no model). ``model=True`` loads the model too: the Keras model in safe mode
    (TensorFlow, set up quietly), or the pooled logistic baseline's JSON (no TensorFlow).

    >>> bundle = load_bundle(bundle_dir, model=False)
    >>> 0 < bundle.prior < 1, bundle.model is None
    (True, True)
    """
    if not model:
        return load_bundle_spec(path)
    from dsprior.bundle import load_bundle as load_with_model

    return load_with_model(path)  # modeldir.load_model sets TensorFlow up for the CNN only


def score_frame(
    bundle: Bundle, frame: pd.DataFrame, *, on_error: str = "fail", batch_size: int = 64
) -> pd.DataFrame:
    """Score a DataFrame of examples in the raw long layout (one row per sentence row:
    ``example_id``, optional ``group`` and ``label``, then the features), as ``score`` would
    score it from a file: one row per example with ``example_id``, ``logit``, ``score``,
    ``probability``, ``decision`` and ``expected_cost``.

    The frame goes through ``score``'s reader, so what ``score`` refuses is refused here with
    the same message, naming the frame's 0-based row; ``on_error="quarantine"`` skips bad
    examples instead, as ``score --on-error quarantine`` does.

    >>> rows = pd.DataFrame(np.zeros((3, bundle.dim)), columns=[f"f{j}" for j in range(bundle.dim)])
    >>> rows.insert(0, "example_id", ["a", "a", "b"])
    >>> out = score_frame(bundle, rows)
    >>> out["example_id"].tolist(), sorted(set(out["decision"]) | {0, 1})
    (['a', 'b'], [0, 1])
    """
    from dsprior.rawio import RawDataError
    from dsprior.scoring import read_scores, score_file

    if bundle.model is None:
        external.refuse_external_bundle(bundle.path, bundle.spec)
        raise ValueError(f"{bundle.path}: loaded without its model; use load_bundle(path)")
    with tempfile.TemporaryDirectory(prefix="dsprior-api-") as tmp:
        source, output = Path(tmp) / "frame.parquet", Path(tmp) / "scores.parquet"
        frame.to_parquet(source, index=False)
        try:
            score_file(
                bundle, source, output, on_error=on_error, batch_size=batch_size, progress=False
            )
        except RawDataError as exc:  # the same message, naming the frame instead of the file
            raise ValueError(str(exc).replace(str(source), "the DataFrame")) from None
        return read_scores(output).to_pandas()


def score_arrays(
    bundle: Bundle,
    arrays: Sequence[np.ndarray],
    *,
    example_ids: Sequence[str] | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Score examples given as ``(rows, dim)`` arrays (ids ``0, 1, ...`` unless given), through
    :func:`score_frame`: the same checks, messages and output columns.

    >>> out = score_arrays(bundle, [np.zeros((4, bundle.dim)), np.ones((2, bundle.dim))])
    >>> out["example_id"].tolist()
    ['0', '1']
    """
    ids = [str(i) for i in range(len(arrays))] if example_ids is None else list(example_ids)
    if len(ids) != len(arrays):
        raise ValueError(f"example_ids has {len(ids)} ids for {len(arrays)} arrays")
    blocks = []
    for example_id, rows in zip(ids, arrays, strict=True):
        rows = np.atleast_2d(np.asarray(rows))
        block = pd.DataFrame(rows, columns=[f"f{j}" for j in range(rows.shape[1])])
        block.insert(0, EXAMPLE_ID, example_id)
        blocks.append(block)
    return score_frame(bundle, pd.concat(blocks, ignore_index=True), batch_size=batch_size)


def estimate_batch(
    bundle: Bundle,
    scores: np.ndarray,
    *,
    example_ids: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    labels: Sequence[int | None] | None = None,
    resamples: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """``score --summary`` for one batch of scores in hand: its prior estimated without labels
    (EM, with an interval and the ACC/PACC cross-check), precision, recall, alerts and cost at
    the bundle's threshold at that prior, and drift against dev_b.

    ``scores`` are what the bundle maps: a CNN bundle's model log-odds (``score_frame``'s
    ``logit``), or for a bundle built from external scores, that model's scores in the scale
    it declared (``bundle.spec["model"]["scale"]``). ``groups`` are resampled whole;
    ``labels``, where given, are measured beside the estimates. Needs no TensorFlow.

    >>> summary = estimate_batch(bundle, np.linspace(-6, 2, 200), resamples=20)
    >>> summary["examples"], 0 <= summary["estimated_prior"]["value"] <= 1
    (200, True)
    """
    from dsprior.scoring import BatchRecord, batch_summary, scores_column
    from dsprior.scoring.summary import bootstrap_settings

    values = np.asarray(scores, dtype=np.float64)
    n = len(values)
    table = pd.DataFrame(
        {
            external.ID: [str(i) for i in range(n)] if example_ids is None else list(example_ids),
            "score": values,
        }
    )
    _, scale = scores_column(bundle.spec)
    external.check_values(table, path="scores", scale=scale)
    record = BatchRecord(
        example_ids=table[external.ID].tolist(),
        groups=[None] * n if groups is None else [str(g) for g in groups],
        labels=[None] * n if labels is None else list(labels),
    )
    summary, _ = batch_summary(
        bundle,
        external.to_log_odds(values, scale=scale),
        record,
        bootstrap=bootstrap_settings(bundle, resamples=resamples, seed=seed),
    )
    return summary


def estimate_prior(
    log_odds: np.ndarray,
    *,
    prior: float,
    threshold: float,
    cost_fp: float,
    cost_fn: float,
    groups: Sequence[str] | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """A batch's prior and the threshold's performance at it, without labels and without a
    bundle (``dsprior.quantify.estimate_batch``): ``log_odds`` are calibrated log-odds at
    ``prior``; ``threshold`` is the probability the decisions compare. No cross-check or
    drift test (they need a bundle's dev_b reference).

    >>> z = np.r_[np.full(90, -4.0), np.full(10, 3.0)]
    >>> out = estimate_prior(z, prior=0.05, threshold=0.5, cost_fp=1, cost_fn=10, resamples=50)
    >>> round(out["estimated_prior"]["value"], 2)
    0.15
    """
    from dsprior import quantify

    return quantify.estimate_batch(
        log_odds=np.asarray(log_odds, dtype=np.float64),
        prior=prior,
        threshold=threshold,
        costs=priors.Costs(cost_fp, cost_fn),
        bootstrap=priors.Bootstrap(resamples, level, seed),
        groups=None if groups is None else np.asarray(groups),
    )


def evaluate_scores(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    prior: float,
    cost_fp: float,
    cost_fn: float,
    weights: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
    scale: str = "probability",
    beta: float = 1.0,
    threshold: float | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    min_positives: int = 10,
) -> dict[str, Any]:
    """Evaluate's measurement of one labelled set at the production prior: the threshold that
    minimises expected cost there (or ``threshold``, a probability, applied unchanged), the
    metrics of the rule ``probability >= threshold`` with the set's examples weighted to
    ``prior``, and intervals of precision, recall, F1 and cost (evaluate's method). With
    fewer than ``min_positives`` label-1 examples, ``intervals`` is None and
    ``interval_refused`` says why (as evaluate's ``evaluate.bootstrap.min_positives``).

    ``scores``: probabilities or log-odds (``scale``) that ``beta`` moves to the production
    prior (1: already there; a model trained on negatives kept at rate b: b). ``weights``:
    how many production examples each one stands for (default 1 each); ``groups``: the
    entity groups the bootstrap resamples whole (default: each example its own).

    >>> y = np.r_[np.zeros(80, int), np.ones(20, int)]
    >>> p = np.r_[np.linspace(0.01, 0.6, 80), np.linspace(0.3, 0.99, 20)]
    >>> out = evaluate_scores(y, p, prior=0.2, cost_fp=1, cost_fn=10, resamples=50)
    >>> sorted(out), round(out["metrics"]["recall"], 2)
    (['bayes_threshold', 'intervals', 'metrics', 'threshold'], 1.0)
    """
    from dsprior.evaluation.inputs import build_predictions
    from dsprior.evaluation.measures import (
        bootstrap_intervals,
        decisions_at,
        interval_refusal,
        view_metrics,
        view_weights,
    )

    y = priors.check_binary(labels)
    n = len(y)
    table = pd.DataFrame({external.ID: [str(i) for i in range(n)], "score": scores})
    external.check_values(table, path="scores", scale=scale)
    rows = pd.DataFrame(
        {
            EXAMPLE_ID: table[external.ID],
            "split": "evaluated",
            "group": table[external.ID] if groups is None else [str(g) for g in groups],
            "label": y,
            "weight": priors.check_weights(weights, n),
        }
    )
    frame = build_predictions(
        rows, external.to_log_odds(table["score"].to_numpy(), scale=scale), beta=beta
    )
    if threshold is None:  # dev_b's rule: the cut over the log-odds at the prior
        z = frame["logit_at_prior"].to_numpy()
        cut, _ = priors.cost_minimising_threshold(
            y, z, view_weights(frame, view="prior", prior=prior), cost_fp=cost_fp, cost_fn=cost_fn
        )
        threshold = priors.threshold_probability(cut, z)
    costs = priors.Costs(cost_fp, cost_fn)
    bootstrap = priors.Bootstrap(resamples, level, seed, min_positives)
    refused = interval_refusal(frame, labels="the given", bootstrap=bootstrap)
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "bayes_threshold": priors.bayes_threshold(cost_fp=cost_fp, cost_fn=cost_fn),
        "metrics": view_metrics(frame, view="prior", prior=prior, threshold=threshold, costs=costs),
        "intervals": None
        if refused is not None
        else bootstrap_intervals(
            frame, decisions_at(frame, threshold), prior=prior, costs=costs, bootstrap=bootstrap
        ),
    }
    if refused is not None:
        out["interval_refused"] = refused
    return out
