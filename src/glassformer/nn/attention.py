"""Scaled dot-product attention and multi-head attention, with a key/value cache.

Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V.

Two paths compute it behind one switch (``fused``): the explicit path below spells out the
formula and can return the attention weights; the fused path calls
``torch.nn.functional.scaled_dot_product_attention``, which is faster and lighter on memory.
Asking for the weights always takes the explicit path, and so does training in bfloat16 on a CPU over
short sequences, where the explicit path is the faster (:func:`fused_is_slower`). Masks follow
:mod:`glassformer.nn.masks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glassformer.nn import kernels
from glassformer.nn.hooks import HookPoint, hook, is_hooked
from glassformer.nn.masks import check_mask


def _guard_empty_rows(mask: Tensor) -> tuple[Tensor, Tensor | None]:
    """Let fully masked query rows see every key (so softmax stays finite) and report which rows had a key.

    The caller zeroes those rows afterwards. Doing it this way keeps both the forward values
    and the gradients free of NaN, which ``-inf`` everywhere in a row would not. When every row
    has a key (the usual case) it returns ``None`` for the report, sparing every layer a full
    extra pass over its attention output.
    """
    has_key = mask.any(dim=-1, keepdim=True)  # (B|1, H|1, T_q|1, 1)
    # A traced graph (torch.export, torch.compile, ONNX) cannot branch on values: it always guards.
    if not torch.compiler.is_compiling() and bool(has_key.all()):
        return mask, None
    return mask | ~has_key, has_key


# On a CPU, PyTorch's fused attention is slow to train through in bfloat16: with gradients recorded, its
# forward and backward took 3–10× the explicit formula's time up to 128 keys and 0.9–1.7× at 256, and were
# faster only from 512 (benchmarks/attention_backward.py, AVX512-BF16 and AMX). Without gradients, or in
# float32, the fused kernel is the faster one, so only this case takes the explicit path.
EXPLICIT_TRAINING_MAX_KEYS = 256


def fused_is_slower(q: Tensor, k: Tensor, v: Tensor) -> bool:
    """Whether the explicit formula trains faster than the fused kernel here: CPU, bfloat16, gradients, short keys."""
    return (q.device.type == "cpu" and q.dtype == torch.bfloat16 and k.shape[-2] <= EXPLICIT_TRAINING_MAX_KEYS
            and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad))


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    fused: bool = True,
    scale: float | None = None,
    score_hook: HookPoint | None = None,
    pattern_hook: HookPoint | None = None,
) -> tuple[Tensor, Tensor | None]:
    """softmax(Q Kᵀ · scale) V for q ``(B, H, T_q, d)``, k and v ``(B, H, T_k, d)``; scale defaults to 1/√d.

    Returns the output ``(B, H, T_q, d_v)`` and, when ``need_weights`` (explicit path), the
    attention weights ``(B, H, T_q, T_k)`` before dropout, i.e. the distribution each query put
    over the keys. ``dropout_p`` is applied as given: pass 0.0 at evaluation time. The explicit path
    passes the scores and the weights through `score_hook` and `pattern_hook` when given.
    """
    batch, n_heads, t_q, d_k = q.shape
    t_k = k.shape[-2]
    has_key: Tensor | None = None
    if mask is not None:
        check_mask(mask, batch, n_heads, t_q, t_k)
        mask, has_key = _guard_empty_rows(mask)
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale

    if fused and not need_weights and not fused_is_slower(q, k, v):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
        if has_key is not None:
            out = out.masked_fill(~has_key, 0.0)
        return out, None

    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if score_hook is not None:
        scores = hook(score_hook, scores)
    weights = scores.softmax(dim=-1)
    if has_key is not None:
        weights = weights.masked_fill(~has_key, 0.0)
    if pattern_hook is not None:
        weights = hook(pattern_hook, weights)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights
    out = dropped @ v  # (B, H, T_q, d_v)
    return out, (weights if need_weights else None)


@dataclass
class KVCache:
    """The keys and values one attention layer has already computed, each ``(B, H, T, d_head)``.

    Self-attention appends the new positions' keys and values at every decoding step.
    Cross-attention fills the cache once with the projected encoder memory and then only reads it.
    """

    k: Tensor | None = None
    v: Tensor | None = None

    @property
    def length(self) -> int:
        """Number of cached positions."""
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        """Add keys/values for new positions along the time axis; return the full keys and values."""
        if self.k is None or self.v is None:
            self.k, self.v = k_new, v_new
        else:
            self.k = torch.cat([self.k, k_new], dim=-2)
            self.v = torch.cat([self.v, v_new], dim=-2)
        return self.k, self.v

    def reorder(self, batch_indices: Tensor) -> None:
        """Select batch rows in place (beam search keeps the cache of the surviving beams)."""
        if self.k is not None and self.v is not None:
            self.k = self.k.index_select(0, batch_indices)
            self.v = self.v.index_select(0, batch_indices)


class MultiHeadAttention(nn.Module):
    """Multi-head attention: concat_h(softmax(Q_h K_hᵀ/√d_head) V_h) W_O with Q = x W_Q, K = m W_K, V = m W_V.

    ``m`` is ``x`` itself for self-attention and the encoder output (``memory``) for cross-attention.

    Two switches, never by replacing the class: ``fused`` computes the attention with PyTorch's fused
    kernel (the explicit formula runs when weights or the score/pattern hook points are asked for);
    ``fast``, decided at construction (``None``: wherever :mod:`glassformer.nn.kernels` has its fused
    kernels), makes CPU inference project Q, K and V of self-attention with one matmul against the three
    weights stacked and add the biases inside the matmuls. Training and gradients always take the plain path.
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True, *, fast: bool | None = None
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.dropout = dropout
        self.fused = True
        self.fast = kernels.use_fused_kernels() if fast is None else fast
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern, self.hook_z = HookPoint(), HookPoint(), HookPoint()
        self._stacked: tuple[tuple, Tensor, Tensor | None] | None = None

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, t, _ = x.shape
        return x.view(batch, t, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def _project(self, layer: nn.Module, x: Tensor, fast: bool) -> Tensor:
        if fast and type(layer) is nn.Linear:
            return kernels.linear(x, layer.weight, layer.bias)
        return layer(x)

    def stacked_qkv_weights(self) -> tuple[Tensor, Tensor | None]:
        """[W_Q; W_K; W_V] ``(3D, D)`` and the three biases ``(3D,)`` (or None), rebuilt when a weight changes."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        params = [p for proj in projections for p in (proj.weight, proj.bias) if p is not None]
        # Inference tensors keep no version counter; for them the storage address is the key.
        key = tuple((p.data_ptr(), p.dtype, -1 if p.is_inference() else p._version) for p in params)
        if self._stacked is None or self._stacked[0] != key:
            weight = torch.cat([proj.weight.detach() for proj in projections])  # (3D, D)
            has_bias = all(proj.bias is not None for proj in projections)
            bias = torch.cat([proj.bias.detach() for proj in projections]) if has_bias else None
            self._stacked = (key, weight, bias)
        return self._stacked[1], self._stacked[2]

    def _stacked_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q, K, V ``(B, H, T, d_head)`` from one matmul against [W_Q; W_K; W_V]."""
        batch, t, _ = x.shape
        qkv = kernels.linear(x, *self.stacked_qkv_weights()).view(batch, t, 3, self.n_heads, self.d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, d_head), views into qkv
        return q, k, v

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``x`` ``(B, T_q, D)`` to itself or to ``memory`` ``(B, T_k, D)``.

        ``mask`` covers all keys, cached ones included. Returns ``(B, T_q, D)`` and the weights
        ``(B, H, T_q, T_k)`` when ``need_weights``.
        """
        batch, t_q, d_model = x.shape
        if d_model != self.d_model:
            raise ValueError(f"expected inputs with d_model={self.d_model} features, got {d_model}")
        fast = (self.fast and not self.training and type(self.q_proj) is nn.Linear
                and kernels.fusable(x, self.q_proj.weight))
        cached_memory = memory is not None and cache is not None and cache.k is not None
        if fast and memory is None and all(type(p) is nn.Linear for p in (self.q_proj, self.k_proj, self.v_proj)):
            q, k, v = self._stacked_qkv(x)
        else:
            q = self._split_heads(self._project(self.q_proj, x, fast))  # (B, H, T_q, d_head)
            if cached_memory:
                k, v = cache.k, cache.v  # cross-attention: the memory was projected (and hooked) on the first step
            else:
                source = x if memory is None else memory
                k = self._split_heads(self._project(self.k_proj, source, fast))  # (B, H, T_new, d_head)
                v = self._split_heads(self._project(self.v_proj, source, fast))
        q = hook(self.hook_q, q)
        if not cached_memory:
            k, v = hook(self.hook_k, k), hook(self.hook_v, v)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, H, T_k, d_head)
        explicit = need_weights or not self.fused or is_hooked(self.hook_attn_scores) or is_hooked(self.hook_pattern)
        out, weights = scaled_dot_product_attention(
            q,
            k,
            v,
            mask,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights,
            fused=not explicit,
            score_hook=self.hook_attn_scores,
            pattern_hook=self.hook_pattern,
        )
        out = hook(self.hook_z, out)  # (B, H, T_q, d_head): each head's output
        out = out.transpose(1, 2).reshape(batch, t_q, d_model)  # (B, T_q, D): heads concatenated
        return self._project(self.out_proj, out, fast), weights
