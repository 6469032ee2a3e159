"""ViT ↔ VisionTransformer.

Hugging Face ``ViTForImageClassification`` names (``vit.`` prefix) → glassformer names:

====================================================  ==========================================
``embeddings.cls_token``                              ``cls_token``
``embeddings.position_embeddings``                    ``position_embeddings``
``embeddings.patch_embeddings.projection.weight``     ``patch_embedding.proj.weight`` (reshaped)
``embeddings.patch_embeddings.projection.bias``       ``patch_embedding.proj.bias``
``encoder.layer.i.layernorm_before.*``                ``encoder.layers.i.norm1.*``
``encoder.layer.i.attention.attention.query.*``       ``encoder.layers.i.self_attn.q_proj.*``
``encoder.layer.i.attention.attention.key.*``         ``encoder.layers.i.self_attn.k_proj.*``
``encoder.layer.i.attention.attention.value.*``       ``encoder.layers.i.self_attn.v_proj.*``
``encoder.layer.i.attention.output.dense.*``          ``encoder.layers.i.self_attn.out_proj.*``
``encoder.layer.i.layernorm_after.*``                 ``encoder.layers.i.norm2.*``
``encoder.layer.i.intermediate.dense.*``              ``encoder.layers.i.ffn.fc1.*``
``encoder.layer.i.output.dense.*``                    ``encoder.layers.i.ffn.fc2.*``
``layernorm.*``                                       ``encoder.norm.*``
``classifier.*`` (no prefix)                          ``head.*``
====================================================  ==========================================

Hugging Face embeds patches with ``Conv2d(C, D, kernel=stride=P)``, weight ``(D, C, P, P)``;
glassformer flattens each patch channel-major as ``(C, P, P)`` and applies ``Linear(C·P·P, D)``,
so the convolution weight is the Linear weight reshaped to ``(D, C·P·P)``: the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from glassformer.models.vit import VisionTransformer, ViTConfig
from glassformer.pretrained.loading import CheckpointError, label_fields
from glassformer.pretrained.mapping import Rule, Table, copy

MODEL_TYPE = "vit"
INT8_SKIP: tuple[str, ...] = ()


def _conv_rule(config: ViTConfig) -> Rule:
    c, p, d = config.in_channels, config.patch_size, config.d_model
    return Rule("patch_embedding.proj.weight", "vit.embeddings.patch_embeddings.projection.weight",
                load=lambda w: w.reshape(w.shape[0], -1), save=lambda w: w.reshape(d, c, p, p),
                note="reshaping (D, C, P, P) to (D, C·P·P)")


_RULES: list[Rule] = [
    copy("cls_token", "vit.embeddings.cls_token"),
    copy("position_embeddings", "vit.embeddings.position_embeddings"),
    copy("patch_embedding.proj.bias", "vit.embeddings.patch_embeddings.projection.bias"),
    copy("encoder.norm.weight", "vit.layernorm.weight"),
    copy("encoder.norm.bias", "vit.layernorm.bias"),
    copy("head.weight", "classifier.weight"),
    copy("head.bias", "classifier.bias"),
]
for _w in ("weight", "bias"):
    _layer = "vit.encoder.layer.{i}"
    _RULES += [
        copy(f"encoder.layers.{{i}}.norm1.{_w}", f"{_layer}.layernorm_before.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.q_proj.{_w}", f"{_layer}.attention.attention.query.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.k_proj.{_w}", f"{_layer}.attention.attention.key.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.v_proj.{_w}", f"{_layer}.attention.attention.value.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.out_proj.{_w}", f"{_layer}.attention.output.dense.{_w}"),
        copy(f"encoder.layers.{{i}}.norm2.{_w}", f"{_layer}.layernorm_after.{_w}"),
        copy(f"encoder.layers.{{i}}.ffn.fc1.{_w}", f"{_layer}.intermediate.dense.{_w}"),
        copy(f"encoder.layers.{{i}}.ffn.fc2.{_w}", f"{_layer}.output.dense.{_w}"),
    ]


def config_from_hf(hf: dict[str, Any]) -> ViTConfig:
    """Our ViTConfig for a Hugging Face ViT ``config.json``; unsupported options are an error."""
    problems = []
    if hf.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act={hf['hidden_act']!r} (only 'gelu')")
    if hf.get("qkv_bias") is False:
        problems.append("qkv_bias=false")
    if problems:
        raise CheckpointError("unsupported ViT configuration: " + "; ".join(problems))
    labels = hf.get("id2label") or {}
    try:
        return ViTConfig(
            image_size=hf["image_size"],
            patch_size=hf["patch_size"],
            in_channels=hf.get("num_channels", 3),
            d_model=hf["hidden_size"],
            n_heads=hf["num_attention_heads"],
            n_layers=hf["num_hidden_layers"],
            d_ff=hf["intermediate_size"],
            dropout=hf.get("hidden_dropout_prob", 0.0),
            attn_dropout=hf.get("attention_probs_dropout_prob", 0.0),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
            num_classes=hf.get("num_labels") or len(labels) or 2,
            initializer_range=hf.get("initializer_range", 0.02),
        )
    except KeyError as exc:
        raise CheckpointError(f"ViT config.json lacks the field {exc.args[0]!r}") from None


def config_to_hf(config: ViTConfig) -> dict[str, Any]:
    """The Hugging Face ``config.json`` fields for our ViT."""
    if config.activation != "gelu":
        raise ValueError(f"a Hugging Face ViT uses exact gelu, this model uses {config.activation!r}")
    return {
        "architectures": ["ViTForImageClassification"],
        "model_type": MODEL_TYPE,
        "image_size": config.image_size,
        "patch_size": config.patch_size,
        "num_channels": config.in_channels,
        "hidden_size": config.d_model,
        "num_attention_heads": config.n_heads,
        "num_hidden_layers": config.n_layers,
        "intermediate_size": config.d_ff,
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attn_dropout,
        "hidden_act": "gelu",
        "layer_norm_eps": config.layer_norm_eps,
        "qkv_bias": True,
        "initializer_range": config.initializer_range,
        "id2label": {str(i): f"LABEL_{i}" for i in range(config.num_classes)},
        "label2id": {f"LABEL_{i}": i for i in range(config.num_classes)},
    }


def hf_config(model: VisionTransformer, label_names: list[str] | None = None) -> dict[str, Any]:
    """``config.json`` for `model`: a ViTForImageClassification, with its label names when given."""
    config = config_to_hf(model.config)
    return {**config, **label_fields(label_names)} if label_names else config


def prepare(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoints are used as stored: the classification model's names carry the ``vit.`` prefix."""
    return theirs


def finish(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Nothing to join for ViT: every tensor maps one to one."""
    return theirs


def build(hf: dict[str, Any], theirs: dict[str, Tensor]) -> VisionTransformer:
    """An untrained model shaped like the checkpoint (image classification: backbone + head)."""
    if "classifier.weight" not in theirs:
        raise CheckpointError("this ViT checkpoint has no classifier.weight; glassformer reads "
                              "ViTForImageClassification checkpoints (backbone + classification head)")
    return VisionTransformer(config_from_hf(hf))


def table(model: VisionTransformer) -> Table:
    """The name table for this model, one rule per tensor."""
    return Table(_RULES + [_conv_rule(model.config)]).expand(model.config.n_layers)


def owns(model: nn.Module) -> bool:
    """Whether ``model`` is one this family saves."""
    return isinstance(model, VisionTransformer)


def load_tokenizer(directory: Path) -> None:
    """Images need no tokenizer."""
    return None

