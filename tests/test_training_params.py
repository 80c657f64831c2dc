"""The train section: each bad value is refused with a message naming it."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from dsprior.training.params import resolve_params
from tests.conftest import ROOT

TINY = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]  # every key is required


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"balance": "smote"},
            r"train.balance must be one of \['downsample', 'weighted'\], got 'smote'",
        ),
        ({"select_metric": "auc"}, "train.select_metric must be one of"),
        ({"checkpoint_every": 5}, "must be a multiple of train.log_every"),
        ({"batch_size": 0}, "train.batch_size must be an integer >= 1, got 0"),
        ({"colour": 1}, r"train.colour: unknown key \(value 1\); allowed keys in train are"),
    ],
)
def test_bad_params_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_params({**TINY, **override})


def test_the_config_holds_every_key_and_gives_the_section_back():
    config = resolve_params(TINY)
    assert config.batch_size == TINY["batch_size"]
    assert config.filter_sizes == tuple(TINY["filter_sizes"])
    assert (config.compute.precision, config.compute.onednn) == (
        TINY["precision"],
        TINY["onednn"],
    )
    # train.json's params and the resume fingerprint: the section as params.yaml holds it
    assert config.as_params() == TINY
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 9  # type: ignore[misc]
