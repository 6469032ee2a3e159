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

A ``BertForSequenceClassification`` checkpoint puts ``bert.`` before every backbone name and adds
``classifier.*``; it becomes an :class:`EncoderClassifier` (``encoder.`` before our backbone names,
``classifier.*``) that reads [CLS] through the pooler, as Hugging Face's does. Its ``id2label`` gives
the label names. All weights keep their layout (both sides store Linear weights as ``(out, in)``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from glassformer.errors import WrongModelError
from glassformer.models.encoder import EncoderClassifier, EncoderConfig, TransformerEncoderModel
from glassformer.pretrained.loading import CheckpointError, label_fields
from glassformer.pretrained.mapping import Rule, Table, copy, strip_prefix

MODEL_TYPE = "bert"
CLASSIFIER = "BertForSequenceClassification"
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
_CLASSIFIER = [copy("classifier.weight", "classifier.weight"), copy("classifier.bias", "classifier.bias")]

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


def hf_config(model: nn.Module, label_names: list[str] | None = None) -> dict[str, Any]:
    """``config.json`` for `model`: a BertModel, or a BertForSequenceClassification with its labels.

    A classifier that does not read [CLS] through the pooler is refused: transformers' class always
    does, so it would predict something else.
    """
    if isinstance(model, TransformerEncoderModel):
        return config_to_hf(model.config)
    config = model.config
    if config.pooling != "cls":
        raise WrongModelError(
            f"this classifier pools the mean of the token states (pooling={config.pooling!r}); transformers' "
            f"{CLASSIFIER} reads the [CLS] state through the pooler, so it would predict differently. Train with "
            f"--pooling cls (pooling='cls') to export to transformers, or export --to onnx, which keeps the model "
            f"as it is")
    if model.encoder.pooler is None:
        raise WrongModelError(
            f"this classifier reads the raw [CLS] state (pooling='cls' without a pooler); transformers' "
            f"{CLASSIFIER} puts the pooler tanh(W h + b) in between, so it would predict differently. Train with "
            f"use_pooler=True, or export --to onnx")
    names = label_names or [f"LABEL_{i}" for i in range(config.num_labels)]
    return {**config_to_hf(config), "architectures": [CLASSIFIER], **label_fields(names)}


def prepare(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``bert.`` prefix that task models (BertForX) put on the backbone's names."""
    return strip_prefix(theirs, "bert.", "embeddings.word_embeddings.weight")


def finish(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """A classifier's backbone names get the ``bert.`` prefix of BertForSequenceClassification; a backbone's none."""
    if "classifier.weight" not in theirs:
        return theirs
    return {(k if k.startswith("classifier.") else f"bert.{k}"): v for k, v in theirs.items()}


def build(hf: dict[str, Any], theirs: dict[str, Tensor]) -> TransformerEncoderModel | EncoderClassifier:
    """An untrained model shaped like the checkpoint: the backbone (its pooler iff the checkpoint has one) or,
    for a BertForSequenceClassification, the classifier."""
    has_pooler = "pooler.dense.weight" in theirs
    if "classifier.weight" not in theirs:
        return TransformerEncoderModel(config_from_hf(hf, use_pooler=has_pooler))
    architectures = hf.get("architectures") or []
    if CLASSIFIER not in architectures:
        raise CheckpointError(f"this BERT checkpoint has a classifier.* head for {architectures or 'no named'} "
                              f"architecture; glassformer reads the head of {CLASSIFIER} only")
    problem = hf.get("problem_type")
    if problem not in (None, "single_label_classification") or theirs["classifier.weight"].shape[0] < 2:
        raise CheckpointError(f"this {CLASSIFIER} is set up for {problem or 'regression (one label)'}; glassformer's "
                              f"classifier picks one of two or more labels with a softmax")
    if not has_pooler:
        raise CheckpointError(f"this {CLASSIFIER} checkpoint has no pooler.dense.* weights, which its head reads")
    config = replace(config_from_hf(hf, use_pooler=True), pooling="cls",
                     num_labels=int(theirs["classifier.weight"].shape[0]))
    return EncoderClassifier(config)


def table(model: TransformerEncoderModel | EncoderClassifier) -> Table:
    """The name table for this model, one rule per tensor."""
    if isinstance(model, EncoderClassifier):
        backbone = [Rule(f"encoder.{r.ours}", r.theirs, r.load, r.save, r.note) for r in _RULES + _POOLER]
        return Table(backbone + _CLASSIFIER, ignore=_IGNORE).expand(model.config.n_layers)
    rules = _RULES + (_POOLER if model.pooler is not None else [])
    return Table(rules, ignore=_IGNORE).expand(model.config.n_layers)


def owns(model: nn.Module) -> bool:
    """Whether ``model`` is one this family saves."""
    return isinstance(model, (TransformerEncoderModel, EncoderClassifier))


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

