"""The walkthroughs as HTML: each step of the articles' pipeline with its formula beside a table or heatmap.

The numbers come from :mod:`glassformer.viz.walkthrough`, which reads them from the model's own
forward pass (one function per family of model); this module only lays them out. Attention
matrices are HTML grids, one cell per query and key with the model's value in it (or in its tooltip
when the grid is large); a cell the causal mask blocks is hatched and shows −∞.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from glassformer.studio.common import figure_img, png_img, table_html
from glassformer.viz import image_png, matrix_png, positional_encoding_figure, token_labels
from glassformer.viz.next_token import NextTokenDistribution
from glassformer.viz.walkthrough import (
    HeadSteps,
    LMWalkthrough,
    TranslationWalkthrough,
    VisionWalkthrough,
    WalkthroughSteps,
    lm_walkthrough,
    translation_walkthrough,
    vision_walkthrough,
    walkthrough,
)

SHOWN_DIMS = 8  # vector columns printed in the tables; the heatmaps show every dimension
NUMBERS_UP_TO = 16  # a grid with more columns than this shows its values in tooltips only
MASKED_STYLE = "background:repeating-linear-gradient(45deg,#c8c8c8 0 3px,#eee 3px 6px);color:#666"

__all__ = ["WalkthroughSteps", "lm_walkthrough", "lm_walkthrough_html", "translation_walkthrough",
           "translation_walkthrough_html", "vision_walkthrough", "vision_walkthrough_html", "walkthrough",
           "walkthrough_html"]


# --- HTML ----------------------------------------------------------------------------------------

def _vectors(tokens: list[str], matrix: np.ndarray, caption: str) -> str:
    shown = min(SHOWN_DIMS, matrix.shape[1])
    more = "" if shown == matrix.shape[1] else f" (first {shown} of {matrix.shape[1]} dimensions)"
    header = ["token", *[f"d{j}" for j in range(shown)]]
    rows = [[tok, *[float(v) for v in matrix[i, :shown]]] for i, tok in enumerate(tokens)]
    return table_html(rows, header, caption + more)


def _pixels(matrix: np.ndarray, caption: str) -> str:
    """Every number of a (tokens × dimensions) matrix as one pixel: red negative, blue positive."""
    rows, cols = matrix.shape
    return (f'<p style="font-size:12px;margin:6px 0 2px">{html.escape(caption)} (all {cols} dimensions, one pixel '
            f"each: red negative, blue positive)</p>"
            + png_img(matrix_png(matrix), caption, min(960, max(cols, 1) * 3), rows * 12))


@lru_cache(maxsize=4)
def _sinusoidal_table_img(d_model: int) -> str:
    """The articles' sinusoidal table for 64 positions (what the sentiment model reads at most), drawn once."""
    return figure_img(positional_encoding_figure(length=64, d_model=d_model),
                      "sinusoidal PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…)")


def _step(number: int, title: str, formula: str, body: str) -> str:
    return (f'<section class="gf-step" style="margin:14px 0;padding:8px 12px;border-left:4px solid #4a7fc1">'
            f'<h3 style="margin:2px 0">{number}. {html.escape(title)}</h3>'
            f'<p><code style="font-size:14px">{html.escape(formula)}</code></p>{body}</section>')


def _cell_colour(value: float, peak: float, signed: bool) -> str:
    """A cell's background: blue with opacity |value| / peak; with `signed`, negative values red."""
    alpha = min(abs(value) / peak, 1.0) if peak > 0 else 0.0
    rgb = "214, 39, 40" if signed and value < 0 else "74, 127, 193"
    return f"background:rgba({rgb},{alpha:.3f});color:{'#fff' if alpha > 0.6 else '#111'}"


def _grid(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], caption: str, *,
          masked: np.ndarray | None = None, signed: bool = False, css_class: str = "gf-grid") -> str:
    """A matrix as an HTML grid: rows are queries, columns keys; masked cells hatched and shown as −∞ (or 0)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    masked = np.zeros(matrix.shape, dtype=bool) if masked is None else masked
    finite = matrix[~masked & np.isfinite(matrix)]
    peak = float(np.abs(finite).max()) if finite.size else 1.0
    numbers = matrix.shape[1] <= NUMBERS_UP_TO
    size = "min-width:34px;height:20px" if numbers else "width:12px;height:12px"
    cell = f"border:1px solid #fff;padding:0 2px;text-align:center;font-size:10px;{size}"

    def label(text: str, style: str = "") -> str:
        return (f'<th style="font-size:10px;font-weight:400;padding:0 3px;{style}">{html.escape(text)}</th>')

    out = [f'<table class="{css_class}" data-rows="{matrix.shape[0]}" data-cols="{matrix.shape[1]}" '
           f'style="border-collapse:collapse;margin:4px 0">',
           f'<caption style="text-align:left;font-size:12px">{html.escape(caption)}</caption>',
           "<tr><th></th>" + "".join(label(c, "writing-mode:vertical-rl" if not numbers else "") for c in cols)
           + "</tr>"]
    for i, row in enumerate(rows):
        cells = []
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            if masked[i, j]:
                shown = "−∞" if np.isneginf(value) else f"{value:.2f}"
                cells.append(f'<td class="gf-masked" title="{html.escape(row)} → {html.escape(cols[j])}: '
                             f'blocked by the causal mask ({shown})" style="{cell};{MASKED_STYLE}">'
                             f'{shown if numbers else ""}</td>')
            else:
                cells.append(f'<td title="{html.escape(row)} → {html.escape(cols[j])}: {value:.4f}" '
                             f'data-value="{float(value)!r}" style="{cell};{_cell_colour(value, peak, signed)}">'
                             f'{f"{value:.2f}" if numbers else ""}</td>')
        out.append("<tr>" + label(row, "text-align:right") + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _attention(attention: HeadSteps, queries: Sequence[str], keys: Sequence[str], what: str, mask_note: str) -> str:
    """Scores and softmax weights of one head, side by side."""
    masked = attention.masked
    return ('<div style="display:flex;gap:18px;flex-wrap:wrap">'
            + _grid(attention.scores, queries, keys, f"{what}: scores S = Q Kᵀ / √{attention.d_head}{mask_note}",
                    masked=masked, signed=True, css_class="gf-grid gf-scores")
            + _grid(attention.weights, queries, keys, f"{what}: weights A = softmax(S), rows sum to 1",
                    masked=masked, css_class="gf-grid gf-weights")
            + "</div>")


def candidates_html(distribution: NextTokenDistribution, labels: dict[int, str], shown: Sequence[int],
                    chosen: int | None = None, caption: str = "") -> str:
    """Bars for the candidate tokens `shown`: p under the model (temperature 1) and after the sampling cuts.

    Each row carries the exact values in ``data-p`` and ``data-sample-p``; a token a cut removed
    says which one ("top-k", "top-p", "greedy").
    """
    bar = "display:inline-block;height:10px;vertical-align:middle;margin-right:6px;border-radius:2px"
    peak = float(max(max(distribution.probs[i] for i in shown), max(distribution.sample_probs[i] for i in shown)))
    rows = []
    for index in shown:
        p, q, cut = float(distribution.probs[index]), float(distribution.sample_probs[index]), distribution.cut[index]
        after = (f'<span class="gf-cut" style="color:#999">cut by {cut}</span>' if cut else
                 f'<span style="{bar};width:{120 * q / peak:.1f}px;background:#4a7fc1"></span>{q:.1%}')
        mark = index == chosen
        rows.append(f'<tr class="gf-candidate{" gf-chosen" if mark else ""}" data-token-id="{index}" '
                    f'data-p="{p!r}" data-sample-p="{q!r}" style="{"font-weight:700" if mark else ""}">'
                    f'<td style="padding:1px 6px">{"▶ " if mark else ""}<code>{html.escape(labels[index])}</code></td>'
                    f'<td style="padding:1px 6px"><span style="{bar};width:{120 * p / peak:.1f}px;background:#aaa">'
                    f'</span>{p:.1%}</td><td style="padding:1px 6px">{after}</td></tr>')
    settings = ("greedy (temperature 0): the most likely token, nothing drawn" if distribution.greedy else
                f"temperature {distribution.temperature:g}, top-k {distribution.top_k or 'off'}, "
                f"top-p {distribution.top_p if distribution.top_p is not None else 'off'}")
    head = (f'<caption style="text-align:left;font-size:12px">{html.escape(caption)} '
            f"({html.escape(settings)}: {distribution.kept:,} of {len(distribution.probs):,} tokens can be drawn)"
            "</caption><tr><th>token</th><th>p (model, temperature 1)</th>"
            "<th>p after temperature, top-k, top-p (renormalised)</th></tr>")
    return f'<table class="gf-candidates" style="border-collapse:collapse;font-size:12px">{head}{"".join(rows)}</table>'


def walkthrough_html(steps: WalkthroughSteps) -> str:
    """The encoder classifier's steps as one HTML section: a formula beside a table or a heatmap for each."""
    tokens = steps.tokens
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
              _grid(one_hot, tokens, [str(j) for j in distinct], "one-hot rows (columns: the ids used)")),
        _step(4, "Embedding vectors", f"e = one_hot(id) · W_E = W_E[id]   (W_E: vocabulary × {d})",
              _vectors(tokens, steps.word, "word_embeddings(ids)") + _pixels(steps.word, "embedding vectors")),
        _step(5, "Plus positions", "x = LayerNorm(e + p_pos + s_segment)   (this BERT-style model learns p_pos; "
                                   "the articles' sinusoidal table is drawn below for comparison)",
              _vectors(tokens, steps.position, "learned position vectors p_pos")
              + _vectors(tokens, steps.embedded, "x: the first layer's input")
              + _pixels(steps.position, "learned position vectors") + _sinusoidal_table_img(d)),
        _step(6, f"Q, K, V for {head_label}", f"Q = x W_Q,  K = x W_K,  V = x W_V   (columns of head {steps.head}: "
                                               f"d_head = {steps.d_head}"
                                               + ("; pre-norm: x is LayerNorm(x) first" if steps.norm_first else "")
                                               + ")",
              _vectors(tokens, steps.q, "Q") + _vectors(tokens, steps.k, "K") + _vectors(tokens, steps.v, "V")),
        _step(7, "Scores", f"S = Q Kᵀ / √d_head = Q Kᵀ / √{steps.d_head}",
              _grid(steps.scores, tokens, tokens, f"scores, {head_label} (rows: queries, columns: keys)",
                    signed=True, css_class="gf-grid gf-scores")),
        _step(8, "Softmax weights", "A[i, j] = exp(S[i, j]) / Σ_k exp(S[i, k])   (each row sums to 1)",
              _grid(steps.weights, tokens, tokens, f"attention weights, {head_label}", css_class="gf-grid gf-weights")),
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


SHOWN_CANDIDATES = 10  # next-token candidates drawn as bars


def _norm_note(pre_norm: bool) -> str:
    return "; pre-norm: x is LayerNorm(x) first" if pre_norm else ""


def lm_walkthrough_html(steps: LMWalkthrough, tokenizer: Any) -> str:
    """The decoder LM's steps: tokens → embeddings + positions → Q, K, V → masked scores → softmax → output → next token."""
    tokens, attention = steps.tokens, steps.attention
    head_label = f"layer {attention.layer}, head {attention.head}"
    shown = [int(i) for i in steps.next_token.top(SHOWN_CANDIDATES)]
    labels = dict(zip(shown + [steps.chosen], token_labels(tokenizer, shown + [steps.chosen])))
    best = shown[0]
    chosen_row = [steps.chosen] if steps.chosen not in shown else []
    parts = [
        _step(1, "Tokens", "text → the model's tokens (this one reads characters), after <|endoftext|>",
              table_html([[i, tok, idx] for i, (tok, idx) in enumerate(zip(tokens, steps.ids))],
                         ["position", "token", "id"])),
        _step(2, "Embeddings + positions", "x = W_E[id] + p_pos   (learned position vectors p_pos)",
              _vectors(tokens, steps.token_embed, "token embeddings W_E[id]")
              + _vectors(tokens, steps.position, "position vectors p_pos")
              + _vectors(tokens, steps.layer_input, f"x: the input of layer {attention.layer}"
                         + (" (= W_E[id] + p_pos)" if attention.layer == 0 else ""))),
        _step(3, f"Q, K, V for {head_label}", f"Q = x W_Q,  K = x W_K,  V = x W_V   (columns of head {attention.head}: "
                                               f"d_head = {attention.d_head}{_norm_note(True)})",
              _vectors(tokens, attention.q, "Q") + _vectors(tokens, attention.k, "K")
              + _vectors(tokens, attention.v, "V")),
        _step(4, "Scores with the causal mask", f"S[i, j] = Q_i · K_j / √{attention.d_head}, and S[i, j] = −∞ for "
                                                "j > i: the causal mask (a token never sees the tokens after it)",
              _grid(attention.scores, tokens, tokens, f"scores, {head_label} (hatched: blocked by the causal mask)",
                    masked=attention.masked, signed=True, css_class="gf-grid gf-scores")),
        _step(5, "Softmax", "A[i, j] = exp(S[i, j]) / Σ_k exp(S[i, k]);  exp(−∞) = 0, so a masked key gets weight 0",
              _grid(attention.weights, tokens, tokens, f"attention weights, {head_label}", masked=attention.masked,
                    css_class="gf-grid gf-weights")),
        _step(6, "Output", f"Z = A V (this head);  layer {attention.layer}: h = x + Concat(Z_1..Z_H) W_O,  "
                           "out = h + FFN(LayerNorm(h))",
              _vectors(tokens, attention.z, f"Z, {head_label}")
              + _vectors(tokens, steps.layer_output, f"output of layer {attention.layer}")),
        _step(7, "Next-token logits", "after the last layer: z = LayerNorm(h_last) W_Eᵀ; the last position's row "
                                      "predicts the token that comes next",
              table_html([[labels[i], float(steps.logits[i])] for i in shown], ["token", "logit"],
                         f"the {len(shown)} largest of {len(steps.logits):,} logits")),
        _step(8, "Softmax over the vocabulary", "p(token | text so far) = exp(z_token) / Σ exp(z)",
              table_html([[labels[i], float(steps.next_token.probs[i])] for i in shown], ["token", "p"],
                         f"most likely: {labels[best]} ({steps.next_token.probs[best]:.1%})")),
        _step(9, "The sampling step", "z / temperature → keep the top-k → keep the smallest set reaching top-p → "
                                      "renormalise → draw one token",
              candidates_html(steps.next_token, labels, shown + chosen_row, steps.chosen, "the candidates")
              + f'<p class="gf-prediction"><b>Next token: {html.escape(labels[steps.chosen])}</b></p>'),
    ]
    return '<div class="gf-walkthrough gf-walk-lm">' + "".join(parts) + "</div>"


def _inline_row(values: np.ndarray, labels: Sequence[str], masked: np.ndarray | None = None) -> str:
    """One attention row as a strip of labelled cells (the query's weights over the keys)."""
    peak = float(values.max()) if values.size and values.max() > 0 else 1.0
    cells = []
    for j, (value, label) in enumerate(zip(values, labels)):
        if masked is not None and masked[j]:
            cells.append(f'<span class="gf-masked" title="{html.escape(label)}: blocked by the causal mask" '
                         f'style="display:inline-block;padding:1px 3px;margin:1px;{MASKED_STYLE}">'
                         f"{html.escape(label)}</span>")
        else:
            cells.append(f'<span title="{html.escape(label)}: {value:.4f}" style="display:inline-block;'
                         f'padding:1px 3px;margin:1px;{_cell_colour(float(value), peak, False)}">'
                         f"{html.escape(label)}</span>")
    return "".join(cells)


def translation_walkthrough_html(steps: TranslationWalkthrough, tokenizer: Any, translation: str) -> str:
    """The encoder's steps on the source, then the decoder one target token at a time, with cross-attention."""
    source, target, chosen = steps.source_tokens, steps.target_tokens, steps.output_tokens
    enc, self_attn, cross = steps.encoder_attention, steps.self_attention, steps.cross_attention
    enc_label = f"encoder layer {enc.layer}, head {enc.head}"
    dec_label = f"decoder layer {self_attn.layer}, head {self_attn.head}"
    rows = []
    for t in range(len(target)):
        order = [int(i) for i in np.argsort(-steps.probs[t])[:3]]
        top = ", ".join(f"{label} {steps.probs[t][i]:.1%}" for i, label in zip(order, token_labels(tokenizer, order)))
        forced = steps.forced_end and t == len(target) - 1
        rows.append(
            f'<tr class="gf-decode-step"><td>{t}</td><td>{_inline_row(self_attn.weights[t], target, self_attn.masked[t])}'
            f"</td><td>{_inline_row(cross.weights[t], source)}</td><td>{html.escape(top)}</td>"
            f"<td><b>{html.escape(chosen[t])}</b>"
            f"{' (forced: out of room)' if forced else f' ({steps.probs[t][steps.output_ids[t]]:.1%})'}</td></tr>")
    decoding = ('<table class="gf-decoding" style="border-collapse:collapse;font-size:12px">'
                "<tr><th>step</th><th>masked self-attention: the target so far</th>"
                "<th>cross-attention: the source</th><th>the 3 most likely</th><th>chosen (p)</th></tr>"
                + "".join(rows) + "</table>")
    parts = [
        _step(1, "Source tokens", "German text → BPE pieces, then the end token",
              table_html([[i, tok, idx] for i, (tok, idx) in enumerate(zip(source, steps.source_ids))],
                         ["position", "token", "id"])),
        _step(2, "Source embeddings + positions", "x = √d_model · W_E[id] + PE(pos)   (the sinusoidal table)",
              _vectors(source, steps.encoder_embed, "x: the encoder's input")),
        _step(3, f"Encoder self-attention, {enc_label}", f"Q = x W_Q,  K = x W_K,  V = x W_V  (d_head = {enc.d_head});"
                                                          "  every source token sees every other: no mask",
              _vectors(source, enc.q, "Q") + _vectors(source, enc.k, "K") + _vectors(source, enc.v, "V")
              + _attention(enc, source, source, enc_label, "")),
        _step(4, "Encoder output", f"Z = A V;  layer {enc.layer}: out = LayerNorm(h + FFN(h)), "
                                   "h = LayerNorm(x + Concat(Z_1..Z_H) W_O);  the last layer's output is the memory",
              _vectors(source, steps.encoder_layer_output, f"output of encoder layer {enc.layer}")
              + _vectors(source, steps.memory, "memory: what every cross-attention reads")),
        _step(5, "Target embeddings", "the decoder reads [BOS] and what it has chosen so far: "
                                      "y = √d_model · W_E[id] + PE(pos)",
              _vectors(target, steps.decoder_embed, "the decoder's input")),
        _step(6, f"Masked self-attention, {dec_label}", "S = Q Kᵀ / √d over the target, S[i, j] = −∞ for j > i "
                                                       "(the causal mask: a step never sees later tokens)",
              _attention(self_attn, target, target, dec_label, " (hatched: causal mask)")),
        _step(7, f"Cross-attention, {dec_label}", "Q from the decoder, K = memory W_K and V = memory W_V from the "
                                                  "encoder: each target step looks at the source",
              _vectors(target, cross.q, "Q (decoder)") + _vectors(source, cross.k, "K (encoder memory)")
              + _grid(cross.weights, target, source, f"cross-attention weights, {dec_label}: rows = target steps, "
                                                     "columns = source tokens", css_class="gf-grid gf-cross")),
        _step(8, "One token at a time", "step t: read [BOS] y_1 … y_t → logits → softmax → take the most likely "
                                        "(greedy search) → y_{t+1}",
              decoding),
        _step(9, "Translation", "the chosen tokens, detokenised, up to the end token",
              f'<p class="gf-prediction"><b>{html.escape(translation)}</b></p>'),
    ]
    return '<div class="gf-walkthrough gf-walk-translate">' + "".join(parts) + "</div>"


def _patch_grid(steps: VisionWalkthrough, weights: np.ndarray | None = None) -> str:
    """The input cut into its patches, drawn as a grid with gaps; with `weights`, each patch tinted by its weight."""
    p, size = steps.patch_size, 56
    whole = (float(steps.image.min()), float(steps.image.max()))  # every patch drawn on the image's own scale
    peak = float(weights.max()) if weights is not None and weights.max() > 0 else 1.0
    cells = []
    for index in range(steps.grid * steps.grid):
        patch = steps.image[:, (index // steps.grid) * p:(index // steps.grid + 1) * p,
                            (index % steps.grid) * p:(index % steps.grid + 1) * p]
        picture = png_img(image_png(patch, whole), f"patch {steps.tokens[index + 1]}", size)
        if weights is None:
            note = steps.tokens[index + 1]
            tint = ""
        else:
            value = float(weights.flat[index])
            note = f"{value:.3f}"
            tint = (f'<span style="position:absolute;inset:0;background:rgba(255,140,0,{value / peak * 0.55:.3f})">'
                    "</span>")
        cells.append(f'<div class="gf-patch" title="patch {steps.tokens[index + 1]}" style="text-align:center;'
                     f'font-size:10px"><div style="position:relative;width:{size}px;height:{size}px">{picture}'
                     f"{tint}</div>{html.escape(note)}</div>")
    return (f'<div class="gf-patches" style="display:grid;grid-template-columns:repeat({steps.grid},{size + 4}px);'
            f'gap:6px;margin:6px 0">' + "".join(cells) + "</div>")


def vision_walkthrough_html(steps: VisionWalkthrough, picture: np.ndarray, truth: str) -> str:
    """The ViT's steps: image → patches → patch vectors → [CLS] + positions → attention over patches → class."""
    attention, tokens = steps.attention, steps.tokens
    head_label = f"layer {attention.layer}, head {attention.head}"
    p, n = steps.patch_size, steps.grid * steps.grid
    best = int(np.argmax(steps.probs))
    patch_tokens = tokens[1:]
    parts = [
        _step(1, "The image", f"{picture.shape[-2]}×{picture.shape[-1]} grey pixels ({truth})",
              png_img(image_png(picture), "the image", 168)),
        _step(2, "Patches", f"cut into a {steps.grid}×{steps.grid} grid of {p}×{p}-pixel patches, row by row: "
                            f"N = {n} patches, each flattened to {p * p * steps.image.shape[0]} numbers",
              _patch_grid(steps) + _vectors(patch_tokens, steps.patches, "patch pixels (normalised as in training)")),
        _step(3, "Patch vectors", f"v_i = W_P · patch_i + b   (W_P: {steps.patch_vectors.shape[1]} × "
                                  f"{steps.patches.shape[1]}; each patch becomes a token)",
              _vectors(patch_tokens, steps.patch_vectors, "patch vectors")),
        _step(4, "[CLS] + positions", "x_0 = [CLS] + p_0,  x_i = v_i + p_i   (a learned [CLS] vector in front, "
                                      "learned position vectors p)",
              _vectors(["[CLS]"], steps.cls_token[None], "the learned [CLS] vector")
              + _vectors(tokens, steps.position, "position vectors p")
              + _vectors(tokens, steps.embedded, "x: the first layer's input")),
        _step(5, f"Attention over the patches, {head_label}", f"Q = x W_Q, K = x W_K, V = x W_V (d_head = "
                                                              f"{attention.d_head}{_norm_note(True)}); "
                                                              "A = softmax(Q Kᵀ / √d)",
              _attention(attention, tokens, tokens, head_label, "")),
        _step(6, "What [CLS] looks at", "row [CLS] of A, drawn on the patch grid: the patches this head reads "
                                        "into the class token",
              _patch_grid(steps, steps.cls_to_patches)),
        _step(7, "Class", "after the last layer: h = LayerNorm(x_[CLS]);  logits = W_c h + b;  p = softmax(logits)",
              table_html([[name, float(z), float(q)] for name, z, q in zip(steps.label_names, steps.logits,
                                                                            steps.probs)],
                         ["class", "logit", "probability"])
              + f'<p class="gf-prediction"><b>Prediction: {html.escape(steps.label_names[best])} '
                f"({steps.probs[best]:.1%})</b></p>"),
    ]
    return '<div class="gf-walkthrough gf-walk-vision">' + "".join(parts) + "</div>"
