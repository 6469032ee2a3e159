"""``from_pretrained``: a Hugging Face–format checkpoint directory (or a known name) → glassformer model + tokenizer.

The steps, each visible:

1. :func:`~glassformer.pretrained.hub.resolve` turns the argument into a local directory;
2. ``config.json``'s ``model_type`` picks the family (``bert``, ``gpt2``, ``vit``), whose module
   translates the config into ours and builds the model;
3. the weights are read without running code (:mod:`~glassformer.pretrained.loading`) and
   translated through the family's explicit name table (:mod:`~glassformer.pretrained.mapping`);
4. the tokenizer files, if any, become a glassformer tokenizer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from glassformer.nn.kernels import set_fast_path
from glassformer.precision import prepare_for_inference
from glassformer.pretrained import bert, gpt2, vit
from glassformer.pretrained.hub import resolve
from glassformer.pretrained.loading import CheckpointError, read_config, read_state_dict
from glassformer.pretrained.mapping import convert_to_ours
from glassformer.pretrained.sentence import SentenceConfig

FAMILIES: dict[str, ModuleType] = {"bert": bert, "gpt2": gpt2, "vit": vit}


@dataclass
class Pretrained:
    """A loaded checkpoint: the glassformer model, its tokenizer (if the directory has one) and where it came from."""

    model: nn.Module
    tokenizer: Any | None
    family: str
    path: Path
    hf_config: dict
    sentence: SentenceConfig | None = None  # encoders only: how to make sentence embeddings


def family_of(config: dict, source: str = "config.json") -> ModuleType:
    """The family module for a Hugging Face config, by its ``model_type``."""
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise CheckpointError(
            f"{source}: unsupported model_type {model_type!r}; glassformer reads {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]


def load_model(path_or_name: str | os.PathLike) -> nn.Module:
    """Just the model of a checkpoint, in eval mode."""
    return from_pretrained(path_or_name, tokenizer=False).model


def from_pretrained(
    path_or_name: str | os.PathLike, *, precision: str = "fp32", fast: bool = True, tokenizer: bool = True
) -> Pretrained:
    """Load a Hugging Face–format checkpoint directory, a known name (``"minilm"``) or a Hub id into glassformer.

    ``precision``: ``fp32`` (the checkpoint's numbers), ``bf16`` (weights and activations in bfloat16),
    ``int8`` (the Linear layers dynamically quantised, CPU) or ``auto`` (bf16 where the hardware computes
    it natively, else fp32); see :mod:`glassformer.precision`.
    ``fast=True`` switches the attention and feed-forward layers to fused CPU inference kernels
    (:func:`~glassformer.nn.kernels.set_fast_path`); classes, parameters, names and results stay the same.
    """
    directory = resolve(path_or_name)
    config = read_config(directory)
    family = family_of(config, str(directory / "config.json"))
    theirs = family.prepare(read_state_dict(directory))
    model = family.build(config, theirs)
    table = family.table(model)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state = convert_to_ours(table, theirs, shapes, source=str(directory))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - set(table.tied) or unexpected:
        raise CheckpointError(f"internal mapping error for {directory}: missing {missing}, unexpected {unexpected}")
    model.eval()
    prepare_for_inference(model, precision, skip=family.INT8_SKIP)
    if fast:
        set_fast_path(model)
    sentence = None
    if family is bert:
        sentence = SentenceConfig.read(directory, model.config.max_position)
    return Pretrained(
        model=model,
        tokenizer=family.load_tokenizer(directory) if tokenizer else None,
        family=config["model_type"],
        path=directory,
        hf_config=config,
        sentence=sentence,
    )


def batch_encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
    """``(input_ids, attention_mask)`` ``(B, T)`` for ``texts`` with [CLS]/[SEP], truncated to ``max_length``, padded."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length)
    return torch.as_tensor(batch.input_ids), torch.as_tensor(batch.attention_mask)
