"""Attention masks, with one convention for the whole library.

The convention
--------------
A mask is a **boolean** tensor in which ``True`` means "this query may attend to this key".
It is broadcastable to ``(B, H, T_q, T_k)``: batch, heads, query positions, key positions.

- a padding mask has shape ``(B, 1, 1, T_k)``: the same keys are hidden from every query;
- a causal mask has shape ``(1, 1, T_q, T_k)``: query ``i`` sees key ``j`` only if ``j`` is not
  in its future;
- masks combine by logical AND (:func:`combine_masks`).

A query row whose keys are all masked gets an all-zero output row and all-zero attention
weights, never NaN, in both the explicit and the fused attention path.

PyTorch's own ``nn.MultiheadAttention`` uses the opposite convention (``True`` = ignore) and
also accepts additive float masks; here a float mask is an error, because ``0.0`` would be read
as "blocked" in one convention and "allowed" in the other.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(attention_mask: Tensor) -> Tensor:
    """Turn a ``(B, T_k)`` mask of 1 = real token, 0 = padding into a ``(B, 1, 1, T_k)`` bool mask."""
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must have shape (batch, seq_len), got shape {tuple(attention_mask.shape)}"
        )
    return attention_mask.bool()[:, None, None, :]


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """The ``(1, 1, t_q, t_k)`` mask in which query ``i`` sees key ``j`` iff ``j <= i + (t_k - t_q)``.

    With ``t_k > t_q`` the queries are the *last* ``t_q`` positions of a sequence whose first
    ``t_k - t_q`` positions sit in a key/value cache, which is what incremental decoding needs.
    """
    t_k = t_q if t_k is None else t_k
    if t_k < t_q:
        raise ValueError(f"a causal mask needs at least as many keys as queries, got t_q={t_q}, t_k={t_k}")
    allowed = torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)
    return allowed[None, None, :, :]


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of the given masks (``None`` entries are skipped); ``None`` if none are given."""
    combined: Tensor | None = None
    for mask in masks:
        if mask is None:
            continue
        combined = mask if combined is None else combined & mask
    return combined


def check_mask(mask: Tensor, batch: int, n_heads: int, t_q: int, t_k: int) -> None:
    """Raise ``ValueError`` unless ``mask`` is a bool tensor broadcastable to ``(batch, n_heads, t_q, t_k)``."""
    expected = (batch, n_heads, t_q, t_k)
    if mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}; "
            "see glassformer.nn.masks for the convention"
        )
    if mask.dim() != 4 or any(m not in (1, e) for m, e in zip(mask.shape, expected)):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to (batch, heads, t_q, t_k) = {expected}"
        )
