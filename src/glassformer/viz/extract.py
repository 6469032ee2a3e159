"""From a model and a text (or an image) to the attention weights the views draw.

These helpers run a model once with ``output_attentions=True`` on the inputs its task's predictor
prepares, and label the weights with readable token strings; the CLI and the studio both call them,
so neither contains model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from glassformer._torch import evaluating
from glassformer.models import DecoderLM, Seq2SeqTransformer
from glassformer.viz.head_view import AttentionMaps, seq2seq_maps


@dataclass
class TextAttention:
    """A text's attention maps, the token ids the model read, and whether the text was cut to fit the model."""

    maps: list[AttentionMaps]
    token_ids: list[int]
    truncated: bool = False
    target_ids: list[int] = field(default_factory=list)  # encoder–decoder models: the generated target


def token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Readable labels for token ids: byte-level pieces decoded, others by name, whitespace drawn (␣ ↵ ⇥), unknown ids as ``<id N>``."""
    specials = {index: token for token, index in getattr(tokenizer, "special_tokens", {}).items()}
    decode_bytes = getattr(tokenizer, "decode_bytes", None)
    labels = []
    for index in ids:
        index = int(index)
        if index in specials:
            labels.append(specials[index])
        elif decode_bytes is not None:
            labels.append(_visible(decode_bytes([index]).decode("utf-8", errors="replace")))
        else:
            try:
                labels.append(_visible(str(tokenizer.id_to_token(index))))
            except (ValueError, IndexError, KeyError):
                labels.append(f"<id {index}>")  # an id the tokenizer lacks must not hide the rest of the view
    return labels


def _visible(piece: str) -> str:
    """A token's text with its whitespace drawn (a space as ␣, a newline as ↵, a tab as ⇥), so no label is blank."""
    return piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def text_attention(predictor: Any, text: str, *, target_tokenizer: Any | None = None,
                   max_new_tokens: int | None = None) -> TextAttention:
    """Run a predictor's model on `text`, read as the predictor reads it, and return its attention maps.

    `predictor` is a task's predictor (or :func:`glassformer.tasks.pipeline.predictor_for` of a bare
    model); text that spells a special token is read as ordinary characters. Encoders (BERT-style,
    classifiers) and decoder LMs give one map of self-attention. An encoder–decoder model first
    translates greedily (at most `max_new_tokens` tokens, default the translator's own limit), then is
    run on the source and its own output with teacher forcing, giving encoder, decoder and cross-attention maps.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty; give at least one word")
    model, tokenizer = predictor.model, predictor.tokenizer
    inputs = predictor.prepare([text], special_tokens="text")
    ids = inputs.ids[0]
    if not ids:
        raise ValueError(f"the tokenizer turned {text!r} into no tokens")
    truncated = bool(inputs.truncated and inputs.truncated[0])
    with evaluating(model):
        if isinstance(model, Seq2SeqTransformer):
            target = predictor.greedy_target(inputs)
            if max_new_tokens is not None:
                target = target[:, : max_new_tokens + 1]  # greedy decoding: fewer steps give this prefix
            target = target[:, : model.config.max_position]
            output = model(inputs.tensors["src_ids"], target, output_attentions=True)
            target_ids = target[0].tolist()
            maps = seq2seq_maps(output, token_labels(tokenizer, ids),
                                token_labels(target_tokenizer or tokenizer, target_ids))
            return TextAttention(maps, ids, truncated, target_ids)
        output = model(**inputs.tensors, output_attentions=True)
    name = "decoder self-attention (causal)" if isinstance(model, DecoderLM) else "encoder self-attention"
    maps = AttentionMaps.from_attentions(output.attentions, token_labels(tokenizer, ids), name=name)
    return TextAttention([maps], ids, truncated)
