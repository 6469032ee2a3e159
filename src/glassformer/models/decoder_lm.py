"""A GPT-2-style decoder-only language model.

Token embedding + learned positions → pre-norm blocks of causal self-attention and
feed-forward → final LayerNorm → ``lm_head`` (optionally tied to the token embedding) giving
next-token logits. A GPT block has no cross-attention, so it is an :class:`EncoderLayer` run
with a causal mask; a :class:`KVCache` per block makes generation cost one position per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch.nn.functional as F
from torch import Tensor, nn

from glassformer._config import check_choice, check_positive, check_probabilities, check_range, check_types
from glassformer.errors import ConfigError
from glassformer.models.outputs import LMOutput, returns_intermediates
from glassformer.nn import (
    ACTIVATIONS,
    Encoder,
    EncoderLayer,
    KVCache,
    LearnedPositionalEmbedding,
    TokenEmbedding,
    causal_mask,
    padding_mask,
)
from glassformer.nn.hooks import HookPoint, hook

IGNORE_INDEX = -100


@dataclass
class DecoderLMConfig:
    """Hyperparameters of a GPT-style language model; the defaults are GPT-2 small (124M)."""

    vocab_size: int = 50257
    max_position: int = 1024
    d_model: int = 768
    n_heads: int = 12
    n_layers: int = 12
    d_ff: int = 3072
    dropout: float = 0.1  # embeddings, attention probabilities, residual branches (GPT-2 uses one rate)
    attn_dropout: float | None = None  # on the attention probabilities alone; None: `dropout`
    activation: str = "gelu_tanh"
    layer_norm_eps: float = 1e-5
    tie_embeddings: bool = True
    bias: bool = True
    initializer_range: float = 0.02
    attn_only: bool = False  # blocks without the feed-forward sublayer (interpretability's toy models)

    def __post_init__(self) -> None:
        check_types(self)
        check_positive(self, "vocab_size", "max_position", "d_model", "n_heads", "n_layers", "d_ff")
        check_probabilities(self, "dropout", "attn_dropout")
        check_range(self, "layer_norm_eps", 1e-30)
        check_range(self, "initializer_range", 0.0)
        check_choice(self, "activation", ACTIVATIONS)
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> "DecoderLMConfig":
        """A named configuration (see ``DECODER_LM_PRESETS``), with any field overridden."""
        if name not in DECODER_LM_PRESETS:
            raise ValueError(f"unknown decoder LM preset {name!r}; choose one of {sorted(DECODER_LM_PRESETS)}")
        return replace(DECODER_LM_PRESETS[name], **overrides)


DECODER_LM_PRESETS: dict[str, DecoderLMConfig] = {
    "gpt2": DecoderLMConfig(),
    "gpt2-medium": DecoderLMConfig(d_model=1024, n_heads=16, n_layers=24, d_ff=4096),
    "gpt2-large": DecoderLMConfig(d_model=1280, n_heads=20, n_layers=36, d_ff=5120),
    # A character-level model small enough to train on a laptop CPU in minutes.
    "char-small": DecoderLMConfig(vocab_size=256, max_position=256, d_model=192, n_heads=6, n_layers=6, d_ff=768),
    "tiny": DecoderLMConfig(vocab_size=256, max_position=64, d_model=32, n_heads=4, n_layers=2, d_ff=64),
}


class DecoderLM(nn.Module):
    """GPT-style language model: p(x_t | x_<t) = softmax(LayerNorm(h_t) W_Eᵀ) over causal self-attention blocks."""

    def __init__(self, config: DecoderLMConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = TokenEmbedding(config.vocab_size, config.d_model)
        self.position_embedding = LearnedPositionalEmbedding(config.max_position, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = Encoder(
            lambda: EncoderLayer(
                config.d_model,
                config.n_heads,
                config.d_ff,
                dropout=config.dropout,
                attn_dropout=config.attn_dropout,
                activation=config.activation,
                norm_first=True,
                layer_norm_eps=config.layer_norm_eps,
                bias=config.bias,
                ffn_dropout=0.0,
                feed_forward=not config.attn_only,
            ),
            config.n_layers,
            final_norm=True,
        )
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.hook_embed, self.hook_pos_embed, self.hook_logits = HookPoint(), HookPoint(), HookPoint()
        if config.tie_embeddings:
            self.lm_head.weight = self.token_embedding.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases.

        The projections that write into the residual stream (attention output, second FFN layer)
        get std / √(2·n_layers), so the stream's variance does not grow with depth. ``apply``
        visits a layer after its children, so this overrides their plain initialisation.
        """
        std = self.config.initializer_range
        if isinstance(module, EncoderLayer):
            residual_std = std / math.sqrt(2 * self.config.n_layers)
            nn.init.normal_(module.self_attn.out_proj.weight, std=residual_std)
            if module.ffn is not None:
                nn.init.normal_(module.ffn.fc2.weight, std=residual_std)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (TokenEmbedding, LearnedPositionalEmbedding)):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache, one per block."""
        return self.blocks.new_cache()

    @returns_intermediates
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        cache: list[KVCache] | None = None,
        use_cache: bool = False,
        labels: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> LMOutput:
        """Next-token logits ``(B, T, V)`` for ``input_ids`` ``(B, T)``.

        With a ``cache`` (or ``use_cache=True``, which starts one), ``input_ids`` are the new
        positions only; they are placed after the cached ones and the cache grows in place.
        ``attention_mask`` ``(B, T_cached + T)`` marks real tokens with 1. ``labels`` ``(B, T)``
        are aligned with ``input_ids`` (usually a copy of them): the logits at position t are
        scored against ``labels[:, t + 1]``, and ``-100`` marks positions left out of the loss.
        """
        if use_cache and cache is None:
            cache = self.new_cache()
        _, t = input_ids.shape
        past = cache[0].length if cache else 0
        x = hook(self.hook_embed, self.token_embedding(input_ids))  # (B, T, D)
        positions = hook(self.hook_pos_embed, self.position_embedding.embed_range(t, offset=past).unsqueeze(0))
        x = self.dropout(x + positions)  # positions past .. past + T - 1
        mask = causal_mask(t, past + t, device=input_ids.device)  # (1, 1, T, past + T)
        if attention_mask is not None:
            if attention_mask.shape[-1] != past + t:
                raise ValueError(
                    f"attention_mask must cover the {past} cached and {t} new positions ({past + t}), "
                    f"got length {attention_mask.shape[-1]}"
                )
            mask = mask & padding_mask(attention_mask)  # (B, 1, T, past + T)
        out = self.blocks(
            x,
            mask,
            caches=cache,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )  # last_hidden_state (B, T, D), after the final LayerNorm
        logits = hook(self.hook_logits, self.lm_head(out.last_hidden_state))  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return LMOutput(
            logits=logits,
            loss=loss,
            cache=cache,
            last_hidden_state=out.last_hidden_state,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )
