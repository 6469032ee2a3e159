"""The training log: one JSON object per line (metrics.jsonl) and a PNG of its loss and metric curves;
and the scores of a classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import torch.nn.functional as F
from torch import Tensor

from glassformer._files import atomic_write


class MetricsLog:
    """Append-only JSONL of training records (``kind`` = "train" or "eval"), redrawn as a PNG on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a run killed mid-write can leave half a last line
        return records

    def truncate_after(self, step: int) -> None:
        """Drop records past `step`: a resumed run repeats the steps after its checkpoint and logs them again."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        with atomic_write(self.path) as handle:
            handle.writelines(json.dumps(r) + "\n" for r in kept)

    def plot(self, path: str | Path) -> Path:
        """Draw training loss (and evaluation loss) against step, and each other evaluation metric, into a PNG."""
        return plot_metrics(self.read(), path)


def plot_metrics(records: list[dict[str, Any]], path: str | Path) -> Path:
    """A PNG with one panel for the losses and one per evaluation metric, x = optimizer step."""
    # The object-oriented Agg canvas draws without pyplot's global state or a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [r for r in records if r.get("kind") == "train" and "loss" in r]
    evals = [r for r in records if r.get("kind") == "eval"]
    metric_names = sorted({k for r in evals for k, v in r.get("metrics", {}).items()
                           if k != "loss" and isinstance(v, (int, float))})
    panels = 1 + len(metric_names)
    figure = Figure(figsize=(5 * panels, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="train", linewidth=1)
    eval_loss = [r for r in evals if "loss" in r.get("metrics", {})]
    if eval_loss:
        axes[0].plot([r["step"] for r in eval_loss], [r["metrics"]["loss"] for r in eval_loss],
                     "o-", label="validation")
    axes[0].set(title="loss", xlabel="step")
    axes[0].legend()
    for axis, name in zip(axes[1:], metric_names):
        points = [r for r in evals if name in r.get("metrics", {})]
        axis.plot([r["step"] for r in points], [r["metrics"][name] for r in points], "o-")
        axis.set(title=f"validation {name}", xlabel="step")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png")
    return path


def classification_scores(batches: Iterable[tuple[Tensor, Tensor]]) -> dict[str, float]:
    """``{"accuracy", "loss", "n"}`` over ``(logits (B, C), labels (B,))`` batches: correct / n and mean cross-entropy."""
    correct, total, loss = 0, 0, 0.0
    for logits, labels in batches:
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(-1) == labels).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("cannot score an empty split")
    return {"accuracy": correct / total, "loss": loss / total, "n": total}
