"""Argument checks shared by the prior and cost functions: rates, beta, costs, labels, weights."""

from __future__ import annotations

import numpy as np


def check_rate(name: str, value: float, *, closed: bool = False) -> float:
    value = float(value)
    ok = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not ok:
        allowed = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return value


def check_beta(beta: float) -> float:
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0.0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    return beta


def check_costs(cost_fp: float, cost_fn: float) -> tuple[float, float]:
    cost_fp, cost_fn = float(cost_fp), float(cost_fn)
    if not (np.isfinite(cost_fp) and np.isfinite(cost_fn)) or cost_fp < 0 or cost_fn < 0:
        raise ValueError(f"costs must be finite and >= 0, got cost_fp={cost_fp}, cost_fn={cost_fn}")
    if cost_fp + cost_fn == 0:
        raise ValueError("cost_fp and cost_fn are both 0; at least one must be > 0")
    return cost_fp, cost_fn


def check_finite_vector(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as a one-dimensional float64 array of finite numbers (scores, log-odds)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    return v


def check_binary(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise ValueError(f"labels must be 0 or 1, got {np.unique(labels[bad])[:5].tolist()}")
    return labels.astype(np.int8)


def check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise ValueError("weights must be finite and >= 0")
    return weights
