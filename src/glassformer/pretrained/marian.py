"""Post-norm encoder–decoder translators ↔ Hugging Face ``MarianMTModel``.

Marian is the original Transformer as glassformer's :class:`Seq2SeqTransformer` builds it with
``norm_first=False``: one embedding shared by both stacks and the output (scaled by √d_model), sinusoidal
positions, LayerNorm after each sublayer, no LayerNorm per stack. The names (``model.`` prefix):

=============================================  ===============================================
``shared.weight``                              ``embedding.weight`` (and the tied ``output_proj``)
``encoder.layers.i.self_attn.{q,k,v,out}_proj``  ``encoder.layers.i.self_attn.{q,k,v,out}_proj``
``encoder.layers.i.self_attn_layer_norm``      ``encoder.layers.i.norm1``
``encoder.layers.i.fc1``, ``fc2``              ``encoder.layers.i.ffn.fc1``, ``fc2``
``encoder.layers.i.final_layer_norm``          ``encoder.layers.i.norm2``
``decoder.layers.i.self_attn.*``               ``decoder.layers.i.self_attn.*`` (``norm1``)
``decoder.layers.i.encoder_attn.*``            ``decoder.layers.i.cross_attn.*`` (``norm2``)
``decoder.layers.i.fc1``, ``fc2``              ``decoder.layers.i.ffn.fc1``, ``fc2`` (``norm3``)
=============================================  ===============================================

One difference is in the positions, not the names: glassformer's table interleaves each frequency's sine
and cosine (columns 2i, 2i+1), Marian's puts every sine first and every cosine after (columns i and
d/2 + i). Marian computes its table itself (it never stores it), so the whole model is re-indexed
along d_model instead: every vector of the residual stream has its entries permuted, which each
embedding column, each weight reading or writing the stream, and each LayerNorm follows. Nothing
inside an attention head or the feed-forward hidden layer moves, so the model computes exactly the
same function, in Marian's coordinates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from glassformer.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from glassformer.pretrained.loading import CheckpointError
from glassformer.pretrained.mapping import Rule, Table

MODEL_TYPE = "marian"
INT8_SKIP: tuple[str, ...] = ("output_proj",)
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh"}
# Marian builds its LayerNorms with torch's default eps.
MARIAN_LAYER_NORM_EPS = 1e-5
# What Marian checkpoints hold besides the weights: its own position tables, the tied copies, the zero bias.
_IGNORE = [r"model\.(encoder|decoder)\.embed_positions\.weight", r"model\.(encoder|decoder)\.embed_tokens\.weight",
           r"lm_head\.weight", r"final_logits_bias"]


def to_marian_order(d_model: int) -> Tensor:
    """Index p with marian_vector = our_vector[p]: the sines (our even columns), then the cosines (odd)."""
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


def _rules(config: Seq2SeqConfig) -> list[Rule]:
    """One rule per tensor; `columns`/`rows` re-index along d_model where a weight reads/writes the residual stream."""
    order = to_marian_order(config.d_model)
    back = torch.argsort(order)

    def reindex(axis: int) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
        return (lambda t: t.index_select(axis, back).contiguous()), (lambda t: t.index_select(axis, order).contiguous())

    reads, writes, stream = reindex(1), reindex(0), reindex(0)  # (out, in) weights; (D,) vectors use axis 0

    def rule(ours: str, theirs: str, how: tuple | None = None, note: str = "") -> Rule:
        load, save = how if how is not None else (lambda t: t, lambda t: t)
        return Rule(ours, f"model.{theirs}", load, save, note)

    rules = [rule("embedding.weight", "shared.weight", reads, "re-indexing d_model (sines first)")]
    for stack, count in (("encoder", config.n_encoder_layers), ("decoder", config.n_decoder_layers)):
        attentions = [("self_attn", "self_attn")] + ([("cross_attn", "encoder_attn")] if stack == "decoder" else [])
        norms = ["self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"] if stack == "decoder" \
            else ["self_attn_layer_norm", "final_layer_norm"]
        for i in range(count):
            ours, theirs = f"{stack}.layers.{i}", f"{stack}.layers.{i}"
            for mine, marian in attentions:
                for p in ("q", "k", "v"):
                    rules += [rule(f"{ours}.{mine}.{p}_proj.weight", f"{theirs}.{marian}.{p}_proj.weight", reads),
                              rule(f"{ours}.{mine}.{p}_proj.bias", f"{theirs}.{marian}.{p}_proj.bias")]
                rules += [rule(f"{ours}.{mine}.out_proj.weight", f"{theirs}.{marian}.out_proj.weight", writes),
                          rule(f"{ours}.{mine}.out_proj.bias", f"{theirs}.{marian}.out_proj.bias", stream)]
            rules += [rule(f"{ours}.ffn.fc1.weight", f"{theirs}.fc1.weight", reads),
                      rule(f"{ours}.ffn.fc1.bias", f"{theirs}.fc1.bias"),
                      rule(f"{ours}.ffn.fc2.weight", f"{theirs}.fc2.weight", writes),
                      rule(f"{ours}.ffn.fc2.bias", f"{theirs}.fc2.bias", stream)]
            for number, norm in enumerate(norms, start=1):
                rules += [rule(f"{ours}.norm{number}.{w}", f"{theirs}.{norm}.{w}", stream) for w in ("weight", "bias")]
    return rules


def differences(config: Seq2SeqConfig) -> list[str]:
    """Why a glassformer translator is not a MarianMTModel (empty when it is one)."""
    found = []
    if config.norm_first:
        found.append("it normalises before each sublayer and after each stack (pre-norm, norm_first=True); "
                     "MarianMTModel normalises after each sublayer (post-norm)")
    if not config.tie_embeddings:
        found.append("its output projection is not tied to the embedding; MarianMTModel's is")
    if config.layer_norm_eps != MARIAN_LAYER_NORM_EPS:
        found.append(f"its LayerNorms use eps={config.layer_norm_eps}; MarianMTModel's use {MARIAN_LAYER_NORM_EPS}")
    if config.d_model % 2:
        found.append(f"d_model={config.d_model} is odd; Marian's sinusoidal table pairs its columns")
    return found


def config_to_hf(config: Seq2SeqConfig) -> dict[str, Any]:
    """The Hugging Face ``config.json`` fields for a post-norm translator (refused, naming why, otherwise)."""
    from glassformer.errors import WrongModelError

    problems = differences(config)
    if problems:
        raise WrongModelError("this translation model cannot be a transformers MarianMTModel: " + "; ".join(problems)
                              + ". Export it --to onnx, which keeps the model as it is")
    act = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}[config.activation]
    return {
        "architectures": ["MarianMTModel"], "model_type": MODEL_TYPE, "vocab_size": config.vocab_size,
        "decoder_vocab_size": config.vocab_size, "max_position_embeddings": config.max_position,
        "d_model": config.d_model, "encoder_layers": config.n_encoder_layers,
        "decoder_layers": config.n_decoder_layers, "encoder_attention_heads": config.n_heads,
        "decoder_attention_heads": config.n_heads, "encoder_ffn_dim": config.d_ff, "decoder_ffn_dim": config.d_ff,
        "activation_function": act, "dropout": config.dropout,
        "attention_dropout": config.dropout if config.attn_dropout is None else config.attn_dropout,
        "activation_dropout": config.dropout if config.ffn_dropout is None else config.ffn_dropout,
        "scale_embedding": True, "share_encoder_decoder_embeddings": True,
        "tie_word_embeddings": True, "pad_token_id": config.pad_token_id, "eos_token_id": config.eos_token_id,
        "forced_eos_token_id": config.eos_token_id, "decoder_start_token_id": config.bos_token_id,
        "bos_token_id": config.bos_token_id, "is_encoder_decoder": True,
    }


def hf_config(model: Seq2SeqTransformer, label_names: list[str] | None = None) -> dict[str, Any]:
    """``config.json`` for `model`: a MarianMTModel (a translator has no label names)."""
    return config_to_hf(model.config)


def config_from_hf(hf: dict[str, Any]) -> Seq2SeqConfig:
    """Our Seq2SeqConfig for a Marian ``config.json``; what glassformer's model cannot do is an error."""
    problems = []
    if not hf.get("scale_embedding", False):
        problems.append("scale_embedding=false (glassformer scales the embedding by √d_model)")
    if not hf.get("share_encoder_decoder_embeddings", True) or hf.get("tie_word_embeddings") is False:
        problems.append("separate source, target or output embeddings (glassformer shares one)")
    if hf.get("encoder_attention_heads") != hf.get("decoder_attention_heads") or \
            hf.get("encoder_ffn_dim") != hf.get("decoder_ffn_dim"):
        problems.append("encoder and decoder of different widths")
    act = hf.get("activation_function", "gelu")
    if act not in _ACTIVATIONS:
        problems.append(f"activation_function={act!r} (supported: {', '.join(_ACTIVATIONS)})")
    if problems:
        raise CheckpointError("unsupported Marian configuration: " + "; ".join(problems))
    try:
        return Seq2SeqConfig(vocab_size=hf["vocab_size"], max_position=hf["max_position_embeddings"],
                             d_model=hf["d_model"], n_heads=hf["encoder_attention_heads"],
                             n_encoder_layers=hf["encoder_layers"], n_decoder_layers=hf["decoder_layers"],
                             d_ff=hf["encoder_ffn_dim"], dropout=hf.get("dropout", 0.1),
                             attn_dropout=hf.get("attention_dropout"), ffn_dropout=hf.get("activation_dropout"),
                             activation=_ACTIVATIONS[act],
                             layer_norm_eps=MARIAN_LAYER_NORM_EPS, norm_first=False, tie_embeddings=True,
                             pad_token_id=hf["pad_token_id"], bos_token_id=hf["decoder_start_token_id"],
                             eos_token_id=hf["eos_token_id"])
    except KeyError as exc:
        raise CheckpointError(f"Marian config.json lacks the field {exc.args[0]!r}") from None


def prepare(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Refuse an output bias glassformer's model does not have (Marian's ``final_logits_bias`` must be zero)."""
    bias = theirs.get("final_logits_bias")
    if bias is not None and bool(bias.any()):
        raise CheckpointError("this Marian checkpoint adds a non-zero final_logits_bias to its logits; glassformer's "
                              "translator has no output bias")
    return theirs


def finish(theirs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Nothing to add: Marian computes its position table itself and its output bias is zero."""
    return theirs


def build(hf: dict[str, Any], theirs: dict[str, Tensor]) -> Seq2SeqTransformer:
    """An untrained translator shaped like the checkpoint."""
    return Seq2SeqTransformer(config_from_hf(hf))


def table(model: Seq2SeqTransformer) -> Table:
    """The name table for this model, one rule per tensor."""
    return Table(_rules(model.config), ignore=_IGNORE, tied=["output_proj.weight"])


def owns(model: nn.Module) -> bool:
    """Whether ``model`` is one this family saves."""
    return isinstance(model, Seq2SeqTransformer)


def source_tokenizer(tokenizer: Any, config: Seq2SeqConfig) -> Any:
    """A copy of `tokenizer` that ends every text with the end-of-sentence token and pads with the model's pad token.

    glassformer's translator appends the end token and pads by the model's ids itself; transformers'
    tokenizer needs them as its template and its ``pad_token``.
    """
    import copy

    from glassformer.tokenizers import Template

    text_of = {index: text for text, index in tokenizer.special_tokens.items()}
    marked = copy.copy(tokenizer)
    marked.post_processor = Template(f"$A {text_of[config.eos_token_id]}")
    marked.pad_token = text_of[config.pad_token_id]
    return marked


def load_tokenizer(directory: Path) -> None:
    """Marian's own tokenizers are SentencePiece files glassformer does not read; ``tokenizer.json`` is read instead."""
    return None
