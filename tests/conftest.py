"""Shared fixtures: tiny params and a scratch copy of the project (``tools.scratch``), the
evaluation's predictions table and its evaluation (``tests.factories``' evaluation data), and
the tiny pipeline run the bundle and score tests read (``tests.factories.shared_pipeline``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dsprior import runtime
from dsprior.bundle import Bundle, load_bundle
from tests.factories import (
    EVAL_BETA,
    EVAL_PARAMS,
    EVAL_PRIOR,
    PIPELINE_PRIORS,
    make_predictions,
    shared_pipeline,
)
from tools import scratch
from tools.scratch import ROOT, deep_merge, run, tool_env

__all__ = ["ROOT", "TINY_PARAMS", "deep_merge", "make_project", "run", "tool_env"]

# Small enough that the whole pipeline runs in well under a minute on 2 cores.
TINY_PARAMS: dict[str, Any] = {
    "generate": {
        "seed": 11,
        "dim": 12,
        "min_rows": 3,
        "max_rows": 20,
        "evidence_min_len": 3,
        "evidence_max_len": 4,
        "evidence_strength": 2.0,
        "prior": 0.05,
        "files_per_source": 2,
        "sources": {
            "pool": {"examples": 1500, "negative_rate": 0.2},
            "production": {"examples": 800, "negative_rate": 1.0},
        },
    },
    "ingest": {
        "row_group_size": 32,
        "shard_size": 200,
        "sources": {
            "pool": {"path": "dsprior/simulator.py", "format": "simulated", "negative_rate": 0.2},
            "production": {
                "path": "dsprior/simulator.py",
                "format": "simulated",
                "negative_rate": 1.0,
            },
        },
    },
    "train": {
        "filter_sizes": [2, 3, 4],
        "filters": 8,
        "batch_size": 16,
        "epochs": 2,
        "log_every": 2,
        "eval_every": 5,
        "eval_batch_size": 32,
        "checkpoint_every": 4,
        "pool_size": 200,
    },
    "evaluate": {"bootstrap": {"resamples": 200}},
}


def pytest_configure(config: pytest.Config) -> None:
    """TensorFlow quiet for the whole session, before any test imports it.

    Nothing in dsprior sets TensorFlow up at import; each entry point's main() does. The
    tests that import TensorFlow in process get what ``runtime.quiet_tensorflow`` chooses
    (oneDNN off unless TF_ENABLE_ONEDNN_OPTS is set); those that run a stage get the stage's.
    """
    runtime.quiet_tensorflow()
    # `make mutation`: mutmut's stats pass marks this process MUTANT_UNDER_TEST=stats to learn
    # which tests call which function. A child process (a stage's command line, dvc repro) can
    # neither report back nor find mutmut's config from its own working directory, so children
    # run the code unmarked; this process keeps mutmut's in-process copy of the mark.
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]
    config.addinivalue_line(
        "markers", "every_prior: the tests' ``pipeline`` runs at each of factories.PIPELINE_PRIORS"
    )
    config.addinivalue_line(
        "markers", "uses_pipeline: reads the shared tiny pipeline run (a trained model)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that read the shared tiny pipeline run, so that `make mutation` can leave
    them out: each mutant's fresh pytest session would train it again, and the minutes that
    takes would read as a timeout, a kill that tests nothing."""
    for item in items:
        if {"pipeline", "any_pipeline", "loaded"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.uses_pipeline)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``every_prior`` (the bundle modules mark all theirs) that reads ``pipeline``
    runs once for each prior in PIPELINE_PRIORS, one module's tests per prior at a time."""
    if "pipeline" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "every_prior"
    ):
        metafunc.parametrize(
            "pipeline",
            list(PIPELINE_PRIORS.values()),
            ids=list(PIPELINE_PRIORS),
            indirect=True,
            scope="module",
        )


def make_project(path: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A scratch project (``tools.scratch``) with the tiny params and ``overrides``."""
    return scratch.make_project(path, deep_merge(TINY_PARAMS, overrides or {}))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary project repository with tiny params."""
    return make_project(tmp_path / "project")


@pytest.fixture(scope="module")
def predictions():
    """``make_predictions``' table, once per module."""
    return make_predictions()


@pytest.fixture(scope="module")
def evaluated(predictions):
    """(metrics, plots, report) of ``evaluate_predictions`` on ``predictions`` at EVAL_PRIOR."""
    from dsprior.evaluation.config import check_params
    from dsprior.evaluation.pipeline import evaluate_predictions

    return evaluate_predictions(
        predictions,
        config=check_params(EVAL_PARAMS),
        prior=EVAL_PRIOR,
        prior_source="fixture",
        beta=EVAL_BETA,
    )


@pytest.fixture(scope="module")
def pipeline(request: pytest.FixtureRequest, tmp_path_factory) -> dict[str, Path]:
    """``shared_pipeline``'s run at evaluate's estimated prior (a prior shift), or at each of
    PIPELINE_PRIORS in a module marked ``every_prior``; built once per session and prior."""
    return shared_pipeline(tmp_path_factory, prior=getattr(request, "param", None))


@pytest.fixture(scope="module")
def loaded(pipeline: dict[str, Path]) -> Bundle:
    """``pipeline``'s bundle, loaded."""
    return load_bundle(pipeline["bundle"])
