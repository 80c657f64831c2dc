"""The pooled logistic baseline: each example's rows mean- and max-pooled into ``2 * dim``
features, standardised, into a logistic regression (scikit-learn's ``LogisticRegression``).

Why it exists: a fast model beside the CNN, so that a team sees whether the CNN earns its
cost on ``dev_b`` at the production prior. It scores through the same path as the CNN
(``batches.score_batches`` calls ``PooledLogistic.forward_log_odds`` on the same padded
batches), so evaluate, bundle and ``score`` treat both alike, and it never imports
TensorFlow.

Saved as JSON, never pickled: the pooling, the standardisation (mean and scale per feature)
and the coefficients and intercept, each float written as Python's ``repr`` (which reads
back to the same float), so a saved model scores the same log-odds after loading and the
same fit gives the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "dsprior.pooled_logistic"
FORMAT_VERSION = 1
POOLING = ("mean", "max")  # the feature blocks, in order: mean of the rows, then their max


def pool_rows(rows: np.ndarray) -> np.ndarray:
    """One example's ``(n_rows, dim)`` rows -> ``[mean over rows, max over rows]`` (float64).

    Every path (training, evaluate, ``score``) pools each example through this function
    alone, on its unpadded rows, so the features are the same bits everywhere.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[0] < 1:
        raise ValueError(f"an example needs a (n_rows >= 1, dim) array of rows, got {rows.shape}")
    rows = rows.astype(np.float64)
    return np.concatenate([rows.mean(axis=0), rows.max(axis=0)])


def pool_padded(features: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A padded ``[batch, rows, dim]`` batch with its lengths -> ``[batch, 2 * dim]`` pooled
    features; the padding (rows past each length) is ignored."""
    features = np.asarray(features)
    lengths = np.asarray(lengths)
    if features.ndim != 3 or lengths.shape != features.shape[:1]:
        raise ValueError(
            f"features must be [batch, rows, dim] with one length per example, got "
            f"{features.shape} and lengths {lengths.shape}"
        )
    return pool_examples(features[i, : int(n)] for i, n in enumerate(lengths.tolist()))


def pool_examples(examples: Iterable[np.ndarray], *, dim: int | None = None) -> np.ndarray:
    """``[n, 2 * dim]`` pooled features of ``(n_rows, dim)`` arrays, in their order."""
    pooled = [pool_rows(rows) for rows in examples]
    if not pooled:
        return np.zeros((0, 2 * (dim or 0)), dtype=np.float64)
    return np.stack(pooled)


@dataclass(frozen=True)
class PooledLogistic:
    """A fitted pooled logistic regression: ``z = ((x - mean) / scale) @ coef + intercept`` on
    the pooled features ``x``, the log-odds of the positive class in float64."""

    dim: int
    mean: np.ndarray  # (2 * dim,), the standardisation fitted on the training rows
    scale: np.ndarray  # (2 * dim,), > 0
    coef: np.ndarray  # (2 * dim,)
    intercept: float

    def __post_init__(self) -> None:
        width = 2 * self.dim
        for name in ("mean", "scale", "coef"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (width,) or not np.isfinite(value).all():
                raise ValueError(
                    f"pooled logistic {name} must hold {width} finite numbers (2 x dim "
                    f"{self.dim}), got shape {value.shape}"
                )
            object.__setattr__(self, name, value)
        if (self.scale <= 0).any():
            raise ValueError("pooled logistic scale must be > 0 for every feature")
        if not math.isfinite(self.intercept):
            raise ValueError(f"pooled logistic intercept must be finite, got {self.intercept!r}")

    def log_odds(self, pooled: np.ndarray) -> np.ndarray:
        """The log-odds (float64) of pooled features ``[n, 2 * dim]``."""
        pooled = np.asarray(pooled, dtype=np.float64)
        # A row-wise sum, not a matrix product: BLAS may sum in another order for another
        # batch size, and an example's log-odds must not depend on the batch it came in.
        return (((pooled - self.mean) / self.scale) * self.coef).sum(axis=1) + self.intercept

    def forward_log_odds(self, features: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The log-odds of a padded batch: what ``batches.forward`` calls for any model."""
        return self.log_odds(pool_padded(features, lengths)).reshape(-1)

    def as_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data (floats exact, written by ``repr``)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dim": int(self.dim),
            "pooling": list(POOLING),
            "scaler": {"mean": self.mean.tolist(), "scale": self.scale.tolist()},
            "coef": self.coef.tolist(),
            "intercept": float(self.intercept),
        }


def fit_pooled_logistic(
    pooled: np.ndarray,
    labels: np.ndarray,
    sample_weight: np.ndarray,
    *,
    dim: int,
    c: float,
    max_iter: int,
) -> PooledLogistic:
    """Standardise the pooled features and fit an L2 logistic regression (lbfgs), both with
    ``sample_weight`` (the loss weights ``train.balance`` asks for, as the CNN uses them).

    ``c`` is scikit-learn's ``C``: the inverse of the L2 penalty's strength.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels).astype(int)
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError("the pooled logistic model needs both labels among the training rows")
    scaler = StandardScaler().fit(pooled, sample_weight=sample_weight)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)  # a constant feature: left as is
    standard = (np.asarray(pooled, dtype=np.float64) - scaler.mean_) / scale
    regression = LogisticRegression(C=c, max_iter=max_iter, solver="lbfgs")
    regression.fit(standard, labels, sample_weight=sample_weight)
    return PooledLogistic(
        dim=dim,
        mean=scaler.mean_,
        scale=scale,
        coef=regression.coef_.reshape(-1),
        intercept=float(regression.intercept_[0]),
    )


def save_model(model: PooledLogistic, path: str | Path) -> None:
    """Write the model as JSON (no pickle)."""
    Path(path).write_text(json.dumps(model.as_dict(), indent=1) + "\n")


def load_model(path: str | Path) -> PooledLogistic:
    """Read a model ``save_model`` wrote; ValueError naming the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pooled logistic model (format must be {FORMAT!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {data.get('format_version')!r} is not supported; this "
            f"code reads {FORMAT_VERSION}"
        )
    if data.get("pooling") != list(POOLING):
        raise ValueError(f"{path}: pooling must be {list(POOLING)}, got {data.get('pooling')!r}")
    try:
        return PooledLogistic(
            dim=int(data["dim"]),
            mean=np.asarray(data["scaler"]["mean"], dtype=np.float64),
            scale=np.asarray(data["scaler"]["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: lacks or mistypes {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
