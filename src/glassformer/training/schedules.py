"""Learning-rate schedules and AdamW parameter groups.

Warmup then decay: the learning rate rises linearly from 0 to its peak over the warmup steps, then
falls to ``min_ratio × peak`` by the last step, along a half cosine or a straight line.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

SCHEDULES = ("cosine", "linear", "constant")


def lr_multiplier(schedule: str, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """The factor on the peak learning rate at each step.

    warmup:  step / warmup_steps                                         for step < warmup_steps
    cosine:  min + (1 - min) · ½ (1 + cos(π · p)),  p = (step - warmup) / (total - warmup)
    linear:  min + (1 - min) · (1 - p)
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                         f"got warmup_steps={warmup_steps}, total_steps={total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
        return min_ratio + (1.0 - min_ratio) * shape

    return factor


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, warmup_steps: int, total_steps: int,
                   min_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR applying `lr_multiplier` to every parameter group's peak rate."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(schedule, warmup_steps, total_steps, min_ratio))


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on matrices, none on biases, norm weights and other 1-D tensors.

    Decay pulls weights towards zero; for a bias or a LayerNorm gain that only shifts or rescales
    features and buys nothing, so like BERT's recipe they are left out.
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        is_norm = isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)) or "Norm" in type(module).__name__
        for param in module.parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:  # tied weights are listed once
                continue
            seen.add(id(param))
            (no_decay if is_norm or param.ndim < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]
