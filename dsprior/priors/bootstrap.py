"""Group-level bootstrap confidence intervals, vectorised: resamples are multiplicity matrices."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from dsprior.priors.checks import (
    check_rate,
)

BOOTSTRAP_CHUNK = 100  # resamples per vectorised step of group_bootstrap


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are resampled (``evaluate.bootstrap``): ``resamples`` draws of whole
    groups, percentile intervals at ``level``, drawn from ``seed``."""

    resamples: int
    level: float
    seed: int


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals and the resampled values they came from."""

    intervals: dict[str, tuple[float, float]]
    samples: dict[str, np.ndarray]
    level: float


def group_bootstrap(
    groups: np.ndarray,
    statistic: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    *,
    resamples: int,
    level: float,
    seed: int | np.random.Generator,
    progress: bool = False,
    chunk: int = BOOTSTRAP_CHUNK,
    strata: np.ndarray | None = None,
) -> BootstrapResult:
    """Percentile bootstrap that resamples whole groups with replacement, vectorised.

    Examples of one entity group are correlated, so resampling examples would
    understate the uncertainty. Each resample draws as many groups as there
    are; ``statistic`` receives a ``[k, n]`` matrix, one row per resample, of each
    example's multiplicity (how many times its group was drawn, often 0), which it
    multiplies into its weights (the same as concatenating the drawn groups' rows),
    and returns ``{name: k values}``. Resamples come ``chunk`` at a time, so memory is
    ``chunk * n`` floats. Resamples where a statistic is undefined (NaN) are left out
    of that statistic's interval. The draws are the same for any ``chunk``.

    ``strata`` (one label per example) resamples each stratum's groups on their own, as
    many as it has: two samples estimated jointly (a batch and the labelled reference it
    is compared with) each keep their size in every resample. A group is then a group
    within its stratum. Without ``strata`` the draws are those of one stratum.
    """
    if int(resamples) < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples!r}")
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk!r}")
    level = check_rate("level", level)
    groups = np.asarray(groups)
    if len(groups) == 0:
        raise ValueError("group_bootstrap needs at least one example")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    codes, sizes = _stratified_codes(groups, strata)
    n_groups = int(sizes.sum())
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    draws: dict[str, list[np.ndarray]] = {}
    starts = range(0, int(resamples), int(chunk))
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="bootstrap", unit="chunk", leave=False)
    for start in starts:
        k = min(int(chunk), int(resamples) - start)
        drawn = (
            rng.integers(0, n_groups, (k, n_groups))
            if len(sizes) == 1
            else np.concatenate(
                [
                    first + rng.integers(0, size, (k, size))
                    for first, size in zip(firsts, sizes, strict=True)
                ],
                axis=1,
            )
        )
        flat = (np.arange(k)[:, None] * n_groups + drawn).ravel()
        counts = np.bincount(flat, minlength=k * n_groups).reshape(k, n_groups)
        values = statistic(counts[:, codes].astype(np.float64))
        for name, value in values.items():
            value = np.asarray(value, dtype=np.float64).reshape(-1)
            if len(value) != k:
                raise ValueError(f"statistic {name!r} gave {len(value)} values for {k} resamples")
            draws.setdefault(name, []).append(value)
    alpha = (1.0 - level) / 2.0
    samples = {name: np.concatenate(values) for name, values in draws.items()}
    intervals = {}
    for name, drawn in samples.items():
        finite = drawn[np.isfinite(drawn)]
        if len(finite) == 0:
            intervals[name] = (float("nan"), float("nan"))
        else:
            low, high = np.quantile(finite, [alpha, 1.0 - alpha])
            intervals[name] = (float(low), float(high))
    return BootstrapResult(intervals=intervals, samples=samples, level=level)


def _stratified_codes(
    groups: np.ndarray, strata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's group code, numbered stratum by stratum, and each stratum's group count."""
    if strata is None:
        _, codes = np.unique(groups, return_inverse=True)
        return codes, np.array([int(codes.max()) + 1])
    strata = np.asarray(strata)
    if strata.shape != groups.shape:
        raise ValueError(f"strata has shape {strata.shape}, groups {groups.shape}: one a row")
    _, stratum = np.unique(strata, return_inverse=True)
    codes = np.empty(len(groups), dtype=np.int64)
    sizes: list[int] = []
    for s in range(int(stratum.max()) + 1):
        rows = stratum == s
        _, within = np.unique(groups[rows], return_inverse=True)
        codes[rows] = sum(sizes) + within
        sizes.append(int(within.max()) + 1)
    return codes, np.array(sizes)
