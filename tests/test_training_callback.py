"""The training callback's state: restored on resume, and no best model without an evaluation.

Its curves and model selection during a real run are tested in test_training_loop.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsprior.training.callback import StepCurves


def step_curves(state_dir, *, start_step=0):
    return StepCurves(
        live=None,
        evaluate_dev=None,
        log_every=2,
        eval_every=4,
        steps_per_epoch=4,
        checkpoint_every=4,
        total_steps=8,
        select_metric="f1",
        patience=None,
        state_dir=state_dir,
        start_step=start_step,
    )


def test_no_evaluation_means_no_best_model(tmp_path):
    with pytest.raises(RuntimeError, match="no dev_a evaluation ran"):
        step_curves(tmp_path).restore_best()


def test_a_resumed_callback_picks_up_the_saved_best(tmp_path):
    state = {"best_value": 0.5, "best_step": 4, "best_scores": None, "evals_since_best": 1}
    (tmp_path / "state.json").write_text(json.dumps(state))
    np.savez(tmp_path / "best_weights.npz", w0=np.ones(3), w1=np.zeros((2, 2)))
    resumed = step_curves(tmp_path, start_step=4)
    assert resumed.state == state
    assert [w.shape for w in resumed.best_weights] == [(3,), (2, 2)]
    assert step_curves(tmp_path).state["best_step"] is None  # a fresh run ignores it
