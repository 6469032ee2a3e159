"""Tasks: one module per task, each bringing its data, model, metrics and presets.

Every task module follows :mod:`glassformer.tasks.base`; ``TASKS`` maps the task names that saved
model directories record to those modules, imported only when used. Adding a task is one module
and one :func:`register_task` call: the CLI (``train TASK``, ``eval``), ``pipeline()`` and the
studio find it through this table. ``MODEL_TASKS`` says which task's predictor runs a model that
records no task (a Hugging Face checkpoint, a bare model handed over): the task names live here,
not in :mod:`glassformer.pretrained`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

TASKS: dict[str, str] = {"sentiment": "glassformer.tasks.sentiment", "translate": "glassformer.tasks.translate",
                         "vit": "glassformer.tasks.vit", "lm": "glassformer.tasks.lm"}
# A model class's name → the task whose predictor runs it when nothing records a task.
MODEL_TASKS: dict[str, str] = {"EncoderClassifier": "sentiment", "DecoderLM": "lm", "VisionTransformer": "vit",
                               "Seq2SeqTransformer": "translate"}


def register_task(name: str, module: str, model_class: str | None = None) -> None:
    """Make the task module at import path `module` known as `name`; with `model_class` (a class name), its
    predictor also runs checkpoints and bare models of that class."""
    TASKS[name] = module
    if model_class is not None:
        MODEL_TASKS[model_class] = name


def get_task(name: str) -> ModuleType:
    """The module of the task called `name`."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])


def task_of(loaded: Any) -> str | None:
    """The task whose predictor runs a loaded model: the one a saved model records, else the one of its class."""
    recorded = getattr(loaded, "task", None) if getattr(loaded, "saved", True) else None
    return recorded or MODEL_TASKS.get(type(loaded.model).__name__)
