"""What the models return: small dataclasses with named intermediates, so nobody indexes tuples by position.

Shared conventions:
- ``hidden_states``: the embedding output followed by each layer's output (``n_layers + 1``
  tensors of ``(B, T, D)``), taken before any final LayerNorm; ``None`` unless asked for.
- ``attentions`` / ``cross_attentions``: one ``(B, H, T_q, T_k)`` tensor of attention weights
  per layer; ``None`` unless asked for.
- ``intermediates``: with ``output_intermediates=True`` (every hook point) or a pattern such as
  ``"*.hook_q"`` (those only), the named intermediates of the pass (:mod:`glassformer.nn.hooks`):
  per head Q, K, V, scores and weights, each layer's residual stream, the pooled features, the logits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from glassformer.nn import DecoderLayerCache, KVCache
from glassformer.nn.hooks import caching


@dataclass
class EncoderOutput:
    """Output of a bidirectional encoder (BERT backbone, Seq2Seq encoder)."""

    last_hidden_state: Tensor  # (B, T, D)
    pooled: Tensor | None = None  # (B, D): pooler output on the first ([CLS]) token
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    intermediates: dict[str, Tensor] | None = None


@dataclass
class ClassifierOutput:
    """Output of a sequence or image classifier: logits, loss if labels were given, the backbone's intermediates."""

    logits: Tensor  # (B, num_labels)
    loss: Tensor | None = None
    last_hidden_state: Tensor | None = None
    pooled: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    intermediates: dict[str, Tensor] | None = None


@dataclass
class LMOutput:
    """Output of a decoder-only language model."""

    logits: Tensor  # (B, T, vocab_size)
    loss: Tensor | None = None
    cache: list[KVCache] | None = None
    last_hidden_state: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    intermediates: dict[str, Tensor] | None = None


@dataclass
class DecoderOutput:
    """Output of the decoder half of an encoder–decoder model."""

    logits: Tensor  # (B, T, vocab_size)
    cache: list[DecoderLayerCache] | None = None
    last_hidden_state: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None
    intermediates: dict[str, Tensor] | None = None


@dataclass
class Seq2SeqOutput:
    """Output of an encoder–decoder model run with teacher forcing."""

    logits: Tensor  # (B, T_tgt, vocab_size)
    loss: Tensor | None = None
    encoder_last_hidden_state: Tensor | None = None
    encoder_hidden_states: tuple[Tensor, ...] | None = None
    encoder_attentions: tuple[Tensor, ...] | None = None
    decoder_hidden_states: tuple[Tensor, ...] | None = None
    decoder_attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None
    intermediates: dict[str, Tensor] | None = None


def returns_intermediates(forward: Callable) -> Callable:
    """Give a model's ``forward`` the keyword ``output_intermediates`` (False, True = all, or name patterns).

    The pass runs with caching hooks on the chosen hook points (:func:`glassformer.nn.hooks.caching`)
    and the output dataclass carries them in ``intermediates``, so nobody recomputes what the model did.
    """

    @functools.wraps(forward)
    def wrapper(self: torch.nn.Module, *args: Any, output_intermediates: Any = False, **kwargs: Any) -> Any:
        if output_intermediates is False:
            return forward(self, *args, **kwargs)
        names = None if output_intermediates is True else output_intermediates
        with caching(self, names) as cache:
            out = forward(self, *args, **kwargs)
        out.intermediates = dict(cache)
        return out

    return wrapper


# Registered as pytrees, so torch.export, torch.compile and the ONNX exporter can return them.
for _output in (EncoderOutput, ClassifierOutput, LMOutput, DecoderOutput, Seq2SeqOutput):
    torch.export.register_dataclass(_output, serialized_type_name=f"glassformer.models.outputs.{_output.__name__}")
