"""Transformer layers and the stacks built from them.

Each layer wraps its sublayers (attention, feed-forward) in a residual connection and a
LayerNorm, in one of two arrangements:

- post-norm (original Transformer, BERT): ``x = norm(x + dropout(sublayer(x)))``;
- pre-norm (GPT-2, ViT): ``x = x + dropout(sublayer(norm(x)))``; a stack of pre-norm layers
  needs one final LayerNorm, because the residual stream itself is never normalised.

A GPT-style decoder-only block is an :class:`EncoderLayer` (self-attention + feed-forward, no
cross-attention) run with a causal mask and a :class:`KVCache`; :class:`DecoderLayer` is the
encoder–decoder layer that also attends to the encoder output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

from glassformer.nn.attention import KVCache, MultiHeadAttention
from glassformer.nn.feedforward import FeedForward
from glassformer.nn.hooks import HookPoint, hook


class EncoderLayer(nn.Module):
    """Encoder layer: self-attention then a feed-forward network, each with residual + LayerNorm (post- or pre-norm).

    ``attn_dropout`` drops attention probabilities, ``dropout`` drops each sublayer's output
    before the residual add, ``ffn_dropout`` drops inside the feed-forward network; the last two
    default to ``dropout``, as in ``torch.nn.TransformerEncoderLayer``. ``feed_forward=False``
    leaves the feed-forward sublayer out (an attention-only layer, the smallest model that can
    grow induction heads); its ``ffn`` and ``norm2`` are then None.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        attn_dropout: float | None = None,
        ffn_dropout: float | None = None,
        feed_forward: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.norm_first = norm_first
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        ffn_dropout = dropout if ffn_dropout is None else ffn_dropout
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=attn_dropout, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, activation=activation, dropout=ffn_dropout, bias=bias) if feed_forward \
            else None
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps) if feed_forward else None
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_mid = HookPoint(), HookPoint(), HookPoint()
        self.hook_mlp_out, self.hook_resid_post = HookPoint(), HookPoint()

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``x`` ``(B, T, D)`` → ``(B, T, D)`` and the self-attention weights ``(B, H, T, T_k)`` if asked."""
        x = hook(self.hook_resid_pre, x)
        if self.norm_first:
            attn, weights = self.self_attn(self.norm1(x), mask=mask, cache=cache, need_weights=need_weights)
            x = hook(self.hook_resid_mid, x + self.dropout1(hook(self.hook_attn_out, attn)))
            if self.ffn is not None:
                x = x + self.dropout2(hook(self.hook_mlp_out, self.ffn(self.norm2(x))))
        else:
            attn, weights = self.self_attn(x, mask=mask, cache=cache, need_weights=need_weights)
            x = hook(self.hook_resid_mid, self.norm1(x + self.dropout1(hook(self.hook_attn_out, attn))))
            if self.ffn is not None:
                x = self.norm2(x + self.dropout2(hook(self.hook_mlp_out, self.ffn(x))))
        return hook(self.hook_resid_post, x), weights


@dataclass
class DecoderLayerCache:
    """What one decoder layer keeps between decoding steps: its self-attention and cross-attention keys/values."""

    self_attn: KVCache = field(default_factory=KVCache)
    cross_attn: KVCache = field(default_factory=KVCache)

    @property
    def length(self) -> int:
        """Number of target positions already decoded."""
        return self.self_attn.length

    def reorder(self, batch_indices: Tensor) -> None:
        """Select batch rows in place (beam search)."""
        self.self_attn.reorder(batch_indices)
        self.cross_attn.reorder(batch_indices)


class DecoderLayer(nn.Module):
    """Decoder layer: masked self-attention, cross-attention to the encoder output, feed-forward; residual + norm each.

    The cross-attention takes its queries from the decoder and its keys and values from
    ``memory``, the encoder output. Pitfall in the second source article: its ``DecoderLayer``
    calls its "cross-attention" with ``x`` alone, so keys and values come from the decoder
    itself and the encoder output is silently ignored; the model can then not translate at all.
    Here ``memory`` is a required argument and a test proves that changing it changes the output.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        attn_dropout: float | None = None,
        ffn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.norm_first = norm_first
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        ffn_dropout = dropout if ffn_dropout is None else ffn_dropout
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=attn_dropout, bias=bias)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=attn_dropout, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, activation=activation, dropout=ffn_dropout, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_mid = HookPoint(), HookPoint(), HookPoint()
        self.hook_cross_attn_out, self.hook_resid_mid_cross = HookPoint(), HookPoint()
        self.hook_mlp_out, self.hook_resid_post = HookPoint(), HookPoint()

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        self_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        *,
        cache: DecoderLayerCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``x`` ``(B, T, D)`` attends to itself (``self_mask``, usually causal) and to ``memory`` ``(B, S, D)``.

        Returns the new ``x`` and, if asked, self-attention ``(B, H, T, T_k)`` and
        cross-attention ``(B, H, T, S)`` weights.
        """
        self_cache = cache.self_attn if cache is not None else None
        cross_cache = cache.cross_attn if cache is not None else None
        x = hook(self.hook_resid_pre, x)
        if self.norm_first:
            attn, self_w = self.self_attn(self.norm1(x), mask=self_mask, cache=self_cache, need_weights=need_weights)
            x = hook(self.hook_resid_mid, x + self.dropout1(hook(self.hook_attn_out, attn)))
            attn, cross_w = self.cross_attn(
                self.norm2(x), memory, mask=memory_mask, cache=cross_cache, need_weights=need_weights
            )
            x = hook(self.hook_resid_mid_cross, x + self.dropout2(hook(self.hook_cross_attn_out, attn)))
            x = x + self.dropout3(hook(self.hook_mlp_out, self.ffn(self.norm3(x))))
        else:
            attn, self_w = self.self_attn(x, mask=self_mask, cache=self_cache, need_weights=need_weights)
            x = hook(self.hook_resid_mid, self.norm1(x + self.dropout1(hook(self.hook_attn_out, attn))))
            attn, cross_w = self.cross_attn(x, memory, mask=memory_mask, cache=cross_cache, need_weights=need_weights)
            x = hook(self.hook_resid_mid_cross, self.norm2(x + self.dropout2(hook(self.hook_cross_attn_out, attn))))
            x = self.norm3(x + self.dropout3(hook(self.hook_mlp_out, self.ffn(x))))
        return hook(self.hook_resid_post, x), self_w, cross_w


@dataclass
class StackOutput:
    """What a stack of layers returns.

    ``hidden_states`` (if asked) holds the stack's input followed by each layer's output, so
    ``n_layers + 1`` tensors, taken before the final LayerNorm; ``last_hidden_state`` is after it.
    ``attentions`` and ``cross_attentions`` hold one ``(B, H, T_q, T_k)`` tensor per layer.
    """

    last_hidden_state: Tensor
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None


def _build_layers(layer_factory: Callable[[], nn.Module], n_layers: int) -> nn.ModuleList:
    if n_layers < 1:
        raise ValueError(f"a stack needs at least one layer, got n_layers={n_layers}")
    return nn.ModuleList(layer_factory() for _ in range(n_layers))


def _final_norm(layer: EncoderLayer | DecoderLayer, enabled: bool) -> nn.LayerNorm | None:
    return nn.LayerNorm(layer.d_model, eps=layer.norm1.eps) if enabled else None


class Encoder(nn.Module):
    """A stack of ``n_layers`` encoder layers (fresh ones from ``layer_factory``), with an optional final LayerNorm.

    Also the body of a decoder-only LM: pass a causal mask and one :class:`KVCache` per layer.
    """

    def __init__(self, layer_factory: Callable[[], EncoderLayer], n_layers: int, final_norm: bool = False) -> None:
        super().__init__()
        self.layers = _build_layers(layer_factory, n_layers)
        self.norm = _final_norm(self.layers[0], final_norm)
        self.hook_normalized = HookPoint()  # the final LayerNorm's output (pre-norm stacks)

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache per layer, for incremental decoding."""
        return [KVCache() for _ in self.layers]

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        caches: list[KVCache] | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> StackOutput:
        """Run ``x`` ``(B, T, D)`` through every layer in order."""
        if caches is not None and len(caches) != len(self.layers):
            raise ValueError(f"expected one cache per layer ({len(self.layers)}), got {len(caches)}")
        hidden: list[Tensor] = [x]
        attentions: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            x, weights = layer(
                x, mask, cache=None if caches is None else caches[i], need_weights=output_attentions
            )  # (B, T, D)
            hidden.append(x)
            if weights is not None:
                attentions.append(weights)
        if self.norm is not None:
            x = hook(self.hook_normalized, self.norm(x))
        return StackOutput(
            last_hidden_state=x,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


class Decoder(nn.Module):
    """A stack of ``n_layers`` decoder layers (fresh ones from ``layer_factory``), with an optional final LayerNorm."""

    def __init__(self, layer_factory: Callable[[], DecoderLayer], n_layers: int, final_norm: bool = False) -> None:
        super().__init__()
        self.layers = _build_layers(layer_factory, n_layers)
        self.norm = _final_norm(self.layers[0], final_norm)
        self.hook_normalized = HookPoint()  # the final LayerNorm's output (pre-norm stacks)

    def new_cache(self) -> list[DecoderLayerCache]:
        """An empty self- and cross-attention cache per layer, for incremental decoding."""
        return [DecoderLayerCache() for _ in self.layers]

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        self_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        *,
        caches: list[DecoderLayerCache] | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> StackOutput:
        """Run the target ``x`` ``(B, T, D)`` through every layer, each attending to ``memory`` ``(B, S, D)``."""
        if caches is not None and len(caches) != len(self.layers):
            raise ValueError(f"expected one cache per layer ({len(self.layers)}), got {len(caches)}")
        hidden: list[Tensor] = [x]
        self_attentions: list[Tensor] = []
        cross_attentions: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            x, self_w, cross_w = layer(
                x,
                memory,
                self_mask,
                memory_mask,
                cache=None if caches is None else caches[i],
                need_weights=output_attentions,
            )  # (B, T, D)
            hidden.append(x)
            if self_w is not None and cross_w is not None:
                self_attentions.append(self_w)
                cross_attentions.append(cross_w)
        if self.norm is not None:
            x = hook(self.hook_normalized, self.norm(x))
        return StackOutput(
            last_hidden_state=x,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(self_attentions) if output_attentions else None,
            cross_attentions=tuple(cross_attentions) if output_attentions else None,
        )
