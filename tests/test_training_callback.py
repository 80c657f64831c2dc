"""The training callback's state: restored on resume, and no best model without an evaluation.

Its curves and model selection during a real run are tested in test_training_loop.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from dsprior.training.callback import CurveSchedule, StepCurves
from dsprior.training.curves import load_curve_rows
from dsprior.training.params import resolve_params
from tests.test_training_params import TINY


def step_curves(resume_from=None, *, start_step=0, rows_dir=None):
    return StepCurves(
        live=None,
        evaluate_dev=None,
        schedule=CurveSchedule(
            log_every=2,
            eval_every=4,
            steps_per_epoch=4,
            checkpoint_every=4,
            total_steps=8,
            select_metric="f1",
            patience=None,
            start_step=start_step,
        ),
        rows_dir=rows_dir,
        resume_from=resume_from,
    )


def test_the_schedule_takes_the_train_params_and_the_runs_steps():
    params = {
        **TINY,
        "log_every": 3,
        "eval_every": 6,
        "checkpoint_every": 12,
        "patience": 2,
        "eval_whole": 4,
    }
    got = CurveSchedule.from_config(
        resolve_params(params), steps_per_epoch=24, total_steps=48, start_step=12
    )
    assert got == CurveSchedule(
        log_every=3,
        eval_every=6,
        steps_per_epoch=24,
        checkpoint_every=12,
        total_steps=48,
        select_metric=TINY["select_metric"],
        patience=2,
        start_step=12,
        decisions=4,
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


def test_saved_state_is_what_a_resumed_callback_reads(tmp_path):
    saving = step_curves(rows_dir=tmp_path / "curves")
    saving.state.update(best_value=0.25, best_step=3, evals_since_best=2)
    saving.best_weights = [np.arange(3.0)]
    saving._rows, saving._step = [[2, "train/loss", 0.5], [4, "train/loss", 0.4]], 4
    saving.set_model(
        keras.Sequential(
            [keras.Input((3,)), keras.layers.Dropout(0.5, seed=1), keras.layers.Dense(1)]
        )
    )
    (tmp_path / "checkpoint").mkdir()  # the staging folder of resume.save_checkpoint
    saving.save_state(tmp_path / "checkpoint")
    assert saving._rows == []  # the next checkpoint saves only what is logged after this one
    assert load_curve_rows(tmp_path / "curves", after_step=4) == [
        [2, "train/loss", 0.5],
        [4, "train/loss", 0.4],
    ]
    resumed = step_curves(tmp_path / "checkpoint", start_step=4)
    assert resumed.state == saving.state
    assert len(resumed.state["seed_states"]) == 1  # dropout's random state
    np.testing.assert_array_equal(resumed.best_weights[0], np.arange(3.0))
