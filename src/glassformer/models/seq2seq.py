"""The encoder–decoder Transformer of "Attention Is All You Need", as used for translation.

Source and target share one token embedding (scaled by √d_model) plus sinusoidal positions.
The encoder reads the whole source; the decoder reads the target so far under a causal mask
and attends to the encoder output through cross-attention; a linear projection (tied to the
embedding by default) turns each decoder state into next-token logits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glassformer._config import check_choice, check_positive, check_probabilities, check_range, check_types
from glassformer.errors import ConfigError
from glassformer.models.outputs import DecoderOutput, EncoderOutput, Seq2SeqOutput, returns_intermediates
from glassformer.nn import (
    ACTIVATIONS,
    Decoder,
    DecoderLayer,
    DecoderLayerCache,
    Encoder,
    EncoderLayer,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    causal_mask,
    padding_mask,
)
from glassformer.nn.hooks import HookPoint, hook

IGNORE_INDEX = -100


@dataclass
class Seq2SeqConfig:
    """Hyperparameters of an encoder–decoder Transformer; the defaults are the paper's base model."""

    vocab_size: int = 37000
    max_position: int = 5000
    d_model: int = 512
    n_heads: int = 8
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1  # embeddings + positions, and each sublayer's output before the residual add
    attn_dropout: float | None = None  # on the attention probabilities; None: `dropout`
    ffn_dropout: float | None = None  # inside the feed-forward network, after the activation; None: `dropout`
    activation: str = "relu"
    layer_norm_eps: float = 1e-5
    norm_first: bool = False  # post-norm as in the paper; pre-norm adds a final LayerNorm per stack
    tie_embeddings: bool = True
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2

    def __post_init__(self) -> None:
        check_types(self)
        check_positive(self, "vocab_size", "max_position", "d_model", "n_heads", "n_encoder_layers",
                       "n_decoder_layers", "d_ff")
        check_probabilities(self, "dropout", "attn_dropout", "ffn_dropout")
        check_range(self, "layer_norm_eps", 1e-30)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            check_range(self, name, 0, self.vocab_size - 1)
        check_choice(self, "activation", ACTIVATIONS)
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> "Seq2SeqConfig":
        """A named configuration (see ``SEQ2SEQ_PRESETS``), with any field overridden."""
        if name not in SEQ2SEQ_PRESETS:
            raise ValueError(f"unknown seq2seq preset {name!r}; choose one of {sorted(SEQ2SEQ_PRESETS)}")
        return replace(SEQ2SEQ_PRESETS[name], **overrides)


SEQ2SEQ_PRESETS: dict[str, Seq2SeqConfig] = {
    "transformer-base": Seq2SeqConfig(),
    "transformer-big": Seq2SeqConfig(d_model=1024, n_heads=16, d_ff=4096, dropout=0.3),
    "tiny": Seq2SeqConfig(
        vocab_size=128, max_position=128, d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, d_ff=64
    ),
}


def shift_right(labels: Tensor, bos_token_id: int, pad_token_id: int) -> Tensor:
    """Teacher-forcing decoder input from ``labels`` ``(B, T)``: ``[bos, y_1 .. y_{T-1}]``, ``-100`` read as padding."""
    shifted = labels.new_full(labels.shape, bos_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


class Seq2SeqTransformer(nn.Module):
    """Encoder–decoder Transformer: p(y_t | y_<t, x) = softmax(Decoder(y_<t, Encoder(x)) W_Eᵀ)."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = TokenEmbedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id, scale=True)
        self.positional = SinusoidalPositionalEncoding(config.d_model, config.max_position, config.dropout)
        layer_args = dict(
            d_model=config.d_model,
            n_heads=config.n_heads,
            d_ff=config.d_ff,
            dropout=config.dropout,
            attn_dropout=config.attn_dropout,
            ffn_dropout=config.ffn_dropout,
            activation=config.activation,
            norm_first=config.norm_first,
            layer_norm_eps=config.layer_norm_eps,
        )
        self.encoder = Encoder(lambda: EncoderLayer(**layer_args), config.n_encoder_layers, config.norm_first)
        self.decoder = Decoder(lambda: DecoderLayer(**layer_args), config.n_decoder_layers, config.norm_first)
        self.output_proj = nn.Linear(config.d_model, config.vocab_size, bias=False)
        # √D-scaled embedding plus sinusoidal positions: each stack's input; and the next-token logits.
        self.hook_encoder_embed, self.hook_decoder_embed, self.hook_logits = HookPoint(), HookPoint(), HookPoint()
        self._init_weights()
        if config.tie_embeddings:
            self.output_proj.weight = self.embedding.weight

    def _init_weights(self) -> None:
        """Glorot/Xavier-uniform matrices, zero biases, identity LayerNorms; the embedding normal(0, d^-½), padding row 0.

        The embedding is multiplied by √d before the positions are added, so N(0, 1/d) entries give
        token vectors with unit-variance components, above the sinusoids' root mean square of 0.71
        (fairseq's Transformer init). Xavier's would give 0.35 for d=128 and 2,000 tokens: the
        positions would outweigh the words.
        """
        for name, param in self.named_parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
            elif "norm" not in name:
                nn.init.zeros_(param)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=self.config.d_model ** -0.5)
        with torch.no_grad():
            self.embedding.weight[self.config.pad_token_id].zero_()

    def new_cache(self) -> list[DecoderLayerCache]:
        """An empty self- and cross-attention cache per decoder layer."""
        return self.decoder.new_cache()

    @returns_intermediates
    def encode(
        self,
        src_ids: Tensor,
        src_attention_mask: Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """Encode ``src_ids`` ``(B, S)``; ``src_attention_mask`` ``(B, S)`` is 1 for real tokens, 0 for padding."""
        x = hook(self.hook_encoder_embed, self.positional(self.embedding(src_ids)))  # (B, S, D)
        mask = None if src_attention_mask is None else padding_mask(src_attention_mask)  # (B, 1, 1, S)
        out = self.encoder(x, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        return EncoderOutput(out.last_hidden_state, None, out.hidden_states, out.attentions)

    @returns_intermediates
    def decode(
        self,
        tgt_ids: Tensor,
        memory: Tensor,
        src_attention_mask: Tensor | None = None,
        tgt_attention_mask: Tensor | None = None,
        *,
        cache: list[DecoderLayerCache] | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> DecoderOutput:
        """Next-token logits ``(B, T, V)`` for ``tgt_ids`` ``(B, T)`` given the encoder output ``memory`` ``(B, S, D)``.

        With a ``cache``, ``tgt_ids`` are the new positions only and ``tgt_attention_mask``
        (if any) covers cached and new positions.
        """
        _, t = tgt_ids.shape
        past = cache[0].length if cache else 0
        x = hook(self.hook_decoder_embed, self.positional(self.embedding(tgt_ids), offset=past))  # (B, T, D)
        self_mask = causal_mask(t, past + t, device=tgt_ids.device)  # (1, 1, T, past + T)
        if tgt_attention_mask is not None:
            self_mask = self_mask & padding_mask(tgt_attention_mask)
        memory_mask = None if src_attention_mask is None else padding_mask(src_attention_mask)  # (B, 1, 1, S)
        out = self.decoder(
            x,
            memory,
            self_mask,
            memory_mask,
            caches=cache,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        logits = hook(self.hook_logits, self.output_proj(out.last_hidden_state))  # (B, T, V)
        return DecoderOutput(
            logits=logits,
            cache=cache,
            last_hidden_state=out.last_hidden_state,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            cross_attentions=out.cross_attentions,
        )

    @returns_intermediates
    def forward(
        self,
        src_ids: Tensor,
        tgt_ids: Tensor,
        src_attention_mask: Tensor | None = None,
        tgt_attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> Seq2SeqOutput:
        """Teacher forcing: logits ``(B, T, V)`` for every target position at once.

        ``tgt_ids`` is the decoder input ``[bos, y_1 .. y_{T-1}]`` (see :func:`shift_right`);
        ``labels`` ``(B, T)`` are what each position should predict, ``[y_1 .. y_T]``, not
        shifted again here; ``-100`` marks positions left out of the loss.
        """
        enc = self.encode(
            src_ids, src_attention_mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        dec = self.decode(
            tgt_ids,
            enc.last_hidden_state,
            src_attention_mask,
            tgt_attention_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                dec.logits.reshape(-1, dec.logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        return Seq2SeqOutput(
            logits=dec.logits,
            loss=loss,
            encoder_last_hidden_state=enc.last_hidden_state,
            encoder_hidden_states=enc.hidden_states,
            encoder_attentions=enc.attentions,
            decoder_hidden_states=dec.hidden_states,
            decoder_attentions=dec.attentions,
            cross_attentions=dec.cross_attentions,
        )
