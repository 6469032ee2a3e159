"""Tasks: one module per task, each bringing its data, model, metrics and presets.

A task module offers ``train(...)``, ``evaluate(directory, split, data)`` and a predictor class whose
``load(directory)`` reloads a saved model; ``TASKS`` maps the task names that saved model
directories record to those modules, imported only when used.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASKS: dict[str, str] = {"sentiment": "glassformer.tasks.sentiment", "lm": "glassformer.tasks.lm",
                         "translate": "glassformer.tasks.translate", "vit": "glassformer.tasks.vit"}


def get_task(name: str) -> ModuleType:
    """The module of the task called `name`."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])
