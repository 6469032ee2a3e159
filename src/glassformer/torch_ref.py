"""The first article's PyTorch snippets under their own names and argument orders, made correct.

The first article ("How Transformers Really Work") writes five pieces of PyTorch:
``positional_encoding(seq_len, d_model)``, ``attention(Q, K, V, mask=None)``,
``MultiHeadAttention(heads, d_model)`` with ``forward(q, k, v)``, ``FeedForward(d_model, d_ff)`` and
``image_to_patches(img, patch_size=16)``. Here each has the article's signature, so the article's code
runs with only its import line changed (tests/test_articles_verbatim.py runs it), and each is built
on, or checked against, the matching piece of :mod:`glassformer.nn`.

What differs from the article:

* ``MultiHeadAttention.forward`` takes an optional ``mask`` (the article's has none, so it could not
  hide padding or future tokens) and computes the heads with glassformer's attention.
* ``attention`` gives a query that may attend to nothing zeros instead of the article's uniform
  average over the hidden keys (its ``-1e9`` fill), as every attention in glassformer does.
* ``FeedForward`` is :class:`glassformer.nn.FeedForward` itself: the same signature and formula
  (its layers are named ``fc1``/``fc2`` where the article says ``linear1``/``linear2``).

Masks follow the article and :mod:`glassformer.nn.masks`: 1 (True) = may attend, 0 = hidden.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from glassformer.nn.attention import scaled_dot_product_attention
from glassformer.nn.feedforward import FeedForward
from glassformer.nn.positional import sinusoidal_table

__all__ = ["FeedForward", "MultiHeadAttention", "attention", "image_to_patches", "positional_encoding"]


def positional_encoding(seq_len: int, d_model: int) -> Tensor:
    """The ``(seq_len, d_model)`` table PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(same).

    The article's formula (``2 * (i // 2)`` in the exponent: columns 2i and 2i+1 share a frequency);
    :func:`glassformer.nn.sinusoidal_table` computes it, in float64 before the cast to float32.
    """
    return sinusoidal_table(seq_len, d_model)


def attention(Q: Tensor, K: Tensor, V: Tensor, mask: Tensor | None = None) -> Tensor:
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V for ``(..., T_q, d_k)`` queries and ``(..., T_k, d)`` keys/values.

    ``mask`` broadcasts to ``(..., T_q, T_k)``; where it is 0 the key is hidden from the query.
    """
    d_k = Q.size(-1)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is None:
        return scores.softmax(dim=-1) @ V
    keep = mask != 0
    weights = scores.masked_fill(~keep, float("-inf")).softmax(dim=-1)
    # A row with every key hidden is all -inf: softmax gives NaN there, and nothing is the right answer.
    weights = weights.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)
    return weights @ V  # (..., T_q, d_v)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with the article's layers: concat_h softmax(Q_h K_hᵀ/√d_k) V_h, then ``out``.

    ``MultiHeadAttention(heads, d_model)``: the number of heads comes first, as in the article (glassformer's
    :class:`glassformer.nn.MultiHeadAttention` takes ``d_model`` first). The layers keep the article's
    names, so its state dicts load here.
    """

    def __init__(self, heads: int, d_model: int) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.heads = heads
        self.d_k = d_model // heads
        self.q_linear = nn.Linear(d_model, d_model)
        self.k_linear = nn.Linear(d_model, d_model)
        self.v_linear = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), -1, self.heads, self.d_k).transpose(1, 2)  # (B, heads, T, d_k)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend from ``q`` ``(B, T_q, d_model)`` to ``k``/``v`` ``(B, T_k, d_model)``; ``mask`` broadcasts to ``(B, heads, T_q, T_k)``."""
        bs = q.size(0)
        Q, K, V = self._split(self.q_linear(q)), self._split(self.k_linear(k)), self._split(self.v_linear(v))
        output, _ = scaled_dot_product_attention(Q, K, V, None if mask is None else mask != 0)
        concat = output.transpose(1, 2).reshape(bs, -1, self.heads * self.d_k)  # (B, T_q, d_model)
        return self.out(concat)


def image_to_patches(img: Tensor, patch_size: int = 16) -> Tensor:
    """Cut ``(B, C, H, W)`` images into ``(B, N, P·P·C)`` patches, each flattened as ``(P, P, C)`` (channels last).

    The article's layout. glassformer's ViT (:func:`glassformer.nn.image_to_patches`) flattens each
    patch channels first, ``(C, P, P)``, the order of a ``Conv2d`` weight, so checkpoints map onto it
    by a reshape; both hold the same numbers, only their order inside a patch differs.
    """
    B, C, H, W = img.shape
    if H % patch_size or W % patch_size:
        raise ValueError(f"image size {H}x{W} is not divisible by patch_size={patch_size}")
    img = img.reshape(B, C, H // patch_size, patch_size, W // patch_size, patch_size)
    return img.permute(0, 2, 4, 3, 5, 1).reshape(B, -1, patch_size * patch_size * C)
