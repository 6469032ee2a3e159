"""A glassformer model as ONNX: ``model.onnx`` with dynamic batch and sequence axes, for onnxruntime and friends.

torch's exporter (``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``) traces the model with
``torch.export`` and writes the graph. Each model is wrapped so that the graph has plain tensor inputs and
outputs under the names transformers' ONNX exports use:

========================  ==========================================  ==============================
model                     inputs                                      outputs
========================  ==========================================  ==============================
EncoderClassifier         input_ids, attention_mask (B, T)            logits (B, labels)
TransformerEncoderModel   input_ids, attention_mask (B, T)            last_hidden_state (B, T, D),
                                                                      sentence_embedding (B, D)
DecoderLM                 input_ids (B, T)                            logits (B, T, V)
VisionTransformer         pixel_values (B, C, H, W)                   logits (B, classes)
Seq2SeqTransformer        input_ids, attention_mask (B, S),           logits (B, T, V)
                          decoder_input_ids (B, T)
========================  ==========================================  ==============================

``sentence_embedding`` is the sentence vector of :class:`~glassformer.pretrained.SentenceEncoder`
(pooling, then L2 normalisation when the settings say so). ``onnx_model.json`` beside the graph lists
the inputs, outputs, label names and the tokenizer's length limit.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.export import Dim

from glassformer._files import atomic_write
from glassformer.errors import WrongModelError
from glassformer.nn import kernels
from glassformer.pretrained.sentence import SentenceConfig, pool

ONNX_FILE = "model.onnx"
DESCRIPTION_FILE = "onnx_model.json"


class _Classifier(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids, attention_mask).logits


class _Encoder(nn.Module):
    def __init__(self, model: nn.Module, sentence: SentenceConfig) -> None:
        super().__init__()
        self.model, self.sentence = model, sentence

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.model(input_ids, attention_mask).last_hidden_state  # (B, T, D)
        vectors = pool(hidden, attention_mask, self.sentence.pooling)  # (B, D)
        if self.sentence.normalize:
            vectors = nn.functional.normalize(vectors, p=2.0, dim=-1)
        return hidden, vectors


class _LanguageModel(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.model(input_ids).logits


class _Vision(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Tensor) -> Tensor:
        return self.model(pixel_values).logits


class _Translator(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, decoder_input_ids: Tensor) -> Tensor:
        return self.model(input_ids, decoder_input_ids, attention_mask).logits


def graph_for(model: nn.Module, sentence: SentenceConfig | None = None) -> tuple[nn.Module, dict[str, Tensor],
                                                                                   dict[str, dict[int, Dim]], list[str]]:
    """The wrapper of `model`, example inputs, their dynamic axes and the output names."""
    name = type(model).__name__
    config = model.config
    batch = Dim("batch", min=1, max=4096)
    if name == "VisionTransformer":
        images = torch.zeros(2, config.in_channels, config.image_size, config.image_size)
        return _Vision(model), {"pixel_values": images}, {"pixel_values": {0: batch}}, ["logits"]
    longest = config.max_position
    sequence = Dim("sequence", min=2, max=longest)
    ids = torch.full((2, min(8, longest)), 1, dtype=torch.long)
    text = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    if name == "EncoderClassifier":
        return _Classifier(model), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, text, ["logits"]
    if name == "TransformerEncoderModel":
        wrapper = _Encoder(model, sentence or SentenceConfig(max_seq_length=longest))
        return wrapper, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, text, \
            ["last_hidden_state", "sentence_embedding"]
    if name == "DecoderLM":
        return _LanguageModel(model), {"input_ids": ids}, {"input_ids": {0: batch, 1: sequence}}, ["logits"]
    if name == "Seq2SeqTransformer":
        target = Dim("decoder_sequence", min=2, max=longest)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": ids[:, :5].clone()}
        return _Translator(model), inputs, {**text, "decoder_input_ids": {0: batch, 1: target}}, ["logits"]
    raise WrongModelError(f"ONNX export covers glassformer's neural models (encoders, classifiers, language, "
                          f"translation and vision models), got {name}")


def write_onnx(directory: Path, model: nn.Module, *, sentence: SentenceConfig | None = None,
               info: dict[str, Any] | None = None) -> None:
    """Trace `model` (in eval mode) into ``directory/model.onnx`` and describe it in ``onnx_model.json``."""
    wrapper, inputs, axes, outputs = graph_for(model.eval(), sentence)
    # The fused CPU kernels are private oneDNN ops that ONNX has no operator for: trace the plain ops.
    with kernels.plain(), torch.no_grad(), warnings.catch_warnings():
        # The exporter warns about its own internals (pytree spellings, axis renaming); nothing to act on.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, (), kwargs=inputs, dynamo=True, input_names=list(inputs),
                                    output_names=outputs, dynamic_shapes=axes, verbose=False)
    program.save(str(directory / ONNX_FILE))
    description = {"format": "glassformer-onnx", "file": ONNX_FILE, "model_class": type(model).__name__,
                   "inputs": {name: _axes(tensor, axes[name]) for name, tensor in inputs.items()},
                   "outputs": outputs, **(info or {})}
    with atomic_write(directory / DESCRIPTION_FILE) as handle:
        json.dump(description, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def _axes(example: Tensor, dynamic: dict[int, Dim]) -> list[Any]:
    """The input's shape with each dynamic axis given by its name: ``["batch", "sequence"]``, ``["batch", 1, 28, 28]``."""
    return [dynamic[i].__name__ if i in dynamic else size for i, size in enumerate(example.shape)]
