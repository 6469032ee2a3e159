"""GPT-2 ↔ DecoderLM.

Hugging Face ``GPT2LMHeadModel`` names (``transformer.`` prefix optional) → glassformer names:

====================================  ================================================
``wte.weight``                        ``token_embedding.weight`` (and the tied ``lm_head``)
``wpe.weight``                        ``position_embedding.weight``
``h.i.ln_1.*``                        ``blocks.layers.i.norm1.*``
``h.i.attn.c_attn.*`` (D → 3D)        ``blocks.layers.i.self_attn.{q,k,v}_proj.*`` (split in three)
``h.i.attn.c_proj.*``                 ``blocks.layers.i.self_attn.out_proj.*``
``h.i.ln_2.*``                        ``blocks.layers.i.norm2.*``
``h.i.mlp.c_fc.*``                    ``blocks.layers.i.ffn.fc1.*``
``h.i.mlp.c_proj.*``                  ``blocks.layers.i.ffn.fc2.*``
``ln_f.*``                            ``blocks.norm.*``
====================================  ================================================

GPT-2 builds its projections from ``Conv1D``, which stores the weight as ``(in, out)`` and
computes ``x W + b``; ``nn.Linear`` stores ``(out, in)`` and computes ``x Wᵀ + b``, so every
projection weight is transposed on the way in and out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
from glassformer.pretrained.loading import CheckpointError
from glassformer.pretrained.mapping import Rule, Table, copy, strip_prefix, transposed

MODEL_TYPE = "gpt2"
INT8_SKIP: tuple[str, ...] = ("lm_head",)
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}

_RULES: list[Rule] = [
    copy("token_embedding.weight", "wte.weight"),
    copy("position_embedding.weight", "wpe.weight"),
    copy("blocks.norm.weight", "ln_f.weight"),
    copy("blocks.norm.bias", "ln_f.bias"),
]
for _p in ("q", "k", "v"):
    _RULES += [
        transposed(f"blocks.layers.{{i}}.self_attn.{_p}_proj.weight", f"h.{{i}}.attn.c_attn.{_p}.weight"),
        copy(f"blocks.layers.{{i}}.self_attn.{_p}_proj.bias", f"h.{{i}}.attn.c_attn.{_p}.bias"),
    ]
_RULES += [
    transposed("blocks.layers.{i}.self_attn.out_proj.weight", "h.{i}.attn.c_proj.weight"),
    copy("blocks.layers.{i}.self_attn.out_proj.bias", "h.{i}.attn.c_proj.bias"),
    transposed("blocks.layers.{i}.ffn.fc1.weight", "h.{i}.mlp.c_fc.weight"),
    copy("blocks.layers.{i}.ffn.fc1.bias", "h.{i}.mlp.c_fc.bias"),
    transposed("blocks.layers.{i}.ffn.fc2.weight", "h.{i}.mlp.c_proj.weight"),
    copy("blocks.layers.{i}.ffn.fc2.bias", "h.{i}.mlp.c_proj.bias"),
]
for _w in ("weight", "bias"):
    _RULES += [copy(f"blocks.layers.{{i}}.norm1.{_w}", f"h.{{i}}.ln_1.{_w}"),
               copy(f"blocks.layers.{{i}}.norm2.{_w}", f"h.{{i}}.ln_2.{_w}")]

# The causal-mask buffers older checkpoints saved, and the tied output matrix (a copy of wte).
_IGNORE = [r"h\.\d+\.attn\.(masked_)?bias", r"lm_head\.weight"]


def config_from_hf(hf: dict[str, Any]) -> DecoderLMConfig:
    """Our DecoderLMConfig for a Hugging Face GPT-2 ``config.json``; unsupported options are an error."""
    problems = []
    act = hf.get("activation_function", "gelu_new")
    if act not in _ACTIVATIONS:
        problems.append(f"activation_function={act!r} (supported: {', '.join(_ACTIVATIONS)})")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"):
        if hf.get(flag):
            problems.append(f"{flag}=true")
    if hf.get("scale_attn_weights") is False:
        problems.append("scale_attn_weights=false")
    if hf.get("tie_word_embeddings") is False:
        problems.append("tie_word_embeddings=false (glassformer reads GPT-2 with its output tied to wte)")
    if problems:
        raise CheckpointError("unsupported GPT-2 configuration: " + "; ".join(problems))
    try:
        d_model = hf["n_embd"]
        return DecoderLMConfig(
            vocab_size=hf["vocab_size"],
            max_position=hf["n_positions"],
            d_model=d_model,
            n_heads=hf["n_head"],
            n_layers=hf["n_layer"],
            d_ff=hf.get("n_inner") or 4 * d_model,
            dropout=hf.get("resid_pdrop", 0.1),
            attn_dropout=hf.get("attn_pdrop", hf.get("resid_pdrop", 0.1)),
            activation=_ACTIVATIONS[act],
            layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            tie_embeddings=True,
            initializer_range=hf.get("initializer_range", 0.02),
        )
    except KeyError as exc:
        raise CheckpointError(f"GPT-2 config.json lacks the field {exc.args[0]!r}") from None


def config_to_hf(config: DecoderLMConfig) -> dict[str, Any]:
    """The Hugging Face ``config.json`` fields for our decoder LM."""
    if not config.tie_embeddings or not config.bias or config.attn_only:
        raise ValueError("GPT-2 needs tie_embeddings=True, bias=True and attn_only=False")
    act = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[config.activation]
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": MODEL_TYPE,
        "vocab_size": config.vocab_size,
        "n_positions": config.max_position,
        "n_embd": config.d_model,
        "n_head": config.n_heads,
        "n_layer": config.n_layers,
        "n_inner": config.d_ff,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout if config.attn_dropout is None else config.attn_dropout,
        "activation_function": act,
        "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": config.initializer_range,
        "tie_word_embeddings": True,
        "bos_token_id": config.vocab_size - 1,
        "eos_token_id": config.vocab_size - 1,
    }


def hf_config(model: DecoderLM, label_names: list[str] | None = None) -> dict[str, Any]:
    """``config.json`` for `model`: a GPT2LMHeadModel (a language model has no label names)."""
    return config_to_hf(model.config)


def prepare(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``transformer.`` prefix and split each fused ``c_attn`` (D → 3D) into q, k and v parts."""
    theirs = strip_prefix(theirs, "transformer.", "wte.weight")
    out: dict[str, Tensor] = {}
    for name, tensor in theirs.items():
        if name.endswith(".attn.c_attn.weight") or name.endswith(".attn.c_attn.bias"):
            stem, kind = name.rsplit(".", 1)
            axis = tensor.dim() - 1  # Conv1D weight (D, 3D): the outputs are the columns
            if tensor.shape[axis] % 3:
                raise CheckpointError(f"{name} has shape {tuple(tensor.shape)}; its output size must be 3·D")
            for part, piece in zip("qkv", tensor.chunk(3, dim=axis)):
                out[f"{stem}.{part}.{kind}"] = piece
        else:
            out[name] = tensor
    return out


def finish(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Join the q, k and v parts back into GPT-2's fused ``c_attn`` and add the ``transformer.`` prefix."""
    out: dict[str, Tensor] = {}
    for name, tensor in theirs.items():
        if ".attn.c_attn.q." in name:
            parts = [theirs[name.replace(".c_attn.q.", f".c_attn.{p}.")] for p in "qkv"]
            out[name.replace(".c_attn.q.", ".c_attn.")] = torch.cat(parts, dim=tensor.dim() - 1)
        elif ".attn.c_attn." not in name:
            out[name] = tensor
    return {f"transformer.{k}": v for k, v in out.items()}


def build(hf: dict[str, Any], theirs: dict[str, Tensor]) -> DecoderLM:
    """An untrained model shaped like the checkpoint."""
    return DecoderLM(config_from_hf(hf))


def table(model: DecoderLM) -> Table:
    """The name table for this model, one rule per tensor."""
    return Table(_RULES, ignore=_IGNORE, tied=["lm_head.weight"]).expand(model.config.n_layers)


def owns(model: nn.Module) -> bool:
    """Whether ``model`` is one this family saves."""
    return isinstance(model, DecoderLM)


def load_tokenizer(directory: Path):
    """GPT-2's byte-level BPE from ``vocab.json`` + ``merges.txt``, or None if the directory has none."""
    vocab, merges = directory / "vocab.json", directory / "merges.txt"
    if not (vocab.is_file() and merges.is_file()):
        return None
    from glassformer.tokenizers import ByteLevelBPE

    return ByteLevelBPE.from_gpt2(vocab, merges)

