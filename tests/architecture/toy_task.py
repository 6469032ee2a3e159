"""A task in one file, as a new task would be written: it follows glassformer.tasks.base, and its ``train`` is
the shared skeleton of glassformer.tasks.run with the task's own data, model and scores.

"long": is a text longer than a threshold learnt as the mean length of the training texts? The
model is a one-number module with a dataclass config, so it saves and loads like any other.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassformer.tasks.base import ModelInputs, Option, load_pretrained, pick_preset, setting
from glassformer.tasks.run import TrainingRun
from glassformer.training.saved import load_saved, register_model_class

TASK = "toy"
DESCRIPTION = "a toy task: is a text longer than the training texts' mean length?"


@dataclass(frozen=True)
class ToyPreset:
    """How the threshold is learnt."""

    name: str
    scale: float = setting(1.0, "multiply the learnt mean length by this")
    minimum: int = setting(0, "never use a threshold below this many characters")
    strict: bool = setting(False, "longer means strictly longer")


PRESETS = {"quick": ToyPreset("quick"), "full": ToyPreset("full", scale=1.5)}
TRAIN_OPTIONS = (Option("--texts", "texts", "training texts separated by '|'"),)
EVAL_OPTIONS = (Option("--probe", "probe", "toy: a text to score instead of the training texts"),)


@dataclass
class ThresholdConfig:
    threshold: float = 0.0
    strict: bool = False


class Threshold(nn.Module):
    """label = 1 if len(text) > threshold (>= unless strict)."""

    def __init__(self, config: ThresholdConfig) -> None:
        super().__init__()
        self.config = config
        self.threshold = nn.Parameter(torch.tensor(config.threshold), requires_grad=False)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths > self.threshold) | (~torch.tensor(self.config.strict) & (lengths == self.threshold))


register_model_class(Threshold)


@dataclass
class ToyRun:
    out_dir: Path
    threshold: float

    def json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "out": str(self.out_dir)}

    def report(self) -> str:
        return f"threshold {self.threshold:.2f}\nsaved to {self.out_dir}"


def get_preset(name: str = "quick", **overrides: Any) -> ToyPreset:
    return pick_preset(PRESETS, name, TASK, overrides)


def default_out_dir(preset: ToyPreset) -> Path:
    return Path.cwd() / f"toy-{preset.name}"


def train(preset: str | ToyPreset = "quick", out: str | Path | None = None, *, texts: str = "a|bb|ccc",
          resume: bool = False, overwrite: bool = False, seed: int = 0, progress: bool = True,
          **overrides: Any) -> ToyRun:
    run = TrainingRun.begin(sys.modules[__name__], preset, overrides)
    with run.claim(out, overwrite=overwrite):
        lengths = [len(t) for t in texts.split("|")]
        threshold = max(run.recipe.minimum, run.recipe.scale * sum(lengths) / len(lengths))
        run.save(Threshold(ThresholdConfig(threshold, run.recipe.strict)), {"texts": texts},
                 label_names=["short", "long"])
    return ToyRun(run.out_dir, threshold)


class Predictor:
    """The task's predictor, following glassformer.tasks.base.Predictor: the model reads each text's length."""

    def __init__(self, model: Threshold, labels: list[str]) -> None:
        self.model, self.labels = model, labels

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu", verify: bool = True,
             precision: str = "fp32") -> "Predictor":
        return cls.from_loaded(load_pretrained(directory, TASK, device=device, verify=verify, precision=precision))

    @classmethod
    def from_loaded(cls, loaded: Any) -> "Predictor":
        return cls(loaded.model, loaded.label_names)

    def prepare(self, texts: str | list[str]) -> ModelInputs:
        texts = [texts] if isinstance(texts, str) else texts
        return ModelInputs([{"lengths": torch.tensor([float(len(t)) for t in texts])}])

    def __call__(self, texts: str | list[str], **options: Any) -> list[dict[str, Any]]:
        texts = [texts] if isinstance(texts, str) else texts
        decided = self.model(**self.prepare(texts).tensors)
        return [{"text": t, "label": self.labels[int(d)], "score": 1.0} for t, d in zip(texts, decided)]

    def format(self, results: list[dict[str, Any]]) -> list[str]:
        return [f"{r['label']} {r['text']}" for r in results]


def evaluate(directory: str | Path, split: str | None = None, data: str | None = None, *,
             probe: str | None = None) -> dict[str, Any]:
    saved = load_saved(directory)
    texts = [probe] if probe else saved.extra["texts"].split("|")
    long = Predictor(saved.model, saved.label_names)(texts)
    return {"long": sum(r["label"] == "long" for r in long), "n": len(texts)}
