"""Pipelines: ``pipeline(task, model=DIR)`` turns a saved model directory into a callable on raw inputs.

Each task's ``Predictor`` reloads its saved models (:mod:`glassformer.tasks.base`); calling the
pipeline on a list of inputs returns one plain dict per input (for sentiment: ``{"text", "label", "score"}``).
"""

from __future__ import annotations

import os
from typing import Any

from glassformer.tasks import TASKS, get_task


def pipeline(task: str, model: str | os.PathLike | None = None, **load_kwargs: Any) -> Any:
    """A ready-to-call predictor for `task` from the saved model directory `model` (default: the quick preset's)."""
    if task not in TASKS:
        raise ValueError(f"unknown pipeline task {task!r}; known: {', '.join(sorted(TASKS))}")
    module = get_task(task)
    if model is None:
        model = module.default_out_dir(module.get_preset("quick"))
        if not os.path.isdir(model):
            raise FileNotFoundError(f"no model given and none trained at {model}; "
                                    f"train one with `glassformer train {task}` or pass model=DIR")
    return module.Predictor.load(model, **load_kwargs)
