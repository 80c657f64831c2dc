"""A bundle applied to examples: the model's log-odds and raw scores, probabilities at the
prior, decisions (compared in log-odds) and expected costs, as the output's rows.

Pure functions on arrays and tables, apart from the model call in ``score_arrays``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import logit

from dsprior import contract, priors
from dsprior.batches import pad_batch, score_batches
from dsprior.bundle import Bundle
from dsprior.scoring.output import OUTPUT_SCHEMA


def expected_costs(
    probability: np.ndarray, decision: np.ndarray, *, costs: priors.Costs
) -> np.ndarray:
    """Each example's expected cost: ``(1-p) c_FP`` if flagged (a possible false alarm), else ``p c_FN``."""
    p = np.asarray(probability, dtype=np.float64)
    flagged = np.asarray(decision).astype(bool)
    if p.shape != flagged.shape:
        raise ValueError(f"probability and decision shapes differ: {p.shape} vs {flagged.shape}")
    cost_fp, cost_fn = costs.false_positive, costs.false_negative
    if cost_fp < 0 or cost_fn < 0:
        raise ValueError(f"costs must be >= 0, got cost_fp={cost_fp}, cost_fn={cost_fn}")
    return np.where(flagged, (1.0 - p) * cost_fp, p * cost_fn)


def score_arrays(
    model: Any,  # a Keras model
    arrays: Sequence[np.ndarray],
    *,
    dim: int,
    batch_size: int,
    dtype: str = "float16",
    min_rows: int = 1,
) -> np.ndarray:
    """The model's log-odds (float64) of ``(n_rows, dim)`` arrays, in their order; batches are
    bucketed by length.

    Values are first rounded to ``dtype`` (what the dataset stored at training time).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if dtype not in contract.DTYPES:
        raise ValueError(f"dtype must be one of {sorted(contract.DTYPES)}, got {dtype!r}")
    numpy_dtype = np.float16 if dtype == "float16" else np.float32
    lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
    order = np.argsort(lengths, kind="stable")

    def length_buckets() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            rows = [arrays[i].astype(numpy_dtype, copy=False) for i in idx]
            yield (idx, *pad_batch(rows, dim=dim, min_rows=min_rows))

    # The one scoring path (batches.score_batches), as for the dataset on disk.
    return score_batches(model, length_buckets(), len(arrays), dim=dim)


def output_table(
    bundle: Bundle,
    example_ids: pa.Array | pa.ChunkedArray,
    logits: np.ndarray,
    probability: np.ndarray,
    decision: np.ndarray,
) -> pa.Table:
    """The output rows for these probabilities and decisions: expected costs beside them."""
    raw = np.asarray(logits, dtype=np.float64)
    columns = [
        example_ids,
        pa.array(raw, pa.float64()),
        pa.array(priors.sigmoid(raw), pa.float64()),
        pa.array(probability, pa.float64()),
        pa.array(decision, pa.int8()),
        pa.array(
            expected_costs(probability, decision, costs=bundle.costs),
            pa.float64(),
        ),
    ]
    return pa.Table.from_arrays(columns, schema=OUTPUT_SCHEMA)


def score_table(bundle: Bundle, example_ids: Sequence[str], logits: np.ndarray) -> pa.Table:
    """The output rows: id, the model's log-odds and raw score, probability at the prior,
    decision (compared in log-odds), expected cost."""
    return output_table(
        bundle,
        pa.array(list(example_ids), pa.string()),
        logits,
        bundle.probability(logits),
        bundle.decide(logits),
    )


def adapted_table(bundle: Bundle, table: pa.Table, moved: np.ndarray) -> pa.Table:
    """``table`` (the output as written) with probabilities ``moved`` to the estimated prior,
    and the decisions (their log-odds against the bundle's) and expected costs they give."""
    with np.errstate(divide="ignore"):
        decision = (logit(np.asarray(moved, np.float64)) >= bundle.threshold_logit).astype(np.int8)
    return output_table(
        bundle, table.column("example_id"), table.column("logit").to_numpy(), moved, decision
    )
