"""``from_pretrained``: one front door from a directory (or a known name) to a glassformer model + tokenizer.

The steps, each visible:

1. :func:`~glassformer.pretrained.hub.resolve` turns the argument into a local directory;
2. a glassformer saved-model directory (``glassformer train``'s output) is loaded by
   :func:`~glassformer.training.saved.load_saved`, with its label names, task and tokenizer;
3. otherwise it is a Hugging Face–format checkpoint: ``config.json``'s ``model_type`` picks the family
   (``bert``, ``gpt2``, ``marian``, ``vit``), whose module translates the config into ours and builds the
   model, with the task head the checkpoint has (``BertForSequenceClassification``, ``GPT2LMHeadModel``,
   ``MarianMTModel``, ``ViTForImageClassification``) and the label names of its ``id2label``;
4. the weights are read without running code (:mod:`~glassformer.pretrained.loading`) and
   translated through the family's explicit name table (:mod:`~glassformer.pretrained.mapping`);
5. the tokenizer files, if any, become a glassformer tokenizer (:mod:`~glassformer.pretrained.hf_tokenizer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from glassformer._files import artifact_kind
from glassformer.precision import prepare_for_inference
from glassformer.pretrained import bert, gpt2, marian, vit
from glassformer.pretrained.hf_tokenizer import read_tokenizer
from glassformer.pretrained.hub import resolve
from glassformer.pretrained.loading import CheckpointError, label_names, read_config, read_state_dict
from glassformer.pretrained.mapping import convert_to_ours
from glassformer.pretrained.sentence import SentenceConfig

FAMILIES: dict[str, ModuleType] = {"bert": bert, "gpt2": gpt2, "marian": marian, "vit": vit}
# The family a glassformer model class belongs to (the Hugging Face one it exports to, where there is one).
FAMILY_OF_CLASS = {"TransformerEncoderModel": "bert", "EncoderClassifier": "bert", "DecoderLM": "gpt2",
                   "VisionTransformer": "vit", "Seq2SeqTransformer": "marian", "MarkovChain": "markov"}


@dataclass
class Pretrained:
    """A loaded checkpoint: the glassformer model, its tokenizer (if the directory has one) and where it came from."""

    model: nn.Module
    tokenizer: Any | None
    family: str
    path: Path
    hf_config: dict  # a Hugging Face checkpoint's config.json; {} for a glassformer saved model
    sentence: SentenceConfig | None = None  # encoders only: how to make sentence embeddings
    label_names: list[str] | None = None  # classifiers: the name of each class, in logit order
    task: str | None = None  # the task a saved model records; None for a checkpoint (glassformer.tasks.task_of decides)
    extra: dict[str, Any] = field(default_factory=dict)  # a saved model's task settings (max_length, preset ...)
    sentence_modules: bool = False  # the directory holds sentence-transformers modules (modules.json)

    @property
    def saved(self) -> bool:
        """Whether this came from a glassformer saved-model directory (not a Hugging Face checkpoint)."""
        return not self.hf_config


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
    path_or_name: str | os.PathLike, *, precision: str = "fp32", tokenizer: bool = True,
    verify: bool = True, device: str | torch.device = "cpu",
) -> Pretrained:
    """Load a glassformer saved model, a Hugging Face–format checkpoint, a known name (``"minilm"``) or a Hub id.

    ``precision``: ``fp32`` (the checkpoint's numbers), ``bf16`` (weights and activations in bfloat16),
    ``int8`` (the Linear layers dynamically quantised, CPU) or ``auto`` (bf16 where the hardware computes
    it natively, else fp32); see :mod:`glassformer.precision`.
    Fused CPU inference kernels need no step here: the attention and feed-forward layers decided to use them
    when they were built (:func:`~glassformer.nn.kernels.use_fused_kernels`).
    ``verify`` checks a saved model's files against their manifest's sha256 digests. The model is put on
    ``device`` before its precision is decided. Every task's ``Predictor.load`` comes through here.
    """
    directory = resolve(path_or_name)
    if artifact_kind(directory) == "model":
        loaded = _from_saved(directory, tokenizer, verify, device)
    else:
        loaded = _from_hf(directory, tokenizer)
    model = loaded.model
    if isinstance(model, nn.Module):
        model.to(device).eval()
        family = FAMILIES.get(loaded.family)
        prepare_for_inference(model, precision, skip=family.INT8_SKIP if family else ())
    return loaded


def _from_hf(directory: Path, tokenizer: bool) -> Pretrained:
    """A Hugging Face checkpoint: config → family → model with its head → weights through the name table."""
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
    name = type(model).__name__
    labels = label_names(config) if name in ("EncoderClassifier", "VisionTransformer") else None
    n_classes = getattr(model.config, "num_labels", getattr(model.config, "num_classes", None))
    if labels is not None and len(labels) != n_classes:
        raise CheckpointError(f"{directory / 'config.json'}: id2label names {len(labels)} labels but the head "
                              f"predicts {n_classes}")
    sentence = None
    if name == "TransformerEncoderModel":
        sentence = SentenceConfig.read(directory, model.config.max_position)
    return Pretrained(
        model=model,
        tokenizer=read_tokenizer(directory, family.load_tokenizer(directory)) if tokenizer else None,
        family=config["model_type"],
        path=directory,
        hf_config=config,
        sentence=sentence,
        label_names=labels,
        sentence_modules=(directory / "modules.json").is_file(),
    )


def _from_saved(directory: Path, tokenizer: bool, verify: bool, device: str | torch.device) -> Pretrained:
    """A glassformer saved-model directory, read by :func:`~glassformer.training.saved.load_saved`."""
    from glassformer.training.saved import load_saved

    saved = load_saved(directory, load_tokenizer=tokenizer, verify=verify, device=device)
    name = type(saved.model).__name__
    sentence = SentenceConfig(max_seq_length=saved.model.config.max_position) \
        if name == "TransformerEncoderModel" else None
    return Pretrained(model=saved.model, tokenizer=saved.tokenizer, family=FAMILY_OF_CLASS.get(name, name),
                      path=directory, hf_config={}, sentence=sentence, label_names=saved.label_names,
                      task=saved.task, extra=saved.extra)


def batch_encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
    """``(input_ids, attention_mask)`` ``(B, T)`` for ``texts`` with [CLS]/[SEP], truncated to ``max_length``, padded."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length)
    return torch.as_tensor(batch.input_ids), torch.as_tensor(batch.attention_mask)
