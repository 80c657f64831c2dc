"""report.md: the evaluation in markdown, from metrics.json alone.

Sections in order: the run's prior, costs and thresholds; the shipped rule and the
chosen threshold on every split; the classic worked example; the threshold in
production terms; distant against gold labels (where there are gold labels);
calibration, prior sensitivity and the label-free estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from dsprior.evaluation.inputs import SPLITS, Split
from dsprior.evaluation.measures import View
from dsprior.evaluation.record import CalibrationChoice, ClassicExample, Metrics, ViewMetrics
from dsprior.formatting import number as _fmt
from dsprior.formatting import percent as _pct
from dsprior.formatting import with_interval


def _ci(view: Mapping[str, Any], name: str, digits: int = 3) -> str:
    return with_interval(view.get(name), view.get(f"{name}_ci"), digits)


def rule_table(
    metrics: Metrics, view_of: Callable[[Split, View], ViewMetrics], level: int
) -> list[str]:
    """Markdown lines: dev_a as sampled and projected, dev_b and test measured, and the verdict."""
    rows = [
        ("dev_a as sampled", view_of("dev_a", "sample"), "counts"),
        ("dev_a projected to the prior", view_of("dev_a", "prior"), "per 1,000"),
        ("dev_b measured at the prior", view_of("dev_b", "prior"), "per 1,000"),
        ("test measured at the prior", view_of("test", "prior"), "per 1,000"),
    ]
    lines = [
        "| set | precision | recall | F1 | LR+ | expected cost | TP | FP | FN | TN | confusion in |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, view, unit in rows:
        cm: Mapping[str, object] = (
            view["confusion"] if unit == "counts" else view["confusion_per_1000"] or {}
        )
        digits = 0 if unit == "counts" else 1
        lines.append(
            f"| {name} | {_ci(view, 'precision')} | {_ci(view, 'recall')} | {_ci(view, 'f1')} | "
            f"{_fmt(view['lr_plus'], 1)} | {_ci(view, 'expected_cost', 1)} | "
            + " | ".join(_fmt(cm.get(k), digits) for k in ("tp", "fp", "fn", "tn"))
            + f" | {unit} |"
        )
    sampled, proj, test = (view for _, view, _ in (rows[0], rows[1], rows[3]))
    low, high = proj.get("precision_ci") or [None, None]
    measured = test["precision"]
    inside = None if low is None or high is None or measured is None else low <= measured <= high
    verdict = {
        None: "cannot be compared (undefined precision)",
        True: "lies inside",
        False: "lies outside",
    }[inside]
    lines += [
        "",
        f"dev_a as sampled has precision {_fmt(sampled['precision'])}; projected to the prior it "
        f"is {_fmt(proj['precision'])}, {level}% interval [{_fmt(low)}, {_fmt(high)}]. "
        f"Test precision measured at the prior, {_fmt(test['precision'])}, {verdict} that "
        "interval.",
        "",
    ]
    lines[-1:-1] = [
        f"No interval on {name}: {view['interval_refused']}."
        for name, view, _ in rows
        if view.get("interval_refused")
    ]
    if sampled["confusion"].get("fp") == 0:
        lines[-1:-1] = [
            "",
            "dev_a has no false positive under this rule, so its precision interval rests on "
            "Jeffreys' bound for 0 events among dev_a's few negatives: dev_a holds too few "
            "negatives to project precision this far into the tail. Trust dev_b and test here.",
        ]
    return lines


def gold_priors_lines(metrics: Metrics) -> list[str]:
    """The gold section's opening: what gold labels are, both priors and both thresholds."""
    return [
        "## Distant labels against gold labels",
        "",
        "Every number above is measured against the distant-supervision labels. Where examples "
        "also carry a gold label (`true_label`: a person's, or the simulator's truth), the same "
        "rules are measured against gold on the gold-labelled examples only; unlabelled "
        "examples are left out, never counted as negatives.",
        "",
        f"- Production prior from distant labels: {_fmt(metrics['prior'], 4)} "
        f"({metrics.get('prior_source', '')}); from gold labels: "
        f"{_fmt(metrics.get('gold_prior'), 4)} ({metrics.get('gold_prior_source') or 'n/a'}). "
        "Gold metrics at the prior are at the gold-label prior.",
        f"- Threshold chosen on dev_b against **{metrics['threshold_labels']}** labels "
        f"(`evaluate.threshold_labels`); dev_b's cost minimum against distant labels is "
        f"{_fmt(metrics['threshold_by_labels'].get('distant'), 4)}, against gold "
        f"{_fmt(metrics['threshold_by_labels'].get('gold'), 4)}.",
        "",
    ]


def label_noise_table(metrics: Metrics, splits: list[Split], *, level: int) -> list[str]:
    """Per gold-labelled split: how many examples carry gold, and both noise rates."""
    lines = [
        "| split | gold-labelled | of | false labels P(gold 0 \\| distant 1) | "
        "missing labels P(distant 0 \\| gold 1) |",
        "|---|---|---|---|---|",
    ]
    for split in splits:
        gold, noise = metrics[split]["gold"], metrics[split]["label_noise"]
        lines.append(
            f"| {split} | {gold['gold_examples']} | {gold['split_examples']} | "
            f"{_ci(noise, 'false_label_rate')} | {_ci(noise, 'missing_label_rate')} |"
        )
    return [
        *lines,
        "",
        f"Noise rates use the manifest weights; intervals are {level}% Jeffreys on the group "
        "bootstrap's effective count.",
        "",
    ]


def distant_and_gold_table(metrics: Metrics, splits: list[Split]) -> list[str]:
    """dev_b and test: both rules' precision and recall against distant and gold labels."""
    lines = [
        "| split | rule | view | precision, distant | precision, gold | recall, distant | "
        "recall, gold |",
        "|---|---|---|---|---|---|---|",
    ]
    rules = {
        "raw score >= 0.5": lambda m: m["shipped"],
        "chosen threshold": lambda m: m,
    }
    for split in (s for s in ("dev_b", "test") if s in splits):
        for rule, pick in rules.items():
            for view, label in (("sample", "as sampled"), ("prior", "at the prior")):
                d, g = pick(metrics[split])[view], pick(metrics[split]["gold"])[view]
                lines.append(
                    f"| {split} | {rule} | {label} | {_ci(d, 'precision')} | "
                    f"{_ci(g, 'precision')} | {_ci(d, 'recall')} | {_ci(g, 'recall')} |"
                )
    return lines


def partial_gold_note(metrics: Metrics, splits: list[Split]) -> list[str]:
    """A warning where only part of a split is gold-labelled; nothing where all of it is."""
    partial = [
        s
        for s in splits
        if metrics[s]["gold"]["gold_examples"] < metrics[s]["gold"]["split_examples"]
    ]
    if not partial:
        return []
    return [
        f"Only part of {', '.join(partial)} is gold-labelled: there the distant columns "
        "cover the whole split and the gold columns the labelled part only, and the gold "
        "numbers are unbiased only if that part was drawn at random.",
        "",
    ]


NOISE_DIRECTIONS = [
    "Which way the noise moves the distant-label numbers:",
    "",
    "- A **missing label** (the knowledge base lacks a relation the sentences express: "
    "distant 0, gold 1) turns the model's correct alert into a distant-label false "
    "positive, so it pulls distant **precision down**; where the model misses such an "
    "example, distant labels call it a true negative, so distant **recall looks higher** "
    "than it is. At the production prior alerts are few, so a handful of missing labels "
    "among them is a large share of the measured false positives.",
    "- A **false label** (a knowledge-base fact the sentences do not express: distant 1, "
    "gold 0) turns the model's correct silence into a distant-label false negative, so it "
    "pulls distant **recall down**; where the model alerts on it anyway, distant labels "
    "call it a true positive, so distant **precision looks higher** than it is.",
    "",
]


def noise_effect_lines(metrics: Metrics) -> list[str]:
    """The size of the noise's effect on this run's test split, in one paragraph."""
    t, noise = metrics["test"], metrics["test"]["label_noise"]
    d, g = t["prior"], t["gold"]["prior"]

    def gap(name: Literal["precision", "recall"]) -> str:
        distant, gold = d[name], g[name]
        if distant is None or gold is None:
            return "n/a"
        return f"{gold - distant:+.3f}"

    everyone = t["gold"]["gold_examples"] == t["gold"]["split_examples"]
    return [
        "Size of the effect on this run's test split ("
        + (
            "every example gold-labelled, as the built-in simulator does"
            if everyone
            else f"{t['gold']['gold_examples']} of {t['gold']['split_examples']} examples "
            "gold-labelled"
        )
        + f"): {_pct(noise['false_label_rate'])} of distant positives are false and "
        f"{_pct(noise['missing_label_rate'])} of gold positives carry no distant label. "
        f"At the chosen threshold and the prior, precision is {_fmt(d['precision'])} "
        f"against distant labels and {_fmt(g['precision'])} against gold ({gap('precision')}); "
        f"recall {_fmt(d['recall'])} against {_fmt(g['recall'])} ({gap('recall')}).",
        "",
    ]


def gold_section(metrics: Metrics) -> list[str]:
    """Markdown lines: distant- and gold-label precision and recall side by side, and the noise.

    Empty when no split has gold labels.
    """
    splits = [s for s in SPLITS if "gold" in metrics[s]]
    if not splits:
        return []
    level = int(round(metrics["bootstrap"]["level"] * 100))
    return [
        *gold_priors_lines(metrics),
        *label_noise_table(metrics, splits, level=level),
        *distant_and_gold_table(metrics, splits),
        "",
        *partial_gold_note(metrics, splits),
        *NOISE_DIRECTIONS,
        *(noise_effect_lines(metrics) if "test" in splits else []),
    ]


def header_lines(metrics: Metrics, *, level: int) -> list[str]:
    """The title, and the run's prior, prior correction, costs, thresholds and intervals."""
    cost = metrics["cost"]
    return [
        "# Evaluation at the production prior",
        "",
        "Generated by `python -m stages.evaluate`; do not edit by hand.",
        "",
        f"- Production prior: **{_fmt(metrics['prior'], 4)}** "
        f"(1:{_fmt(1 / metrics['prior'] - 1, 0) if metrics['prior'] else 'n/a'}); "
        f"{metrics.get('prior_source', '')}.",
        f"- Prior correction: `p = beta*s / (beta*s - s + 1)` with beta = "
        f"{_fmt(metrics['beta'], 4)} from train"
        + (
            f", then moved from the prior train's weights describe "
            f"({_fmt(metrics['prior_of_model'], 4)}) to this one."
            if metrics.get("prior_of_model") and metrics["prior_of_model"] != metrics["prior"]
            else "."
        ),
        f"- Costs: false positive {cost['false_positive']:g}, false negative "
        f"{cost['false_negative']:g}; expected cost is {cost['unit']}.",
        f"- Threshold chosen on dev_b (minimum expected cost): probability >= "
        f"**{_fmt(metrics['threshold'], 4)}**, compared in log-odds (>= "
        f"{_fmt(metrics.get('threshold_logit'), 3)}) "
        f"(raw score >= {_fmt(metrics['threshold_score'], 4)}); "
        f"Bayes threshold c_FP/(c_FP+c_FN) = {_fmt(metrics['bayes_threshold'], 4)} "
        f"(raw score {_fmt(metrics['bayes_threshold_score'], 4)}); chosen against "
        f"{metrics.get('threshold_labels', 'distant')} labels.",
        f"- Intervals: {level}%, {metrics['bootstrap'].get('method', 'group bootstrap')} "
        f"({metrics['bootstrap']['resamples']} resamples of entity groups).",
        *tied_scores_lines(metrics.get("tied_scores")),
        *external_scores_lines(metrics),
        "",
    ]


def external_scores_lines(metrics: Metrics) -> list[str]:
    """One line where the scores were made outside the pipeline (``train.external_scores``)."""
    evaluate: Mapping[str, Any] = (metrics.get("compute") or {}).get("evaluate") or {}
    record = evaluate.get("external_scores")
    if not record:
        return []
    return [
        f"- Scores: made outside the pipeline, `{record['name']}` ({record['path']}, column "
        f"`{record['column']}`, {record['scale']}, trained at {record['trained_at']}); no model "
        "was trained here, and the bundle holds none."
    ]


def tied_scores_lines(tied: dict[str, Any] | None) -> list[str]:
    """One line: the share of each split's examples (and positives) whose score is tied."""
    if not tied:
        return []
    parts = [
        f"{split} {_pct(entry['tied_share'])} ({_pct(entry['positives_tied_share'])} of "
        f"positives; {entry['distinct']} distinct of {entry['examples']})"
        for split, entry in tied.items()
    ]
    column = next(iter(tied.values()))["column"]
    return [
        f"- Tied scores (examples sharing their `{column}` with another of the split): "
        + "; ".join(parts)
        + "."
    ]


def threshold_free_table(metrics: Metrics) -> list[str]:
    """Per split: AP, ROC AUC, log loss, Brier, and expected cost under each rule."""
    lines = [
        "Threshold-free scores, and expected cost per 1,000 under each rule, at the prior "
        "(probabilities after correction):",
        "",
        "| set | AP as sampled | AP at the prior | ROC AUC | log loss | Brier | "
        "expected cost, chosen | at Bayes threshold | at raw score 0.5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        view = metrics[split]["prior"]
        lines.append(
            f"| {split} | {_fmt(metrics[split]['sample']['average_precision'])} | "
            f"{_fmt(view['average_precision'])} | {_fmt(view['roc_auc'])} | "
            f"{_fmt(view['log_loss'], 4)} | {_fmt(view['brier'], 4)} | "
            f"{_fmt(view['expected_cost'], 1)} | "
            f"{_fmt(metrics[split]['prior_at_bayes_threshold']['expected_cost'], 1)} | "
            f"{_fmt(metrics[split]['shipped']['prior']['expected_cost'], 1)} |"
        )
    return lines


def classic_example_lines(classic: ClassicExample) -> list[str]:
    """Why dev looks better than production: TP 97, FN 3, FP 3, TN 197 projected to 1:100."""
    return [
        "",
        "## Why dev looks better than production: the classic example",
        "",
        "At 1:2 a classifier with TP 97, FN 3, FP 3, TN 197 has precision 97/(97+3) = "
        f"{_fmt(classic['precision_sampled'], 2)} and recall {_fmt(classic['recall'], 2)}. "
        "Production is 1:100, so each negative in the dev set stands for 50: multiply the "
        "negative row by 50 (FP 150, TN 9,850). Recall is unchanged; precision becomes "
        f"97/(97+150) = {_fmt(classic['precision_projected'])}. Siblini et al.'s calibrated "
        f"precision gives the same number ({_fmt(classic['precision_siblini'])}). Recall and "
        "LR+ do not depend on the class ratio; precision, F1, AP and expected cost do.",
        "",
    ]


def production_terms_lines(metrics: Metrics) -> list[str]:
    """The chosen rule per 1,000 production examples (test, at the prior), and the shipped one."""
    terms = metrics["test"]["prior"]
    return [
        "## What the threshold means in production",
        "",
        f"Per 1,000 production examples (test, at the prior), the rule raises "
        f"**{_fmt(terms['alerts_per_1000'], 1)} alerts**, of which "
        f"{_fmt(terms['true_alerts_per_1000'], 1)} are true and "
        f"{_fmt(terms['false_alerts_per_1000'], 1)} false; of "
        f"{_fmt(terms['positives_per_1000'], 1)} positives it misses "
        f"{_fmt(terms['missed_per_1000'], 1)}. Expected cost "
        f"{_ci(terms, 'expected_cost', 1)} per 1,000.",
        "",
        "For comparison, the shipped rule (raw score >= 0.5, which silently assumes a false "
        f"negative costs 1/beta = {_fmt(1 / metrics['beta'] if metrics['beta'] else None, 0)} "
        "false positives) raises "
        f"{_fmt(metrics['test']['shipped']['prior']['alerts_per_1000'], 1)} alerts per 1,000 "
        f"with precision {_fmt(metrics['test']['shipped']['prior']['precision'])}.",
        "",
    ]


def render_report(metrics: Metrics) -> str:
    """reports/report.md: the table, the worked example and the threshold in production terms."""
    level = int(round(metrics["bootstrap"]["level"] * 100))
    lines = [
        *header_lines(metrics, level=level),
        "## What the team saw, and what production gives: the shipped rule (raw score >= 0.5)",
        "",
        *rule_table(metrics, lambda split, view: metrics[split]["shipped"][view], level),
        "## Dev and test at the threshold chosen on dev_b",
        "",
        *rule_table(metrics, lambda split, view: metrics[split][view], level),
        *threshold_free_table(metrics),
        *classic_example_lines(metrics["classic_example"]),
        *production_terms_lines(metrics),
        *gold_section(metrics),
        *label_free_lines(metrics),
    ]
    return "\n".join(lines)


def _est(entry: Mapping[str, Any], digits: int = 3) -> str:
    ci = entry.get("ci") or [None, None]
    text = _fmt(entry.get("value"), digits)
    if None not in ci:
        text += f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"
    return text


def recalibration_lines(record: CalibrationChoice) -> list[str]:
    """The recalibration chosen, and every candidate's dev_b log loss."""
    chosen = record["chosen"]
    return [
        f"Recalibration: **{chosen['method']}**"
        + (f" fitted on {chosen['fitted_on']}" if chosen.get("fitted_on") else "")
        + f" ({record['chosen_by']}); "
        + (
            f"a step map with {len(chosen.get('knots_x') or [])} knots"
            if chosen["method"] == "isotonic"
            else f"slope {_fmt(chosen['slope'])}, intercept {_fmt(chosen['intercept'])}"
        )
        + " on the log-odds of the prior-corrected probability.",
        "",
        "| candidate | fitted on | dev_b log loss | scored |",
        "|---|---|---|---|",
        *(
            f"| {c['method']} | {c['fitted_on'] or '-'} | {_fmt(c['dev_b_log_loss'], 5)} | "
            f"{c['scored_on']} |"
            for c in record["candidates"]
        ),
        "",
    ]


def calibration_table(metrics: Metrics) -> list[str]:
    """Per split: label rate, mean probability and calibration error, before and after."""
    lines = [
        "| split | label rate at the prior | mean probability, prior-corrected | "
        "mean probability, recalibrated | calibration error, prior-corrected | recalibrated |",
        "|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        c = metrics[split].get("calibration_at_prior")
        if not c:
            continue
        b = c.get("before_recalibration") or c
        lines.append(
            f"| {split} | {_fmt(c['label_rate'], 4)} | {_fmt(b['mean_probability'], 4)} | "
            f"{_fmt(c['mean_probability'], 4)} | {_fmt(b['calibration_error'], 4)} | "
            f"{_fmt(c['calibration_error'], 4)} |"
        )
    return [
        *lines,
        "",
        "Calibration error: the weighted mean of |mean probability - observed rate| over "
        "equal-weight bins, with the weights at the prior.",
        "",
    ]


def calibration_lines(metrics: Metrics) -> list[str]:
    """Calibration at the prior: the recalibration (where recorded) and its table."""
    record = metrics.get("calibration")
    return [
        "## Calibration at the prior",
        "",
        *(recalibration_lines(record) if record else []),
        *calibration_table(metrics),
    ]


def prior_sensitivity_lines(metrics: Metrics) -> list[str]:
    """Test at the threshold, weighted to half to twice the prior; nothing where not computed."""
    sensitivity = metrics.get("prior_sensitivity")
    if not sensitivity:
        return []
    return [
        "## Prior sensitivity: test at the threshold, across plausible priors",
        "",
        "The prior is often a guess. The same rule (probability >= threshold) on test, "
        "weighted to half to twice the production prior:",
        "",
        "| prior | x estimate | precision | recall | alerts per 1,000 | expected cost per 1,000 |",
        "|---|---|---|---|---|---|",
        *(
            f"| {_fmt(r['prior'], 4)} | {r['factor']:g} | {_fmt(r['precision'])} | "
            f"{_fmt(r['recall'])} | {_fmt(r['alerts_per_1000'], 1)} | "
            f"{_fmt(r['expected_cost'], 1)} |"
            for r in sensitivity["rows"]
        ),
        "",
    ]


def label_free_estimate_lines(metrics: Metrics) -> list[str]:
    """Each batch's label-free estimates beside its measurements; nothing where not computed."""
    free = metrics.get("label_free")
    if not free:
        return []
    refused = next(iter(free.values()))["estimated_prior"].get("interval_refused")
    lines = [
        "## What the label-free estimate would have said",
        "",
        "Each batch estimated with its labels hidden, as `python -m stages.score --summary` "
        "does: EM on the recalibrated probabilities, ACC and PACC with dev_b's rates, and the "
        "threshold's performance from the probabilities moved to the estimated prior (CBPE). "
        "Intervals resample the batch's groups and dev_b's (the recalibration refitted on "
        "each). dev_b is its own reference (in sample); `test_at_1_N` is test with positives "
        "or negatives subsampled to 1:N.",
        "",
        *(
            [
                f"No interval on the prior (EM, ACC, PACC) or CBPE's precision, recall and "
                f"cost: {refused}.",
                "",
            ]
            if refused
            else []
        ),
        "| batch | examples | measured prior | EM | ACC | PACC | prior shift | KS p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in free.items():
        est, cross = s["estimated_prior"], s["estimated_prior"]["cross_check"]
        lines.append(
            f"| {name} | {s['examples']} | {_fmt(s['measured']['prior'], 4)} | "
            f"{_est(est, 4)} | {_est(cross.get('acc', {}), 4)} | {_est(cross.get('pacc', {}), 4)} | "
            f"{s['drift']['prior_shift']} | {_fmt(s['drift']['p_value'], 3)} |"
        )
    lines += [
        "",
        "| batch | precision measured | estimated | recall measured | estimated | "
        "alerts per 1,000 | cost per 1,000 measured | estimated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in free.items():
        e, m = s["estimated_at_threshold"], s["measured"]
        lines.append(
            f"| {name} | {_fmt(m['precision'])} | {_est(e['precision'])} | {_fmt(m['recall'])} | "
            f"{_est(e['recall'])} | {_fmt(m['alerts_per_1000'], 1)} | "
            f"{_fmt(m['expected_cost'], 1)} | {_est(e['expected_cost'], 1)} |"
        )
    lines.append("")
    return lines


def interval_check_lines(metrics: Metrics) -> list[str]:
    """One line per label-free interval: how often it held what this run's labels measured."""
    checks = metrics.get("label_free_checks")
    if not checks:
        return []
    level = int(round(checks["level"] * 100))
    lines = [
        f"Did the {level}% intervals hold on this run's own data? Each batch above with its "
        "labels hidden, dev_b left out (it is the reference); the batches drawn from test "
        "share its examples, so these checks are not independent (the coverage benchmark, "
        "`make coverage`, measures coverage over many simulated worlds):",
        "",
    ]
    for name, c in checks["intervals"].items():
        if not c["checks"]:
            lines.append(f"- {name}: no interval printed ({', '.join(c['not_checked'])})")
            continue
        line = f"- {name}: the {level}% interval held in {c['held']} of {c['checks']} checks"
        if c["missed"]:
            line += f" (missed: {', '.join(c['missed'])})"
        if c["not_checked"]:
            line += f"; not printed for {', '.join(c['not_checked'])}"
        lines.append(line)
    lines.append("")
    return lines


def true_shift_lines(metrics: Metrics) -> list[str]:
    """The true-label estimate on each batch beside gold and distant labels; nothing without
    gold labels on dev_b."""
    batches = metrics.get("label_free_true_shift")
    if not batches:
        return []
    noise = next(iter(batches.values()))["label_noise"]
    lines = [
        "## When the true prior moves",
        "",
        "The estimates above assume the batch differs from dev_b by its distant-label prior "
        "only. In the world the relation's true prior moves and the distant labels follow "
        "through the KB's noise. Assuming that noise is class-conditional (flips independent "
        "of the features given the truth), each batch's true prior comes from its alert rate "
        "and the rule's rates against dev_b's gold labels, and its precision and recall "
        "against gold and distant labels follow (`dsprior/noise_shift.py`). On dev_b: "
        f"P(distant 1 | true 1) = {_est(noise['distant_1_given_true_1'])}, "
        f"P(distant 1 | true 0) = {_est(noise['distant_1_given_true_0'], 5)}. "
        "`test_true_at_1_N` is test's gold-labelled rows with true positives or negatives "
        "subsampled to 1:N. Intervals resample the batch's groups and dev_b's, and draw the "
        "batch's own decisions and KB labels.",
        "",
        "| batch | examples | true prior | estimated | precision, gold | estimated | "
        "precision, distant | estimated | recall, gold | estimated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in batches.items():
        m, at = s["measured"], s["estimated_at_threshold_true"]
        lines.append(
            f"| {name} | {s['examples']} | {_fmt(m['prior_true'], 4)} | "
            f"{_est(s['estimated_prior_true'], 4)} | {_fmt(m['precision_true'])} | "
            f"{_est(at['precision'])} | {_fmt(m['precision_distant'])} | "
            f"{_est(at['distant_labels']['precision'])} | {_fmt(m['recall_true'])} | "
            f"{_est(at['recall'])} |"
        )
    lines.append("")
    return lines


def label_free_lines(metrics: Metrics) -> list[str]:
    """Markdown: calibration at the prior, and the label-free estimates beside the measurements."""
    return [
        *calibration_lines(metrics),
        *prior_sensitivity_lines(metrics),
        *label_free_estimate_lines(metrics),
        *true_shift_lines(metrics),
        *interval_check_lines(metrics),
    ]
