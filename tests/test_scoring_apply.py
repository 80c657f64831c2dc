"""dsprior.scoring.apply: decisions and expected costs by hand; scores independent of batching."""

from __future__ import annotations

import numpy as np
import pytest

from dsprior import priors, scoring
from dsprior.bundle import Bundle
from tests.factories import DIM


def test_expected_costs_and_decisions_by_hand() -> None:
    p = np.array([0.05, 0.2, 0.0909, 0.9])
    decision = priors.decide_log_odds(np.log(p / (1 - p)), threshold=0.0909)  # ">=", in log-odds
    assert decision.tolist() == [0, 1, 1, 1]
    np.testing.assert_allclose(
        scoring.expected_costs(p, decision, costs=priors.Costs(1, 10)), [0.5, 0.8, 0.9091, 0.1]
    )
    with pytest.raises(ValueError, match="costs must be >= 0"):
        scoring.expected_costs(p, decision, costs=priors.Costs(-1, 10))


def test_scores_do_not_depend_on_batching(loaded: Bundle) -> None:
    arrays = [
        np.random.default_rng(i).normal(size=(n, DIM)) for i, n in enumerate([1, 7, 3, 12, 2])
    ]
    one = scoring.score_arrays(loaded.model, arrays, dim=DIM, batch_size=1)
    many = scoring.score_arrays(loaded.model, arrays, dim=DIM, batch_size=5)
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        scoring.score_arrays(loaded.model, arrays, dim=DIM, batch_size=0)
