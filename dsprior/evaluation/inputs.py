"""The evaluate stage's inputs as tables: the evaluated manifest rows, the production priors
and the predictions table the rest of the evaluation is a function of."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from dsprior import priors
from dsprior.evaluation.gold import GOLD, gold_labels, weighted_gold_prior
from dsprior.evaluation.measures import LOGIT, LOGIT_AT_PRIOR

logger = logging.getLogger(__name__)

Split = Literal["dev_a", "dev_b", "test"]
SPLITS: tuple[Split, ...] = ("dev_a", "dev_b", "test")
PREDICTION_COLUMNS = (
    "example_id",
    "split",
    "group",
    "label",
    "weight",
    LOGIT,
    "score",
    LOGIT_AT_PRIOR,
    "probability",
)


def evaluation_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """Kept rows of the evaluated splits, in manifest (dataset) order.

    ``manifest`` has the columns of ``sampling.MANIFEST_SCHEMA`` (``sampling.read_manifest``
    checks them where the stage reads it).
    """
    rows = manifest[manifest["kept"].astype(bool) & manifest["split"].isin(SPLITS)]
    absent = [s for s in SPLITS if not (rows["split"] == s).any()]
    if absent:
        raise ValueError(f"manifest has no kept rows in splits {absent}; evaluate needs {SPLITS}")
    return rows.reset_index(drop=True)


def production_prior_rows(manifest: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows the production prior is estimated from, and a phrase saying which: the kept
    production-ratio rows (upstream rate 1), or every kept row when no source is at the
    production ratio."""
    kept = manifest[manifest["kept"].astype(bool)]
    production = kept[np.isclose(kept["upstream_rate"].to_numpy(np.float64), 1.0)]
    if len(production) and production["label"].nunique() == 2:
        return production, f"production-ratio rows (upstream_rate 1), n={len(production)}"
    logger.warning("no production-ratio rows with both labels; estimating from all kept rows")
    return kept, f"all kept rows, weighted, n={len(kept)}"


def estimate_production_prior(manifest: pd.DataFrame) -> tuple[float, str]:
    """The production prior from ``production_prior_rows``, weighted.

    Returns the prior and a phrase saying where it came from.
    """
    rows, source = production_prior_rows(manifest)
    prior = priors.estimate_prior(rows["label"].to_numpy(), rows["weight"].to_numpy(np.float64))
    return prior, source


def estimate_gold_prior(manifest: pd.DataFrame) -> tuple[float | None, str]:
    """The gold-label production prior, estimated as :func:`estimate_production_prior` does.

    From the gold-labelled production-ratio rows, weighted with the manifest weights
    (which undo every thinning, so they restore the population for any label); falls
    back to every gold-labelled kept row. ``None`` when the gold labels lack a class.
    """
    kept = manifest[manifest["kept"].astype(bool)]
    gold = gold_labels(kept)
    labelled = ~np.isnan(gold)
    if not labelled.any():
        return None, "no gold labels"
    weights = kept["weight"].to_numpy(np.float64)
    production = labelled & np.isclose(kept["upstream_rate"].to_numpy(np.float64), 1.0)
    prior = weighted_gold_prior(np.where(production, gold, np.nan), weights)
    if prior is not None:
        return prior, f"gold-labelled production-ratio rows (upstream_rate 1), n={production.sum()}"
    prior = weighted_gold_prior(gold, weights)
    if prior is None:
        return None, f"the {labelled.sum()} gold labels hold one class only"
    logger.warning("no gold-labelled production-ratio rows with both labels; using all kept rows")
    return prior, f"all gold-labelled kept rows, weighted, n={labelled.sum()}"


def build_predictions(
    rows: pd.DataFrame,
    logits: np.ndarray,
    *,
    beta: float,
    shift: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """The predictions table from the model's log-odds: ``logit`` as the model gave it,
    ``score`` its sigmoid, ``logit_at_prior`` and its sigmoid ``probability`` at the prior.

    The prior correction is a shift in log-odds (``priors.log_odds_at_prior``), and every
    probability is computed from log-odds in float64, so examples a float32 sigmoid would
    tie at 1 keep their order. ``shift=(from_prior, to_prior)`` further moves them when
    ``evaluate.prior`` differs from the prior the weights restore.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape != (len(rows),):
        raise ValueError(f"logits must have shape ({len(rows)},), got {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"{int((~np.isfinite(logits)).sum())} logits are not finite")
    at_prior = priors.log_odds_at_prior(logits, beta=beta, shift=shift)
    out = pd.DataFrame(
        {
            "example_id": rows["example_id"].astype(str).to_numpy(),
            "split": rows["split"].astype(str).to_numpy(),
            "group": rows["group"].astype(str).to_numpy(),
            "label": rows["label"].to_numpy().astype(np.int8),
            "weight": rows["weight"].to_numpy(np.float64),
            LOGIT: logits,
            "score": priors.sigmoid(logits),
            LOGIT_AT_PRIOR: at_prior,
            "probability": priors.sigmoid(at_prior),
        }
    )
    if GOLD in rows.columns:  # the gold label travels with the prediction, null where unlabelled
        out[GOLD] = pd.array(
            [None if np.isnan(g) else int(g) for g in gold_labels(rows)], dtype="Int8"
        )
    return out


def choose_prior(estimated: float, source: str, *, configured: float | None) -> tuple[float, str]:
    """The prior the evaluation uses and where it came from: ``evaluate.prior`` where set."""
    if configured is None:
        return estimated, source
    return float(configured), "evaluate.prior"
