"""Models the studio can use once trained: where each lives, how to train it, and training in the background.

A slot looks for its model in every directory the documented ``train`` commands write (the full
preset's and the quick one's) and loads the strongest by the score saved with it. A missing model is
trained in the background: queued at start-up by :class:`TrainingQueue` (one family after another) or
started by the tab's button. The studio's slots train with a :class:`TrainCommand`, the documented
``glassformer train`` command run as a child process: in a thread of the studio's process the same run
went at about half its standalone speed, its Python waiting on the GIL behind the server's event loop
(benchmarks/RESULTS.md). The tab polls :meth:`TrainingJob.status` for live progress (the step, the
planned steps and the loss the trainer writes to ``run/metrics.jsonl``) and switches to the model as
soon as it is saved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from glassformer.studio.answering import Answering

log = logging.getLogger("glassformer.studio")
STOP_TIMEOUT = 30.0  # seconds a training child gets to end on SIGTERM before it is killed


@dataclass
class TrainCommand:
    """``glassformer train TASK --preset PRESET`` with `settings` as flags, run as a child process into a directory.

    `answering`, when set, stops the child while the studio answers requests (:mod:`.answering`).
    """

    task: str
    preset: str = "quick"
    settings: Mapping[str, Any] = field(default_factory=dict)  # preset fields: {"max_steps": 20} → --max-steps 20
    answering: Answering | None = None

    def argv(self, out: Path) -> list[str]:
        """The command line that trains into `out` (replacing an earlier model or unfinished run there), quietly."""
        flags: list[str] = []
        for name, value in self.settings.items():
            flag = name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(f"--{flag}" if value else f"--no-{flag}")
            elif value is not None:  # None: the preset's own (a length given in steps drops its minutes anyway)
                flags += [f"--{flag}", str(value)]
        return [sys.executable, "-m", "glassformer.cli", "train", self.task, "--preset", self.preset, *flags,
                "--out", str(out), "--overwrite", "--quiet"]


@dataclass
class ModelSlot:
    """One task's model for the studio: where it may be saved, the command that trains it, how to load and train it.

    `directory` is where the tab's training writes; `others` are further directories a documented
    ``train`` command writes (the full preset's), and `quality` reads a saved model's recorded score
    from its ``config.json`` (higher is better), so that the slot loads the strongest model there is.
    """

    name: str
    directory: Path
    command: str
    loader: Callable[[Path], Any]
    # What trains the model into `directory`: a TrainCommand (a child process; the studio's slots), or a
    # function called in a thread of this process (tests drive the queue with those). None: no training here.
    trainer: TrainCommand | Callable[[Path], Any] | None = None
    unavailable: str | None = None  # why this installation cannot run the task at all (None: it can)
    expected: str = ""  # what the quick preset reaches, as measured in benchmarks/RESULTS.md
    others: tuple[Path, ...] = ()  # in order of preference when no score decides, before `directory`
    quality: Callable[[dict[str, Any]], float | None] | None = None
    baseline: Callable[[], dict[str, Any] | None] | None = None  # while a run trains: the level it must beat

    def __post_init__(self) -> None:
        self._model: Any = None
        self._source: Path | None = None
        self._lock = threading.Lock()
        self.job: TrainingJob | None = None
        self.queued: str | None = None  # while a TrainingQueue holds this slot: what it waits for

    def source(self) -> Path | None:
        """The directory of the strongest saved model: the best recorded score, else the first in preference order."""
        found = [d for d in (*self.others, self.directory) if (d / "config.json").is_file()]
        if len(found) <= 1 or self.quality is None:
            return found[0] if found else None
        scores = [_recorded(self.quality, d) for d in found]
        ranked = sorted(range(len(found)), key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i))
        return found[ranked[0]]

    def get(self) -> Any | None:
        """The loaded model, or None when no directory holds a usable model yet."""
        if self.unavailable:
            return None
        with self._lock:
            if self._model is None:
                source = self.source()
                if source is None:
                    return None
                try:
                    self._model, self._source = self.loader(source), source
                except Exception:  # a half-written or foreign directory must leave the tab usable
                    log.exception("could not load the %s model from %s", self.name, source)
                    return None
            return self._model

    @property
    def loaded_from(self) -> Path | None:
        """The directory the loaded model came from (None before one is loaded)."""
        return self._source if self._model is not None else None

    def forget(self) -> None:
        """Drop the loaded model so the next `get` reads the directories again."""
        with self._lock:
            self._model, self._source = None, None

    def start_training(self) -> str:
        """Start the quick preset in the background (once); returns a line saying what happened."""
        if self.trainer is None or self.unavailable:
            return f"Training the {self.name} model is not available in this version."
        if self.job is not None and self.job.running:
            return "Training is already running."
        self.job = TrainingJob(self)
        self.queued = None
        self.job.start()
        return f"Started training the {self.name} model in the background."

    def stop_training(self) -> None:
        """Leave the queue and end this slot's run, if a child process trains it (the studio is shutting down)."""
        self.queued = None
        if self.job is not None:
            self.job.stop()

    @property
    def training(self) -> bool:
        """Whether a run for this slot is under way or queued."""
        return self.queued is not None or (self.job is not None and self.job.running)

    def status(self) -> str:
        """A line about the model: ready, training (with progress), queued, failed, not trained yet or not available."""
        if self.unavailable:
            return f"The {self.name} tab is not available in this version: {self.unavailable}"
        expect = f" {self.expected}" if self.expected else ""
        if self.job is not None:
            text = self.job.status()
            if self.job.running:
                return text + ("." + expect if expect else "")
            if self.job.error:
                return text
        if self.queued is not None:
            return (f"Training in the background: the {self.name} model is queued {self.queued} (the quick preset, "
                    f"once; this tab turns live the moment it is saved).{expect}")
        if self.get() is not None:
            return f"The {self.name} model in {self.loaded_from} is ready."
        button = (", or press the button below to train the quick preset here in the background"
                  if self.trainer is not None else "")
        return (f"The {self.name} model is not trained yet. Train it from a terminal with `{self.command}`{button}."
                f"{expect}")

    def records(self) -> list[dict[str, Any]]:
        """The metrics log of this slot's run so far, else the one saved with the loaded model (empty: none)."""
        if self.job is not None:
            return self.job.records()
        source = self.loaded_from
        return read_records([source / "metrics.jsonl"]) if source is not None else []

    def losses(self) -> tuple[list[int], list[float]]:
        """The steps and training losses logged so far by the run this slot started (empty lists when none)."""
        return self.job.losses() if self.job is not None else ([], [])


def _recorded(quality: Callable[[dict[str, Any]], float | None], directory: Path) -> float | None:
    """`quality` of the saved model's config.json, or None when it records no score or cannot be read."""
    try:
        value = quality(json.loads((directory / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def read_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The records of the first metrics log in `paths` that exists; a half-written last line is skipped."""
    for path in paths:
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


class TrainingQueue:
    """Missing models trained one after another, driven by one background thread: each slot's quick preset, once.

    Slots without a trainer, unavailable ones, and those whose model is already saved are left out.
    Each queued slot says what it waits for until its turn; a run started from the tab's button
    meanwhile is waited for instead of started again.
    """

    def __init__(self, slots: Sequence[ModelSlot]) -> None:
        self.slots = [s for s in slots if s.trainer is not None and not s.unavailable and s.get() is None]
        self._thread = threading.Thread(target=self._run, name="train-queue", daemon=True)
        self._stopped = threading.Event()

    def start(self) -> "TrainingQueue":
        """Mark every slot queued (so their tabs say so from the first page) and start the thread."""
        for before, slot in zip([None, *self.slots], self.slots):
            slot.queued = "next in line" if before is None else f"after the {before.name} model"
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        """Start no further run and end the current one (see :meth:`TrainingJob.stop`)."""
        self._stopped.set()
        for slot in self.slots:
            slot.stop_training()

    def _run(self) -> None:
        for slot in self.slots:
            try:
                if self._stopped.is_set():
                    return
                if slot.get() is None and not (slot.job is not None and slot.job.running):
                    slot.start_training()
            finally:
                slot.queued = None
            if slot.job is not None:
                slot.job.join()


class TrainingJob:
    """A training run watched by a daemon thread; its status line reads the trainer's metrics log as it grows.

    A :class:`TrainCommand` runs as a child process, its output kept in :attr:`log` (beside the slot's
    directory), so that a failure's last line becomes :attr:`error`; any other trainer runs in the thread.
    """

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot
        self.started = 0.0
        self.finished: float | None = None
        self.error: str | None = None
        self.process: subprocess.Popen[bytes] | None = None  # the child, for a TrainCommand
        self.log = slot.directory.parent / f".{slot.directory.name}.train.log"
        self._ending = False  # stop() was called: a child not started yet is never started
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"train-{slot.name}", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self.started = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        trainer = self.slot.trainer
        try:
            assert trainer is not None
            if isinstance(trainer, TrainCommand):
                self.error = self._run_child(trainer)
            else:
                trainer(self.slot.directory)
            self.slot.forget()
        except Exception as exc:  # the thread must report, not take the app down
            log.exception("training the %s model failed", self.slot.name)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished = time.perf_counter()

    def _run_child(self, command: TrainCommand) -> str | None:
        """Run `command` to its end (stopped while requests are answered); None, or a line saying how it failed."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.log.open("wb") as output:
            if self._ending:
                return "stopped before it started"
            # Started from this thread, which waits for the child: PR_SET_PDEATHSIG fires when the thread
            # that forked ends, so it fires only when the studio's process does.
            self.process = subprocess.Popen(command.argv(self.slot.directory), stdin=subprocess.DEVNULL,
                                            stdout=output, stderr=subprocess.STDOUT, env=child_environment(),
                                            preexec_fn=ends_with_parent())
        held = command.answering.stopping(self.process) if command.answering else contextlib.nullcontext()
        with held:
            code = self.process.wait()
        if code == 0:
            self.log.unlink(missing_ok=True)  # kept only to explain a failure
            return None
        how = (f"stopped by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals()
               else f"exit code {code}")
        return f"{last_line(self.log) or 'the train command printed nothing'} ({how}; log: {self.log})"

    def stop(self) -> None:
        """End a child process's run (SIGTERM); a run in a thread cannot be ended and goes on (a daemon thread)."""
        with self._lock:
            self._ending = True
            process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        if hasattr(signal, "SIGCONT"):  # a child stopped for a request acts on SIGTERM only once continued
            process.send_signal(signal.SIGCONT)
        # Waited for here, not only by the job's daemon thread, which dies with the interpreter: a child
        # never waited for leaves its CPU time out of this process's account (and a zombie behind).
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def records(self) -> list[dict[str, Any]]:
        """The trainer's metrics log so far; after the run the saved model keeps it as ``metrics.jsonl``."""
        return read_records([self.slot.directory / "run" / "metrics.jsonl", self.slot.directory / "metrics.jsonl"])

    def losses(self) -> tuple[list[int], list[float]]:
        """The (step, loss) of every training record logged so far, for the live loss curve."""
        pairs = [(int(r["step"]), float(r["loss"])) for r in self.records()
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
        records = self.records()
        steps = [r for r in records if r.get("kind", "train") == "train" and isinstance(r.get("step"), int)]
        plans = [r for r in records if r.get("kind") == "plan" and isinstance(r.get("total_steps"), int)]
        where = f"Training the {self.slot.name} model in the background"
        if not steps:
            return f"{where}: preparing data and model… ({elapsed})"
        record = steps[-1]
        total = f" of {plans[-1]['total_steps']}" if plans else ""
        loss = record.get("loss")
        loss_text = f", loss {loss:.3f}" if isinstance(loss, (int, float)) else ""
        return f"{where}: step {record['step']}{total}{loss_text} ({elapsed} elapsed)"


def child_environment() -> dict[str, str]:
    """This process's environment (GLASSFORMER_HOME and all), with this glassformer first on the child's path."""
    import glassformer

    source = str(Path(glassformer.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": source + (os.pathsep + path if path else "")}


def ends_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child receive SIGTERM when this process dies (Linux); None elsewhere.

    Without it a studio killed with SIGKILL would leave its training run going on alone for minutes.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    parent, pr_set_pdeathsig, sigterm = os.getpid(), 1, int(signal.SIGTERM)

    def in_child() -> None:
        prctl(pr_set_pdeathsig, sigterm)
        if os.getppid() != parent:  # the studio died before the call above: nothing would signal us
            os._exit(1)

    return in_child


def last_line(path: Path) -> str:
    """The last non-empty line of a text file (empty when there is none or it cannot be read)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
