"""A BERT-style bidirectional encoder and a sequence classifier on top of it.

Input embeddings (word + learned position + token type, LayerNorm, dropout) → a stack of
post-norm encoder layers in which every token attends to every non-padding token → an
optional pooler (dense + tanh on the first, [CLS], token) → classification head.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glassformer._config import check_choice, check_positive, check_probabilities, check_range, check_types
from glassformer.errors import ConfigError
from glassformer.models.outputs import ClassifierOutput, EncoderOutput, returns_intermediates
from glassformer.nn import (
    ACTIVATIONS,
    Encoder,
    EncoderLayer,
    LearnedPositionalEmbedding,
    TokenEmbedding,
    packed,
    padding_mask,
)
from glassformer.nn.hooks import HookPoint, hook

POOLINGS = ("cls", "mean")


@dataclass
class EncoderConfig:
    """Hyperparameters of a BERT-style encoder; the defaults are BERT-base (uncased)."""

    vocab_size: int = 30522
    max_position: int = 512
    type_vocab_size: int = 2
    d_model: int = 768
    n_heads: int = 12
    n_layers: int = 12
    d_ff: int = 3072
    dropout: float = 0.1  # on embeddings and on each sublayer's output ("hidden dropout")
    attn_dropout: float = 0.1  # on the attention probabilities
    activation: str = "gelu"
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    norm_first: bool = False
    pooling: str = "cls"
    use_pooler: bool = True
    num_labels: int = 2
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        check_types(self)
        check_positive(self, "vocab_size", "max_position", "type_vocab_size", "d_model", "n_heads", "n_layers",
                       "d_ff", "num_labels")
        check_probabilities(self, "dropout", "attn_dropout")
        check_range(self, "layer_norm_eps", 1e-30)
        check_range(self, "pad_token_id", 0, self.vocab_size - 1)
        check_range(self, "initializer_range", 0.0)
        check_choice(self, "pooling", POOLINGS)
        check_choice(self, "activation", ACTIVATIONS)
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> "EncoderConfig":
        """A named configuration (see ``ENCODER_PRESETS``), with any field overridden."""
        if name not in ENCODER_PRESETS:
            raise ValueError(f"unknown encoder preset {name!r}; choose one of {sorted(ENCODER_PRESETS)}")
        return replace(ENCODER_PRESETS[name], **overrides)


ENCODER_PRESETS: dict[str, EncoderConfig] = {
    "bert-base": EncoderConfig(),
    "bert-large": EncoderConfig(d_model=1024, n_heads=16, n_layers=24, d_ff=4096),
    # sentence-transformers/all-MiniLM-L6-v2: mean pooling, no pooler in use.
    "minilm-l6": EncoderConfig(d_model=384, n_heads=12, n_layers=6, d_ff=1536, pooling="mean", use_pooler=False),
    "bert-tiny": EncoderConfig(d_model=128, n_heads=2, n_layers=2, d_ff=512),
    "tiny": EncoderConfig(vocab_size=1000, max_position=128, d_model=64, n_heads=4, n_layers=2, d_ff=128),
}


def mean_pool(hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Mean of ``hidden`` ``(B, T, D)`` over the positions where ``attention_mask`` ``(B, T)`` is 1 → ``(B, D)``."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class EncoderEmbeddings(nn.Module):
    """BERT input embeddings: LayerNorm(word + position + token type), then dropout."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = TokenEmbedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.position_embeddings = LearnedPositionalEmbedding(config.max_position, config.d_model)
        self.token_type_embeddings = TokenEmbedding(config.type_vocab_size, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.hook_word, self.hook_position, self.hook_token_type = HookPoint(), HookPoint(), HookPoint()
        self.hook_embed = HookPoint()  # LayerNorm(word + position + token type): the first layer's input

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """``(B, T)`` ids → ``(B, T, D)``; token types default to 0 (one segment)."""
        _, t = input_ids.shape
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        word = hook(self.hook_word, self.word_embeddings(input_ids))  # (B, T, D)
        position = hook(self.hook_position, self.position_embeddings.embed_range(t).unsqueeze(0))  # (1, T, D)
        token_type = hook(self.hook_token_type, self.token_type_embeddings(token_type_ids))  # (B, T, D)
        return self.dropout(hook(self.hook_embed, self.norm(word + position + token_type)))


class TransformerEncoderModel(nn.Module):
    """BERT backbone: embeddings → N bidirectional encoder layers → optional pooler tanh(W h_[CLS] + b)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = EncoderEmbeddings(config)
        self.encoder = Encoder(
            lambda: EncoderLayer(
                config.d_model,
                config.n_heads,
                config.d_ff,
                dropout=config.dropout,
                activation=config.activation,
                norm_first=config.norm_first,
                layer_norm_eps=config.layer_norm_eps,
                attn_dropout=config.attn_dropout,
                ffn_dropout=0.0,
            ),
            config.n_layers,
            final_norm=config.norm_first,
        )
        self.pooler = nn.Linear(config.d_model, config.d_model) if config.use_pooler else None
        self.hook_pooler = HookPoint()  # (B, D): tanh(W h_[CLS] + b)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: N(0, initializer_range) weights, zero biases, identity LayerNorms."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (TokenEmbedding, LearnedPositionalEmbedding)):
            nn.init.normal_(module.weight, std=std)
            if getattr(module, "padding_idx", None) is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @returns_intermediates
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """Encode ``input_ids`` ``(B, T)``; ``attention_mask`` ``(B, T)`` is 1 for real tokens, 0 for padding."""
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, D)
        mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
        out = self.encoder(
            x, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        hidden = out.last_hidden_state  # (B, T, D)
        pooled = hook(self.hook_pooler, torch.tanh(self.pooler(hidden[:, 0]))) if self.pooler is not None else None
        return EncoderOutput(hidden, pooled, out.hidden_states, out.attentions)

    def can_pack(self, attention_mask: Tensor | None) -> bool:
        """Whether :meth:`forward_packed` applies: inference, nothing hooked, a right-padded ``attention_mask``."""
        return (attention_mask is not None and packed.can_pack(self, self.encoder)
                and packed.right_padded(attention_mask))

    def forward_packed(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                       first_only: bool = False) -> tuple[Tensor, packed.Packing]:
        """Inference on packed tokens (:mod:`glassformer.nn.packed`): each real token's last hidden state
        ``(rows, D)`` and where it sits, the numbers of :meth:`forward` to float rounding without computing padding.
        With `first_only` the states are each sentence's first ([CLS]) one alone, ``(B, D)``, and the last layer
        computes no other row's (:func:`glassformer.nn.packed.encode`)."""
        packing = packed.Packing.of(attention_mask)
        x = packing.pack(self.embeddings(input_ids, token_type_ids))  # (rows, D)
        hidden = packed.encode(self.encoder, x, packing, first_only=first_only)
        return (hidden[: packing.batch] if first_only else hidden), packing


class EncoderClassifier(nn.Module):
    """Sequence classifier: BERT backbone, CLS or mean pooling, dropout, linear head; cross-entropy loss."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransformerEncoderModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, config.num_labels)
        self.hook_features, self.hook_logits = HookPoint(), HookPoint()  # the sentence vector, the class logits
        self.encoder._init_weights(self.classifier)

    @returns_intermediates
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> ClassifierOutput:
        """Class logits ``(B, num_labels)`` for ``input_ids`` ``(B, T)``; ``labels`` ``(B,)`` adds the loss."""
        enc = self.encoder(
            input_ids,
            attention_mask,
            token_type_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        if self.config.pooling == "mean":
            features = mean_pool(enc.last_hidden_state, attention_mask)  # (B, D)
        elif enc.pooled is not None:
            features = enc.pooled  # (B, D): pooler on [CLS]
        else:
            features = enc.last_hidden_state[:, 0]  # (B, D): raw [CLS] state
        features = hook(self.hook_features, features)
        logits = hook(self.hook_logits, self.classifier(self.dropout(features)))  # (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ClassifierOutput(
            logits=logits,
            loss=loss,
            last_hidden_state=enc.last_hidden_state,
            pooled=features,
            hidden_states=enc.hidden_states,
            attentions=enc.attentions,
        )

    def predict_logits(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                       token_type_ids: Tensor | None = None) -> Tensor:
        """Class logits ``(B, num_labels)`` for inference: on packed tokens where they apply (no padding
        computed; see :meth:`TransformerEncoderModel.can_pack`), else through :meth:`forward`; the same
        numbers to float rounding."""
        if not self.encoder.can_pack(attention_mask):
            return self(input_ids, attention_mask, token_type_ids).logits
        if self.config.pooling == "mean":
            hidden, packing = self.encoder.forward_packed(input_ids, attention_mask, token_type_ids)  # (rows, D)
            features = packing.mean(hidden)  # (B, D)
        else:
            # (B, D): each [CLS]; the last layer computes no other row's state
            first, _ = self.encoder.forward_packed(input_ids, attention_mask, token_type_ids, first_only=True)
            pooler = self.encoder.pooler
            features = torch.tanh(pooler(first)) if pooler is not None else first
        return self.classifier(features)  # (B, num_labels)
