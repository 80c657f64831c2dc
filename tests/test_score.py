"""score command: its errors as one line, its paths refused, its temporaries, --summary,
and a fresh clone that pulls only the bundle."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dsprior import monitoring, priors, records
from dsprior.scoring.record import ScoreSummaryRecord
from stages import score
from tests.conftest import make_project, run
from tests.factories import (
    DIM,
    NAMES,
    PIPELINE_PRIORS,
    csv_with,
    dataset_examples,
    downgrade_to_format_1,
    edited_copy,
    input_folder,
    jsonl_records,
    long_rows,
    model_beside_the_bundle,
    one_file,
    read_output,
    set_field,
    shared_pipeline,
    small_examples,
    write_csv,
    write_jsonl,
)


@pytest.fixture(scope="module", params=list(PIPELINE_PRIORS.values()), ids=list(PIPELINE_PRIORS))
def any_pipeline(request, tmp_path_factory) -> dict[str, Path]:
    """The pipeline at each prior the bundle tests use."""
    return shared_pipeline(tmp_path_factory, prior=request.param)


def test_wrong_dimension_via_the_command(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    header = ["example_id"] + [f"f{j}" for j in range(12)]
    path = write_csv(tmp_path / "narrow.csv", long_rows(small_examples(dim=12)), header)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main(
            [
                "--bundle",
                str(pipeline["bundle"]),
                "--input",
                str(path),
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
    assert info.value.code == 1
    assert "file has 12 feature columns but the model bundle has dim 16" in caplog.text


def test_command_quarantines_to_the_default_rejects_file(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    path = csv_with((3, 4), "abc")(tmp_path)
    out = tmp_path / "scores.csv"
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(path), "--output", str(out)]
        + ["--on-error", "quarantine", "--batch-size", "2"]
    )
    assert read_output(out)["example_id"].tolist() == ["e0", "e2", "e3"]
    rejects = (tmp_path / "scores.csv.rejects.jsonl").read_text().splitlines()
    assert [json.loads(r)["reason"] for r in rejects] == ["non_numeric"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output", "x.txt"], "extension must be one of"),
        (["--input", "missing.csv"], "does not exist"),
        (["--bundle", "nowhere"], "is not a model bundle"),
    ],
)
def test_command_setup_errors_are_named(
    pipeline: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    argv: list[str],
    message: str,
) -> None:
    good = write_csv(tmp_path / "in.csv", long_rows(small_examples()))
    args = {
        "--bundle": str(pipeline["bundle"]),
        "--input": str(good),
        "--output": str(tmp_path / "o.csv"),
    }
    for key, value in zip(argv[::2], argv[1::2], strict=True):
        args[key] = value if key != "--input" else str(tmp_path / value)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main([x for kv in args.items() for x in kv])
    assert info.value.code == 1 and message in caplog.text


def _same_name(tmp_path: Path) -> tuple[list[str], str]:
    new = one_file(tmp_path)
    return ["--input", str(new), "--output", str(new)], (
        f"--output {new} and --input {new} are the same file; scoring would overwrite its input"
    )


def _symlink(tmp_path: Path) -> tuple[list[str], str]:
    new = one_file(tmp_path)
    (tmp_path / "link.csv").symlink_to(new)
    link = tmp_path / "link.csv"
    return ["--input", str(new), "--output", str(link)], (
        f"--output {link} and --input {new} are the same file"
    )


def _hardlink(tmp_path: Path) -> tuple[list[str], str]:
    new = one_file(tmp_path)
    os.link(new, tmp_path / "hard.csv")
    hard = tmp_path / "hard.csv"
    return ["--input", str(new), "--output", str(hard)], (
        f"--output {hard} and --input {new} are the same file"
    )


def _dotted(tmp_path: Path) -> tuple[list[str], str]:
    new = one_file(tmp_path)
    other = tmp_path / "sub" / ".." / "new.csv"
    return ["--input", str(new), "--output", str(other)], (
        f"--output {other} and --input {new} are the same file"
    )


def _rejects_is_output(tmp_path: Path) -> tuple[list[str], str]:
    path = csv_with((3, 4), "abc")(tmp_path)
    out = tmp_path / "out.csv"
    argv = ["--input", str(path), "--output", str(out), "--rejects", str(out)]
    return argv + ["--on-error", "quarantine"], (
        f"--rejects {out} and --output {out} are the same file; one would overwrite the other"
    )


def _rejects_is_input(tmp_path: Path) -> tuple[list[str], str]:
    new = one_file(tmp_path)
    return ["--input", str(new), "--output", str(tmp_path / "o.csv"), "--rejects", str(new)], (
        f"--rejects {new} and --input {new} are the same file"
    )


def _output_in_input_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = input_folder(tmp_path)
    return ["--input", str(folder), "--output", str(folder / "a.csv")], (
        f"--output {folder / 'a.csv'} is inside the --input folder {folder}"
    )


def _new_output_in_input_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = input_folder(tmp_path)
    return ["--input", str(folder), "--output", str(folder / "sub" / "scores.parquet")], (
        f"--output {folder / 'sub' / 'scores.parquet'} is inside the --input folder {folder}"
    )


def _output_linked_into_input_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = input_folder(tmp_path)
    os.link(folder / "a.csv", tmp_path / "out.csv")
    return ["--input", str(folder), "--output", str(tmp_path / "out.csv")], (
        f"--output {tmp_path / 'out.csv'} is the same file as {folder / 'a.csv'} in the "
        f"--input folder {folder}"
    )


def _output_is_a_folder(tmp_path: Path) -> tuple[list[str], str]:
    new = one_file(tmp_path)
    (tmp_path / "scores.csv").mkdir()
    return ["--input", str(new), "--output", str(tmp_path / "scores.csv")], (
        f"--output {tmp_path / 'scores.csv'} is a folder"
    )


@pytest.mark.parametrize(
    "case",
    [
        _same_name,
        _symlink,
        _hardlink,
        _dotted,
        _rejects_is_output,
        _rejects_is_input,
        _output_in_input_folder,
        _new_output_in_input_folder,
        _output_linked_into_input_folder,
        _output_is_a_folder,
    ],
)
def test_command_refuses_to_write_over_its_input_or_itself(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, case
) -> None:
    """Nothing is read and nothing changes: one ERROR line naming both options and the path."""
    argv, message = case(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main(["--bundle", str(pipeline["bundle"]), *argv])
    assert info.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert message in errors[0]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no scores over the raw data, no reject line on top of CSV rows


def test_rejects_and_output_may_sit_beside_the_input(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    folder = input_folder(tmp_path)
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(folder)]
        + ["--output", str(tmp_path / "new.csv"), "--on-error", "quarantine"]
    )
    assert len(read_output(tmp_path / "new.csv")) == 4


def test_a_killed_runs_temporaries_are_gone_after_the_next_run(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    """A SIGKILLed score leaves .NAME.tmp beside the output and the rejects; the rerun takes them."""
    path = csv_with((3, 4), "abc")(tmp_path)
    out = tmp_path / "scores.csv"
    stale = [tmp_path / ".scores.csv.tmp", tmp_path / ".scores.csv.rejects.jsonl.tmp"]
    for p in stale:
        p.write_text("partial, from a killed run\n")
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(path), "--output", str(out)]
        + ["--on-error", "quarantine"]
    )
    assert read_output(out)["example_id"].tolist() == ["e0", "e2", "e3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.csv",
        "scores.csv",
        "scores.csv.rejects.jsonl",
    ]


@pytest.mark.slow
def test_fresh_clone_scores_after_pulling_only_the_bundle(tmp_path: Path) -> None:
    """`dvc repro` + `dvc push` in one repo; a clone pulls only the bundle and scores raw files."""
    project = make_project(tmp_path / "project")
    run(["dvc", "repro"], project)
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], project)
    run(["dvc", "push"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "pipeline run"], project)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run(["dvc", "pull", "bundle"], clone)
    assert sorted(p.name for p in (clone / "bundle").iterdir()) == [
        "bundle.json",
        "model.keras",
        "reference.parquet",
    ]
    for absent in (
        "models",
        "data/dataset",
        "data/manifest.parquet",
        "reports/predictions.parquet",
    ):
        assert not (clone / absent).exists(), absent

    # The production source as raw files (the pipeline drew it in memory), labelled.
    run(["python", "-m", "stages.generate", "--params", "params.yaml", "--out", "../raw"], project)
    raw = tmp_path / "raw" / "production"
    out = clone / "scores.parquet"
    run(["python", "-m", "stages.score", "--bundle", "bundle", "--input", str(raw)]
        + ["--output", str(out), "--summary", "summary.json", "--resamples", "50"], clone)  # fmt: skip
    got = pd.read_parquet(out)
    # the labelled production sample's summary: the measured prior inside the estimate's interval
    summary = json.loads((clone / "summary.json").read_text())
    prior = summary["estimated_prior"]
    if prior.get("interval_refused"):  # dev_b's gold labels showed noisy distant labels
        prior = summary["estimated_prior_true"]["cross_check"]["distant_prior_implied"]
    low, high = prior["ci"]
    assert summary["measured"]["labelled_examples"] == len(got)
    assert low <= summary["measured"]["prior"] <= high, (summary["measured"], low, high)
    assert (clone / "summary.md").is_file()
    predictions = pd.read_parquet(project / "reports" / "predictions.parquet")
    production = predictions[predictions["split"].isin(["dev_b", "test"])]
    merged = production.merge(got, on="example_id", suffixes=("_evaluate", ""))
    assert len(merged) == len(production) > 0
    np.testing.assert_allclose(merged["score"], merged["score_evaluate"], rtol=0, atol=2e-6)
    np.testing.assert_allclose(
        merged["probability"], merged["probability_evaluate"], rtol=1e-5, atol=1e-9
    )


SUMMARY_KEYS = {"examples", "bundle_prior", "estimated_prior", "estimated_at_threshold", "drift"}


def _score_with_summary(
    pipeline: dict[str, Path], tmp_path: Path, *, labelled: bool, extra: list[str] = ()
) -> tuple[dict[str, Any], Path, pd.DataFrame]:
    predictions = pd.read_parquet(pipeline["reports"] / "predictions.parquet")
    test = predictions[predictions["split"] != "dev_a"].reset_index(drop=True)
    examples = dataset_examples(pipeline["dataset"], test["example_id"].tolist())
    names = ["example_id", "group", "label", *NAMES[1:]] if labelled else NAMES
    tmp_path.mkdir(parents=True, exist_ok=True)
    raw = write_csv(tmp_path / "in.csv", long_rows(examples, labelled=labelled), names)
    out, summary = tmp_path / "scores.parquet", tmp_path / "s.json"
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(raw), "--output", str(out)]
        + ["--summary", str(summary), "--resamples", "40", *extra]
    )
    return json.loads(summary.read_text()), out, test


def test_summary_end_to_end_with_a_real_bundle(pipeline: dict[str, Path], tmp_path: Path) -> None:
    got, out, batch = _score_with_summary(pipeline, tmp_path, labelled=False)
    assert SUMMARY_KEYS <= set(got)
    assert records.undeclared(got, ScoreSummaryRecord) == []  # its keys are declared
    assert got["examples"] == len(batch)
    spec = json.loads((pipeline["bundle"] / "bundle.json").read_text())
    assert got["bundle_prior"] == spec["production_prior"]
    est = got["estimated_prior"]
    assert {"value", "ci", "method", "cross_check"} <= set(est)
    assert est["ci"][0] <= est["value"] <= est["ci"][1]
    assert {"acc", "pacc"} <= set(est["cross_check"])  # format 2: dev_b's rates are there
    for name in ("precision", "recall", "alerts_per_1000", "expected_cost"):
        assert set(got["estimated_at_threshold"][name]) == {"value", "ci"}
    assert isinstance(got["drift"]["prior_shift"], bool)
    assert 0 <= got["drift"]["score_shift_ks"] <= 1 and 0 <= got["drift"]["p_value"] <= 1
    assert "measured" not in got  # no labels in the input
    # the estimate is evaluate's: the same estimator on the same probabilities
    scored = read_output(out)
    alerts = 1000 * scored["decision"].mean()
    assert got["estimated_at_threshold"]["alerts_per_1000"]["value"] == pytest.approx(alerts)
    assert got["adapt_prior"]["applied"] is False
    assert got["adapt_prior"]["alerts_per_1000_before"] == pytest.approx(alerts)
    markdown = (tmp_path / "s.md").read_text()
    assert markdown.startswith("# Batch summary, without labels")
    assert "Estimated prior" in markdown and "Prior shift" in markdown


def test_summary_measures_labels_beside_the_estimates(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    got, out, batch = _score_with_summary(pipeline, tmp_path, labelled=True)
    assert records.undeclared(got, ScoreSummaryRecord) == []  # measured's keys too
    measured = got["measured"]
    assert measured["labelled_examples"] == len(batch)
    assert measured["prior"] == pytest.approx(batch["label"].mean())
    decision = read_output(out)["decision"].to_numpy()
    y = batch["label"].to_numpy()
    tp, fp = float((decision * y).sum()), float((decision * (1 - y)).sum())
    if tp + fp:
        assert measured["precision"] == pytest.approx(tp / (tp + fp))
    assert "| precision |" in (tmp_path / "s.md").read_text()


def test_adapt_prior_rewrites_probabilities_and_decisions_at_the_estimate(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    plain, plain_out, _ = _score_with_summary(pipeline, tmp_path / "a", labelled=False)
    got, out, _ = _score_with_summary(
        pipeline, tmp_path / "b", labelled=False, extra=["--adapt-prior"]
    )
    before, after = read_output(plain_out), read_output(out)
    estimate, prior = got["estimated_prior"]["value"], got["bundle_prior"]
    estimate = min(max(estimate, 1e-9), 1 - 1e-9)  # an estimate of 0 or 1 is moved to just inside
    moved = priors.shift_prior(
        before["probability"].to_numpy(), from_prior=prior, to_prior=estimate
    )
    np.testing.assert_allclose(after["probability"], moved, rtol=1e-12)
    threshold = json.loads((pipeline["bundle"] / "bundle.json").read_text())["threshold"]["value"]
    np.testing.assert_array_equal(after["decision"], (moved >= threshold).astype(int))
    adapt = got["adapt_prior"]
    assert adapt["applied"] is True and adapt["to_prior"] == got["estimated_prior"]["value"]
    assert adapt["alerts_per_1000_before"] == pytest.approx(1000 * before["decision"].mean())
    assert adapt["alerts_per_1000_after"] == pytest.approx(1000 * after["decision"].mean())
    assert adapt["decisions_changed"] == int((before["decision"] != after["decision"]).sum())
    assert plain["estimated_prior"] == got["estimated_prior"]  # same seed, same estimate


def test_summary_of_an_empty_batch_warns_and_adapt_prior_needs_a_summary(
    pipeline: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = write_csv(tmp_path / "in.csv", [])
    summary = tmp_path / "s.json"
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(raw)]
        + ["--output", str(tmp_path / "o.csv"), "--summary", str(summary)]
    )
    got = json.loads(summary.read_text())
    assert got["examples"] == 0 and got["estimated_prior"] is None
    assert "empty" in got["warnings"][0]
    with pytest.raises(SystemExit) as info:
        score.main(
            ["--bundle", str(pipeline["bundle"]), "--input", str(raw)]
            + ["--output", str(tmp_path / "o.csv"), "--adapt-prior"]
        )
    assert info.value.code == 2 and "--adapt-prior needs --summary" in capsys.readouterr().err


def test_summary_from_a_format_1_bundle_says_not_available(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    old = edited_copy(pipeline, tmp_path, downgrade_to_format_1)
    (old / "reference.parquet").unlink()
    raw = write_jsonl(tmp_path / "x.jsonl", jsonl_records(small_examples(6)))
    summary = tmp_path / "s.json"
    score.main(
        ["--bundle", str(old), "--input", str(raw), "--output", str(tmp_path / "o.csv")]
        + ["--summary", str(summary), "--resamples", "20"]
    )
    got = json.loads(summary.read_text())
    cross = got["estimated_prior"]["cross_check"]
    assert cross["available"] is False and "not available" in cross["reason"]
    assert got["drift"]["score_shift_ks"] is None and got["drift"]["p_value"] is None
    assert any("too few" in w for w in got["warnings"])  # six examples: a warning, no crash


def test_score_command_names_the_bad_field(
    any_pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_beside_the_bundle(tmp_path, any_pipeline)
    copy = edited_copy(any_pipeline, tmp_path, set_field("model.file", "../../models/model.keras"))
    raw = tmp_path / "new.csv"
    raw.write_text("example_id," + ",".join(f"f{j}" for j in range(DIM)) + "\n")
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as info:
        score.main(
            ["--bundle", str(copy), "--input", str(raw), "--output", str(tmp_path / "o.csv")]
        )
    assert info.value.code == 1
    assert f"{copy / 'bundle.json'}: model.file is '../../models/model.keras'" in caplog.text
    assert "KeyError" not in caplog.text and not (tmp_path / "o.csv").exists()


def test_history_records_each_batch_once_unless_asked(
    pipeline: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = tmp_path / "monitoring" / "history.jsonl"
    extra = ["--history", str(history)]
    got, _, _ = _score_with_summary(pipeline, tmp_path / "a", labelled=True, extra=extra)
    (row,) = monitoring.read_history(history)
    assert row["batch"].startswith("in.csv@") and row["examples"] == got["examples"]
    assert row["estimated_prior"]["ci"] == got["estimated_prior"]["ci"]
    assert row["estimated_at_threshold"]["precision"] == {
        k: got["estimated_at_threshold"]["precision"][k] for k in ("value", "ci")
    }
    assert row["measured"]["prior"] == got["measured"]["prior"]
    assert row["bundle"]["content_hash"] == got["bundle"]["content_hash"]
    # the same bytes again (another folder, another default name): recorded once ...
    _score_with_summary(pipeline, tmp_path / "b", labelled=True, extra=extra)
    assert len(monitoring.read_history(history)) == 1
    assert "already records this batch" in caplog.text
    # ... unless asked
    more = [*extra, "--history-duplicate", "append", "--batch-name", "day 2"]
    _score_with_summary(pipeline, tmp_path / "c", labelled=True, extra=more)
    assert [r["batch"] for r in monitoring.read_history(history)] == [row["batch"], "day 2"]
    with pytest.raises(SystemExit) as info:
        score.main(
            ["--bundle", str(pipeline["bundle"]), "--input", str(tmp_path / "a" / "in.csv")]
            + ["--output", str(tmp_path / "o.csv"), *extra]
        )
    assert info.value.code == 2 and "--history needs --summary" in capsys.readouterr().err
