"""The ``evaluate`` params section (``dsprior.evaluation.config``): each bad value refused by name."""

from __future__ import annotations

import pytest

from dsprior.evaluation.config import check_params
from tests.conftest import deep_merge
from tests.factories import EVAL_PARAMS as PARAMS


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"prior": 1.5}, r"evaluate.prior must be null or a number > 0 and < 1, got 1.5"),
        ({"cost": {"false_positive": -1}}, r"evaluate.cost.false_positive must be a number >= 0"),
        ({"cost": {"false_positive": 0, "false_negative": 0}}, "both 0"),
        ({"bootstrap": {"resamples": 0}}, "resamples must be an integer >= 1, got 0"),
        ({"bootstrap": {"level": 1.2}}, r"level must be a number > 0 and < 1, got 1.2"),
        ({"batch_size": 0}, "evaluate.batch_size must be an integer >= 1, got 0"),
        (
            {"bootstrap": {"min_prior_positives": -1}},
            r"evaluate.bootstrap.min_prior_positives must be an integer >= 0, got -1",
        ),
    ],
)
def test_bad_params_raise_with_message(params, message):
    with pytest.raises(ValueError, match=message):
        check_params(deep_merge(PARAMS, params))


def test_the_bootstrap_minimums_reach_the_config():
    config = check_params(
        deep_merge(PARAMS, {"bootstrap": {"min_positives": 4, "min_prior_positives": 25}})
    )
    assert (config.bootstrap.min_positives, config.bootstrap.min_prior_positives) == (4, 25)


def test_threshold_labels_must_be_distant_or_gold():
    with pytest.raises(ValueError, match="evaluate.threshold_labels must be one of"):
        check_params({**PARAMS, "threshold_labels": "human"})


@pytest.mark.parametrize(
    ("stated", "message"),
    [
        ({"missing_label_rate": 1.0, "false_label_rate": 0.1},
         r"evaluate.stated_label_noise.missing_label_rate must be null or a number >= 0 and < 1"),
        ({"missing_label_rate": 0.1, "false_label_rate": None},
         r"evaluate.stated_label_noise.false_label_rate must be a number in \[0, 1\) \(both set"),
        ({"missing_label_rate": 0.1, "false_positive": 0.1},
         r"evaluate.stated_label_noise.false_positive: unknown key"),
    ],
)  # fmt: skip
def test_stated_label_noise_is_checked_with_its_full_key(stated, message):
    with pytest.raises(ValueError, match=message):
        check_params({**PARAMS, "stated_label_noise": stated})


def test_stated_label_noise_null_is_unset_and_set_is_passed_on():
    assert check_params(PARAMS).stated_label_noise is None
    stated = {"missing_label_rate": 0.1, "false_label_rate": 0.05}
    assert check_params({**PARAMS, "stated_label_noise": stated}).stated_label_noise == stated
