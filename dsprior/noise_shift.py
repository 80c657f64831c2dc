"""A batch's prior and the threshold's performance when the *true* relation's prior moves.

The label-free estimates of ``dsprior.quantify`` (EM, CBPE) assume that the batch
differs from dev_b by its *distant*-label prior alone: ``P(x | distant label)`` fixed.
In the world the relation's true prior moves, and the distant labels follow through
the KB's noise: a true relation is in the KB with probability ``a = P(distant 1 |
true 1)``, a non-relation is in it with ``b = P(distant 1 | true 0)``. Where these flips
are independent of the features given the truth (class-conditional noise, as the
simulator draws them), ``P(x | true label)`` is what stays fixed, and ``P(x | distant
label)`` moves with the prior. Then, for the bundle's fixed decision rule:

- against the truth, its rates ``tpr = P(decide 1 | true 1)`` and ``fpr = P(decide 1 |
  true 0)`` do not move, so a batch's alert rate ``r = tpr*pi + fpr*(1-pi)`` gives the
  true prior ``pi`` (the adjusted count, Forman 2008, against gold labels), the
  precision ``tpr*pi/r`` and the recall ``tpr``;
- against distant labels, the alerts are true positives (in the KB with probability
  ``a``) and false ones (``b``): precision ``a*prec + b*(1-prec)``, prior
  ``a*pi + b*(1-pi)`` and recall ``(a*pi*tpr + b*(1-pi)*fpr) / (a*pi + b*(1-pi))``.

The rates come from dev_b (the bundle's reference): from its gold-labelled rows, with
their manifest weights, where it has gold labels (``gold_rates``); otherwise from its
distant labels and noise rates a team states (``stated_rates``), which fixes ``a`` and
``b`` and solves for ``tpr`` and ``fpr`` (the distant labels' rates are the two mixtures
above). No calibration enters: only the decisions and the labels do.

``estimate_true_shift`` gives the point estimates and group-bootstrap intervals that
resample the batch and dev_b jointly (each by its own groups, ``priors.group_bootstrap``
with strata), so dev_b's few positives are in every interval; precision, recall and the
distant prior also draw the batch's own decisions and KB labels (``batch_draws``), so
their intervals are for the values labels would measure on this batch. Pure functions
on arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dsprior import priors

if TYPE_CHECKING:
    from dsprior import quantify

PER = priors.PER_EXAMPLES
METHOD_GOLD = (
    "adjusted count against the truth: the alert rate solved for the true prior with the "
    "decision's rates on dev_b's gold labels (the true prior moves, distant labels follow "
    "through class-conditional noise)"
)
METHOD_STATED = (
    "adjusted count against the truth, with the decision's rates on dev_b deconvolved "
    "from its distant labels by the stated noise rates"
)
NOISE_ASSUMPTION = (
    "the distant-label estimates (estimated_prior, estimated_at_threshold) assume the batch "
    "differs from dev_b by its distant-label prior only, P(x | distant label) fixed; when the "
    "true relation's prior moves, distant labels follow through the KB's noise rates and "
    "P(x | distant label) moves with it, which they do not model"
)
NO_GOLD = (
    "the bundle's reference holds no gold labels (true_label) on dev_b, so the noise rates "
    "and the true-label estimates are not available"
)
STATED_PARAM = "evaluate.stated_label_noise"
STATED_KEYS = ("missing_label_rate", "false_label_rate")


@dataclass(frozen=True)
class NoiseReference:
    """dev_b's rows as the true-shift estimate needs them.

    ``decision``: the bundle's rule on each row (calibrated probability at the
    prior >= threshold); ``distant``: the distant label; ``gold``: the gold label, NaN
    where nobody labelled the row (all NaN without gold); ``weight``: the manifest
    weight; ``group``: the entity group, resampled whole.
    """

    decision: np.ndarray
    distant: np.ndarray
    gold: np.ndarray
    weight: np.ndarray
    group: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.decision)
        for name in ("distant", "gold", "weight", "group"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"reference column {name} has {len(getattr(self, name))} rows, not {n}"
                )

    @property
    def gold_labelled(self) -> np.ndarray:
        return ~np.isnan(np.asarray(self.gold, dtype=np.float64))

    def has_gold(self) -> bool:
        """Both gold classes occur among the gold-labelled rows."""
        g = np.asarray(self.gold, dtype=np.float64)[self.gold_labelled]
        return bool(len(g)) and 0.0 in g and 1.0 in g


def _share(
    weights: np.ndarray,
    hit: np.ndarray,
    within: np.ndarray,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Weighted ``P(hit | within)`` for one weight row or a ``[k, n]`` matrix of them.

    With ``rng`` (a bootstrap's resamples), a share of exactly 0 or 1 is replaced by a
    draw from its Jeffreys posterior, ``Beta(k + 1/2, n - k + 1/2)`` on the effective
    count ``n = (sum w)^2 / sum w^2``: a resample can hold no miss where the sample holds
    none, so without it a rate that is 1 on dev_b (every gold positive flagged) would
    have the zero-width interval [1, 1] (docs/methods.md, section 12: percentile bootstrap
    bias at small counts).
    """
    w = weights * within
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.sum(w, axis=-1)
        share = np.sum(w * hit, axis=-1) / total
        if rng is None:
            return share
        n = total**2 / np.sum(w * w, axis=-1)
        edge = (total > 0) & ((share == 0) | (share == 1))
        k = np.where(edge, share * n, 0.0)
        drawn = rng.beta(k + 0.5, np.where(edge, n - k, 0.0) + 0.5)
    return np.where(edge, drawn, share)


def gold_rates(
    decision: np.ndarray,
    distant: np.ndarray,
    gold: np.ndarray,
    weights: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """The decision's and the distant labels' rates against gold labels (rows with gold only).

    ``weights`` may be a ``[k, n]`` matrix (one resample a row). Returns ``tpr``, ``fpr``,
    ``a = P(distant 1 | gold 1)``, ``b = P(distant 1 | gold 0)`` and, for the record,
    ``false_label_rate = P(gold 0 | distant 1)`` (as ``evaluation.gold.label_noise``).
    ``rng``: resamples, whose rates of exactly 0 or 1 are drawn (``_share``).
    """
    g = np.asarray(gold, dtype=np.float64)
    labelled = ~np.isnan(g)
    d, dist = np.asarray(decision, dtype=np.float64), np.asarray(distant, dtype=np.float64)
    pos, neg = labelled & (g == 1), labelled & (g == 0)
    return {
        "tpr": _share(weights, d, pos, rng),
        "fpr": _share(weights, d, neg, rng),
        "a": _share(weights, dist, pos, rng),
        "b": _share(weights, dist, neg, rng),
        "false_label_rate": _share(weights, neg.astype(np.float64), labelled & (dist == 1)),
    }


# A distant-label rate whose 95% interval lies above this is noise that moves with the true
# prior: the coverage benchmark (make coverage) found the label-shift intervals holding at
# or near their level where dev_b's gold labels showed both rates' intervals reaching below
# 5%, and far short (EM's prior and CBPE's precision about 0.8 and 0.65) where either lay above
NOISE_REFUSAL = 0.05
# ... and one whose interval reaches above this may be: dev_b's gold labels are too few to rule
# such noise out. In the benchmark's harsh worlds (30% noise each way) that dev_b's gold
# labels did not flag (their intervals reaching 0.4 and more), the label-shift intervals held
# as little as 1 time in 5; in its clean worlds no rate's interval reached 0.15
NOISE_UNRULED = 0.2


def noisy_labels_reason(
    missing_ci: Sequence[float | None] | None, false_ci: Sequence[float | None] | None
) -> str | None:
    """Why the label-shift intervals (``quantify.LABEL_SHIFT_INTERVALS``) are not printed,
    or None: dev_b's gold labels put the missing- or false-label rate's interval wholly
    above ``NOISE_REFUSAL`` (the labels are noisy), or let it reach above ``NOISE_UNRULED``
    (too few gold labels to rule heavy noise out)."""
    rates = (("missing-label", missing_ci), ("false-label", false_ci))
    found = [
        f"{name} rate's interval starts at {ci[0]:.3f}"
        for name, ci in rates
        if ci and ci[0] is not None and ci[0] > NOISE_REFUSAL
    ]
    after = (
        "when the true prior moves, the distant labels' mix moves with it and these "
        "label-shift intervals do not hold; read estimated_prior_true and "
        "estimated_at_threshold_true (distant_labels: what the distant labels would measure)"
    )
    if found:
        return (
            f"dev_b's gold labels show noisy distant labels ({'; '.join(found)}, above "
            f"{NOISE_REFUSAL}): {after}"
        )
    unruled = [
        f"{name} rate's interval reaches {ci[1]:.3f}"
        for name, ci in rates
        if ci and len(ci) > 1 and ci[1] is not None and ci[1] > NOISE_UNRULED
    ]
    if unruled:
        return (
            f"dev_b's gold labels are too few to rule out noisy distant labels "
            f"({'; '.join(unruled)}, above {NOISE_UNRULED}): if they are noisy, {after}"
        )
    return None


def check_stated_noise(stated: dict[str, Any] | None) -> dict[str, float] | None:
    """``evaluate.stated_label_noise`` checked: None when unset, else both rates in [0, 1).

    Both keys are required; null in both means unset. ValueError names the full key.
    """
    if stated is None:
        return None
    if not isinstance(stated, dict) or set(stated) != set(STATED_KEYS):
        raise ValueError(
            f"{STATED_PARAM} must be a mapping with exactly {list(STATED_KEYS)}, got {stated!r}"
        )
    values = [stated[k] for k in STATED_KEYS]
    if all(v is None for v in values):
        return None
    out = {}
    for key, value in zip(STATED_KEYS, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"{STATED_PARAM}.{key} must be a number in [0, 1) (both set, or both null), "
                f"got {value!r}"
            )
        if not 0 <= float(value) < 1:
            raise ValueError(f"{STATED_PARAM}.{key} must be in [0, 1), got {value!r}")
        out[key] = float(value)
    return out


def stated_rates(
    decision: np.ndarray,
    distant: np.ndarray,
    weights: np.ndarray,
    *,
    missing_label_rate: float,
    false_label_rate: float,
) -> dict[str, np.ndarray]:
    """The decision's rates against the truth, from distant labels and stated noise rates.

    ``missing_label_rate = P(distant 0 | true 1)`` and ``false_label_rate = P(true 0 |
    distant 1)`` on dev_b (the quantities evaluate measures where gold exists) give
    ``a = 1 - missing``, dev_b's true prior ``pi = (1 - false) * pi_d / a`` and
    ``b = false * pi_d / (1 - pi)``. Under class-conditional noise, dev_b's alert shares
    ``A = P(decide 1, distant 1) = a*pi*tpr + b*(1-pi)*fpr`` and ``B = P(decide 1,
    distant 0) = (1-a)*pi*tpr + (1-b)*(1-pi)*fpr`` are solved for ``tpr`` and ``fpr``
    (clipped to [0, 1]); NaN where the stated rates are impossible for dev_b (``pi >= 1``
    or ``a <= b``).
    """
    d, dist = np.asarray(decision, dtype=np.float64), np.asarray(distant, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = np.sum(w, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pi_d = np.sum(w * dist, axis=-1) / total
        alerts_d1 = np.sum(w * d * dist, axis=-1) / total
        alerts_d0 = np.sum(w * d * (1 - dist), axis=-1) / total
        a = np.full_like(pi_d, 1.0 - missing_label_rate)
        pi = (1.0 - false_label_rate) * pi_d / a
        b = false_label_rate * pi_d / (1.0 - pi)
        ok = (pi > 0) & (pi < 1) & (a > b)
        tpr = ((1 - b) * alerts_d1 - b * alerts_d0) / (pi * (a - b))
        fpr = (a * alerts_d0 - (1 - a) * alerts_d1) / ((1 - pi) * (a - b))
    nan = np.nan
    return {
        "tpr": np.where(ok, np.clip(tpr, 0, 1), nan),
        "fpr": np.where(ok, np.clip(fpr, 0, 1), nan),
        "a": np.where(ok, a, nan),
        "b": np.where(ok, b, nan),
        "false_label_rate": np.full_like(pi_d, false_label_rate),
    }


def shift_through_noise(
    alert_rate: np.ndarray | float,
    *,
    tpr: np.ndarray | float,
    fpr: np.ndarray | float,
    a: np.ndarray | float,
    b: np.ndarray | float,
    costs: priors.Costs,
) -> dict[str, np.ndarray]:
    """Everything at a batch's alert rate under a true-prior shift and class-conditional noise.

    Arguments broadcast (a bootstrap passes one value a resample). ``prior`` is the true
    prior (the adjusted count, clipped to [0, 1]; NaN where ``tpr <= fpr``);
    ``precision``/``recall``/``expected_cost`` are against the truth, ``*_distant``
    against distant labels. NaN where undefined (no alerts: no precision).
    """
    r = np.asarray(alert_rate, dtype=np.float64)
    tpr, fpr = np.asarray(tpr, dtype=np.float64), np.asarray(fpr, dtype=np.float64)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pi = np.where(tpr > fpr, np.clip((r - fpr) / (tpr - fpr), 0.0, 1.0), np.nan)
        precision = np.where(r > 0, tpr * pi / r, np.nan)
        prior_distant = a * pi + b * (1 - pi)
        out = {
            "prior": pi,
            "precision": precision,
            "recall": tpr + 0 * pi,
            "alerts_per_1000": PER * r + 0 * pi,
            "expected_cost": PER
            * (pi * (1 - tpr) * costs.false_negative + (1 - pi) * fpr * costs.false_positive),
            "prior_distant": prior_distant,
            "precision_distant": a * precision + b * (1 - precision),
            "recall_distant": (a * pi * tpr + b * (1 - pi) * fpr) / prior_distant,
        }
    return out


def batch_draws(
    prior: np.ndarray,
    *,
    n: np.ndarray,
    alerts: np.ndarray,
    tpr: np.ndarray,
    fpr: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The precision and recall one batch of ``n`` examples would show, its own draws made.

    What labels measure on a batch is a draw, not the rate behind it: which of its true
    positives the rule flags and which negatives it flags by mistake (``tpr``, ``fpr``),
    and which of them the KB holds (``a``, ``b``). No resample of the batch's unlabelled
    examples or of dev_b holds these draws, and at a few dozen positives they move a
    batch's precision by several points. So the intervals of precision and recall (true
    and distant) and of the distant prior are for the values measured on this batch (the
    true prior's is for the batch's prior as it is):

    - precision: the batch's ``alerts`` are seen; which of them are false is the draw.
      ``FP ~ Binomial(negatives, fpr)`` and precision ``1 - FP/alerts``: a batch with more
      false alerts than expected has a lower precision *and* more alerts, which the
      estimate reads as a higher prior, so its error moves by ``1/alerts`` a false alert;
      the KB then holds ``Binomial(alerts - FP, a) + Binomial(FP, b)`` of them;
    - recall and the distant prior: the resample's true positives and negatives (``n *
      prior`` rounded) drawn through the rule and the KB.
    """
    ok = np.isfinite(prior) & np.isfinite(tpr) & np.isfinite(fpr) & np.isfinite(a) & np.isfinite(b)

    def draw(count: np.ndarray, rate: np.ndarray) -> np.ndarray:
        return rng.binomial(count, np.where(ok, np.clip(np.nan_to_num(rate), 0, 1), 0))

    positives = np.where(ok, np.round(np.nan_to_num(n * prior)), 0).astype(np.int64)
    negatives = np.where(ok, np.round(n), 0).astype(np.int64) - positives
    tp, fp = draw(positives, tpr), draw(negatives, fpr)
    in_kb = {  # distant 1 among: true alerts, missed positives, false alerts, silent negatives
        "tp": draw(tp, a),
        "fn": draw(positives - tp, a),
        "fp": draw(fp, b),
        "tn": draw(negatives - fp, b),
    }
    flagged = in_kb["tp"] + in_kb["fp"]
    distant = flagged + in_kb["fn"] + in_kb["tn"]
    seen = np.where(ok, np.round(np.nan_to_num(alerts)), 0).astype(np.int64)
    false_alerts = np.minimum(draw(negatives, fpr), seen)
    alerts_in_kb = draw(seen - false_alerts, a) + draw(false_alerts, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": np.where(ok & (seen > 0), 1.0 - false_alerts / seen, np.nan),
            "recall": np.where(ok & (positives > 0), tp / positives, np.nan),
            "prior_distant": np.where(ok, distant / n, np.nan),
            "precision_distant": np.where(ok & (seen > 0), alerts_in_kb / seen, np.nan),
            "recall_distant": np.where(ok & (distant > 0), flagged / distant, np.nan),
        }


def _interval(bounds: tuple[float, float]) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in bounds]


def _true_prior(value: float, ci: list[float | None]) -> dict[str, Any]:
    """The true prior's value and interval, or its value and why no interval: none where the
    adjusted count is undefined (the rule's true-positive rate on dev_b's gold rows is not
    above its false-positive rate) or every resample gave one value (a bound of the clip:
    the rule flags too few of the batch, or of dev_b's gold positives, to place the prior).
    In the coverage benchmark's two grids, the intervals of an undefined count held the truth
    102 times in 103 by spanning most of [0, 1] (half reached past 0.79 for priors near
    0.003: nothing said), and those of one value 0 times in 33."""
    if not np.isfinite(value):
        return {
            "value": None,
            "ci": [None, None],
            "interval_refused": "the adjusted count is undefined: on dev_b's gold rows the "
            "rule's true-positive rate is not above its false-positive rate",
        }
    low, high = ci
    if low is not None and low == high:
        return {
            "value": value,
            "ci": [None, None],
            "interval_refused": f"every resample put the true prior at {low:.4g}, a bound "
            "of the adjusted count: the rule flags too few of the batch, or of dev_b's gold "
            "positives, to place it",
        }
    return {"value": value, "ci": ci}


def estimate_true_shift(
    decision: np.ndarray,
    reference: NoiseReference,
    *,
    threshold: float,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
    groups: np.ndarray | None = None,
    stated: dict[str, float] | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """The batch's true prior and the threshold's performance against truth and distant labels.

    ``decision``: the bundle's rule on the batch. The rates come from ``reference``'s
    gold-labelled rows, or, with ``stated`` noise rates (``check_stated_noise``), from
    all its rows' distant labels. Intervals: percentile group bootstrap over the batch's
    groups (examples without ``groups``) and dev_b's, resampled jointly, each within its
    own sample. Returns ``estimated_prior_true``, ``estimated_at_threshold_true`` (shaped
    as ``quantify.estimate_batch``'s ``estimated_prior`` and ``estimated_at_threshold``,
    plus the distant-label values under the same shift) and ``label_noise``.
    ``bootstrap``: the resamples, level and seed (not its ``min_positives``); ``rng``, where
    given, draws instead of ``bootstrap.seed``.
    """
    d = priors.check_binary(decision).astype(np.float64)
    if len(d) == 0:
        raise ValueError("estimate_true_shift needs at least one example")
    if stated is None and not reference.has_gold():
        raise ValueError("the reference has no gold labels of both classes; state noise rates")
    ref_rows = (
        np.ones(len(reference.decision), bool) if stated is not None else reference.gold_labelled
    )
    ref_d = np.asarray(reference.decision, dtype=np.float64)[ref_rows]
    ref_dist = np.asarray(reference.distant, dtype=np.float64)[ref_rows]
    ref_gold = np.asarray(reference.gold, dtype=np.float64)[ref_rows]
    ref_w = np.asarray(reference.weight, dtype=np.float64)[ref_rows]
    nb = len(d)

    def rates_of(w_ref: np.ndarray, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        if stated is None:
            return gold_rates(ref_d, ref_dist, ref_gold, w_ref, rng=rng)
        return stated_rates(ref_d, ref_dist, w_ref, **stated)

    flips = np.random.default_rng(
        rng.integers(2**63) if rng is not None else [int(bootstrap.seed), 23]
    )

    def statistic(multiplicity: np.ndarray, *, draw: bool = True) -> dict[str, np.ndarray]:
        batch_w, w_ref = multiplicity[:, :nb], multiplicity[:, nb:] * ref_w
        rates = rates_of(w_ref, flips if draw else None)
        n = np.sum(batch_w, axis=-1)
        r = np.sum(batch_w * d, axis=-1) / n
        kw = {k: rates[k] for k in ("tpr", "fpr", "a", "b")}
        out = shift_through_noise(r, costs=costs, **kw)
        if draw:
            out.update(batch_draws(out["prior"], n=n, alerts=r * n, rng=flips, **kw))
        return {**out, **rates, "missing_label_rate": 1.0 - rates["a"]}

    ones = np.ones((1, nb + len(ref_d)))
    point = {k: float(v[0]) for k, v in statistic(ones, draw=False).items()}
    batch_groups = np.arange(nb).astype(str) if groups is None else np.asarray(groups).astype(str)
    boot = priors.group_bootstrap(
        np.concatenate([batch_groups, np.asarray(reference.group).astype(str)[ref_rows]]),
        statistic,
        resamples=bootstrap.resamples,
        level=bootstrap.level,
        seed=bootstrap.seed if rng is None else rng,
        strata=np.repeat([0, 1], [nb, len(ref_d)]),
    )

    def pair(name: str) -> dict[str, Any]:
        return {"value": point[name], "ci": _interval(boot.intervals[name])}

    interval = (
        f"{int(round(bootstrap.level * 100))}% percentile bootstrap, "
        f"{int(bootstrap.resamples)} resamples of the "
        f"batch's {'groups' if groups is not None else 'examples'} and, jointly, of dev_b's "
        "groups; precision, recall and the distant prior also draw the batch's own decisions "
        "and KB labels (for the values its labels would measure)"
    )
    source = (
        f"dev_b's {int(ref_rows.sum())} gold-labelled rows of {len(ref_rows)}, manifest weights"
        if stated is None
        else f"dev_b's distant labels with the stated rates ({STATED_PARAM}: {stated})"
    )
    return {
        "estimated_prior_true": {
            **_true_prior(point["prior"], _interval(boot.intervals["prior"])),
            "method": METHOD_GOLD if stated is None else METHOD_STATED,
            "interval": interval,
            "cross_check": {
                "distant_prior_implied": pair("prior_distant"),
                "note": "a*prior + b*(1-prior): compare with estimated_prior (EM on distant labels)",
            },
        },
        "estimated_at_threshold_true": {
            "threshold": float(threshold),
            "decisions": "at the bundle's prior",
            "interval": "holds the batch's realised value: each resample draws the batch's own "
            "decisions' truth and KB labels",
            "labels": "the truth (gold); distant_labels: what distant labels would measure",
            **{k: pair(k) for k in ("precision", "recall", "alerts_per_1000", "expected_cost")},
            "distant_labels": {
                "prior": pair("prior_distant"),
                "precision": pair("precision_distant"),
                "recall": pair("recall_distant"),
            },
        },
        "label_noise": {
            "distant_1_given_true_1": pair("a"),
            "distant_1_given_true_0": pair("b"),
            "missing_label_rate": pair("missing_label_rate"),
            "false_label_rate": pair("false_label_rate"),
            "decision_tpr_true": pair("tpr"),
            "decision_fpr_true": pair("fpr"),
            "from": source,
            "stated": stated,
        },
    }


def reference_rows(reference: quantify.Reference, reference_decision: np.ndarray) -> NoiseReference:
    """The bundle's reference as the true-shift estimate needs it: its dev_b rows.

    ``reference_decision``: the bundle's rule on every reference row (dev_a's too,
    where the calibration was fitted there; only dev_b's are kept).
    """
    dev_b = np.asarray(reference.split) == "dev_b"
    gold = (
        np.full(len(dev_b), np.nan)
        if reference.true_label is None
        else np.asarray(reference.true_label, dtype=np.float64)
    )
    return NoiseReference(
        decision=np.asarray(reference_decision)[dev_b],
        distant=np.asarray(reference.label)[dev_b],
        gold=gold[dev_b],
        weight=np.asarray(reference.weight, dtype=np.float64)[dev_b],
        group=np.asarray(reference.group)[dev_b],
    )


def _moves(stated_at: dict[str, Any], estimate: dict[str, Any]) -> dict[str, float | None]:
    """How far the stated-noise distant values lie from the distant-label estimates."""
    prior, at = estimate.get("estimated_prior") or {}, estimate.get("estimated_at_threshold") or {}
    pairs = {
        "prior": (stated_at["distant_labels"]["prior"], prior),
        "precision": (stated_at["distant_labels"]["precision"], at.get("precision") or {}),
        "recall": (stated_at["distant_labels"]["recall"], at.get("recall") or {}),
    }
    out: dict[str, float | None] = {}
    for name, (stated_entry, distant_entry) in pairs.items():
        a, b = stated_entry.get("value"), distant_entry.get("value")
        ok = a is not None and b is not None and np.isfinite(a) and np.isfinite(b)
        out[name] = float(a - b) if ok else None
    return out


def true_shift_record(
    decision: np.ndarray,
    reference: NoiseReference | None,
    *,
    distant_estimate: dict[str, Any],
    stated: dict[str, float] | None,
    threshold: float,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
    groups: np.ndarray | None,
    missing_reason: str | None = None,
) -> dict[str, Any]:
    """The summary keys of the true-label estimate, for ``score --summary`` and evaluate.

    With gold labels on dev_b: ``estimated_prior_true``, ``estimated_at_threshold_true``
    and ``label_noise``. Without: ``true_label_estimate`` (why not), ``noise_assumption``
    (what the distant-label estimates assume) and, where ``stated`` noise rates are
    given, ``noise_sensitivity``: the same estimate under them and how far its
    distant-label values lie from ``distant_estimate`` (``estimated_prior`` /
    ``estimated_at_threshold``).
    """
    kw: dict[str, Any] = {
        "threshold": threshold,
        "costs": costs,
        "bootstrap": bootstrap,
        "groups": groups,
    }
    if reference is not None and reference.has_gold():
        return estimate_true_shift(decision, reference, **kw)
    out: dict[str, Any] = {
        "true_label_estimate": missing_reason or NO_GOLD,
        "noise_assumption": NOISE_ASSUMPTION,
    }
    if stated is None:
        out["noise_sensitivity"] = (
            f"not computed: {STATED_PARAM} is unset (state missing_label_rate and "
            "false_label_rate to see how far the estimates move under them)"
        )
    elif reference is None:
        out["noise_sensitivity"] = "not computed: the bundle holds no dev_b reference"
    else:
        shifted = estimate_true_shift(decision, reference, stated=stated, **kw)
        shifted["distant_estimates_move_by"] = _moves(
            shifted["estimated_at_threshold_true"], distant_estimate
        )
        out["noise_sensitivity"] = shifted
    return out
