"""The ``ingest`` params section: each bad value named with its full key and what is allowed."""

from __future__ import annotations

import os

import pytest

from dsprior.ingest import IngestConfig
from tests.rawfiles import INGEST_PARAMS


def test_ingest_config_validation_names_the_full_key_and_the_bad_value() -> None:
    with pytest.raises(
        ValueError, match=r"ingest.on_error must be one of \['fail', 'quarantine'\]"
    ):
        IngestConfig.from_params(
            {
                **INGEST_PARAMS,
                "on_error": "ignore",
                "sources": {"s": {"path": "x", "negative_rate": 1}},
            }
        )
    with pytest.raises(
        ValueError, match=r"ingest.chunk_row: unknown key .*did you mean 'chunk_rows'"
    ):
        IngestConfig.from_params(
            {**INGEST_PARAMS, "chunk_row": 8, "sources": {"s": {"path": "x", "negative_rate": 1}}}
        )
    params = {k: v for k, v in INGEST_PARAMS.items() if k != "dtype"}
    with pytest.raises(ValueError, match=r"ingest.dtype is required; add it to params.yaml"):
        IngestConfig.from_params({**params, "sources": {"s": {"path": "x", "negative_rate": 1}}})


SOURCE = {"s": {"path": "x", "negative_rate": 1}}


@pytest.mark.parametrize("bad", [0, 1.5, "all", "", True])
def test_workers_must_be_auto_or_a_positive_integer(bad) -> None:
    with pytest.raises(
        ValueError, match=rf"ingest.workers must be 'auto' or an integer >= 1, got {bad!r}"
    ):
        IngestConfig.from_params({**INGEST_PARAMS, "workers": bad, "sources": SOURCE})


def test_auto_workers_are_the_cores_this_process_may_use() -> None:
    """``auto`` is the process's CPU affinity (a container's CPU set), not the host's count."""
    config = IngestConfig.from_params({**INGEST_PARAMS, "workers": "auto", "sources": SOURCE})
    assert config.workers == len(os.sched_getaffinity(0)) >= 1
    assert IngestConfig.from_params({**INGEST_PARAMS, "workers": 3, "sources": SOURCE}).workers == 3
