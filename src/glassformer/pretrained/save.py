"""``save_pretrained``: a glassformer model → a Hugging Face–format directory that transformers loads as it is.

The same name tables that load a checkpoint are run backwards, so transformers' Auto classes read what
glassformer writes: ``config.json`` (with ``architectures``, and ``id2label``/``label2id`` for a
classifier), ``model.safetensors`` and, with a tokenizer, the files of
:mod:`~glassformer.pretrained.hf_tokenizer`. A checkpoint that came with sentence-transformers modules
keeps them (:mod:`~glassformer.pretrained.sentence_files`). The directory is written as a whole under a
temporary name and renamed into place, with a manifest of its files' digests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save as safetensors_bytes
from torch import nn

from glassformer._files import atomic_dir, atomic_write
from glassformer.errors import WrongModelError
from glassformer.nn.quantize import Int8Linear
from glassformer.pretrained.hf_tokenizer import END_OF_TEXT, write_tokenizer
from glassformer.pretrained.loading import SAFETENSORS
from glassformer.pretrained.mapping import convert_to_theirs

KIND = "hf-checkpoint"


def family_for(model: Any):
    """The family module that writes `model`; a model transformers has no class for is refused, saying why."""
    from glassformer.pretrained.api import FAMILIES

    family = next((f for f in FAMILIES.values() if f.owns(model)), None)
    if family is None:
        raise WrongModelError(f"the Hugging Face format holds {', '.join(sorted(FAMILIES))} models (BERT encoders "
                              f"and classifiers, GPT-2 language models, Marian translators, ViT image "
                              f"classifiers), got {type(model).__name__}")
    if any(isinstance(m, Int8Linear) for m in model.modules()):
        raise WrongModelError("this model holds int8-quantised layers, which the Hugging Face format does not "
                              "store; save the float model before quantising")
    return family


def write_hf(directory: Path, model: nn.Module, *, tokenizer: Any | None = None,
             label_names: list[str] | None = None, max_length: int | None = None) -> None:
    """Write ``config.json``, ``model.safetensors`` and the tokenizer files of `model` into `directory`.

    `max_length` is the tokenizer's ``model_max_length`` (default: the model's positions).
    """
    family = family_for(model)
    config = family.hf_config(model, label_names)
    config["torch_dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")  # as loaded: fp32 or bf16
    specials = getattr(tokenizer, "special_tokens", {})
    if family.MODEL_TYPE == "gpt2" and END_OF_TEXT in specials:
        config["bos_token_id"] = config["eos_token_id"] = specials[END_OF_TEXT]
    if tokenizer is not None and tokenizer.pad_token is not None:
        config["pad_token_id"] = specials[tokenizer.pad_token]
    if family.MODEL_TYPE == "marian" and tokenizer is not None:
        tokenizer = family.source_tokenizer(tokenizer, model.config)
    theirs = family.finish(convert_to_theirs(family.table(model), dict(model.state_dict())))
    blob = safetensors_bytes({k: v.contiguous() for k, v in theirs.items()}, metadata={"format": "pt"})
    with atomic_write(directory / "config.json") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    (directory / SAFETENSORS).write_bytes(blob)
    if tokenizer is not None:
        write_tokenizer(tokenizer, directory, max_length or model.config.max_position)


def save_pretrained(model: Any, directory: str | os.PathLike, *, tokenizer: Any | None = None,
                    label_names: list[str] | None = None, overwrite: bool = False) -> Path:
    """Write `model` as a Hugging Face checkpoint into `directory`.

    `model` is a glassformer model (BERT encoder or classifier, GPT-2 style LM, ViT) or what
    :func:`~glassformer.pretrained.from_pretrained` returned, whose tokenizer, label names and
    sentence-transformers modules come along. The whole directory is built under a temporary name and
    renamed into place; ``directory`` must be new, empty, or (with ``overwrite``) a checkpoint glassformer
    wrote before.
    """
    from glassformer.pretrained.api import Pretrained
    from glassformer.pretrained.sentence_files import write_sentence_modules

    sentence = None
    if isinstance(model, Pretrained):
        tokenizer = model.tokenizer if tokenizer is None else tokenizer
        label_names = model.label_names if label_names is None else label_names
        sentence = model.sentence if model.sentence_modules else None
        model = model.model
    family_for(model)  # refuse before anything is written
    with atomic_dir(directory, KIND, overwrite=overwrite) as tmp:
        write_hf(tmp, model, tokenizer=tokenizer, label_names=label_names,
                 max_length=sentence.max_seq_length if sentence else None)
        if sentence is not None:
            write_sentence_modules(tmp, sentence, model.config.d_model)
    return Path(directory)
