"""Pipelines: ``pipeline(task, model=DIR)`` turns a saved model directory into a callable on raw text.

Each task names the class that reloads its saved models; calling the pipeline on a list of texts
returns one plain dict per text (for sentiment: ``{"text", "label", "score"}``).
"""

from __future__ import annotations

import os
from typing import Any

from glassformer.tasks import get_task

# task → the class in that task's module whose ``load(directory)`` gives the callable.
PIPELINES: dict[str, str] = {"sentiment": "SentimentClassifier"}


def pipeline(task: str, model: str | os.PathLike | None = None, **load_kwargs: Any) -> Any:
    """A ready-to-call predictor for `task` from the saved model directory `model` (default: the quick preset's)."""
    if task not in PIPELINES:
        raise ValueError(f"unknown pipeline task {task!r}; known: {', '.join(sorted(PIPELINES))}")
    module = get_task(task)
    if model is None:
        model = module.default_out_dir("quick", "minilm")
        if not os.path.isdir(model):
            raise FileNotFoundError(f"no model given and none trained at {model}; "
                                    f"train one with `glassformer train {task}` or pass model=DIR")
    return getattr(module, PIPELINES[task]).load(model, **load_kwargs)
