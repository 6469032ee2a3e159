"""From a model and a text (or an image) to the attention weights the views draw.

These helpers run a model once with ``output_attentions=True`` and label the weights with
readable token strings; the CLI and the studio both call them, so neither contains model code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from glassformer._torch import evaluating
from glassformer.models import DecoderLM, EncoderClassifier, Seq2SeqTransformer, TransformerEncoderModel
from glassformer.viz.head_view import AttentionMaps, seq2seq_maps


@dataclass
class TextAttention:
    """A text's attention maps, the token ids the model read, and whether the text was cut to fit the model."""

    maps: list[AttentionMaps]
    token_ids: list[int]
    truncated: bool = False
    target_ids: list[int] = field(default_factory=list)  # encoder–decoder models: the generated target


@dataclass
class LoadedModel:
    """A model ready to be looked at, with its tokenizer (if any) and what the directory says about its inputs."""

    model: nn.Module
    tokenizer: Any | None
    source: str
    extra: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] | None = None


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


def encode_for(model: nn.Module, tokenizer: Any, text: str, max_length: int) -> tuple[list[int], bool]:
    """The ids a model of this kind reads for `text`, cut to `max_length`, and whether anything was cut.

    Encoders get their tokenizer's post-processor tokens (``[CLS] … [SEP]``); decoders read the plain ids.
    Text that spells a special token is read as ordinary characters.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty; give at least one word")
    encoder = isinstance(model, (EncoderClassifier, TransformerEncoderModel))
    encoding = tokenizer.encode_plus(text, add_special_tokens=encoder, max_length=max_length, disallowed_special=())
    return encoding.ids, encoding.num_truncated > 0


def text_attention(
    model: nn.Module,
    tokenizer: Any,
    text: str,
    *,
    max_length: int | None = None,
    target_tokenizer: Any | None = None,
    max_new_tokens: int = 32,
) -> TextAttention:
    """Run `model` on `text` and return its attention maps, labelled with `tokenizer`'s tokens.

    Encoders (BERT-style, classifiers) and decoder LMs give one map of self-attention. An
    encoder–decoder model first translates greedily, then is run on the source and its own
    output with teacher forcing, giving encoder, decoder and cross-attention maps.
    """
    config = model.config
    limit = min(max_length or config.max_position, config.max_position)
    ids, truncated = encode_for(model, tokenizer, text, limit)
    if not ids:
        raise ValueError(f"the tokenizer turned {text!r} into no tokens")
    device = next(model.parameters()).device
    source = torch.tensor([ids], device=device)
    with evaluating(model):
        if isinstance(model, Seq2SeqTransformer):
            target = model.greedy_decode(source, max_len=min(max_new_tokens, config.max_position - 1))
            output = model(source, target, output_attentions=True)
            target_ids = target[0].tolist()
            maps = seq2seq_maps(output, token_labels(tokenizer, ids),
                                token_labels(target_tokenizer or tokenizer, target_ids))
            return TextAttention(maps, ids, truncated, target_ids)
        output = model(source, output_attentions=True)
    name = "decoder self-attention (causal)" if isinstance(model, DecoderLM) else "encoder self-attention"
    maps = AttentionMaps.from_attentions(output.attentions, token_labels(tokenizer, ids), name=name)
    return TextAttention([maps], ids, truncated)


def _is_glassformer_dir(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == "glassformer-model"
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def load_model(name_or_dir: str | os.PathLike) -> LoadedModel:
    """A glassformer saved-model directory, or a Hugging Face–format checkpoint directory or known name (``minilm``).

    ``extra`` carries what the directory says about inputs (e.g. ``image_mean``/``image_std``
    from a ViT's ``preprocessor_config.json`` or a saved model's ``extra``).
    """
    path = Path(name_or_dir)
    if path.is_dir() and _is_glassformer_dir(path):
        from glassformer.training.saved import load_saved

        saved = load_saved(path)
        return LoadedModel(saved.model, saved.tokenizer, str(path), dict(saved.config.get("extra") or {}),
                           saved.label_names)
    from glassformer.pretrained import from_pretrained

    loaded = from_pretrained(name_or_dir)
    extra: dict[str, Any] = {}
    preprocessor = Path(loaded.path) / "preprocessor_config.json"
    if preprocessor.is_file():
        settings = json.loads(preprocessor.read_text(encoding="utf-8"))
        if settings.get("do_normalize", True):
            extra.update({k: settings[k] for k in ("image_mean", "image_std") if k in settings})
    id2label = loaded.hf_config.get("id2label") or {}
    labels = [str(id2label.get(str(i), i)) for i in range(len(id2label))] or None
    return LoadedModel(loaded.model, loaded.tokenizer, str(loaded.path), extra, labels)
