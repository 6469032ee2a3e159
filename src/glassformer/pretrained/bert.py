"""BERT family (BERT, MiniLM-style BERT checkpoints, sentence-transformers encoders) ↔ TransformerEncoderModel.

Hugging Face ``BertModel`` names → glassformer names:

=================================================  ==========================================
``embeddings.word_embeddings.weight``              ``embeddings.word_embeddings.weight``
``embeddings.position_embeddings.weight``          ``embeddings.position_embeddings.weight``
``embeddings.token_type_embeddings.weight``        ``embeddings.token_type_embeddings.weight``
``embeddings.LayerNorm.{weight,bias}``             ``embeddings.norm.{weight,bias}``
``encoder.layer.i.attention.self.query.*``         ``encoder.layers.i.self_attn.q_proj.*``
``encoder.layer.i.attention.self.key.*``           ``encoder.layers.i.self_attn.k_proj.*``
``encoder.layer.i.attention.self.value.*``         ``encoder.layers.i.self_attn.v_proj.*``
``encoder.layer.i.attention.output.dense.*``       ``encoder.layers.i.self_attn.out_proj.*``
``encoder.layer.i.attention.output.LayerNorm.*``   ``encoder.layers.i.norm1.*``
``encoder.layer.i.intermediate.dense.*``           ``encoder.layers.i.ffn.fc1.*``
``encoder.layer.i.output.dense.*``                 ``encoder.layers.i.ffn.fc2.*``
``encoder.layer.i.output.LayerNorm.*``             ``encoder.layers.i.norm2.*``
``pooler.dense.*``                                 ``pooler.*``
=================================================  ==========================================

All weights keep their layout (both sides store Linear weights as ``(out, in)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from glassformer._files import atomic_write
from glassformer.models.encoder import EncoderConfig, TransformerEncoderModel
from glassformer.pretrained.loading import CheckpointError
from glassformer.pretrained.mapping import Rule, Table, copy, strip_prefix

MODEL_TYPE = "bert"
INT8_SKIP: tuple[str, ...] = ()
_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}

_RULES: list[Rule] = [
    copy("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
    copy("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
    copy("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight"),
    copy("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
    copy("embeddings.norm.bias", "embeddings.LayerNorm.bias"),
]
for _w in ("weight", "bias"):
    _RULES += [
        copy(f"encoder.layers.{{i}}.self_attn.q_proj.{_w}", f"encoder.layer.{{i}}.attention.self.query.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.k_proj.{_w}", f"encoder.layer.{{i}}.attention.self.key.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.v_proj.{_w}", f"encoder.layer.{{i}}.attention.self.value.{_w}"),
        copy(f"encoder.layers.{{i}}.self_attn.out_proj.{_w}", f"encoder.layer.{{i}}.attention.output.dense.{_w}"),
        copy(f"encoder.layers.{{i}}.norm1.{_w}", f"encoder.layer.{{i}}.attention.output.LayerNorm.{_w}"),
        copy(f"encoder.layers.{{i}}.ffn.fc1.{_w}", f"encoder.layer.{{i}}.intermediate.dense.{_w}"),
        copy(f"encoder.layers.{{i}}.ffn.fc2.{_w}", f"encoder.layer.{{i}}.output.dense.{_w}"),
        copy(f"encoder.layers.{{i}}.norm2.{_w}", f"encoder.layer.{{i}}.output.LayerNorm.{_w}"),
    ]
_POOLER = [copy("pooler.weight", "pooler.dense.weight"), copy("pooler.bias", "pooler.dense.bias")]

# Buffers and pre-training heads that hold nothing the backbone uses.
_IGNORE = [r"embeddings\.position_ids", r"cls\..*"]


def config_from_hf(hf: dict[str, Any], use_pooler: bool = True) -> EncoderConfig:
    """Our EncoderConfig for a Hugging Face BERT ``config.json``; unsupported options are an error."""
    problems = []
    if hf.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type={hf['position_embedding_type']!r} (only 'absolute')")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        problems.append("is_decoder/add_cross_attention (only the bidirectional encoder)")
    act = hf.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        problems.append(f"hidden_act={act!r} (supported: {', '.join(_ACTIVATIONS)})")
    if problems:
        raise CheckpointError("unsupported BERT configuration: " + "; ".join(problems))
    try:
        return EncoderConfig(
            vocab_size=hf["vocab_size"],
            max_position=hf.get("max_position_embeddings", 512),
            type_vocab_size=hf.get("type_vocab_size", 2),
            d_model=hf["hidden_size"],
            n_heads=hf["num_attention_heads"],
            n_layers=hf["num_hidden_layers"],
            d_ff=hf["intermediate_size"],
            dropout=hf.get("hidden_dropout_prob", 0.1),
            attn_dropout=hf.get("attention_probs_dropout_prob", 0.1),
            activation=_ACTIVATIONS[act],
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
            pad_token_id=hf.get("pad_token_id", 0) or 0,
            initializer_range=hf.get("initializer_range", 0.02),
            use_pooler=use_pooler,
        )
    except KeyError as exc:
        raise CheckpointError(f"BERT config.json lacks the field {exc.args[0]!r}") from None


def config_to_hf(config: EncoderConfig) -> dict[str, Any]:
    """The Hugging Face ``config.json`` fields for our encoder."""
    if config.norm_first:
        raise ValueError("a pre-norm encoder (norm_first=True) has no BERT equivalent")
    act = {"gelu": "gelu", "relu": "relu", "gelu_tanh": "gelu_new"}[config.activation]
    return {
        "architectures": ["BertModel"],
        "model_type": MODEL_TYPE,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position,
        "type_vocab_size": config.type_vocab_size,
        "hidden_size": config.d_model,
        "num_attention_heads": config.n_heads,
        "num_hidden_layers": config.n_layers,
        "intermediate_size": config.d_ff,
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attn_dropout,
        "hidden_act": act,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": config.pad_token_id,
        "initializer_range": config.initializer_range,
        "position_embedding_type": "absolute",
    }


def prepare(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``bert.`` prefix that task models (BertForX) put on the backbone's names."""
    return strip_prefix(theirs, "bert.", "embeddings.word_embeddings.weight")


def finish(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Nothing to join for BERT: every tensor maps one to one."""
    return theirs


def build(hf: dict[str, Any], theirs: dict[str, Tensor]) -> TransformerEncoderModel:
    """An untrained model shaped like the checkpoint; the pooler exists iff the checkpoint has one."""
    return TransformerEncoderModel(config_from_hf(hf, use_pooler="pooler.dense.weight" in theirs))


def table(model: TransformerEncoderModel) -> Table:
    """The name table for this model, one rule per tensor."""
    rules = _RULES + (_POOLER if model.pooler is not None else [])
    return Table(rules, ignore=_IGNORE).expand(model.config.n_layers)


def owns(model: nn.Module) -> bool:
    """Whether ``model`` is one this family saves."""
    return isinstance(model, TransformerEncoderModel)


def load_tokenizer(directory: Path):
    """The WordPiece tokenizer of ``vocab.txt``, or None if the directory has none."""
    vocab = directory / "vocab.txt"
    if not vocab.is_file():
        return None
    from glassformer.tokenizers.wordpiece import WordPiece

    lowercase = True
    settings = directory / "tokenizer_config.json"
    if settings.is_file():
        lowercase = bool(json.loads(settings.read_text(encoding="utf-8")).get("do_lower_case", True))
    return WordPiece.from_vocab_file(vocab, lowercase=lowercase)


def save_tokenizer(tokenizer, directory: Path) -> None:
    """Write ``vocab.txt`` and ``tokenizer_config.json`` as Hugging Face's BertTokenizer reads them."""
    with atomic_write(directory / "vocab.txt") as handle:
        handle.write("".join(token + "\n" for token in tokenizer.vocab))
    settings = {"tokenizer_class": "BertTokenizer", "do_lower_case": tokenizer.lowercase,
                "unk_token": tokenizer.unk_token, "sep_token": tokenizer.sep_token, "pad_token": tokenizer.pad_token,
                "cls_token": tokenizer.cls_token, "mask_token": tokenizer.mask_token}
    with atomic_write(directory / "tokenizer_config.json") as handle:
        json.dump(settings, handle, indent=2)
