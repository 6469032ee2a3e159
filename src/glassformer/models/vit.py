"""The Vision Transformer (Dosovitskiy et al. 2020): an image read as a sequence of patches.

Patches of P×P pixels are flattened and projected to d_model; a learned [CLS] token is put in
front; learned position embeddings are added; pre-norm encoder layers mix the patches; the
final LayerNorm's [CLS] state goes through a linear head to the class logits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glassformer._config import check_choice, check_positive, check_probabilities, check_range, check_types
from glassformer.errors import ConfigError
from glassformer.models.outputs import ClassifierOutput, returns_intermediates
from glassformer.nn import ACTIVATIONS, Encoder, EncoderLayer, PatchEmbedding
from glassformer.nn.hooks import HookPoint, hook


@dataclass
class ViTConfig:
    """Hyperparameters of a Vision Transformer; the defaults are a small model for 28×28 grey digits."""

    image_size: int = 28
    patch_size: int = 7
    in_channels: int = 1
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 128
    dropout: float = 0.0
    attn_dropout: float = 0.0
    activation: str = "gelu"
    layer_norm_eps: float = 1e-12
    num_classes: int = 10
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        check_types(self)
        check_positive(self, "image_size", "patch_size", "in_channels", "d_model", "n_heads", "n_layers", "d_ff",
                       "num_classes")
        check_probabilities(self, "dropout", "attn_dropout")
        check_range(self, "layer_norm_eps", 1e-30)
        check_range(self, "initializer_range", 0.0)
        check_choice(self, "activation", ACTIVATIONS)
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def n_patches(self) -> int:
        """Number of patches N = (image_size / patch_size)²."""
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def preset(cls, name: str, **overrides: object) -> "ViTConfig":
        """A named configuration (see ``VIT_PRESETS``), with any field overridden."""
        if name not in VIT_PRESETS:
            raise ValueError(f"unknown ViT preset {name!r}; choose one of {sorted(VIT_PRESETS)}")
        return replace(VIT_PRESETS[name], **overrides)


VIT_PRESETS: dict[str, ViTConfig] = {
    "mnist": ViTConfig(),
    "vit-base-patch16-224": ViTConfig(
        image_size=224, patch_size=16, in_channels=3, d_model=768, n_heads=12, n_layers=12, d_ff=3072, num_classes=1000
    ),
    "vit-tiny-patch16-224": ViTConfig(
        image_size=224, patch_size=16, in_channels=3, d_model=192, n_heads=3, n_layers=12, d_ff=768, num_classes=1000
    ),
    "tiny": ViTConfig(image_size=8, patch_size=4, d_model=16, n_heads=2, n_layers=2, d_ff=32, num_classes=3),
}


class VisionTransformer(nn.Module):
    """Vision Transformer: class logits = head(LayerNorm(Encoder([CLS; patches W_P] + P_pos))[CLS])."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embedding = PatchEmbedding(config.image_size, config.patch_size, config.in_channels, config.d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.n_patches + 1, config.d_model))
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = Encoder(
            lambda: EncoderLayer(
                config.d_model,
                config.n_heads,
                config.d_ff,
                dropout=config.dropout,
                activation=config.activation,
                norm_first=True,
                layer_norm_eps=config.layer_norm_eps,
                attn_dropout=config.attn_dropout,
                ffn_dropout=0.0,
            ),
            config.n_layers,
            final_norm=True,
        )
        self.head = nn.Linear(config.d_model, config.num_classes)
        # The projected patches, the first layer's input ([CLS] + patches + positions), [CLS]'s final state, logits.
        self.hook_patches, self.hook_embed = HookPoint(), HookPoint()
        self.hook_features, self.hook_logits = HookPoint(), HookPoint()
        self._init_weights()

    def _init_weights(self) -> None:
        """Truncated-normal(0.02) for matrices, [CLS] and positions; zero biases; identity LayerNorms."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.cls_token, std=std)
        nn.init.trunc_normal_(self.position_embeddings, std=std)

    @returns_intermediates
    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> ClassifierOutput:
        """Class logits ``(B, num_classes)`` for ``images`` ``(B, C, H, W)``; ``labels`` ``(B,)`` adds the loss.

        ``attentions[l][:, :, 0, 1:]`` is how much [CLS] attends to each patch in layer ``l``.
        """
        images = images.to(self.cls_token.dtype)  # float32 pixels into a model kept in bf16 for inference
        patches = hook(self.hook_patches, self.patch_embedding(images))  # (B, N, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # (B, 1, D)
        x = hook(self.hook_embed, torch.cat([cls, patches], dim=1) + self.position_embeddings)  # (B, N + 1, D)
        x = self.dropout(x)
        out = self.encoder(
            x, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )  # last_hidden_state (B, N + 1, D), after the final LayerNorm
        cls_state = hook(self.hook_features, out.last_hidden_state[:, 0])  # (B, D)
        logits = hook(self.hook_logits, self.head(cls_state))  # (B, num_classes)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ClassifierOutput(
            logits=logits,
            loss=loss,
            last_hidden_state=out.last_hidden_state,
            pooled=cls_state,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )
