"""BertViz's calls, answered by glassformer's pages: ``head_view(attentions, tokens)`` and ``model_view(...)``.

A learner who knows ``bertviz.head_view(outputs.attentions, tokens)`` can pass the same arguments here:
``attention`` is a tuple with one ``(1, H, T, T)`` tensor per layer, as glassformer's models return it
with ``output_attentions=True`` and as Hugging Face transformers does; encoder–decoder models pass
``encoder_attention``, ``decoder_attention`` and ``cross_attention`` with ``encoder_tokens`` and
``decoder_tokens``; ``sentence_b_start`` splits a sentence pair into BertViz's five views.

Where BertViz displays the view in a notebook and loads its script from a CDN, these functions return
the self-contained page of :mod:`glassformer.viz.head_view` (a ``str``, which a notebook renders) and
write it to ``out`` when given one. The page draws one head, all heads or their mean: ``heads`` may
name one head to start with, not a subset.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from glassformer.viz.head_view import AttentionMaps, HeadChoice, head_view_html, model_view_html, save_html

HTML_ACTIONS = ("view", "return")
DISPLAY_MODES = ("dark", "light")


class AttentionPage(str):
    """A self-contained HTML page; a notebook shows it rendered (in a sandboxed frame), Python sees the text."""

    def _repr_html_(self) -> str:
        # The page carries its own script and styles; a sandboxed frame keeps them apart from the notebook's.
        return (f'<iframe title="attention" sandbox="allow-scripts" style="width:100%;height:600px;border:0" '
                f'srcdoc="{html.escape(str(self), quote=True)}"></iframe>')

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to `path` (atomically)."""
        return save_html(path, str(self))


def _layers(attention: Sequence[Any], include_layers: Sequence[int] | None, include_heads: Sequence[int] | None,
            what: str) -> np.ndarray:
    """``(L, H, T_q, T_k)`` weights of the one input in a tuple of per-layer ``(1, H, T_q, T_k)`` tensors."""
    if attention is None or len(attention) == 0:
        raise ValueError(f"{what} holds no layers; run the model with output_attentions=True")
    layers = []
    for index, layer in enumerate(attention):
        array = np.asarray(layer.detach().float().cpu() if hasattr(layer, "detach") else layer, dtype=np.float32)
        if array.ndim != 4 or array.shape[0] != 1:
            raise ValueError(f"{what}[{index}] has shape {array.shape}; expected (1, heads, T, T): one input, as "
                             f"BertViz draws (select it with attention[i][b:b + 1])")
        layers.append(array[0])
    stacked = np.stack(layers)  # (L, H, T_q, T_k)
    if include_layers is not None:
        bad = [i for i in include_layers if not 0 <= i < len(stacked)]
        if bad:
            raise ValueError(f"include_layers names layer {bad[0]}; {what} has layers 0..{len(stacked) - 1}")
        stacked = stacked[list(include_layers)]
    if include_heads is not None:
        bad = [h for h in include_heads if not 0 <= h < stacked.shape[1]]
        if bad:
            raise ValueError(f"include_heads names head {bad[0]}; {what} has heads 0..{stacked.shape[1] - 1}")
        stacked = stacked[:, list(include_heads)]
    return stacked


def _prettify(tokens: Sequence[str], prettify: bool) -> list[str]:
    # BertViz's rule: byte-level BPE's Ġ and SentencePiece's ▁ both stand for a space.
    tokens = [str(t) for t in tokens]
    return [t.replace("Ġ", " ").replace("▁", " ") for t in tokens] if prettify else tokens


def _maps(attention: Any, tokens: Sequence[str] | None, sentence_b_start: int | None, prettify_tokens: bool,
          encoder_attention: Any, decoder_attention: Any, cross_attention: Any,
          encoder_tokens: Sequence[str] | None, decoder_tokens: Sequence[str] | None,
          include_layers: Sequence[int] | None, include_heads: Sequence[int] | None) -> list[AttentionMaps]:
    """The views BertViz would show for these arguments, as AttentionMaps."""
    seq2seq = [a is not None for a in (encoder_attention, decoder_attention, cross_attention,
                                       encoder_tokens, decoder_tokens)]
    if attention is not None:
        if any(seq2seq):
            raise ValueError("pass either attention and tokens (self-attention models) or the encoder_/decoder_/"
                             "cross_ arguments (encoder-decoder models), not both")
        if tokens is None:
            raise ValueError("tokens is required with attention: one label per position")
        weights = _layers(attention, include_layers, include_heads, "attention")
        tokens = _prettify(tokens, prettify_tokens)
        if sentence_b_start is None:
            return [AttentionMaps("self-attention", weights, tokens, tokens)]
        if not 0 < sentence_b_start < len(tokens):
            raise ValueError(f"sentence_b_start={sentence_b_start} must fall inside the {len(tokens)} tokens")
        n, s = len(tokens), sentence_b_start
        views = [("All", 0, n, 0, n), ("Sentence A -> Sentence A", 0, s, 0, s), ("Sentence B -> Sentence B", s, n, s, n),
                 ("Sentence A -> Sentence B", 0, s, s, n), ("Sentence B -> Sentence A", s, n, 0, s)]
        return [AttentionMaps(name, weights[:, :, q0:q1, k0:k1], tokens[q0:q1], tokens[k0:k1])
                for name, q0, q1, k0, k1 in views]
    if not any(seq2seq[:3]):
        raise ValueError("no attention given: pass attention (self-attention models) or encoder_attention, "
                         "decoder_attention, cross_attention (encoder-decoder models)")
    maps = []
    for name, value, queries, keys in (("Encoder", encoder_attention, encoder_tokens, encoder_tokens),
                                       ("Decoder", decoder_attention, decoder_tokens, decoder_tokens),
                                       ("Cross", cross_attention, decoder_tokens, encoder_tokens)):
        if value is None:
            continue
        if queries is None or keys is None:
            needed = "encoder_tokens and decoder_tokens" if name == "Cross" else f"{name.lower()}_tokens"
            raise ValueError(f"{name.lower()}_attention needs {needed}")
        weights = _layers(value, include_layers, include_heads, f"{name.lower()}_attention")
        maps.append(AttentionMaps(name, weights, _prettify(queries, prettify_tokens), _prettify(keys, prettify_tokens)))
    return maps


def _first_layer(layer: int | None, include_layers: Sequence[int] | None) -> int:
    if layer is None:
        return 0
    if include_layers is None:
        return layer
    if layer not in include_layers:
        raise ValueError(f"layer {layer} is not in include_layers {list(include_layers)}")
    return list(include_layers).index(layer)


def _first_head(heads: Sequence[int] | None) -> HeadChoice:
    if heads is None:
        return "all"
    heads = list(heads)
    if len(heads) != 1:
        raise ValueError(f"heads={heads}: glassformer's page starts on one head or on all of them; pass one head "
                         f"(heads=[{heads[0] if heads else 0}]) or heads=None")
    return int(heads[0])


def _finish(page: str, html_action: str, out: str | os.PathLike | None) -> AttentionPage:
    if html_action not in HTML_ACTIONS:
        raise ValueError(f"html_action must be one of {', '.join(HTML_ACTIONS)}, got {html_action!r}")
    result = AttentionPage(page)
    if out is not None:
        result.save(out)
    return result


def head_view(
    attention: Sequence[Any] | None = None,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    prettify_tokens: bool = True,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    encoder_attention: Sequence[Any] | None = None,
    decoder_attention: Sequence[Any] | None = None,
    cross_attention: Sequence[Any] | None = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    include_layers: Sequence[int] | None = None,
    html_action: str = "view",
    *,
    out: str | os.PathLike | None = None,
) -> AttentionPage:
    """BertViz's head view, with BertViz's arguments: the page as an HTML string, also written to `out` if given.

    `layer` is the layer shown first, `heads` the one head shown first (default: all heads);
    `include_layers` keeps only those layers. `html_action` is accepted as BertViz takes it; both
    values return the page.
    """
    maps = _maps(attention, tokens, sentence_b_start, prettify_tokens, encoder_attention, decoder_attention,
                 cross_attention, encoder_tokens, decoder_tokens, include_layers, None)
    page = head_view_html(maps, layer=_first_layer(layer, include_layers), head=_first_head(heads))
    return _finish(page, html_action, out)


def model_view(
    attention: Sequence[Any] | None = None,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    prettify_tokens: bool = True,
    display_mode: str = "dark",
    encoder_attention: Sequence[Any] | None = None,
    decoder_attention: Sequence[Any] | None = None,
    cross_attention: Sequence[Any] | None = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    include_layers: Sequence[int] | None = None,
    include_heads: Sequence[int] | None = None,
    html_action: str = "view",
    *,
    out: str | os.PathLike | None = None,
) -> AttentionPage:
    """BertViz's model view (every layer × head as a thumbnail), with BertViz's arguments; written to `out` if given.

    `include_layers` and `include_heads` keep only those layers and heads. `display_mode` is checked
    but the page has one (light) style.
    """
    if display_mode not in DISPLAY_MODES:
        raise ValueError(f"display_mode must be one of {', '.join(DISPLAY_MODES)}, got {display_mode!r}")
    maps = _maps(attention, tokens, sentence_b_start, prettify_tokens, encoder_attention, decoder_attention,
                 cross_attention, encoder_tokens, decoder_tokens, include_layers, include_heads)
    return _finish(model_view_html(maps), html_action, out)
