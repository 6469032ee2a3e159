"""Shared helpers for the model tests."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def train_steps(
    model: nn.Module, loss_fn: Callable[[], torch.Tensor], steps: int = 15, lr: float = 3e-3
) -> tuple[float, float]:
    """Run a few AdamW steps on one fixed batch; return (first loss, last loss)."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]
