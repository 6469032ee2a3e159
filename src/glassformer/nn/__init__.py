"""Transformer building blocks: masks, attention, embeddings, positions, feed-forward, layers and stacks.

Mask convention for the whole library: a bool tensor, True = may attend, broadcastable to
(B, H, T_q, T_k). See :mod:`glassformer.nn.masks`.
"""

from glassformer.nn import kernels
from glassformer.nn.attention import KVCache, MultiHeadAttention, scaled_dot_product_attention
from glassformer.nn.blocks import (
    Decoder,
    DecoderLayer,
    DecoderLayerCache,
    Encoder,
    EncoderLayer,
    StackOutput,
)
from glassformer.nn.embeddings import PatchEmbedding, TokenEmbedding, image_to_patches
from glassformer.nn.feedforward import ACTIVATIONS, FeedForward, get_activation
from glassformer.nn.hooks import HookPoint, caching, hook_points, hooks
from glassformer.nn.masks import causal_mask, check_mask, combine_masks, padding_mask
from glassformer.nn.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)

__all__ = [
    "ACTIVATIONS",
    "Decoder",
    "DecoderLayer",
    "DecoderLayerCache",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "HookPoint",
    "KVCache",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PatchEmbedding",
    "SinusoidalPositionalEncoding",
    "StackOutput",
    "TokenEmbedding",
    "caching",
    "causal_mask",
    "check_mask",
    "combine_masks",
    "get_activation",
    "hook_points",
    "hooks",
    "image_to_patches",
    "kernels",
    "padding_mask",
    "scaled_dot_product_attention",
    "sinusoidal_table",
]
