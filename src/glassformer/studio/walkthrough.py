"""The walkthrough as HTML: each step of the articles' pipeline with its formula beside a table or heatmap.

The numbers come from :func:`glassformer.viz.walkthrough.walkthrough`, which reads them from the
model's own forward pass; this module only lays them out.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from glassformer.studio.common import figure_img, table_html
from glassformer.viz import matrix_heatmap, positional_encoding_figure
from glassformer.viz.walkthrough import WalkthroughSteps, walkthrough

SHOWN_DIMS = 8  # vector columns printed in the tables; the heatmaps show every dimension

__all__ = ["WalkthroughSteps", "walkthrough", "walkthrough_html"]


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
