"""The Keras callbacks: ``StepCurves`` draws the step-level curves, evaluates ``dev_a`` and keeps
the best; ``Checkpointer`` writes the checkpoints a killed run resumes from (``resume``).

Every ``log_every`` steps: loss, precision, recall and F1 of the training batches since
the previous log (the Keras metrics are reset after each log, so nothing is
cumulative); in weighted mode the counts carry the training weights. Every
``eval_every`` steps and at the end of each epoch: the same on ``dev_a`` twice, as
sampled and weighted to the production prior (``sample_weight`` = the manifest's
``weight``), plus average precision. The model kept is the one with the best ``dev_a``
metric at the production prior (``select_metric``); ``patience`` evaluations without
improvement stop training.

With an evaluation sample (``train.eval_sample``, ``devsample``), every evaluation scores
the sample (curves ``dev_a/<view>/sample/...``, each production-prior score with its 95%
interval as ``<score>_low`` and ``<score>_high``), and the whole of dev_a (curves
``dev_a/...``) is scored only at ``train.eval_whole`` of the evaluations, the first and the
last among them and the rest spread evenly in log(step) (``CurveSchedule.decision_steps``):
the decisions. The best model is chosen among them on the whole of dev_a, and ``patience``
counts decisions without improvement. The sample does not decide: none of its scores ranked
the models as all of dev_a did at the production prior (the reference run's figures are in
docs/scale.md), since average precision there rests on the few negatives that score highest,
of which a sample holds few.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from tqdm import tqdm

from dsprior import runtime
from dsprior.training import resume
from dsprior.training.curves import save_curve_rows
from dsprior.training.scores import is_better, window_scores

if TYPE_CHECKING:
    from dsprior.training.params import TrainConfig

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
BEST_WEIGHTS_FILE = "best_weights.npz"


@dataclass(frozen=True)
class CurveSchedule:
    """When ``StepCurves`` logs, evaluates, selects and stops, in global steps.

    ``log_every``, ``eval_every``, ``checkpoint_every`` (steps a Keras epoch),
    ``select_metric``, ``patience`` and ``decisions`` (``eval_whole``) are the ``train``
    params; ``steps_per_epoch`` is a pass over the training rows (an evaluation at each end),
    ``total_steps`` the run's length, and ``start_step`` where a resumed run picks up (0: a
    fresh run).
    """

    log_every: int
    eval_every: int
    steps_per_epoch: int
    checkpoint_every: int
    total_steps: int
    select_metric: str
    patience: int | None
    start_step: int = 0
    decisions: int | None = None  # with a sample: evaluations scoring all of dev_a (eval_whole)

    @classmethod
    def from_config(
        cls, config: TrainConfig, *, steps_per_epoch: int, total_steps: int, start_step: int = 0
    ) -> CurveSchedule:
        """The schedule of a run of ``config`` with these steps (the training stream's)."""
        return cls(
            log_every=config.log_every,
            eval_every=config.eval_every,
            steps_per_epoch=steps_per_epoch,
            checkpoint_every=config.checkpoint_every,
            total_steps=total_steps,
            select_metric=config.select_metric,
            patience=config.patience,
            start_step=start_step,
            decisions=config.eval_whole,
        )

    def evaluation_steps(self) -> list[int]:
        """Every step that evaluates dev_a: each ``eval_every``-th, each epoch's end, the last."""
        total = self.total_steps
        steps = set(range(self.eval_every, total + 1, self.eval_every))
        steps |= set(range(self.steps_per_epoch, total + 1, self.steps_per_epoch))
        return sorted(steps | {total})

    def decision_steps(self) -> list[int]:
        """The evaluations that score all of dev_a under an evaluation sample: ``decisions`` of
        them, the first and the last evaluation among them (one decision: the last), the rest
        spread evenly in the logarithm of the step (denser early, where the model changes
        fastest: the default run's best model was at step 100 of 514); each is the evaluation
        nearest its target, so two targets on one evaluation make one decision. All of them
        when ``decisions`` is None or not smaller."""
        steps = self.evaluation_steps()
        if self.decisions is None or self.decisions >= len(steps):
            return steps
        logs = np.log(steps)
        targets = (
            np.linspace(logs[0], logs[-1], self.decisions) if self.decisions > 1 else logs[-1:]
        )
        nearest = {int(np.argmin(np.abs(logs - target))) for target in targets}
        return [steps[i] for i in sorted(nearest)]


class StepCurves(keras.callbacks.Callback):
    """Windowed training curves, dev_a evaluations, best-model selection and early stopping.

    Global step = Keras epoch * ``checkpoint_every`` + batch + 1 (``schedule``). The training
    metrics are reset after every log, so each logged value covers the window
    since the previous log. State needed after a restart (best value, patience
    counter, dropout's random state, the best weights) goes into every checkpoint
    (``save_state``, called by ``Checkpointer``), and the curve rows logged since the
    previous checkpoint into ``rows_dir`` (``save_curve_rows``); a resumed run reads the
    state back from its checkpoint folder, ``resume_from``.
    """

    def __init__(
        self,
        *,
        live: Any,  # a dvclive Live
        evaluate_dev: Callable[[keras.Model], dict[str, dict[str, float]]] | None,
        schedule: CurveSchedule,
        rows_dir: Path | None = None,
        resume_from: Path | None = None,
        evaluate_sample: Callable[[keras.Model], dict[str, dict[str, float]]] | None = None,
    ) -> None:
        super().__init__()
        self.live = live
        self.rows_dir = None if rows_dir is None else Path(rows_dir)
        self._rows: list[list] = []  # [step, name, value] logged since the last checkpoint
        self._step = schedule.start_step
        self.evaluate_dev = evaluate_dev
        self.evaluate_sample = evaluate_sample
        self.schedule = schedule
        self.state: dict[str, Any] = {
            "best_value": None,
            "best_step": None,
            "best_scores": None,
            "evals_since_best": 0,
            "evaluations": {"sample": 0, "whole": 0},
        }
        # wall seconds spent scoring (this process only: not saved, so outputs stay the same
        # bytes from run to run); logged at the end of training
        self.seconds = {"sample": 0.0, "whole": 0.0}
        self.best_weights: list[np.ndarray] | None = None
        if schedule.start_step and resume_from is not None:
            self.state = json.loads((Path(resume_from) / STATE_FILE).read_text())
            if (Path(resume_from) / BEST_WEIGHTS_FILE).exists():
                with np.load(Path(resume_from) / BEST_WEIGHTS_FILE) as saved:
                    self.best_weights = [saved[f"w{i}"] for i in range(len(saved.files))]
        self._epoch = 0
        self._progress: Any = None  # a tqdm bar while training runs
        self._evaluations = set(schedule.evaluation_steps())
        self._decisions = set(schedule.decision_steps())

    @property
    def step(self) -> int:
        """The global step of the last training batch: the step a checkpoint now resumes at."""
        return self._step

    def restore_best(self) -> None:
        """Put the best evaluated weights back into the model."""
        if self.best_weights is None:
            raise RuntimeError("no dev_a evaluation ran, so there is no best model")
        self.model.set_weights(self.best_weights)

    def _seed_generators(self) -> list:
        # Dropout's random state is a variable that save_weights does not store.
        return [
            layer.seed_generator for layer in self.model.layers if hasattr(layer, "seed_generator")
        ]

    def on_train_begin(self, logs=None):
        for generator, value in zip(
            self._seed_generators(), self.state.get("seed_states", []), strict=False
        ):
            generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
        self._progress = tqdm(
            total=self.schedule.total_steps,
            initial=self.schedule.start_step,
            desc="train",
            unit="step",
            disable=None,
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        schedule = self.schedule
        step = self._epoch * schedule.checkpoint_every + batch + 1
        self._step = step
        self._progress.update(1)
        last = step >= schedule.total_steps
        if step % schedule.log_every == 0 or last:
            for name, value in window_scores(logs).items():
                self._log(step, f"train/{name}", value)
            self.model.reset_metrics()
        if self.evaluate_dev is not None and step in self._evaluations:
            # None on non-chief workers: only the chief evaluates
            self._evaluate(step)
        if last:
            self.model.stop_training = True

    def _log(self, step: int, name: str, value: float) -> None:
        self.live.step = step
        self.live.log_metric(name, value)
        self._rows.append([step, name, value])

    def _score(self, kind: str, step: int) -> dict[str, dict[str, float]]:
        """Score ``kind`` (``sample`` or ``whole``) of dev_a with the model, and log it."""
        evaluate = self.evaluate_sample if kind == "sample" else self.evaluate_dev
        assert evaluate is not None  # called only where it is set
        started = time.perf_counter()
        scores = evaluate(self.model)
        self.seconds[kind] += time.perf_counter() - started
        counts = self.state.setdefault("evaluations", {"sample": 0, "whole": 0})
        counts[kind] += 1
        inner = "sample/" if kind == "sample" else ""  # in dvc.yaml's declared folders
        for view, values in scores.items():
            for name, value in values.items():
                self._log(step, f"dev_a/{view}/{inner}{name}", value)
        return scores

    def _evaluate(self, step: int) -> None:
        metric = self.schedule.select_metric
        if self.evaluate_sample is not None:
            self._score("sample", step)
            if step not in self._decisions:
                return
        scores = self._score("whole", step)
        value = scores["prior"][metric]
        if is_better(value, self.state["best_value"], metric=metric):
            self.state.update(
                best_value=value, best_step=step, best_scores=scores, evals_since_best=0
            )
            self.best_weights = [np.array(w) for w in self.model.get_weights()]
        else:
            self._no_improvement(step)
        logger.info("step %d dev_a prior %s = %.4f", step, metric, value)

    def _no_improvement(self, step: int) -> None:
        self.state["evals_since_best"] += 1
        patience = self.schedule.patience
        if patience is not None and self.state["evals_since_best"] >= patience:
            logger.info(
                "early stop at step %d: best %s at step %s",
                step,
                self.schedule.select_metric,
                self.state["best_step"],
            )
            self.model.stop_training = True

    def save_state(self, folder: Path) -> None:
        """Write what a restart needs into a checkpoint's ``folder``, and the curve rows logged
        since the previous checkpoint into ``rows_dir``."""
        if self.rows_dir is not None:
            save_curve_rows(self.rows_dir, step=self._step, rows=self._rows)
        self._rows = []
        self.state["seed_states"] = [np.asarray(g.state).tolist() for g in self._seed_generators()]
        if self.best_weights is not None:
            weights: dict[str, Any] = {f"w{i}": w for i, w in enumerate(self.best_weights)}
            np.savez(Path(folder) / BEST_WEIGHTS_FILE, **weights)
        runtime.write_json(Path(folder) / STATE_FILE, self.state)

    def on_train_end(self, logs=None):
        self._progress.close()
        counts = self.state.get("evaluations", {})
        logger.info(
            "dev_a scored %d times whole (%.1f s) and %d times as its sample (%.1f s); "
            "its rows copied from Parquet once, in the first of these (%.1f s)",
            counts.get("whole", 0),
            self.seconds["whole"],
            counts.get("sample", 0),
            self.seconds["sample"],
            getattr(self.evaluate_dev, "copy_seconds", 0.0),
        )


class Checkpointer(keras.callbacks.Callback):
    """A checkpoint at the end of every Keras epoch (``checkpoint_every`` steps), written whole
    or not at all (``resume.save_checkpoint``): the model's and optimizer's weights with
    ``curves``' state; ``resume_from``'s weights are loaded when training begins.

    Stands in for Keras' ``BackupAndRestore``, which overwrote its files in place, so that a
    kill while it wrote left a backup the next run could not load. The Keras epoch to start
    from is ``fit``'s ``initial_epoch`` (``loop.initial_epoch``).
    """

    def __init__(
        self,
        backup_dir: str | Path,
        *,
        curves: StepCurves,
        resume_from: resume.Checkpoint | None,
    ) -> None:
        super().__init__()
        self.root = Path(backup_dir) / resume.CHECKPOINTS
        self.curves = curves
        self.resume_from = resume_from

    def on_train_begin(self, logs=None):
        if self.resume_from is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its variables are loaded too
        self.model.load_weights(self.resume_from.path / resume.WEIGHTS)

    def on_epoch_end(self, epoch, logs=None):
        def write(folder: Path) -> None:
            self.model.save_weights(folder / resume.WEIGHTS)
            self.curves.save_state(folder)

        resume.save_checkpoint(
            self.root,
            step=self.curves.step,
            epoch=epoch + 1,
            stopped=bool(self.model.stop_training),
            write=write,
        )
