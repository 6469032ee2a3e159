"""The articles' pipeline, step by step, on a trained encoder classifier's own numbers.

tokens → ids → one-hot → embedding vectors → plus positions → Q, K, V of one head → scores
QKᵀ/√d → softmax weights → weighted values → layer output → prediction. Every number is one the
model computed in its own forward pass, read from its hook points (``output_intermediates``), so
what a learner sees is what the model did; a test checks the logits and weights against its output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from glassformer._torch import evaluating
from glassformer.models.encoder import EncoderClassifier
from glassformer.viz.extract import token_labels


@dataclass
class WalkthroughSteps:
    """Every intermediate of one forward pass of an encoder classifier, for one layer and head, as NumPy arrays."""

    tokens: list[str]
    ids: list[int]
    layer: int
    head: int
    d_head: int
    word: np.ndarray  # (T, D) word_embeddings(ids) = one_hot(ids) @ W_E
    position: np.ndarray  # (T, D) learned position vectors
    token_type: np.ndarray  # (T, D) segment vectors (all segment 0)
    embedded: np.ndarray  # (T, D) LayerNorm(word + position + token_type): the first layer's input
    layer_input: np.ndarray  # (T, D) the input of the chosen layer
    q: np.ndarray  # (T, d_head) of the chosen head
    k: np.ndarray
    v: np.ndarray
    scores: np.ndarray  # (T, T) QKᵀ/√d_head
    weights: np.ndarray  # (T, T) softmax(scores) row by row
    weighted: np.ndarray  # (T, d_head) weights @ V
    layer_output: np.ndarray  # (T, D) the chosen layer's output
    features: np.ndarray  # (D,) the sentence vector the classifier reads
    logits: np.ndarray  # (num_labels,)
    probs: np.ndarray  # (num_labels,)
    label_names: list[str]
    pooling: str
    norm_first: bool


def walkthrough(model: EncoderClassifier, tokenizer: Any, ids: Sequence[int], label_names: Sequence[str], *,
                layer: int = 0, head: int = 0) -> WalkthroughSteps:
    """Run `model` once on one row of token `ids`, reading the intermediates of `layer` and `head` at its hook points."""
    if not isinstance(model, EncoderClassifier):
        raise TypeError(f"the walkthrough needs an EncoderClassifier, got {type(model).__name__}")
    config = model.config
    if not 0 <= layer < config.n_layers:
        raise ValueError(f"layer={layer}; the model has layers 0..{config.n_layers - 1}")
    if not 0 <= head < config.n_heads:
        raise ValueError(f"head={head}; the model has heads 0..{config.n_heads - 1}")
    at = f"encoder.encoder.layers.{layer}."
    wanted = ["encoder.embeddings.hook_*", at + "hook_resid_pre", at + "hook_resid_post", at + "self_attn.hook_*",
              "hook_features", "hook_logits"]
    with evaluating(model):
        cache = model(torch.tensor([list(ids)]), output_intermediates=wanted).intermediates

    def row(name: str) -> np.ndarray:
        return cache[name][0].float().numpy()  # the first (only) batch row

    def of_head(name: str) -> np.ndarray:
        return cache[at + "self_attn." + name][0, head].float().numpy()  # (B, H, ...) → this head

    logits = cache["hook_logits"][0].float()
    return WalkthroughSteps(
        tokens=token_labels(tokenizer, ids), ids=list(ids), layer=layer, head=head,
        d_head=config.d_model // config.n_heads, word=row("encoder.embeddings.hook_word"),
        position=row("encoder.embeddings.hook_position"), token_type=row("encoder.embeddings.hook_token_type"),
        embedded=row("encoder.embeddings.hook_embed"), layer_input=row(at + "hook_resid_pre"),
        q=of_head("hook_q"), k=of_head("hook_k"), v=of_head("hook_v"), scores=of_head("hook_attn_scores"),
        weights=of_head("hook_pattern"), weighted=of_head("hook_z"), layer_output=row(at + "hook_resid_post"),
        features=row("hook_features"), logits=logits.numpy(), probs=logits.softmax(-1).numpy(),
        label_names=list(label_names), pooling=config.pooling, norm_first=config.norm_first)
