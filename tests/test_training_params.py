"""The train section: each bad value is refused with a message naming it."""

from __future__ import annotations

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
