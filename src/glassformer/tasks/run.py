"""The train skeleton every task shares, so that a task's ``train`` holds only its data, model and scores.

A task's ``train`` reads::

    run = TrainingRun.begin(sys.modules[__name__], preset, overrides)  # clocks, torchrun, the preset
    ...read the user's data, refusing it if bad, before anything is written...
    with run.claim(out, overwrite=overwrite, resume=resume):          # the output directory, locked
        ...build the model and a Trainer with run.train_config(...)...
        result = run.fit(trainer, resume=resume)                       # checkpoints in out/run
        distributed.write_once(score_and_save)                         # rank 0 scores, then run.save(...)
    return TaskRun(run.out_dir, ..., total_seconds=run.seconds())

Until the model is saved, the directory holds only ``run/``: the trainer's checkpoints and metrics, which a
killed run continues from with ``resume=True``. The saved model takes the directory's place in one rename
(:func:`glassformer.training.save_model`); a failure anywhere inside the ``with`` block gives the writer's
lock back, so nothing is left behind but that ``run/``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from glassformer._files import release_output
from glassformer.tasks.base import resolve_preset
from glassformer.training import TrainConfig, Trainer, TrainResult, distributed, save_model
from glassformer.training.saved import prepare_out_dir


@dataclass
class TrainingRun:
    """One ``train`` call of a task, from preset to saved model: its clocks, preset, directory and trainer's result."""

    task: ModuleType  # the task module: its TASK name and default_out_dir
    recipe: Any = None  # the resolved preset
    started: float = field(default_factory=time.perf_counter)  # for the seconds a run reports
    began: float = field(default_factory=time.time)  # a time budget (--minutes) counts from here
    out_dir: Path | None = None  # set by claim
    result: TrainResult | None = None  # set by fit

    @classmethod
    def begin(cls, task: ModuleType, preset: Any, overrides: dict[str, Any]) -> "TrainingRun":
        """Start the clocks, join a torchrun job, and resolve `preset` (a name or a preset) with `overrides`."""
        run = cls(task)
        distributed.init_distributed()  # now, so that rank 0 can learn a vocabulary and share it
        run.recipe = resolve_preset(task, preset, overrides)
        return run

    @property
    def run_dir(self) -> Path:
        """Where the trainer keeps checkpoints and metrics until the saved model replaces the directory."""
        if self.out_dir is None:
            raise RuntimeError("claim the output directory before training")
        return self.out_dir / "run"

    @contextlib.contextmanager
    def claim(self, out: str | Path | None, *, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
        """:func:`claimed` for `out`, or the task's default directory for the preset; the block trains and saves."""
        with claimed(out if out is not None else self.task.default_out_dir(self.recipe), overwrite=overwrite,
                     resume=resume) as out_dir:
            self.out_dir = out_dir
            yield out_dir

    def train_config(self, *, seed: int, progress: bool, reserve_evals: float = 0.0) -> TrainConfig:
        """The preset's trainer settings: checkpoints in ``out/run``, a time budget counted from :meth:`begin`.

        `reserve_evals`: the closing work (test scores, saving) in validation passes, kept out of the budget.
        """
        config = self.recipe.train_config(str(self.run_dir), seed=seed, progress=progress)
        config.started_at = self.began
        config.reserve_evals = reserve_evals
        return config

    def fit(self, trainer: Trainer, *, resume: bool = False) -> TrainResult:
        """Train (continuing the run in ``out/run`` with `resume`) and keep the result for :meth:`figures`."""
        self.result = trainer.fit(resume=resume)
        return self.result

    @property
    def best_metric(self) -> float:
        """The best validation figure the trainer saw (NaN when it never evaluated)."""
        best = self.result.best_metric if self.result is not None else None
        return best if best is not None else float("nan")

    def seconds(self) -> float:
        """Seconds since :meth:`begin`: the whole run, data and saving included."""
        return time.perf_counter() - self.started

    def figures(self) -> dict[str, Any]:
        """What every saved model records of its training: steps, seconds (training, whole run), precision, and with
        a time budget what it measured and planned (``budget``)."""
        if self.result is None:
            raise RuntimeError("fit before asking for the training figures")
        return {"steps": self.result.steps, "train_seconds": round(self.result.seconds, 1),
                "total_seconds": round(self.seconds(), 1), "precision": self.result.precision,
                **({"budget": self.result.budget} if self.result.budget is not None else {})}

    def save(self, model: Any, extra: dict[str, Any], **companions: Any) -> Path:
        """Save `model` in place of the claimed directory and its ``run/``: the task's name, the run's metrics log
        (and its plot), `extra` in ``config.json``, and `companions` (``tokenizer=``, ``label_names=``)."""
        if self.out_dir is None:
            raise RuntimeError("claim the output directory before saving")
        return save_model(self.out_dir, model, overwrite=True, task=self.task.TASK,
                          metrics_file=self.run_dir / "metrics.jsonl", extra=extra, **companions)


@contextlib.contextmanager
def claimed(directory: str | Path, *, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Check and lock `directory` for a model the block will save there; a block that fails gives the lock back.

    What may already be there: see :func:`~glassformer.training.saved.prepare_out_dir`. Saving the model
    releases the lock; a failure (bad data found while reading, an error in training) releases it too, so
    the directory is free for the next run and no lock file is left behind.
    """
    out_dir = prepare_out_dir(directory, overwrite=overwrite, resume=resume)
    try:
        yield out_dir
    finally:
        release_output(out_dir)  # nothing to do after a save, which gave it back already
