"""The shape every task follows, so that the CLI, ``pipeline()`` and the studio need nothing task-specific.

A task is one module in :mod:`glassformer.tasks`, registered by name in ``glassformer.tasks.TASKS``
(or with :func:`glassformer.tasks.register_task`). It defines:

=================================  =================================================================
``TASK``                           the name saved model directories record (``"sentiment"``)
``DESCRIPTION``                    one line for ``glassformer train --help``
``PRESETS``                        named recipes: frozen dataclasses whose fields are the settings
``get_preset(name, **overrides)``  a preset with fields replaced (:func:`with_overrides`)
``default_out_dir(preset)``        where ``train`` saves when no directory is given
``train(preset, out, **kw)``       train, score, save; returns a run with ``json()`` and ``report()``
``evaluate(directory, ...)``       score a saved model; returns a JSON-ready dict
``Predictor``                      the :class:`Predictor` contract; calling it on inputs gives dicts
``TRAIN_OPTIONS``                  train keywords that are not preset fields (:class:`Option`)
``EVAL_OPTIONS``                   evaluate keywords beyond ``split`` and ``data``
=================================  =================================================================

The CLI turns every preset field into a flag: its type from the annotation, its help text (and
choices) from the field's metadata, written with :func:`setting`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from glassformer._config import check_choice, check_positive, check_range
from glassformer.errors import ConfigError, WrongModelError

TRAINING_PRECISIONS = ("auto", "fp32", "bf16")


def setting(default: Any, help: str, *, choices: Iterable[Any] | None = None) -> Any:
    """A preset field with a default, the help text the CLI shows for it, and optional choices."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """The settings every preset shares: the training precision and how often a checkpoint is written.

    Keyword-only, so each task's own fields keep their positions (``SentimentPreset("quick", "minilm")``).
    """

    precision: str = setting("auto", "number format for training: auto (bf16 where the CPU or GPU computes it "
                                     "natively, else fp32), fp32 or bf16", choices=TRAINING_PRECISIONS)
    checkpoint_every: int | None = setting(None, "steps between checkpoints besides those after each evaluation")
    checkpoint_minutes: float | None = setting(10.0, "and at least this often in minutes (for long runs; a killed "
                                                     "or restarted run loses no more than this)")
    ema_decay: float | None = setting(None, "keep an exponential moving average of the weights with this decay "
                                            "(e.g. 0.999) and score, keep and save the average instead of the "
                                            "last step's weights; off by default")
    minutes: float | None = setting(None, "a time budget for the whole run (data, training, scoring, saving): the "
                                          "steps are set from the measured step time, printed and saved, so "
                                          "--max-steps N repeats the run; replaces the preset's steps or epochs")

    def __post_init__(self) -> None:
        check_choice(self, "precision", TRAINING_PRECISIONS)
        check_positive(self, "checkpoint_every")
        check_range(self, "checkpoint_minutes", 0.0)
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be > 0, got {self.minutes}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        lengths = [name for name in LENGTH_SETTINGS if hasattr(self, name)]
        if lengths and self.minutes is None and all(getattr(self, name) is None for name in lengths):
            raise ConfigError(f"preset {getattr(self, 'name', '?')!r} sets neither {' nor '.join(lengths)} nor "
                              "minutes: the run needs a length")

    def trainer_settings(self) -> dict[str, Any]:
        """These settings as ``TrainConfig`` keywords (``minutes`` as the budget ``max_minutes``)."""
        return {"precision": self.precision, "checkpoint_every": self.checkpoint_every,
                "checkpoint_minutes": self.checkpoint_minutes, "max_minutes": self.minutes,
                "ema_decay": self.ema_decay}


# The settings that fix a run's length in steps; asking for one of them replaces a preset's time budget.
LENGTH_SETTINGS = ("max_steps", "epochs")


@dataclass(frozen=True)
class Option:
    """A command-line option of ``train TASK`` or ``eval`` that is a keyword of the task's function, not a preset field."""

    flag: str  # "--data"
    dest: str  # the keyword it becomes: "data"
    help: str
    type: Any = str  # int, float, str, or bool for an on/off switch
    choices: tuple[Any, ...] | None = None
    default: Any = None  # None: the function's own default


class Run(Protocol):
    """What ``train`` returns: where the model went, what was measured, and two ways to print it."""

    def json(self) -> dict[str, Any]:
        """The figures as one JSON-ready dict (what ``--json`` prints)."""

    def report(self) -> str:
        """The figures as lines for a person."""


def with_overrides(preset: Any, overrides: dict[str, Any], task: str) -> Any:
    """`preset` with the fields in `overrides` replaced (None values ignored); unknown names are a ConfigError."""
    names = {f.name for f in dataclasses.fields(preset)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown {task} preset setting {unknown[0]!r}; the settings are "
                          f"{', '.join(sorted(names - {'name'}))}")
    changes = {key: value for key, value in overrides.items() if value is not None}
    lengths = sorted(key for key in changes if key in LENGTH_SETTINGS)
    if lengths and changes.get("minutes") is not None:
        raise ConfigError(f"minutes and {lengths[0]} both set the run's length; give one of them")
    if lengths and "minutes" in names:
        changes["minutes"] = None  # the steps asked for, not the preset's budget
    return dataclasses.replace(preset, **changes) if changes else preset


def pick_preset(presets: dict[str, Any], name: str, task: str, overrides: dict[str, Any]) -> Any:
    """``presets[name]`` with `overrides`; an unknown name lists the choices."""
    if name not in presets:
        raise ConfigError(f"unknown {task} preset {name!r}; choose one of {', '.join(sorted(presets))}")
    return with_overrides(presets[name], overrides, task)


def resolve_preset(module: Any, preset: Any, overrides: dict[str, Any]) -> Any:
    """A task's preset from a name (through its ``get_preset``) or a preset object, with `overrides` applied."""
    if isinstance(preset, str):
        return module.get_preset(preset, **overrides)
    return with_overrides(preset, overrides, module.TASK)


def settings_of(preset_class: type) -> list[dataclasses.Field]:
    """The fields of a preset class a user may set (all but ``name``), in their declared order."""
    return [f for f in dataclasses.fields(preset_class) if f.name != "name"]


# --- the predictor contract: the one road from input to answer to explanation ------------------

@dataclass
class ModelInputs:
    """Exactly what a model reads for a batch of inputs, as the task's predictor decides it.

    ``passes`` holds the keyword arguments of each forward pass the prediction combines: one pass for
    most models, two for a ViT that averages an image with its mirror (the probabilities of the passes
    are averaged). Text models also give each input's token ids as read (specials, dictionary hints
    and start token included, unpadded) and whether it was cut to fit.
    """

    passes: list[dict[str, Any]]
    ids: list[list[int]] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)

    @property
    def tensors(self) -> dict[str, Any]:
        """The keyword arguments of the first (for most models the only) forward pass."""
        return self.passes[0]


class Predictor(Protocol):
    """What every task's ``Predictor`` is: the one place that decides how its model reads an input.

    The CLI, ``pipeline()``, the lens, the views and the studio ask the predictor for the model's
    inputs (:meth:`prepare`) instead of rebuilding them, so an explanation is always about the input
    that was predicted.
    """

    model: Any

    @classmethod
    def load(cls, directory: Any, device: Any = "cpu", verify: bool = True, precision: str = "fp32") -> "Predictor":
        """The predictor of a model directory, in `precision` (see :mod:`glassformer.precision`): the one loading
        road, ``from_loaded(load_pretrained(directory, TASK, ...))``."""

    @classmethod
    def from_loaded(cls, loaded: Any) -> "Predictor":
        """The predictor of a checkpoint already in memory (``from_pretrained``'s result, or a saved model's)."""

    def prepare(self, inputs: Any) -> ModelInputs:
        """The exact tensors the model reads for `inputs` (one input or a list)."""

    def __call__(self, inputs: Any, **options: Any) -> list[dict[str, Any]]:
        """One JSON-ready result per input."""

    def format(self, results: list[dict[str, Any]]) -> list[str]:
        """The results as the lines ``glassformer predict`` prints, one per input."""


PREDICTOR_METHODS = ("load", "from_loaded", "prepare", "__call__", "format")


def is_checkpoint(loaded: Any) -> bool:
    """Whether `loaded` came from a Hugging Face checkpoint (read as its library reads it), not a glassformer save."""
    return not getattr(loaded, "saved", True)


def require_tokenizer(loaded: Any) -> Any:
    """A loaded text model's tokenizer; a WrongModelError when the directory brought none."""
    if loaded.tokenizer is None:
        raise WrongModelError(f"{getattr(loaded, 'path', None) or 'the model'} has no tokenizer files (a saved "
                              f"tokenizer, or tokenizer.json, vocab.txt or vocab.json + merges.txt), so it cannot read text")
    return loaded.tokenizer


def load_pretrained(directory: Any, task: str | None = None, *, device: Any = "cpu", verify: bool = True,
                    precision: str = "fp32") -> Any:
    """:func:`~glassformer.pretrained.from_pretrained` of `directory`, refused unless `task`'s predictor (any task's,
    for None) runs it.

    Every ``Predictor.load`` and ``load_predictor()`` (so ``pipeline()``, the CLI, the server and the studio)
    come this way, so a model is read, put on `device` and given its precision and kernels in one place.
    """
    from glassformer.pretrained.api import from_pretrained

    loaded = from_pretrained(directory, precision=precision, verify=verify, device=device)
    check_task(loaded, task, directory)
    return loaded


def check_task(loaded: Any, task: str | None, where: Any) -> str:
    """The task whose predictor runs `loaded` (:func:`glassformer.tasks.task_of`); a WrongModelError unless it is
    `task` (any task, for None)."""
    from glassformer.tasks import TASKS, task_of

    found = task_of(loaded)
    if found is not None and task in (None, found):
        return found
    if found is not None:
        raise WrongModelError(f"{where} holds a model for task {found!r}, not {task!r}")
    kind = type(loaded.model).__name__
    if is_checkpoint(loaded):
        raise WrongModelError(f"{where} holds a {loaded.family} {kind}, which the {task or 'any'} task cannot use "
                              f"(it has no task head; feature-extraction reads its token vectors)")
    raise WrongModelError(f"{where} holds a {kind} that records no task; glassformer's tasks are "
                          f"{', '.join(sorted(TASKS))}")
