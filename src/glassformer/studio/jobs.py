"""Models the studio can use once trained: where each lives, how to train it, and training in a background thread.

A tab whose model is missing shows the command that trains it and a button that runs the quick
preset here in a thread; the tab polls :meth:`TrainingJob.status` for live progress (the step and
loss the trainer writes to ``run/metrics.jsonl``), and loads the model once the thread is done.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("glassformer.studio")


@dataclass
class ModelSlot:
    """One task's model for the studio: its directory, the command that trains it, how to load and train it."""

    name: str
    directory: Path
    command: str
    loader: Callable[[Path], Any]
    trainer: Callable[[Path], Any] | None = None
    unavailable: str | None = None  # why this installation cannot run the task at all (None: it can)
    expected: str = ""  # what the quick preset reaches, as measured in benchmarks/RESULTS.md

    def __post_init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self.job: TrainingJob | None = None

    def get(self) -> Any | None:
        """The loaded model, or None when its directory holds no usable model yet."""
        if self.unavailable:
            return None
        with self._lock:
            if self._model is None and (self.directory / "config.json").is_file():
                try:
                    self._model = self.loader(self.directory)
                except Exception:  # a half-written or foreign directory must leave the tab usable
                    log.exception("could not load the %s model from %s", self.name, self.directory)
                    return None
            return self._model

    def forget(self) -> None:
        """Drop the loaded model so the next `get` reads the directory again."""
        with self._lock:
            self._model = None

    def start_training(self) -> str:
        """Start the quick preset in a background thread (once); returns a line saying what happened."""
        if self.trainer is None or self.unavailable:
            return f"Training the {self.name} model is not available in this version."
        if self.job is not None and self.job.running:
            return "Training is already running."
        self.job = TrainingJob(self)
        self.job.start()
        return f"Started training the {self.name} model in the background."

    def status(self) -> str:
        """A line about the model: ready, training (with progress), failed, not trained yet or not available."""
        if self.unavailable:
            return f"The {self.name} tab is not available in this version: {self.unavailable}"
        expect = f" {self.expected}" if self.expected else ""
        if self.job is not None:
            text = self.job.status()
            if self.job.running:
                return text + ("." + expect if expect else "")
            if self.job.error:
                return text
        if self.get() is not None:
            return f"The {self.name} model in {self.directory} is ready."
        button = (", or press the button below to train the quick preset here in the background"
                  if self.trainer is not None else "")
        return (f"The {self.name} model is not trained yet. Train it from a terminal with `{self.command}`{button}."
                f"{expect}")

    def losses(self) -> tuple[list[int], list[float]]:
        """The steps and training losses logged so far by the run this slot started (empty lists when none)."""
        return self.job.losses() if self.job is not None else ([], [])


class TrainingJob:
    """A training run in a daemon thread; its status line reads the trainer's metrics log as it grows."""

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot
        self.started = 0.0
        self.finished: float | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"train-{slot.name}", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self.started = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        try:
            assert self.slot.trainer is not None
            self.slot.trainer(self.slot.directory)
            self.slot.forget()
        except Exception as exc:  # the thread must report, not take the app down
            log.exception("training the %s model failed", self.slot.name)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished = time.perf_counter()

    def _records(self) -> list[dict[str, Any]]:
        """The trainer's metrics log so far; after the run the saved model keeps it as ``metrics.jsonl``."""
        for path in (self.slot.directory / "run" / "metrics.jsonl", self.slot.directory / "metrics.jsonl"):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError:
                continue
            records = []
            for line in lines:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the trainer may be halfway through writing the last line
            return records
        return []

    def _last_record(self) -> dict[str, Any] | None:
        records = self._records()
        return records[-1] if records else None

    def losses(self) -> tuple[list[int], list[float]]:
        """The (step, loss) of every training record logged so far, for the live loss curve."""
        pairs = [(int(r["step"]), float(r["loss"])) for r in self._records()
                 if r.get("kind", "train") == "train" and isinstance(r.get("loss"), (int, float))
                 and isinstance(r.get("step"), int)]
        return [step for step, _ in pairs], [loss for _, loss in pairs]

    def status(self) -> str:
        end = self.finished if self.finished is not None else time.perf_counter()
        elapsed = f"{end - self.started:.0f} s"
        if self.error:
            return f"Training the {self.slot.name} model failed after {elapsed}: {self.error}"
        if not self.running:
            return f"Training finished in {elapsed}; the {self.slot.name} model is ready."
        record = self._last_record()
        if record is None:
            return f"Training the {self.slot.name} model: preparing data and model… ({elapsed})"
        loss = record.get("loss")
        loss_text = f", loss {loss:.3f}" if isinstance(loss, (int, float)) else ""
        return f"Training the {self.slot.name} model: step {record.get('step')}{loss_text} ({elapsed} elapsed)"
