"""Scores made elsewhere (dsprior.external): the file's checks and their messages, the prior
correction each ``trained_at`` gives, and the stages on such scores: train writes them as the
model folder, evaluate and bundle run on them, ``score`` refuses the bundle for raw examples
and summarises a scored batch from a file; ``dvc repro`` of a tiny project on a scores file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dsprior import bundle, external, modeldir, priors, records
from dsprior.bundle.spec import BundleSpec
from dsprior.evaluation.record import Metrics
from dsprior.scoring.record import ScoreSummaryRecord
from dsprior.training.params import resolve_params
from stages import bundle as bundle_stage
from stages import evaluate, score, train
from tests.conftest import make_project, run
from tests.factories import (
    REQUIRED_METRICS,
    make_examples,
    make_manifest,
    write_dataset,
)

ROOT = Path(__file__).resolve().parent.parent
IDS = ["a", "b", "c"]


def table(ids: list[str], scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"example_id": ids, "score": np.asarray(scores, np.float64)})


def check(frame: pd.DataFrame, *, scale: str = "log_odds", evaluated=IDS) -> np.ndarray:
    return external.check_scores(frame, [*IDS, "t1"], evaluated, path="my_scores.csv", scale=scale)


# --- the file's checks, each with its message -----------------------------------------------


def test_scores_come_back_in_the_evaluated_order_train_ids_allowed():
    got = check(table(["t1", "c", "a", "b"], [9.0, 3.0, 1.0, 2.0]))
    assert got.tolist() == [1.0, 2.0, 3.0]


def test_missing_ids_are_counted_and_named():
    with pytest.raises(ValueError) as info:
        check(table(["a"], [0.0]))
    assert str(info.value) == (
        "my_scores.csv: 2 of the 3 dev_a, dev_b and test examples have no score ('b', 'c'); "
        "the file must score every one of them"
    )


def test_ids_of_another_dataset_are_counted_and_named():
    with pytest.raises(
        ValueError,
        match=r"my_scores.csv: 2 example ids are neither in the manifest nor in the dataset ",
    ):
        check(table([*IDS, "zz", "yy"], [0.0] * 5))
    with pytest.raises(ValueError, match=r"\('zz', 'yy'\)"):
        check(table([*IDS, "zz", "yy"], [0.0] * 5))


def test_duplicate_ids_give_their_rows():
    with pytest.raises(ValueError) as info:
        check(table(["a", "b", "a", "c"], [0.0] * 4))
    assert str(info.value) == (
        "my_scores.csv: 1 example ids occur more than once ('a'), at rows 1, 3 (row 1 is the "
        "first data row); each example needs one score"
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_refused(bad):
    with pytest.raises(ValueError) as info:
        check(table(IDS, [0.0, bad, 1.0]))
    assert str(info.value) == (
        "my_scores.csv: 1 scores are not finite numbers (NaN, empty or infinite), "
        "for example ids 'b'"
    )


def test_probabilities_outside_0_1_are_refused():
    with pytest.raises(ValueError) as info:
        check(table(IDS, [0.5, 1.5, -0.1]), scale="probability")
    assert str(info.value) == (
        "my_scores.csv: 2 probabilities are outside [0, 1] ('b': 1.5, 'c': -0.1); "
        "is the scale log_odds?"
    )
    # log-odds may be anything finite
    assert check(table(IDS, [0.5, 1.5, -0.1])).tolist() == [0.5, 1.5, -0.1]


def test_probabilities_become_log_odds_and_0_1_keep_their_order():
    got = check(table(IDS, [0.5, 0.0, 1.0]), scale="probability")
    assert got[0] == 0.0
    assert np.isfinite(got).all() and got[1] < -700 and 36 < got[2] < 37


def test_reading_csv_and_parquet_and_their_errors(tmp_path: Path):
    frame = pd.DataFrame({"example_id": ["001", "2"], "p": [0.25, 0.75], "label": [1, 0]})
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    frame.to_csv(tmp_path / "s.csv", index=False)
    for name in ("s.parquet", "s.csv"):
        got = external.read_scores_table(tmp_path / name, column="p")
        assert got["example_id"].tolist() == ["001", "2"]  # ids stay strings, zeros kept
        assert got["score"].tolist() == [0.25, 0.75] and got["label"].tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"s.csv: no column 'score'; a scores file needs"):
        external.read_scores_table(tmp_path / "s.csv", column="score")
    pd.DataFrame({"example_id": ["a"], "p": ["high"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match=r"t.csv: column 'p' must hold numbers"):
        external.read_scores_table(tmp_path / "t.csv", column="p")
    with pytest.raises(ValueError, match=r"must end in .parquet, .csv or .csv.gz"):
        external.read_scores_table(tmp_path / "s.txt", column="p")


# --- the declaration in params.yaml ---------------------------------------------------------


def train_section(**external_scores: Any) -> dict[str, Any]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    return {**params, "external_scores": external_scores}


ENTRY = {"path": "s.parquet", "column": "p", "scale": "probability", "trained_at": "production"}


def test_params_refuse_a_bad_declaration():
    assert resolve_params(train_section()).external_scores == {}
    resolve_params(train_section(mine={**ENTRY, "trained_at": {"prior": 0.3}}))
    with pytest.raises(ValueError) as info:
        resolve_params(train_section(mine={**ENTRY, "trained_at": {"prior": 3}}))
    assert str(info.value) == (
        "train.external_scores.mine.trained_at must be production, {prior: P} with P in "
        "(0, 1), or {beta: B} with B > 0, got {'prior': 3}"
    )
    with pytest.raises(ValueError, match=r"train.external_scores.mine.scale must be one of"):
        resolve_params(train_section(mine={**ENTRY, "scale": "logit"}))
    with pytest.raises(ValueError, match=r"declares 2 scores files \(\['a', 'b'\]\); declare one"):
        resolve_params(train_section(a=ENTRY, b=ENTRY))
    with pytest.raises(ValueError, match=r"train.external_scores.my model: the name must be"):
        resolve_params(train_section(**{"my model": ENTRY}))
    with pytest.raises(ValueError) as info:
        resolve_params(train_section(mine={**ENTRY, "path": "s.txt"}))
    assert str(info.value) == (
        "train.external_scores.mine.path: s.txt: a scores file must end in .parquet, .csv or .csv.gz"
    )


def test_trained_at_gives_the_prior_correction():
    pi = 0.02
    assert external.prior_record("production", production_prior=pi) == {
        "beta": 1.0,
        "training_prior": None,
        "production_prior_estimate": None,
    }
    at_prior = external.prior_record({"prior": 1 / 3}, production_prior=pi)
    # log-odds at a third, moved to 2%: the shift is log(odds(0.02) / odds(1/3))
    shift = priors.log_odds_at_prior(np.array([0.0]), beta=at_prior["beta"])[0]
    assert shift == pytest.approx(np.log((pi / (1 - pi)) / 0.5))
    assert at_prior["production_prior_estimate"] == pi and at_prior["training_prior"] == 1 / 3
    at_beta = external.prior_record({"beta": 0.04}, production_prior=pi)
    assert at_beta["beta"] == 0.04 and at_beta["production_prior_estimate"] is None
    # beta 0.04 from a 2% prior: the model saw odds 25 times as high
    odds = at_beta["training_prior"] / (1 - at_beta["training_prior"])
    assert odds == pytest.approx(pi / (1 - pi) / 0.04)


# --- the stages on external scores, in process ----------------------------------------------


def write_scores(path: Path, manifest: pd.DataFrame, *, seed: int = 0) -> None:
    """Probabilities from a model made elsewhere: informative, noisy, at the production prior."""
    rng = np.random.default_rng(seed)
    z = np.where(manifest["label"] == 1, 1.5, -2.5) + rng.normal(size=len(manifest))
    frame = pd.DataFrame({"example_id": manifest["example_id"], "p": priors.sigmoid(z)})
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def external_params(path: Path, scores: Path, **entry: Any) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["external_scores"] = {
        "teammodel": {"path": str(scores), "column": "p", "scale": "probability", **entry}
    }
    params["evaluate"]["bootstrap"]["resamples"] = 20
    params["evaluate"]["calibration_bins"] = 4
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict[str, Path]:
    """Dataset and manifest, a scores file, then train, evaluate and bundle on the scores."""
    root = tmp_path_factory.mktemp("external")
    paths = {
        "dataset": root / "dataset",
        "manifest": root / "manifest.parquet",
        "scores": root / "scores.csv",
        "model_dir": root / "models",
        "reports": root / "reports",
        "bundle": root / "bundle",
    }
    examples = make_examples(90, seed=5)
    write_dataset(paths["dataset"], examples)
    manifest = make_manifest(examples)
    manifest.to_parquet(paths["manifest"], index=False)
    write_scores(paths["scores"], manifest)
    paths["params"] = external_params(
        root / "params.yaml", paths["scores"], trained_at={"prior": 0.25}
    )
    common = ["--params", str(paths["params"]), "--dataset", str(paths["dataset"])]
    train.main(
        [*common, "--manifest", str(paths["manifest"]), "--model-dir", str(paths["model_dir"])]
        + ["--live-dir", str(root / "live")]
    )
    evaluate.main(
        [*common, "--manifest", str(paths["manifest"]), "--model-dir", str(paths["model_dir"])]
        + ["--reports", str(paths["reports"])]
    )
    bundle_stage.main(
        [*common, "--model-dir", str(paths["model_dir"])]
        + ["--metrics", str(paths["reports"] / "metrics.json")]
        + ["--predictions", str(paths["reports"] / "predictions.parquet")]
        + ["--out", str(paths["bundle"])]
    )
    return paths


def test_train_writes_the_scores_as_the_model_folder(scored: dict[str, Path]):
    record = json.loads((scored["model_dir"] / "train.json").read_text())
    assert sorted(p.name for p in scored["model_dir"].iterdir()) == [
        external.SCORES_FILE,
        "train.json",
    ]
    assert record["external_scores"]["name"] == "teammodel"
    assert records.undeclared(record, modeldir.TrainRecord) == []  # its keys are declared
    assert record["training_prior"] == 0.25
    manifest = pd.read_parquet(scored["manifest"])
    estimate = priors.estimate_prior(
        manifest.loc[manifest["kept"], "label"].to_numpy(),
        manifest.loc[manifest["kept"], "weight"].to_numpy(),
    )
    assert record["beta"] == pytest.approx(
        priors.beta_from_priors(production_prior=estimate, training_prior=0.25)
    )


def test_evaluate_runs_on_the_scores_as_on_a_model(scored: dict[str, Path]):
    metrics = json.loads((scored["reports"] / "metrics.json").read_text())
    for key in REQUIRED_METRICS:
        value = metrics
        for part in key.split("."):
            value = value[part]
        assert value is None or isinstance(value, (int, float)), key
    assert metrics["compute"]["evaluate"]["external_scores"]["name"] == "teammodel"
    assert records.undeclared(metrics, Metrics) == []
    assert "label_free" in metrics and "label_free_checks" in metrics
    predictions = pd.read_parquet(scored["reports"] / "predictions.parquet")
    scores = pd.read_csv(scored["scores"], dtype={"example_id": str}).set_index("example_id")
    p = scores.loc[predictions["example_id"], "p"].to_numpy()
    # the model's log-odds are the file's probabilities' logits, corrected with train's beta
    assert predictions["score"].to_numpy() == pytest.approx(p, rel=1e-12)
    report = (scored["reports"] / "report.md").read_text()
    assert "- Scores: made outside the pipeline, `teammodel` (" in report
    assert "probability, trained at {'prior': 0.25}); no model was trained here" in report
    assert sorted(p.name for p in (scored["reports"] / "evaluate_plots").iterdir())


def test_the_bundle_holds_no_model_and_score_refuses_it_by_name(
    scored: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    assert not (scored["bundle"] / bundle.MODEL_FILE).exists()
    spec = bundle.read_spec(scored["bundle"])
    assert spec["model"]["kind"] == "external_scores" and spec["model"]["scale"] == "probability"
    assert records.undeclared(spec, BundleSpec) == []
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        score.main(
            ["--bundle", str(scored["bundle"]), "--input", str(scored["scores"])]
            + ["--output", str(tmp_path / "o.parquet")]
        )
    assert (
        f"{scored['bundle']} was built from external scores ('teammodel', probability): it "
        "holds no model and cannot score raw examples"
    ) in caplog.text
    with pytest.raises(ValueError, match=r"was built from external scores \('teammodel'"):
        bundle.load_bundle(scored["bundle"])


def test_score_summary_on_a_scores_file(scored: dict[str, Path], tmp_path: Path):
    summary = tmp_path / "s.json"
    batch = pd.read_csv(scored["scores"], dtype={"example_id": str})
    batch["label"] = pd.read_parquet(scored["manifest"])["label"].to_numpy()
    batch.to_parquet(tmp_path / "batch.parquet", index=False)
    history = tmp_path / "history.jsonl"
    score.main(
        ["--bundle", str(scored["bundle"]), "--scores", str(tmp_path / "batch.parquet")]
        + ["--summary", str(summary), "--resamples", "20", "--history", str(history)]
    )
    got = json.loads(summary.read_text())
    assert records.undeclared(got, ScoreSummaryRecord) == []
    (line,) = history.read_text().splitlines()  # the batch, for the monitor stage
    assert json.loads(line)["estimated_prior"]["value"] == got["estimated_prior"]["value"]
    assert got["examples"] == len(batch)
    assert 0 < got["estimated_prior"]["value"] < 1
    assert got["measured"]["labelled_examples"] == len(batch)
    assert got["scoring"]["scores_file"] == str(tmp_path / "batch.parquet")
    assert summary.with_suffix(".md").read_text()
    # the same file with a probability out of range: refused, naming the file
    batch.loc[3, "p"] = 1.2
    batch.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SystemExit):
        score.main(
            ["--bundle", str(scored["bundle"]), "--scores", str(tmp_path / "bad.csv")]
            + ["--summary", str(tmp_path / "t.json")]
        )
    assert not (tmp_path / "t.json").exists()


def test_the_api_on_a_bundle_of_external_scores(scored: dict[str, Path]):
    from dsprior import api

    with pytest.raises(ValueError, match=r"was built from external scores \('teammodel'"):
        api.load_bundle(scored["bundle"])
    loaded = api.load_bundle(scored["bundle"], model=False)
    with pytest.raises(ValueError, match=r"holds no model and cannot score raw examples"):
        api.score_arrays(loaded, [np.zeros((2, 16))])
    probabilities = pd.read_csv(scored["scores"])["p"].to_numpy()
    summary = api.estimate_batch(loaded, probabilities, resamples=20)  # in the file's own scale
    assert summary["examples"] == len(probabilities)
    with pytest.raises(ValueError, match=r"probabilities are outside \[0, 1\]"):
        api.estimate_batch(loaded, probabilities + 1.0)


def test_score_options_of_scores_mode():
    with pytest.raises(SystemExit):
        score.parse_args(["--bundle", "b", "--scores", "s.csv"])  # no --summary
    with pytest.raises(SystemExit):
        score.parse_args(["--bundle", "b", "--scores", "s.csv", "--summary", "x", "--input", "i"])
    with pytest.raises(SystemExit):
        score.parse_args(["--bundle", "b", "--summary", "x.json"])  # neither input nor scores


def test_train_refuses_a_bad_file_before_any_work(scored: dict[str, Path], tmp_path: Path):
    manifest = pd.read_parquet(scored["manifest"])
    bad = tmp_path / "bad.parquet"
    write_scores(bad, manifest.iloc[5:])  # the first five examples have no score
    params = external_params(tmp_path / "params.yaml", bad, trained_at="production")
    with pytest.raises(ValueError, match=rf"{bad}: 5 of the \d+ dev_a, dev_b and test examples"):
        train.main(
            ["--params", str(params), "--dataset", str(scored["dataset"])]
            + ["--manifest", str(scored["manifest"]), "--model-dir", str(tmp_path / "m")]
            + ["--live-dir", str(tmp_path / "live")]
        )
    assert not (tmp_path / "m").exists()


# --- dvc repro of a tiny project on a scores file -------------------------------------------


@pytest.mark.slow
def test_dvc_repro_on_external_scores(tmp_path: Path):
    """The tiny project: data stages first, then a scores file made from the manifest (as a
    team's own model would), declared in params.yaml; `dvc repro` then runs train (nothing
    trained), evaluate and bundle on it, and new scores rerun them."""
    project = make_project(tmp_path / "project")
    run(["dvc", "repro", "downsample"], project)
    manifest = pd.read_parquet(project / "data" / "manifest.parquet")
    scores = project / "data" / "raw" / "scores.parquet"
    scores.parent.mkdir(parents=True, exist_ok=True)
    write_scores(scores, manifest)
    run(["dvc", "add", "data/raw/scores.parquet"], project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["external_scores"] = {
        "teammodel": {
            "path": "data/raw/scores.parquet",
            "column": "p",
            "scale": "probability",
            "trained_at": "production",
        }
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], project).stdout
    for stage in ("external_scores@teammodel", "train", "evaluate", "bundle"):
        assert f"Running stage '{stage}'" in out, out
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["beta"] == 1.0 and 0 < metrics["threshold"]
    assert (project / "bundle" / "bundle.json").is_file()
    assert not (project / "bundle" / "model.keras").exists()
    assert not (project / "models" / "model.keras").exists()  # nothing was trained
    # new scores: train, evaluate and bundle rerun
    write_scores(scores, manifest, seed=1)
    run(["dvc", "add", "data/raw/scores.parquet"], project)
    again = run(["dvc", "repro"], project).stdout
    for stage in ("external_scores@teammodel", "train", "evaluate", "bundle"):
        assert f"Running stage '{stage}'" in again, again
    assert "Running stage 'ingest'" not in again
