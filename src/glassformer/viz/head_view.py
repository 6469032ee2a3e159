"""Interactive attention pages: the head view (tokens on both sides, lines weighted by attention) and the model view.

Each page is one self-contained HTML file: the attention weights are embedded as JSON, the
script and styles are inline (:mod:`glassformer.viz._assets`), nothing is fetched from a network,
so the file opens offline in any browser, inside or outside Jupyter.

The weights come in as :class:`AttentionMaps`: one kind of attention (encoder self-attention,
decoder self-attention, encoder–decoder cross-attention) of one input, shaped
``(layers, heads, T_q, T_k)``, with the query tokens (left side) and key tokens (right side).
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from glassformer._files import atomic_write

HeadChoice = int | str | None
ALL_HEADS, MEAN_HEADS = -1, -2



@functools.lru_cache(maxsize=None)
def _asset(name: str) -> str:
    """A style sheet or script inlined into every page (package data in ``glassformer/viz/assets``).

    The script reads its data from the page's ``<script type="application/json" id="gf-data">``
    element and draws the head view as SVG and the model view's thumbnails on canvases.
    """
    return importlib.resources.files("glassformer.viz").joinpath("assets", name).read_text(encoding="utf-8")

@dataclass
class AttentionMaps:
    """Attention weights of one input, ``weights[l, h, i, j]`` = how much query token i attends to key token j."""

    name: str
    weights: np.ndarray  # (layers, heads, T_q, T_k), float32
    query_tokens: list[str]
    key_tokens: list[str]

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=np.float32)
        if weights.ndim != 4:
            raise ValueError(f"attention weights must be (layers, heads, T_q, T_k), got shape {weights.shape}")
        self.weights = weights
        self.query_tokens = [str(t) for t in self.query_tokens]
        self.key_tokens = [str(t) for t in self.key_tokens]
        expected = (len(self.query_tokens), len(self.key_tokens))
        if weights.shape[2:] != expected:
            raise ValueError(
                f"{self.name}: weights of shape {weights.shape} do not match {expected[0]} query and "
                f"{expected[1]} key tokens"
            )

    @classmethod
    def from_attentions(
        cls,
        attentions: Sequence[torch.Tensor],
        query_tokens: Sequence[str],
        key_tokens: Sequence[str] | None = None,
        *,
        name: str = "self-attention",
        batch_index: int = 0,
    ) -> "AttentionMaps":
        """From a model output's ``attentions`` (one ``(B, H, T_q, T_k)`` tensor per layer).

        ``key_tokens`` defaults to ``query_tokens`` (self-attention). Positions past the given
        tokens (padding at the end of a batch row) are dropped.
        """
        if not attentions:
            raise ValueError("no attention tensors given; run the model with output_attentions=True")
        key_tokens = list(query_tokens) if key_tokens is None else list(key_tokens)
        layers = []
        for index, layer in enumerate(attentions):
            if layer.dim() != 4:
                raise ValueError(f"layer {index}: expected a (B, H, T_q, T_k) tensor, got shape {tuple(layer.shape)}")
            layers.append(layer[batch_index].detach().float().cpu())
        stacked = torch.stack(layers)  # (L, H, T_q, T_k)
        tq, tk = len(query_tokens), len(key_tokens)
        if tq > stacked.shape[2] or tk > stacked.shape[3]:
            raise ValueError(
                f"{name}: {tq} query / {tk} key tokens given but the attention covers only "
                f"{stacked.shape[2]} / {stacked.shape[3]} positions"
            )
        return cls(name, stacked[:, :, :tq, :tk].numpy(), list(query_tokens), key_tokens)

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1]

    def matrix(self, layer: int, head: int | None = None) -> np.ndarray:
        """The ``(T_q, T_k)`` weights of one layer and head, or their mean over heads when ``head`` is None."""
        if not -self.n_layers <= layer < self.n_layers:
            raise ValueError(f"layer {layer} is out of range for {self.n_layers} layers")
        if head is None:
            return self.weights[layer].mean(axis=0)
        if not -self.n_heads <= head < self.n_heads:
            raise ValueError(f"head {head} is out of range for {self.n_heads} heads")
        return self.weights[layer, head]


def seq2seq_maps(output: Any, source_tokens: Sequence[str], target_tokens: Sequence[str]) -> list[AttentionMaps]:
    """The three attentions of an encoder–decoder output (``Seq2SeqOutput`` run with ``output_attentions=True``)."""
    missing = [n for n in ("encoder_attentions", "decoder_attentions", "cross_attentions") if not getattr(output, n)]
    if missing:
        raise ValueError(f"the output has no {', '.join(missing)}; run the model with output_attentions=True")
    return [
        AttentionMaps.from_attentions(output.encoder_attentions, source_tokens, name="encoder self-attention"),
        AttentionMaps.from_attentions(output.decoder_attentions, target_tokens, name="decoder self-attention"),
        AttentionMaps.from_attentions(
            output.cross_attentions, target_tokens, source_tokens, name="encoder-decoder cross-attention"
        ),
    ]


def _as_list(maps: AttentionMaps | Sequence[AttentionMaps]) -> list[AttentionMaps]:
    items = [maps] if isinstance(maps, AttentionMaps) else list(maps)
    if not items:
        raise ValueError("no attention maps given")
    for item in items:
        if not isinstance(item, AttentionMaps):
            raise TypeError(f"expected AttentionMaps, got {type(item).__name__}")
    return items


def _head_code(head: HeadChoice, n_heads: int) -> int:
    """The page's head selection: a head index, -1 for every head in its colour, -2 for the mean."""
    if head is None or head == "all":
        return ALL_HEADS
    if head == "mean":
        return MEAN_HEADS
    if isinstance(head, int) and 0 <= head < n_heads:
        return head
    raise ValueError(f"head must be 0..{n_heads - 1}, 'all' or 'mean', got {head!r}")


def _page(maps: list[AttentionMaps], mode: str, *, title: str | None, layer: int, head: HeadChoice,
          window: int, threshold: float, decimals: int, scale_lines: bool) -> str:
    if window < 1:
        raise ValueError(f"window must be at least 1 token, got {window}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a weight in [0, 1], got {threshold}")
    first = maps[0]
    layer = layer if layer >= 0 else first.n_layers + layer
    if not 0 <= layer < first.n_layers:
        raise ValueError(f"layer must be 0..{first.n_layers - 1}, got {layer}")
    data = {
        "mode": mode,
        "window": window,
        "threshold": threshold,
        "scale": 10**decimals,
        "scale_lines": bool(scale_lines),
        "initial": {"view": 0, "layer": layer, "head": _head_code(head, first.n_heads)},
        "views": [
            {
                "name": m.name,
                "query_tokens": m.query_tokens,
                "key_tokens": m.key_tokens,
                # Integers in units of 10^-decimals: about half the size of decimal fractions in JSON.
                "weights": np.rint(m.weights.astype(np.float64) * 10**decimals).astype(np.int64).tolist(),
            }
            for m in maps
        ],
    }
    # "<" never occurs in JSON outside strings; escaping it keeps a token like "</script>" inert.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    heading = title or ("Attention model view" if mode == "model" else "Attention head view")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{html.escape(heading)}</title>\n<style>{_asset('head_view.css')}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(heading)}</h1>\n<div id=\"gf-root\"></div>\n"
        f"<script type=\"application/json\" id=\"gf-data\">{payload}</script>\n"
        f"<script>{_asset('head_view.js')}</script>\n</body>\n</html>\n"
    )


def head_view_html(
    maps: AttentionMaps | Sequence[AttentionMaps],
    *,
    title: str | None = None,
    layer: int = 0,
    head: HeadChoice = "all",
    window: int = 64,
    threshold: float = 0.01,
    decimals: int = 4,
    scale_lines: bool = False,
) -> str:
    """A self-contained HTML head view of one or more attention kinds (a selector switches between them).

    ``head``: an index, ``"all"`` (every head in its colour) or ``"mean"``. Only ``window``
    tokens per side are drawn at a time (the page has controls to move and widen the window),
    and lines whose weight is below ``threshold`` are left out, so long inputs stay readable. A line's
    opacity is its weight; ``scale_lines=True`` (also a checkbox on the page) divides by the
    strongest shown weight instead, for long inputs whose attention is spread thin.
    Weights are stored rounded to ``decimals`` places (as integers in units of 10^-decimals).
    """
    return _page(_as_list(maps), "head", title=title, layer=layer, head=head, window=window,
                 threshold=threshold, decimals=decimals, scale_lines=scale_lines)


def model_view_html(
    maps: AttentionMaps | Sequence[AttentionMaps],
    *,
    title: str | None = None,
    layer: int = 0,
    head: HeadChoice = 0,
    window: int = 64,
    threshold: float = 0.01,
    decimals: int = 4,
    scale_lines: bool = False,
) -> str:
    """A self-contained HTML model view: a grid of every layer × head as thumbnails; clicking one opens its head view."""
    return _page(_as_list(maps), "model", title=title, layer=layer, head=head, window=window,
                 threshold=threshold, decimals=decimals, scale_lines=scale_lines)


def save_html(path: str | os.PathLike, page: str) -> Path:
    """Write an HTML page atomically (temporary name, then rename); returns the path."""
    path = Path(path)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path


def write_head_view(path: str | os.PathLike, maps: AttentionMaps | Sequence[AttentionMaps], **options: Any) -> Path:
    """Write :func:`head_view_html` to ``path``."""
    return save_html(path, head_view_html(maps, **options))


def write_model_view(path: str | os.PathLike, maps: AttentionMaps | Sequence[AttentionMaps], **options: Any) -> Path:
    """Write :func:`model_view_html` to ``path``."""
    return save_html(path, model_view_html(maps, **options))


def embedded_data(page: str) -> dict[str, Any]:
    """The data embedded in a page written by this module, weights turned back into fractions (for tests and tools)."""
    start_tag = '<script type="application/json" id="gf-data">'
    start = page.index(start_tag) + len(start_tag)
    data = json.loads(page[start:page.index("</script>", start)])
    for view in data["views"]:
        view["weights"] = (np.asarray(view["weights"], dtype=np.float64) / data["scale"]).tolist()
    return data
