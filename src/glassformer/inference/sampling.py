"""Choosing the next token: the one per-step function that greedy decoding, sampling, streaming and the studio share.

From a row of next-token logits z:

- temperature T: z / T (T < 1 sharpens the distribution, T > 1 flattens it);
- top-k: keep the k largest, the rest get probability 0;
- top-p (nucleus): keep the smallest set of most likely tokens whose probability reaches p;
- then draw from softmax of what remains, or take the argmax (greedy).

:func:`process_logits` applies the three cuts (as Hugging Face's temperature, top-k and top-p logits
processors do) and :func:`sample_next_token` picks a token and reports two probabilities: the model's
own p(token | context) at temperature 1, and the probability the draw gave it after the cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class NextToken:
    """The token picked for each row ``(B, 1)``, with p(token | context) under the model and under the draw."""

    ids: Tensor  # (B, 1) int64
    probs: Tensor  # (B, 1): softmax(logits) at the picked id, temperature 1, before any cut
    sample_probs: Tensor  # (B, 1): the probability it had in the distribution it was drawn from


def process_logits(logits: Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> Tensor:
    """``logits`` ``(B, V)`` divided by `temperature`, with every token outside top-k and top-p set to -inf."""
    if temperature <= 0.0:
        raise ValueError(f"temperature must be > 0 to sample (0 means greedy), got {temperature}")
    logits = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth_largest = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token once the tokens ranked above it already reach top_p; the first always stays.
        outside = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(outside, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def sample_next_token(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> NextToken:
    """Pick one token id per row of ``logits`` ``(B, V)``: the argmax (greedy, or temperature 0) or a draw."""
    if temperature < 0.0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    model_probs = logits.float().softmax(dim=-1)
    if greedy or temperature == 0.0:
        ids = logits.argmax(dim=-1, keepdim=True)
        picked = model_probs.gather(-1, ids)
        return NextToken(ids, picked, torch.ones_like(picked))
    draw_probs = process_logits(logits.float(), temperature=temperature, top_k=top_k, top_p=top_p).softmax(dim=-1)
    ids = torch.multinomial(draw_probs, num_samples=1, generator=generator)
    return NextToken(ids, model_probs.gather(-1, ids), draw_probs.gather(-1, ids))
