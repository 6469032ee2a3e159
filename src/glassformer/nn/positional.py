"""Positional information: the fixed sinusoidal encoding and learned position embeddings.

Attention by itself is blind to order (permuting the tokens permutes the outputs), so each
token gets a vector that depends on its position, added to its embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_length(length: int, max_len: int) -> None:
    if length > max_len:
        raise ValueError(f"sequence of length {length} is longer than the max_len={max_len} positions")


def sinusoidal_table(max_len: int, d_model: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``(max_len, d_model)`` table PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(same).

    ``i`` counts sin/cos *pairs*, so column ``2i`` and ``2i + 1`` share one frequency. An odd
    ``d_model`` is allowed: its last column is a sine whose cosine partner would not fit.
    Computed in float64 and then cast, so large positions keep their precision.
    """
    if max_len < 1 or d_model < 1:
        raise ValueError(f"max_len and d_model must be positive, got max_len={max_len}, d_model={d_model}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # 0, 2, 4, ... one per pair
    angle = position / 10000.0 ** (two_i / d_model)  # (max_len, ceil(d_model / 2))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Sinusoidal positional encoding (Vaswani et al. 2017): x + PE[offset : offset + T], then dropout."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)
        # Not persistent: the table is a formula, not a learned weight, so checkpoints leave it out.
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Add positions ``offset .. offset + T - 1`` to ``x`` ``(B, T, D)``; ``offset`` is the cache length."""
        t = x.shape[1]
        _check_length(offset + t, self.max_len)
        return self.dropout(x + self.pe[offset : offset + t].to(x.dtype))  # (B, T, D)


class LearnedPositionalEmbedding(nn.Module):
    """Learned position embedding (BERT, GPT-2, ViT): a trained vector P[pos] per position."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.d_model = d_model
        self.weight = nn.Parameter(torch.randn(max_len, d_model))

    def forward(self, positions: Tensor) -> Tensor:
        """Look up integer ``positions`` of any shape; returns ``positions.shape + (d_model,)``."""
        if positions.numel() > 0 and not torch.compiler.is_compiling() and positions.device.type == "cpu":
            if int(positions.min()) < 0:
                raise ValueError(f"positions must be non-negative, got {int(positions.min())}")
            _check_length(int(positions.max()) + 1, self.max_len)
        return F.embedding(positions, self.weight)

    def embed_range(self, length: int, offset: int = 0) -> Tensor:
        """The ``(length, d_model)`` embeddings of positions ``offset .. offset + length - 1``."""
        _check_length(offset + length, self.max_len)
        return self.weight[offset : offset + length]
