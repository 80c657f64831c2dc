"""dsprior.api: its doctests run (each public function has one), it scores a DataFrame as
``score`` scores the same file (values and refusals), it estimates and evaluates as the
pipeline's own functions do, and its non-CNN functions never import TensorFlow."""

from __future__ import annotations

import doctest
import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsprior import api, priors, runtime
from stages import score
from tests.factories import DIM
from tools.scratch import ROOT


def test_every_public_function_has_an_example():
    for name in api.__all__:
        member = getattr(api, name)
        if inspect.isfunction(member):
            assert ">>>" in (member.__doc__ or ""), f"api.{name} has no example"


def test_doctests_run(pipeline: dict[str, Path]):
    globs = {"bundle_dir": pipeline["bundle"], "bundle": api.load_bundle(pipeline["bundle"])}
    result = doctest.testmod(api, extraglobs=globs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 14 and result.failed == 0, result


def frame_of(n: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for _ in range(int(rng.integers(1, 6))):
            rows.append([f"e{i}", *rng.normal(size=DIM)])
    return pd.DataFrame(rows, columns=["example_id", *[f"f{j}" for j in range(DIM)]])


def test_score_frame_gives_what_score_writes(pipeline: dict[str, Path], tmp_path: Path):
    bundle = api.load_bundle(pipeline["bundle"])
    frame = frame_of(12)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--input", str(tmp_path / "in.parquet")]
        + ["--output", str(tmp_path / "out.parquet")]
    )
    expected = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(api.score_frame(bundle, frame), expected)
    arrays = [g.drop(columns="example_id").to_numpy() for _, g in frame.groupby("example_id")]
    ids = [i for i, _ in frame.groupby("example_id")]
    by_arrays = api.score_arrays(bundle, arrays, example_ids=ids)
    assert by_arrays.set_index("example_id")["logit"].to_dict() == pytest.approx(
        expected.set_index("example_id")["logit"].to_dict()
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda f: f.assign(f3=np.where(f.index == 4, np.nan, f["f3"])),  # a missing value
        lambda f: f.drop(columns="f5"),  # a dimension the bundle does not take
    ],
    ids=["non-finite", "dimension"],
)
def test_score_frame_refuses_what_score_refuses_with_its_message(
    pipeline: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, edit
):
    frame = edit(frame_of(6))
    source = tmp_path / "in.parquet"
    frame.to_parquet(source, index=False)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        score.main(
            ["--bundle", str(pipeline["bundle"]), "--input", str(source)]
            + ["--output", str(tmp_path / "o.parquet")]
        )
    with pytest.raises(ValueError) as info:
        api.score_frame(api.load_bundle(pipeline["bundle"]), frame)
    message = str(info.value)
    assert "the DataFrame" in message
    assert message.replace("the DataFrame", str(source)) in caplog.text


def test_estimate_batch_is_score_summary(pipeline: dict[str, Path], tmp_path: Path):
    """The same batch through ``score --scores --summary`` and through the API."""
    bundle = api.load_bundle(pipeline["bundle"], model=False)
    logits = np.random.default_rng(3).normal(-1.0, 2.0, size=150)
    pd.DataFrame({"example_id": [f"b{i}" for i in range(150)], "logit": logits}).to_parquet(
        tmp_path / "batch.parquet", index=False
    )
    score.main(
        ["--bundle", str(pipeline["bundle"]), "--scores", str(tmp_path / "batch.parquet")]
        + ["--summary", str(tmp_path / "s.json"), "--resamples", "30"]
    )
    got = api.estimate_batch(
        bundle, logits, example_ids=[f"b{i}" for i in range(150)], resamples=30
    )
    runtime.write_json(tmp_path / "api.json", got)  # as score writes it (rounded alike)
    written, through_api = (json.loads((tmp_path / n).read_text()) for n in ("s.json", "api.json"))
    for key in ("estimated_prior", "estimated_at_threshold", "drift", "examples"):
        assert through_api[key] == written[key], key


def test_evaluate_scores_matches_the_pieces_it_wraps():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    p = priors.sigmoid(np.where(y == 1, 1.0, -2.0) + rng.normal(size=400))
    out = api.evaluate_scores(y, p, prior=0.05, cost_fp=1, cost_fn=10, resamples=50)
    w = priors.weights_at_prior(y, np.ones(400), prior=0.05)
    z = np.log(p / (1 - p))
    cut, _ = priors.cost_minimising_threshold(y, z, w, cost_fp=1, cost_fn=10)
    assert out["threshold"] == priors.threshold_probability(cut, z)
    flagged = p >= out["threshold"]
    assert out["metrics"]["precision"] == pytest.approx(
        np.sum(w * y * flagged) / np.sum(w * flagged)
    )
    low, high = out["intervals"]["precision_ci"]
    assert low <= out["metrics"]["precision"] <= high
    assert "interval_refused" not in out
    few = api.evaluate_scores(
        y, p, prior=0.05, cost_fp=1, cost_fn=10, min_positives=int(y.sum()) + 1
    )
    assert few["intervals"] is None and few["metrics"] == out["metrics"]
    assert few["interval_refused"].startswith(f"{int(y.sum())} positives (the given labels)")
    with pytest.raises(ValueError, match=r"probabilities are outside \[0, 1\]"):
        api.evaluate_scores(y, p + 1, prior=0.05, cost_fp=1, cost_fn=10)


NO_TENSORFLOW = """
import sys
import numpy as np
from dsprior import api
bundle = api.load_bundle(sys.argv[1], model=False)
api.estimate_batch(bundle, np.linspace(-5, 2, 60), resamples=5)
api.estimate_prior(np.linspace(-5, 2, 60), prior=0.05, threshold=0.3, cost_fp=1, cost_fn=10,
                   resamples=5)
y = np.r_[np.zeros(30, int), np.ones(10, int)]
api.evaluate_scores(y, np.linspace(0.01, 0.99, 40), prior=0.1, cost_fp=1, cost_fn=10,
                    resamples=5)
assert "tensorflow" not in sys.modules, "tensorflow was imported"
assert "keras" not in sys.modules, "keras was imported"
print("no tensorflow")
"""


def test_non_cnn_functions_never_import_tensorflow(pipeline: dict[str, Path]):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, str(pipeline["bundle"])],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no tensorflow" in proc.stdout
