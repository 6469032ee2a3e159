"""``export``: a model glassformer loads → the formats people deploy, each one checked where it runs.

==============================  =======================================================================
``to="hf"``                     a transformers checkpoint (:func:`~glassformer.pretrained.save.write_hf`):
                                sentiment → ``BertForSequenceClassification`` with ``id2label``,
                                language model → ``GPT2LMHeadModel``, ViT → ``ViTForImageClassification``,
                                post-norm translator → ``MarianMTModel``, encoder → ``BertModel``; with
                                the tokenizer files ``AutoTokenizer`` needs
``to="sentence-transformers"``  an encoder with ``modules.json``, pooling, normalisation and
                                ``max_seq_length``, so ``SentenceTransformer(out).encode`` gives
                                :class:`~glassformer.pretrained.SentenceEncoder`'s vectors
``to="onnx"``                   ``model.onnx`` with dynamic batch and sequence axes, tokenizer files beside it
==============================  =======================================================================

The source is anything :func:`~glassformer.pretrained.from_pretrained` loads: a glassformer saved model
(``glassformer train``'s output), a Hugging Face checkpoint, a known name. A model a format cannot
express is refused with the difference named; nothing is ever written as a different model.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassformer._files import atomic_dir, atomic_write, check_target
from glassformer.errors import UsageError, WrongModelError
from glassformer.pretrained.api import Pretrained, from_pretrained
from glassformer.pretrained.hf_tokenizer import write_tokenizer
from glassformer.pretrained.onnx_export import write_onnx
from glassformer.pretrained.save import family_for, write_hf
from glassformer.pretrained.sentence import SentenceConfig
from glassformer.pretrained.sentence_files import write_sentence_modules

# Each format and the kind of glassformer artifact its directory is (what --overwrite may replace).
FORMATS: dict[str, str] = {"hf": "hf-checkpoint", "sentence-transformers": "sentence-transformers", "onnx": "onnx"}
PREPROCESSOR_CONFIG = "preprocessor_config.json"


@dataclass
class Exported:
    """Where the export went, in which format, and what a user of it should know (empty when nothing)."""

    path: Path
    format: str
    notes: list[str] = field(default_factory=list)


def export(source: str | os.PathLike | Pretrained, to: str, out: str | os.PathLike, *, overwrite: bool = False,
           verify: bool = True, sentence: SentenceConfig | None = None) -> Exported:
    """Write the model of `source` in format `to` (``hf``, ``sentence-transformers`` or ``onnx``) into `out`.

    `out` must be new, empty, or (with `overwrite`) an earlier export of the same format. `sentence`
    overrides how an encoder makes sentence vectors (default: the source's settings).
    """
    if to not in FORMATS:
        raise UsageError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    check_target(out, FORMATS[to], overwrite=overwrite)  # refuse before loading anything
    loaded = source if isinstance(source, Pretrained) else from_pretrained(source, verify=verify)
    writer = {"hf": _to_hf, "sentence-transformers": _to_sentence_transformers, "onnx": _to_onnx}[to]
    notes = writer(loaded, None, sentence)  # checks only: every refusal comes before the directory exists
    with atomic_dir(out, FORMATS[to], overwrite=overwrite) as tmp:
        writer(loaded, tmp, sentence)
    return Exported(Path(out), to, notes)


def _max_length(loaded: Pretrained) -> int:
    """The tokenizer's length limit: the saved task's ``max_length``, else the model's positions."""
    return int(loaded.extra.get("max_length") or loaded.model.config.max_position)


def _to_hf(loaded: Pretrained, tmp: Path | None, sentence: SentenceConfig | None) -> list[str]:
    model = loaded.model
    family_for(model).hf_config(model, loaded.label_names)  # refuses what transformers' class cannot express
    notes = []
    if (loaded.extra.get("preset") or {}).get("mirror_average"):
        notes.append("glassformer averages each image's probabilities with its mirror image's (this preset's "
                     "mirror_average); transformers scores the image as given, so a few predictions can differ")
    # A language model glassformer trained read <|endoftext|> before every work.
    if loaded.saved and type(loaded.model).__name__ == "DecoderLM" \
            and "<|endoftext|>" in getattr(loaded.tokenizer, "special_tokens", {}):
        notes.append("glassformer's generator starts every text with <|endoftext|> (as in training); put it "
                     "before the prompt for transformers' generate to continue the same way")
    if tmp is None:
        return notes
    limit = _max_length(loaded) if loaded.tokenizer is not None else None
    write_hf(tmp, model, tokenizer=loaded.tokenizer, label_names=loaded.label_names, max_length=limit)
    _write_preprocessor(tmp, loaded)
    if loaded.sentence_modules and loaded.sentence is not None:
        write_sentence_modules(tmp, loaded.sentence, model.config.d_model)
    return notes


def _write_preprocessor(tmp: Path, loaded: Pretrained) -> None:
    """An image model's ``preprocessor_config.json``: the source's, or the ViT task's pixel scaling."""
    if type(loaded.model).__name__ != "VisionTransformer":
        return
    source = loaded.path / PREPROCESSOR_CONFIG
    if not loaded.saved and source.is_file():
        shutil.copyfile(source, tmp / PREPROCESSOR_CONFIG)
        return
    # The ViT task saves its pixel scaling beside the model (extra: image_mean, image_std).
    mean, std = loaded.extra.get("image_mean"), loaded.extra.get("image_std")
    if mean is None or std is None:
        return
    size = loaded.model.config.image_size
    channels = loaded.model.config.in_channels
    # ViTImageProcessor: resize, x / 255, then (x - mean) / std per channel: the ViT task's normalise().
    settings = {"image_processor_type": "ViTImageProcessor", "do_resize": True,
                "size": {"height": size, "width": size}, "resample": 2, "do_rescale": True,
                "rescale_factor": 1 / 255, "do_normalize": True,
                "image_mean": list(mean) * (channels // len(mean)), "image_std": list(std) * (channels // len(std))}
    with atomic_write(tmp / PREPROCESSOR_CONFIG) as handle:
        json.dump(settings, handle, indent=2)
        handle.write("\n")


def sentence_settings(loaded: Pretrained, sentence: SentenceConfig | None) -> SentenceConfig:
    """How an encoder makes sentence vectors: `sentence`, else the source's, else from the classifier it serves."""
    if sentence is not None:
        return sentence
    if loaded.sentence is not None:
        return loaded.sentence
    config = loaded.model.config
    # A classifier's backbone: its own pooling of the token states (the pooler belongs to the classifier).
    return SentenceConfig(max_seq_length=min(_max_length(loaded), config.max_position),
                          pooling="mean" if config.pooling == "mean" else "cls")


def _to_sentence_transformers(loaded: Pretrained, tmp: Path | None, sentence: SentenceConfig | None) -> list[str]:
    name = type(loaded.model).__name__
    if name not in ("TransformerEncoderModel", "EncoderClassifier"):
        raise WrongModelError(f"sentence-transformers models are encoders (BERT family); this is a {name}")
    if loaded.tokenizer is None:
        raise WrongModelError(f"{loaded.path} has no tokenizer; a sentence-transformers model needs one")
    encoder = loaded.model if name == "TransformerEncoderModel" else loaded.model.encoder
    settings = sentence_settings(loaded, sentence)
    notes = []
    if name == "EncoderClassifier":
        notes.append(f"the sentence vector is the classifier's encoder output, {settings.pooling}-pooled and "
                     f"{'L2-normalised' if settings.normalize else 'not normalised'}; the classification head "
                     f"is not part of it (export --to hf for the classifier)")
    if tmp is not None:
        write_hf(tmp, encoder, tokenizer=loaded.tokenizer, max_length=settings.max_seq_length)
        write_sentence_modules(tmp, settings, encoder.config.d_model)
    return notes


def _to_onnx(loaded: Pretrained, tmp: Path | None, sentence: SentenceConfig | None) -> list[str]:
    name = type(loaded.model).__name__
    if name == "MarkovChain":
        raise WrongModelError("a Markov chain is a table of counts, not a network; ONNX holds neural networks")
    if tmp is None:
        return []
    info: dict[str, Any] = {"task": loaded.task, "label_names": loaded.label_names}
    if loaded.tokenizer is not None:
        info["max_length"] = _max_length(loaded)
        write_tokenizer(loaded.tokenizer, tmp, _max_length(loaded))
    settings = sentence_settings(loaded, sentence) if name == "TransformerEncoderModel" else None
    if settings is not None:
        info["sentence"] = {"pooling": settings.pooling, "normalize": settings.normalize,
                            "max_seq_length": settings.max_seq_length}
    write_onnx(tmp, loaded.model, sentence=settings, info=info)
    return []
