"""The articles' pipeline, step by step, on a trained encoder classifier's own numbers.

tokens → ids → one-hot → embedding vectors → plus positions → Q, K, V of one head → scores
QKᵀ/√d → softmax weights → weighted values → layer output → prediction. Every step is a call
of one of the model's own public modules (``q_proj``, ``embeddings.word_embeddings``, a whole
``EncoderLayer`` ...), so the numbers shown are the numbers the model computes; the test checks
that the final logits and the softmax weights equal what the model returns by itself.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from glassformer._torch import evaluating
from glassformer.models.encoder import EncoderClassifier, mean_pool
from glassformer.studio.common import figure_img, table_html
from glassformer.viz import matrix_heatmap, positional_encoding_figure, token_labels

SHOWN_DIMS = 8  # vector columns printed in the tables; the heatmaps show every dimension


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
    """Run `model` on one row of token `ids` module by module, keeping the intermediates of `layer` and `head`."""
    if not isinstance(model, EncoderClassifier):
        raise TypeError(f"the walkthrough needs an EncoderClassifier, got {type(model).__name__}")
    config = model.config
    layers = model.encoder.encoder.layers
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer={layer}; the model has layers 0..{len(layers) - 1}")
    if not 0 <= head < config.n_heads:
        raise ValueError(f"head={head}; the model has heads 0..{config.n_heads - 1}")
    embeddings = model.encoder.embeddings
    with evaluating(model):
        input_ids = torch.tensor([list(ids)])
        word = embeddings.word_embeddings(input_ids)  # (1, T, D)
        position = embeddings.position_embeddings.embed_range(input_ids.shape[1]).unsqueeze(0)
        token_type = embeddings.token_type_embeddings(torch.zeros_like(input_ids))
        x = embeddings.norm(word + position + token_type)  # dropout is off in eval mode
        embedded = x
        kept: dict[str, torch.Tensor] = {}
        for index, block in enumerate(layers):
            if index == layer:
                kept.update(_head_steps(block, x, head))
                kept["layer_input"] = x
            x, _ = block(x)
            if index == layer:
                kept["layer_output"] = x
        if model.encoder.encoder.norm is not None:
            x = model.encoder.encoder.norm(x)
        if config.pooling == "mean":
            features = mean_pool(x)
        else:
            features = torch.tanh(model.encoder.pooler(x[:, 0])) if model.encoder.pooler is not None else x[:, 0]
        logits = model.classifier(features)
    return WalkthroughSteps(
        tokens=token_labels(tokenizer, ids), ids=list(ids), layer=layer, head=head,
        d_head=config.d_model // config.n_heads, word=_row(word), position=_row(position),
        token_type=_row(token_type), embedded=_row(embedded), layer_input=_row(kept["layer_input"]),
        q=_row(kept["q"]), k=_row(kept["k"]), v=_row(kept["v"]), scores=_row(kept["scores"]),
        weights=_row(kept["weights"]), weighted=_row(kept["weighted"]), layer_output=_row(kept["layer_output"]),
        features=_row(features), logits=_row(logits), probs=_row(logits.softmax(-1)), label_names=list(label_names),
        pooling=config.pooling, norm_first=config.norm_first)


def _row(tensor: torch.Tensor) -> np.ndarray:
    """The first (only) batch row of an intermediate, as float32 NumPy."""
    return tensor[0].detach().float().numpy()


def _head_steps(block: torch.nn.Module, x: torch.Tensor, head: int) -> dict[str, torch.Tensor]:
    """Q, K, V of one head from the layer's own projections, then scaled dot-product attention written out."""
    attention = block.self_attn
    source = block.norm1(x) if block.norm_first else x  # pre-norm layers attend over the normalised input
    d_head = attention.d_head
    cols = slice(head * d_head, (head + 1) * d_head)  # a head's features are a contiguous block of d_model
    q = attention.q_proj(source)[..., cols]  # (1, T, d_head)
    k = attention.k_proj(source)[..., cols]
    v = attention.v_proj(source)[..., cols]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (1, T, T)
    weights = scores.softmax(-1)
    return {"q": q, "k": k, "v": v, "scores": scores, "weights": weights, "weighted": weights @ v}


# --- HTML ----------------------------------------------------------------------------------------

def _vectors(tokens: list[str], matrix: np.ndarray, caption: str) -> str:
    shown = min(SHOWN_DIMS, matrix.shape[1])
    more = "" if shown == matrix.shape[1] else f" (first {shown} of {matrix.shape[1]} dimensions)"
    header = ["token", *[f"d{j}" for j in range(shown)]]
    rows = [[tok, *[float(v) for v in matrix[i, :shown]]] for i, tok in enumerate(tokens)]
    return table_html(rows, header, caption + more)


def _heat(matrix: np.ndarray, rows: list[str], cols: list[str] | None, title: str, xlabel: str, ylabel: str,
          **options: Any) -> str:
    fig = matrix_heatmap(matrix, rows, cols, title=title, xlabel=xlabel, ylabel=ylabel, **options)
    return figure_img(fig, title)


def _step(number: int, title: str, formula: str, body: str) -> str:
    return (f'<section class="gf-step" style="margin:14px 0;padding:8px 12px;border-left:4px solid #4a7fc1">'
            f'<h3 style="margin:2px 0">{number}. {html.escape(title)}</h3>'
            f'<p><code style="font-size:14px">{html.escape(formula)}</code></p>{body}</section>')


def walkthrough_html(steps: WalkthroughSteps) -> str:
    """The steps as one HTML page section: a formula beside a table or a heatmap for each."""
    tokens, t = steps.tokens, len(steps.tokens)
    distinct = sorted(set(steps.ids))
    one_hot = np.array([[1.0 if i == j else 0.0 for j in distinct] for i in steps.ids])
    head_label = f"layer {steps.layer}, head {steps.head}"
    d = steps.word.shape[1]
    best = int(np.argmax(steps.probs))
    parts = [
        _step(1, "Tokens", "text → WordPiece pieces, wrapped as [CLS] … [SEP]",
              table_html([[i, tok] for i, tok in enumerate(tokens)], ["position", "token"])),
        _step(2, "Token ids", "id = vocabulary index of the piece",
              table_html([[tok, idx] for tok, idx in zip(tokens, steps.ids)], ["token", "id"])),
        _step(3, "One-hot vectors", "one_hot(id)[j] = 1 if j = id else 0  (vocabulary-wide; only the columns of "
                                    "the ids used are drawn)",
              _heat(one_hot, tokens, [str(j) for j in distinct], "one-hot rows (columns: the ids used)",
                    "vocabulary id", "token", cmap="Greys", vmin=0, vmax=1)),
        _step(4, "Embedding vectors", f"e = one_hot(id) · W_E = W_E[id]   (W_E: vocabulary × {d})",
              _vectors(tokens, steps.word, "word_embeddings(ids)")
              + _heat(steps.word, tokens, None, "embedding vectors", "dimension", "token", cmap="RdBu")),
        _step(5, "Plus positions", "x = LayerNorm(e + p_pos + s_segment)   (this BERT-style model learns p_pos; "
                                   "the articles' sinusoidal table is drawn below for comparison)",
              _vectors(tokens, steps.position, "learned position vectors p_pos")
              + _vectors(tokens, steps.embedded, "x: the first layer's input")
              + _heat(steps.position, tokens, None, "learned position vectors", "dimension", "position",
                      cmap="RdBu")
              + figure_img(positional_encoding_figure(length=max(t, 8), d_model=d),
                           "sinusoidal PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…)")),
        _step(6, f"Q, K, V for {head_label}", f"Q = x W_Q,  K = x W_K,  V = x W_V   (columns of head {steps.head}: "
                                               f"d_head = {steps.d_head}"
                                               + ("; pre-norm: x is LayerNorm(x) first" if steps.norm_first else "")
                                               + ")",
              _vectors(tokens, steps.q, "Q") + _vectors(tokens, steps.k, "K") + _vectors(tokens, steps.v, "V")),
        _step(7, "Scores", f"S = Q Kᵀ / √d_head = Q Kᵀ / √{steps.d_head}",
              _heat(steps.scores, tokens, tokens, f"scores, {head_label}", "key", "query", cmap="RdBu_r")),
        _step(8, "Softmax weights", "A[i, j] = exp(S[i, j]) / Σ_k exp(S[i, k])   (each row sums to 1)",
              _heat(steps.weights, tokens, tokens, f"attention weights, {head_label}", "key (attended to)",
                    "query (attending)", vmin=0.0, vmax=1.0)),
        _step(9, "Weighted values", "z_i = Σ_j A[i, j] V_j   (Z = A V)",
              _vectors(tokens, steps.weighted, f"Z, {head_label}")),
        _step(10, f"Layer {steps.layer} output", "h = LayerNorm(x + Concat(Z_1..Z_H) W_O);  "
                                                 "out = LayerNorm(h + FFN(h))" if not steps.norm_first else
              "h = x + Concat(Z_1..Z_H) W_O(LN(x));  out = h + FFN(LN(h))",
              _vectors(tokens, steps.layer_output, f"layer {steps.layer} output")),
        _step(11, "Prediction", ("sentence vector = mean of the last layer's token vectors; " if steps.pooling == "mean"
                                 else "sentence vector = tanh(W_pool h_[CLS] + b); ")
              + "logits = W_c · vector + b_c;  p = softmax(logits)",
              table_html([[name, float(z), float(p)]
                          for name, z, p in zip(steps.label_names, steps.logits, steps.probs)],
                         ["label", "logit", "probability"])
              + f'<p class="gf-prediction"><b>Prediction: {html.escape(steps.label_names[best])} '
                f"({steps.probs[best]:.1%})</b></p>"),
    ]
    return '<div class="gf-walkthrough">' + "".join(parts) + "</div>"
