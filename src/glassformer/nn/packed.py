"""Encoder inference on packed tokens: a batch of sentences as one ``(rows, D)`` matrix without its padding.

A padded batch ``(B, T)`` computes every layer's matmuls, LayerNorms and additions on all B·T positions,
padding included; only attention needs the sentences apart. Packed, the real tokens of every sentence sit
one after another in ``(M, D)`` and only attention gathers them back into ``(B, T)`` (its padded keys
masked, its padded queries dropped again). The rows are rounded up to a few sizes
(:func:`bucket_rows`): in bfloat16 oneDNN builds a matmul kernel for every new number of rows, about
25 ms for a small encoder, which a server pays on each batch of a new size, so with the sizes fixed a
server can build them all before its first request (:func:`bucket_sizes`).

The packed path only runs inference (eval mode, no gradient) of a stack of plain
:class:`~glassformer.nn.blocks.EncoderLayer` with nothing attached to any module (hook points, forward
hooks): :func:`can_pack` says when. Its numbers are the padded path's to float rounding; a test holds
both to each other and the models built on it to Hugging Face transformers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glassformer.nn import kernels
from glassformer.nn.attention import MultiHeadAttention
from glassformer.nn.blocks import Encoder, EncoderLayer
from glassformer.nn.feedforward import FeedForward

WARM_ROWS = 2048  # tokens in the largest batch whose kernels a server builds before it answers: 64 sentences of 32


def bucket_rows(rows: int) -> int:
    """The number of rows computed for `rows` real tokens: a multiple of 16 up to 64, of 64 up to 1,024, then of 256."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    step = 16 if rows <= 64 else 64 if rows <= 1024 else 256
    return -(-rows // step) * step


def bucket_sizes(max_rows: int) -> list[int]:
    """Every size :func:`bucket_rows` gives for 1 to `max_rows` rows, smallest first."""
    sizes, rows = [], 1
    while rows <= max_rows:
        sizes.append(bucket_rows(rows))
        rows = sizes[-1] + 1
    return sizes


@dataclass(frozen=True)
class Packing:
    """Where each real token of a right-padded batch ``(B, T)`` sits among the packed rows, and back.

    ``to_packed`` ``(rows,)``: the flat padded position ``b·T + t`` of each packed row; rows past the
    ``tokens`` real ones repeat position 0 (computed, then ignored). ``to_padded`` ``(B·T,)``: the packed row
    of each padded position; a padding position points at its sentence's first token, a key the mask hides.
    ``starts`` ``(B,)``: each sentence's first packed row; ``lengths`` ``(B,)``: its real tokens.
    """

    batch: int
    length: int
    tokens: int
    to_packed: Tensor
    to_padded: Tensor
    starts: Tensor
    lengths: Tensor
    mask: Tensor  # (B, 1, 1, T) bool: True for a real key

    @property
    def rows(self) -> int:
        """Rows computed: the real tokens rounded up by :func:`bucket_rows`."""
        return self.to_packed.shape[0]

    @classmethod
    def of(cls, attention_mask: Tensor, bucket: bool = True) -> "Packing":
        """The packing of ``attention_mask`` ``(B, T)``: 1 for real tokens, each row's real tokens first.

        ``ValueError`` for a mask with padding before a real token, or a sentence without one.
        """
        if attention_mask.dim() != 2:
            raise ValueError(f"attention_mask must be (batch, length), got shape {tuple(attention_mask.shape)}")
        batch, length = attention_mask.shape
        real = attention_mask.bool()
        lengths = real.sum(dim=1)
        if bool((lengths == 0).any()):
            raise ValueError("every sentence needs at least one real token to be packed")
        if not right_padded(attention_mask):
            raise ValueError("packing needs right padding: each row's real tokens first, its padding after")
        tokens = int(lengths.sum())
        starts = lengths.cumsum(0) - lengths  # (B,)
        to_packed = real.reshape(-1).nonzero().squeeze(1)  # (tokens,) flat padded positions, sentence by sentence
        rows = bucket_rows(tokens) if bucket else tokens
        to_packed = _zero_padded(to_packed, rows)
        # Padding positions read their sentence's first row; the real ones their own.
        to_padded = starts.repeat_interleave(length)
        to_padded[to_packed[:tokens]] = torch.arange(tokens, device=real.device)
        return cls(batch, length, tokens, to_packed, to_padded, starts, lengths, real[:, None, None, :])

    def pack(self, padded: Tensor) -> Tensor:
        """``(B, T, ...)`` → ``(rows, ...)``."""
        return padded.reshape(self.batch * self.length, *padded.shape[2:]).index_select(0, self.to_packed)

    def unpack(self, packed: Tensor) -> Tensor:
        """``(rows, ...)`` → ``(B, T, ...)``; a padding position holds its sentence's first row."""
        return packed.index_select(0, self.to_padded).view(self.batch, self.length, *packed.shape[1:])

    def mean(self, packed: Tensor) -> Tensor:
        """Each sentence's mean over its real rows: ``(rows, D)`` → ``(B, D)``."""
        sentence = torch.repeat_interleave(torch.arange(self.batch, device=packed.device), self.lengths)
        sums = packed.new_zeros(self.batch, packed.shape[1], dtype=torch.float32)
        sums.index_add_(0, sentence, packed[: self.tokens].float())
        return (sums / self.lengths[:, None].to(sums.dtype)).to(packed.dtype)


def right_padded(attention_mask: Tensor) -> bool:
    """Whether each row of ``attention_mask`` ``(B, T)`` is its real tokens (1) followed by its padding (0)."""
    real = attention_mask.bool()
    lengths = real.sum(dim=1, keepdim=True)
    return bool(torch.equal(real, torch.arange(real.shape[1], device=real.device) < lengths))


def _has_hooks(model: nn.Module) -> bool:
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def can_pack(model: nn.Module, stack: Encoder) -> bool:
    """Whether :func:`encode` may run `stack` (inside `model`): inference of plain encoder layers, nothing hooked."""
    if model.training or torch.is_grad_enabled() or _has_hooks(model):
        return False
    for layer in stack.layers:
        if type(layer) is not EncoderLayer or type(layer.self_attn) is not MultiHeadAttention:
            return False
        attn = layer.self_attn
        linears = [attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj]
        if layer.ffn is not None:
            if type(layer.ffn) is not FeedForward:
                return False
            linears += [layer.ffn.fc1, layer.ffn.fc2]
        if any(type(linear) is not nn.Linear for linear in linears):
            return False
    return True


def _attention(attn: MultiHeadAttention, x: Tensor, packing: Packing) -> Tensor:
    """Self-attention of packed rows ``(rows, D)`` → ``(rows, D)``: each sentence attends to its own tokens."""
    b, t, h, d = packing.batch, packing.length, attn.n_heads, attn.d_head
    weight, bias = attn.stacked_qkv_weights()
    qkv = kernels.linear(x, weight, bias)  # (rows, 3D)
    q, k, v = packing.unpack(qkv).view(b, t, 3, h, d).permute(2, 0, 3, 1, 4)  # each (B, H, T, d)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=packing.mask)  # (B, H, T, d)
    out = packing.pack(out.transpose(1, 2).reshape(b, t, h * d))  # (rows, D)
    return kernels.linear(out, attn.out_proj.weight, attn.out_proj.bias)


def _feed_forward(ffn: FeedForward, x: Tensor) -> Tensor:
    hidden = kernels.linear(x, ffn.fc1.weight, ffn.fc1.bias, ffn.activation_name)  # (rows, d_ff)
    return kernels.linear(hidden, ffn.fc2.weight, ffn.fc2.bias)


def _first_rows_attention(attn: MultiHeadAttention, x: Tensor, packing: Packing, select: Tensor) -> Tensor:
    """Self-attention output ``(n, D)`` of the rows `select` alone: each sentence's first row, then repeats of
    sentence 0's to fill the size (:func:`first_rows`). Keys and values still come from every row."""
    b, t, h, d = packing.batch, packing.length, attn.n_heads, attn.d_head
    weight, bias = attn.stacked_qkv_weights()  # (3D, D)
    dim = h * d
    kv = kernels.linear(x, weight[dim:], None if bias is None else bias[dim:])  # (rows, 2D)
    k, v = packing.unpack(kv).view(b, t, 2, h, d).permute(2, 0, 3, 1, 4)  # each (B, H, T, d)
    q = kernels.linear(x.index_select(0, select), weight[:dim], None if bias is None else bias[:dim])  # (n, D)
    sentence = _zero_padded(torch.arange(b, device=select.device), select.shape[0])  # (n,): each row's sentence
    out = F.scaled_dot_product_attention(q.view(-1, h, 1, d), k.index_select(0, sentence),
                                         v.index_select(0, sentence),
                                         attn_mask=packing.mask.index_select(0, sentence))  # (n, H, 1, d)
    return kernels.linear(out.reshape(-1, dim), attn.out_proj.weight, attn.out_proj.bias)


def _zero_padded(values: Tensor, n: int) -> Tensor:
    """``values`` ``(k,)`` followed by zeros up to `n` entries."""
    return torch.cat([values, values.new_zeros(n - values.shape[0])]) if n > values.shape[0] else values


def first_rows(packing: Packing) -> Tensor:
    """Each sentence's first packed row (its [CLS]), padded with sentence 0's to a size of :func:`bucket_rows`,
    so that a batch of any number of sentences multiplies at one of a few sizes: ``(n,)``, n >= B."""
    return _zero_padded(packing.starts, bucket_rows(packing.batch))


def _layer(layer: EncoderLayer, x: Tensor, packing: Packing, select: Tensor | None) -> Tensor:
    """One layer on packed rows; with `select`, only those rows' outputs ``(n, D)`` (see :func:`encode`)."""
    if select is None:
        attend = functools.partial(_attention, layer.self_attn, packing=packing)
        kept = x
    else:
        attend = functools.partial(_first_rows_attention, layer.self_attn, packing=packing, select=select)
        kept = x.index_select(0, select)
    if layer.norm_first:
        x = kept + attend(layer.norm1(x))
        if layer.ffn is not None:
            x = x + _feed_forward(layer.ffn, layer.norm2(x))
    else:
        x = layer.norm1(kept + attend(x))
        if layer.ffn is not None:
            x = layer.norm2(x + _feed_forward(layer.ffn, x))
    return x


def encode(stack: Encoder, x: Tensor, packing: Packing, first_only: bool = False) -> Tensor:
    """Run packed rows ``(rows, D)`` through every layer of `stack` (and its final norm): ``(rows, D)``.

    Each layer computes what :meth:`EncoderLayer.forward` does in eval mode (dropout is the identity there).
    With `first_only`, only each sentence's first row is wanted (a [CLS] classifier): the last layer
    computes its keys and values on every row but its queries, attention output, feed-forward and norms on
    the rows of :func:`first_rows` alone, ``(n, D)``, whose first B rows are the sentences' [CLS] states; no
    other row's last state feeds them, so they are the full computation's numbers to float rounding. In
    MiniLM's six layers that leaves out 5/6 of the last layer's multiplications, about 14% of the whole.
    Where the rounded sizes leave nothing out (a few short sentences), every row goes through and the
    :func:`first_rows` are picked after the last layer.
    """
    layers = list(stack.layers)
    select = first_rows(packing) if first_only else None
    # A batch of few sentences has as many rows as [CLS] rows once sizes are rounded: then every row goes through.
    late = select is not None and (select.shape[0] >= x.shape[0] or not layers)
    for index, layer in enumerate(layers):
        x = _layer(layer, x, packing, select if index == len(layers) - 1 and not late else None)
    if late:
        x = x.index_select(0, select)
    return stack.norm(x) if stack.norm is not None else x


def warm_up(run: Callable[[Tensor, Tensor], Any], max_rows: int, max_length: int, token: int,
            device: torch.device | str = "cpu") -> int:
    """Call ``run(input_ids, attention_mask)`` once for each packed size up to `max_rows` tokens (sentences of 16
    tokens of id `token`, or of one where `max_length` < 16), so that the kernels of each size are built now, not
    in the first request that needs them. Returns how many sizes ran."""
    sizes = bucket_sizes(max_rows)
    length = 16 if max_length >= 16 else 1  # every size is a multiple of 16: whole sentences fill it
    for rows in sizes:
        ids = torch.full((rows // length, length), token, dtype=torch.long, device=device)
        run(ids, torch.ones_like(ids))
    return len(sizes)
