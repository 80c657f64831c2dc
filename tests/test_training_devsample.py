"""dev_a's evaluation sample (``dsprior.training.devsample``) and the decisions around it
(``callback.StepCurves``): the draw is stratified and stands for all of dev_a, its interval
scores equal scikit-learn's on each resample, the whole of dev_a is scored only where a
decision is made, and a run with a sample resumes to the uninterrupted result."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from dsprior.training import devsample
from dsprior.training.callback import CurveSchedule, StepCurves
from dsprior.training.curves import open_live
from dsprior.training.scores import classification_scores
from tests.test_training_loop import StepCounter, curve, curve_files, run


def dev_rows(n_neg=600, n_pos=300, n_prod=100, seed=0):
    rng = np.random.default_rng(seed)
    parts = [
        ("pool", 0, n_neg, 20.0),
        ("pool", 1, n_pos, 1.0),
        ("production", 0, n_prod, 1.0),
        ("production", 1, 3, 1.0),
    ]
    frames = [
        pd.DataFrame({"source": src, "label": label, "weight": weight, "x": rng.normal(size=n)})
        for src, label, n, weight in parts
    ]
    rows = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=1)
    rows["example_id"] = [f"e{i:05d}" for i in range(len(rows))]
    return rows.reset_index(drop=True)


def test_allocation_is_proportional_sums_to_the_size_and_keeps_every_stratum():
    sizes = np.array([600, 300, 100, 3])
    counts = devsample.allocate(sizes, 100)
    assert counts.sum() == 100
    assert (counts >= 1).all() and (counts <= sizes).all()
    np.testing.assert_allclose(counts[:3], 100 * sizes[:3] / sizes.sum(), atol=1.0)
    assert devsample.allocate(np.array([5, 1]), 3).tolist() == [2, 1]  # the small one kept
    assert devsample.allocate(sizes, 5000).tolist() == sizes.tolist()  # all of each


def test_the_sample_is_stratified_fixed_and_stands_for_all_of_dev_a():
    rows = dev_rows()
    sample = devsample.draw_dev_sample(rows, 200, seed=3)
    assert sample is not None and len(sample.rows) == 200 and sample.population == len(rows)
    again = devsample.draw_dev_sample(rows, 200, seed=3)
    assert sample.rows["example_id"].tolist() == again.rows["example_id"].tolist()
    other = devsample.draw_dev_sample(rows, 200, seed=4)
    assert sample.rows["example_id"].tolist() != other.rows["example_id"].tolist()
    # in dev_a's order, no repeats
    order = rows.reset_index().set_index("example_id").loc[sample.rows["example_id"], "index"]
    assert order.is_monotonic_increasing and order.is_unique
    # each (source, label) cell: its share, and weights that add up to its size in dev_a
    full = rows.groupby(["source", "label"]).size()
    drawn = sample.rows.assign(e=sample.expansion).groupby(["source", "label"])
    np.testing.assert_allclose(drawn["e"].sum().loc[full.index], full, rtol=1e-12)
    assert drawn.size().loc[("production", 1)] >= 1  # a 3-example cell is not lost
    # the expanded weights reproduce dev_a's mix at the production prior
    weighted = sample.rows["weight"] * sample.expansion
    prior_all = (rows["weight"] * rows["label"]).sum() / rows["weight"].sum()
    assert (weighted * sample.rows["label"]).sum() / weighted.sum() == pytest.approx(prior_all)


def test_no_sample_where_dev_a_is_not_larger():
    rows = dev_rows(n_neg=5, n_pos=3, n_prod=0)
    assert devsample.draw_dev_sample(rows, len(rows), seed=0) is None


def test_bootstrap_scores_equal_scikit_learn_on_each_resample():
    rng = np.random.default_rng(5)
    n = 80
    y = (rng.random(n) < 0.3).astype(int)
    z = np.round(rng.normal(size=n) + 1.5 * y, 1)  # rounded: ties in the ranking
    weight = np.where(y == 1, 1.0, 25.0) * rng.uniform(0.5, 2, n)
    strata = y.copy()
    counts = devsample.bootstrap_counts(strata, resamples=30, seed=2)
    # each stratum is resampled to its own size
    np.testing.assert_array_equal(counts[:, y == 1].sum(axis=1), (y == 1).sum())
    only_negatives = np.zeros((1, n))
    only_negatives[0, y == 0] = 1.0
    counts = np.vstack([counts, only_negatives])  # no positive: AP undefined, recall 0
    got = devsample.bootstrap_scores(y, z, weight, counts, threshold=0.6)
    assert sorted(got) == sorted(devsample.INTERVAL_SCORES)
    for b in range(len(counts)):
        drawn = counts[b] > 0  # the resample: the drawn examples, each weighed by its draws
        want = classification_scores(y[drawn], z[drawn], (weight * counts[b])[drawn], threshold=0.6)
        for name in devsample.INTERVAL_SCORES:
            value = want[name]
            if np.isnan(value):
                assert np.isnan(got[name][b]), (name, b)
            else:
                assert got[name][b] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, b)


def test_the_interval_covers_the_whole_score_about_as_often_as_it_says():
    """Drawn again and again from one dev_a (a third positive, negatives weighing 48 as the
    default run's do), the sample's 95% intervals at the prior hold the whole dev_a's loss,
    precision, recall and F1 about 95% of the time."""
    rng = np.random.default_rng(11)
    n = 3000
    y = (rng.random(n) < 1 / 3).astype(int)
    rows = pd.DataFrame(
        {"source": "pool", "label": y, "weight": np.where(y == 1, 1.0, 48.0), "x": 0.0}
    )
    z = rng.normal(size=n) + 3.0 * y - 1.0
    whole = classification_scores(y, z, rows["weight"].to_numpy())
    hits = {name: [] for name in devsample.INTERVAL_SCORES}
    for seed in range(100):
        sample = devsample.draw_dev_sample(rows.assign(z=z), 600, seed=seed)
        w = sample.rows["weight"].to_numpy() * sample.expansion
        counts = devsample.bootstrap_counts(sample.strata, resamples=200, seed=seed)
        draws = devsample.bootstrap_scores(
            sample.rows["label"], sample.rows["z"], w, counts, threshold=0.5
        )
        for name in hits:
            low, high = devsample.percentile_interval(draws[name])
            hits[name].append(low <= whole[name] <= high)
    coverage = {name: float(np.mean(h)) for name, h in hits.items()}
    # 95% in 100 draws: 0.89 is about 3 standard errors below, 1.0 far above (too wide)
    assert all(0.89 <= c <= 0.995 for c in coverage.values()), coverage


class ScriptedScores:
    """dev_a scores of a model at each call, from a script (the same numbers for every view):
    F1 as scripted and the loss 1 - F1, with the model's kernel at each call."""

    def __init__(self, values):
        self.values = list(values)
        self.calls = 0
        self.kernels = []

    def __call__(self, model):
        value = self.values[self.calls]
        self.calls += 1
        self.kernels.append(float(model.layers[0].kernel.numpy()[0, 0]))
        scores = {"f1": value, "loss": 1 - value}
        return {"sampled": dict(scores), "prior": dict(scores)}


def scripted_run(tmp_path, sample_values, whole_values, *, patience=None, steps=12, decisions=3):
    """StepCurves on a tiny model, evaluating at steps 2, 4, ... (an epoch of 6 steps)."""
    sample, whole = ScriptedScores(sample_values), ScriptedScores(whole_values)
    curves = StepCurves(
        live=open_live(tmp_path / "live", []),
        evaluate_dev=whole,
        evaluate_sample=sample,
        schedule=CurveSchedule(
            log_every=2,
            eval_every=2,
            steps_per_epoch=6,
            checkpoint_every=12,
            total_steps=steps,
            select_metric="f1",
            patience=patience,
            decisions=decisions,
        ),
    )
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    curves.set_model(model)
    curves.on_train_begin()
    curves.on_epoch_begin(0)
    for batch in range(steps):
        model.layers[0].kernel.assign([[float(batch)]])  # tells the steps' weights apart
        curves.on_train_batch_end(batch, {"loss": 0.0, "tp": 0, "fp": 0, "fn": 0})
        if model.stop_training:
            break
    curves.on_train_end()
    return curves, sample, whole


def test_the_whole_of_dev_a_is_scored_at_the_decisions_only(tmp_path):
    # evaluations at steps 2, 4, 6 (epoch end), 8, 10, 12 (epoch end, last); four decisions
    # spread in log(step): targets 2, 3.6, 6.6 and 12, so steps 2, 4, 6 and 12, whatever
    # the sample says
    sample = [0.5, 0.4, 0.45, 0.6, 0.55, 0.5]
    whole = [0.52, 0.61, 0.58, 0.6]
    curves, sample_calls, whole_calls = scripted_run(tmp_path, sample, whole, decisions=4)
    assert sample_calls.calls == 6 and whole_calls.calls == 4
    assert curve(tmp_path / "live", "dev_a/prior/f1")["step"].tolist() == [2, 4, 6, 12]
    assert curve(tmp_path / "live", "dev_a/prior/sample/f1")["step"].tolist() == [
        2,
        4,
        6,
        8,
        10,
        12,
    ]
    # each decision scores the model of its own step (step s trained with kernel s - 1)
    assert whole_calls.kernels == [1.0, 3.0, 5.0, 11.0]
    assert curves.state["best_step"] == 4 and curves.state["best_value"] == 0.61
    assert curves.state["evaluations"] == {"sample": 6, "whole": 4}
    np.testing.assert_array_equal(curves.best_weights[0], [[3.0]])


def test_the_decisions_are_the_first_the_last_and_log_spaced_between():
    def schedule(decisions, total=2448, epoch=1224, every=100):
        return CurveSchedule(
            log_every=10, eval_every=every, steps_per_epoch=epoch, checkpoint_every=50,
            total_steps=total, select_metric="average_precision", patience=None,
            decisions=decisions,
        )  # fmt: skip

    # the reference run: 26 evaluations (every 100 steps, both epoch ends); targets 100,
    # 495 and 2448 for three decisions, 100, 290, 843 and 2448 for four
    steps = schedule(3).evaluation_steps()
    assert len(steps) == 26 and {1224, 2448} <= set(steps) and steps[-1] == 2448
    assert schedule(3).decision_steps() == [100, 500, 2448]
    assert schedule(4).decision_steps() == [100, 300, 800, 2448]
    assert schedule(1).decision_steps() == [2448]  # one decision: the end
    # the default run: 514 steps, epochs of 257: targets 100, 227 (nearer 200 than 257) and 514
    assert schedule(3, total=514, epoch=257).decision_steps() == [100, 200, 514]
    assert schedule(None).decision_steps() == steps == schedule(26).decision_steps()
    assert schedule(40).decision_steps() == steps
    # a run shorter than eval_every evaluates at its epochs' ends only
    assert schedule(3, total=30, epoch=15).decision_steps() == [15, 30]


def test_patience_counts_decisions_without_improvement(tmp_path):
    sample = [0.9] * 6
    whole = [0.5, 0.4, 0.45]
    curves, _, whole_calls = scripted_run(tmp_path, sample, whole, patience=2, decisions=6)
    # every evaluation decides: step 2 best, steps 4 and 6 no better: stop at step 6
    assert whole_calls.calls == 3 and curves.state["best_step"] == 2
    assert curve(tmp_path / "live", "train/loss")["step"].max() == 6


def test_a_run_with_a_sample_logs_both_curves_and_resumes_to_the_same_bytes(data, tmp_path, caplog):
    from tools.measure import stage_log_seconds

    with caplog.at_level("INFO", logger="dsprior.training.loop"):
        full_model, full = run(data, tmp_path, name="full", eval_sample=10)
    # the log says how many steps fit ran and how long: what the benchmarks read
    assert stage_log_seconds(caplog.text)["train_fit"]["steps"] == full["steps"]
    live = tmp_path / "full" / "live"
    evaluations = full["dev_a_evaluations"]
    assert evaluations["sample_examples"] == 10 and evaluations["examples"] > 10
    sampled = curve(live, "dev_a/prior/sample/average_precision")
    assert len(sampled) == evaluations["sample"]
    whole_steps = curve(live, "dev_a/prior/average_precision")["step"]
    assert len(whole_steps) == evaluations["whole"] <= evaluations["sample"]
    assert set(whole_steps) <= set(sampled["step"]) and full["best_step"] in set(whole_steps)
    low = curve(live, "dev_a/prior/sample/precision_low")
    high = curve(live, "dev_a/prior/sample/precision_high")
    assert (low.iloc[:, -1] <= high.iloc[:, -1]).all()
    assert not (live / "plots/metrics/dev_a/prior/sample/average_precision_low.tsv").exists()
    # inside the folders dvc.yaml declares: no new output, and none left empty without a sample
    assert sorted(p.name for p in (live / "plots" / "metrics").iterdir()) == ["dev_a", "train"]

    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, name="killed", callbacks=[StepCounter(fail_after=6)], eval_sample=10)
    model, resumed = run(data, tmp_path, name="killed", eval_sample=10)
    assert resumed["resumed_from_step"] == 4
    assert resumed["dev_a_evaluations"] == evaluations
    for a, b in zip(model.get_weights(), full_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert curve_files(tmp_path / "killed" / "live") == curve_files(live)


def test_dev_a_is_read_from_parquet_once_for_the_whole_and_its_sample(
    data, tmp_path, caplog, monkeypatch
):
    """The sample's rows are taken from dev_a's copy: one copy from Parquet, of all of dev_a,
    and the log says how long it took."""
    from dsprior import batches
    from tools.measure import dev_a_scoring_seconds

    copied: list[int] = []
    make = batches.CompactSet.__init__

    def counted(self, reader, path):
        copied.append(len(reader.positions))
        make(self, reader, path)

    monkeypatch.setattr(batches.CompactSet, "__init__", counted)
    with caplog.at_level("INFO", logger="dsprior.training.callback"):
        _, record = run(data, tmp_path, name="once", eval_sample=10)
    assert copied == [record["dev_a_evaluations"]["examples"]]
    seconds = dev_a_scoring_seconds(caplog.text)
    # the copy's seconds are within the scoring's (a tiny copy logs 0.0)
    assert seconds is not None and "copy" in seconds
    assert seconds["copy"] <= seconds["whole"] + seconds["sample"] + 0.1


@pytest.mark.parametrize("own_copy", [True, False])
def test_a_scorer_makes_its_own_copy_or_takes_another_scorers_never_both(tmp_path, own_copy):
    from dsprior.training.scores import DevScorer

    def scorer(**where):
        rows = pd.DataFrame({"example_id": ["a"], "label": [1], "weight": [1.0]})
        kw = dict(index=None, dataset_dir=tmp_path, scorer=None, min_rows=1, batch_size=1)
        return DevScorer(rows, threshold=0.5, **kw, **where)

    whole = scorer(copy_path=tmp_path / "dev_a.npy")
    where = {"copy_path": tmp_path / "x.npy", "within": whole} if own_copy else {}
    with pytest.raises(ValueError, match="a copy_path for its own copy or a within, not both"):
        scorer(**where)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.factories import make_data

    return make_data(tmp_path_factory.mktemp("devsample_data"))


def test_the_benchmarks_read_the_scoring_seconds_from_the_stage_log(tmp_path, caplog):
    from tools.measure import dev_a_scoring_seconds

    with caplog.at_level("INFO", logger="dsprior.training.callback"):
        curves, _, _ = scripted_run(tmp_path, [0.5, 0.4, 0.45, 0.6, 0.55, 0.5], [0.5] * 6)
    seconds = dev_a_scoring_seconds(caplog.text)
    assert seconds is not None and set(seconds) == {"whole", "sample", "copy"}
    assert seconds["sample"] == pytest.approx(curves.seconds["sample"], abs=0.06)
    assert seconds["copy"] == 0.0  # the scripted scorers copy nothing
    assert dev_a_scoring_seconds("no such line") is None
    # a log from before the copy's seconds were written
    old = "dev_a scored 2 times whole (49.8 s) and 26 times as its sample (36.1 s)"
    assert dev_a_scoring_seconds(old) == {"whole": 49.8, "sample": 36.1}


def test_a_curves_range_is_read_from_its_tsv(tmp_path):
    from tools.measure import curve_range

    curve = tmp_path / "average_precision.tsv"
    curve.write_text("step\taverage_precision\n100\t0.81\n200\t0.79\n257\t0.85\n")
    assert curve_range(curve) == [0.79, 0.85]
    assert curve_range(tmp_path / "absent.tsv") is None
    (tmp_path / "empty.tsv").write_text("step\taverage_precision\n")
    assert curve_range(tmp_path / "empty.tsv") is None
