"""Tasks: one module per task, each bringing its data, model, metrics and presets.

Every task module follows :mod:`glassformer.tasks.base`; ``TASKS`` maps the task names that saved
model directories record to those modules, imported only when used. Adding a task is one module
and one :func:`register_task` call: the CLI (``train TASK``, ``eval``), ``pipeline()`` and the
studio find it through this table.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASKS: dict[str, str] = {"sentiment": "glassformer.tasks.sentiment", "translate": "glassformer.tasks.translate",
                         "vit": "glassformer.tasks.vit", "lm": "glassformer.tasks.lm"}


def register_task(name: str, module: str) -> None:
    """Make the task module at import path `module` known as `name`."""
    TASKS[name] = module


def get_task(name: str) -> ModuleType:
    """The module of the task called `name`."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])
