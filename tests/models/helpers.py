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


@torch.no_grad()
def textbook_greedy(model: nn.Module, src_ids: torch.Tensor, max_len: int,
                    src_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Reference greedy translation without a cache: the whole target prefix re-run each step, its argmax taken.

    ``(B, 1 + n)`` ids from BOS, rows padded after their EOS, at most `max_len` tokens and no end forced when
    they run out.
    """
    config = model.config
    tokens = src_ids.new_full((src_ids.shape[0], 1), config.bos_token_id)
    finished = torch.zeros_like(tokens, dtype=torch.bool)
    for _ in range(max_len):
        next_id = model(src_ids, tokens, src_attention_mask).logits[:, -1].argmax(-1, keepdim=True)
        next_id = next_id.masked_fill(finished, config.pad_token_id)
        tokens = torch.cat([tokens, next_id], dim=1)
        finished |= next_id == config.eos_token_id
        if bool(finished.all()):
            break
    return tokens
