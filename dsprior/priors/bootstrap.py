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
    """How intervals are drawn (``evaluate.bootstrap``): ``resamples`` draws per interval
    (resamples of whole groups, or Jeffreys draws on a rate's effective count,
    ``rate_draws``), intervals at ``level``, drawn from ``seed``. ``min_positives``: a
    split with fewer label-1 examples gets no interval of its rule's precision, recall, F1
    and cost, only the reason (``evaluate.bootstrap.min_positives``; 0: always one).
    ``min_prior_positives``: the same for every split where the prior was estimated from rows
    holding fewer label-1 examples (``evaluate.bootstrap.min_prior_positives``; 0: always
    one)."""

    resamples: int
    level: float
    seed: int
    min_positives: int = 0
    min_prior_positives: int = 0


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


def kish_count(weights: np.ndarray) -> float:
    """Kish's effective number of examples of a weighted mean: ``(sum w)^2 / sum w^2``.

    Equal weights give the plain count; unequal weights (thinned negatives weighted back)
    give fewer, because a few heavy examples carry the estimate.
    """
    weights = np.asarray(weights, dtype=np.float64)
    square = float(np.sum(weights * weights))
    return float(np.sum(weights)) ** 2 / square if square > 0 else 0.0


def effective_count(rate: float, kish: float, variance: float) -> float:
    """The number of independent examples whose binomial variance matches ``variance``, the
    group bootstrap's, at most ``kish`` (a design effect of at least 1); ``kish`` where the
    bootstrap cannot tell (a rate of 0 or 1, whose resamples all agree, or no variance).

    Examples of one entity group err together, so a rate measured on n examples is often
    worth fewer (Korn and Graubard 1998: a binomial interval on the effective count).
    """
    if not (0.0 < rate < 1.0) or not np.isfinite(variance) or variance <= 0.0:
        return float(kish)
    return float(min(kish, rate * (1.0 - rate) / variance))


def jeffreys_draws(rate: float, count: float, *, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draws from the Jeffreys posterior ``Beta(k + 1/2, count - k + 1/2)`` of a rate seen as
    ``k = rate * count`` events in ``count`` examples (NaN where ``count`` is 0 or ``rate``
    undefined).

    Its central interval is Jeffreys' for a proportion (Brown, Cai and DasGupta 2001): near
    its stated coverage at small counts, and never one value, not even at 0 of 5 events,
    where a percentile bootstrap resamples the zero and says [0, 0].
    """
    if not (count > 0) or not np.isfinite(rate):
        return np.full(int(size), np.nan)
    k = float(np.clip(rate, 0.0, 1.0)) * float(count)
    return rng.beta(k + 0.5, float(count) - k + 0.5, size=int(size))


def rate_draws(
    events: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray,
    *,
    size: int,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray]:
    """A weighted rate ``sum(w * events) / sum(w)`` and ``size`` draws of what it may be
    (``rates_draws`` for one rate)."""
    rates, draws = rates_draws(
        np.atleast_2d(events), np.atleast_2d(weights), groups, size=size, rng=rng
    )
    return float(rates[0]), draws[0]


def rates_draws(
    events: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray,
    *,
    size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted rates ``sum(w_i * events_i) / sum(w_i)``, one per row of the ``[r, n]``
    ``events`` and ``weights`` (weight 0 leaves an example out of a rate), and ``size``
    draws of what each may be, ``[r, size]``.

    The draws are Jeffreys' posterior on each rate's effective count: Kish's count of its
    weights, shrunk by the design effect one group bootstrap of the ``n`` examples (``size``
    resamples of whole groups) measures. So a rate keeps the groups' correlation where there
    are events to show it, and at small counts (0 of 5) still says how far it may be from
    what was seen. A rate whose weights sum to 0 is NaN, and so are its draws.
    """
    events = np.asarray(events, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    totals = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals > 0, (weights * events).sum(axis=1) / totals, np.nan)
    draws = np.full((len(rates), int(size)), np.nan)
    if events.shape[1] == 0 or not np.isfinite(rates).any():
        return rates, draws
    weighted = (weights * events).T  # [n, r]

    def statistic(multiplicity: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            resampled = (multiplicity @ weighted) / (multiplicity @ weights.T)  # [k, r]
        return {str(i): resampled[:, i] for i in range(len(rates))}

    boot = group_bootstrap(groups, statistic, resamples=size, level=0.95, seed=rng)
    for i, rate in enumerate(rates):
        resampled = boot.samples[str(i)]
        resampled = resampled[np.isfinite(resampled)]
        variance = float(np.var(resampled)) if len(resampled) else float("nan")
        count = effective_count(float(rate), kish_count(weights[i]), variance)
        draws[i] = jeffreys_draws(float(rate), count, size=size, rng=rng)
    return rates, draws


def draws_interval(point: float, draws: np.ndarray, *, level: float) -> tuple[float, float]:
    """The central ``level`` interval of ``draws``, widened to hold ``point`` (Jeffreys'
    interval at 0 events starts at 0); (nan, nan) where ``point`` is undefined."""
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(point) or len(finite) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - check_rate("level", level)) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(min(low, point)), float(max(high, point))
