"""Heatmap pictures (matplotlib, drawn off-screen with Agg): attention matrices with token labels, and PNG helpers.

Figures are built with ``matplotlib.figure.Figure`` directly rather than pyplot, so nothing
depends on a display or on global state, and a web app can draw from several threads.
"""

from __future__ import annotations

import html
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from glassformer._files import atomic_write
from glassformer.viz.head_view import AttentionMaps

CMAP = "viridis"


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes, ``figsize × dpi`` pixels (layouts are fitted with tight_layout, not cropped)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_png(path: str | os.PathLike, fig: Figure, dpi: int = 100) -> Path:
    """Write the figure as a PNG atomically; returns the path."""
    path = Path(path)
    data = figure_png(fig, dpi)
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return path


def matrix_png(matrix: np.ndarray, cmap: str = "RdBu") -> bytes:
    """A 2-D array as PNG bytes, one pixel per number, coloured symmetrically around 0 (no axes, no figure).

    Cheap enough to draw every dimension of a layer's vectors on each request; a page scales it up
    with ``image-rendering: pixelated``.
    """
    from matplotlib.image import imsave

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    peak = float(np.abs(matrix[np.isfinite(matrix)]).max()) if np.isfinite(matrix).any() else 1.0
    buffer = io.BytesIO()
    imsave(buffer, matrix, cmap=cmap, vmin=-peak, vmax=peak, format="png")
    return buffer.getvalue()


def _tick_labels(tokens: Sequence[str], limit: int = 16) -> list[str]:
    return [t if len(t) <= limit else t[: limit - 1] + "…" for t in tokens]


def matrix_heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool | None = None,
    cell: float = 0.32,
) -> Figure:
    """A labelled heatmap of a 2-D array; cells are annotated with their values when the matrix is small."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    rows, cols = matrix.shape
    width = min(24.0, max(4.0, 1.6 + cols * cell))
    height = min(24.0, max(3.0, 1.2 + rows * cell))
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    if row_labels is not None:
        ax.set_yticks(range(rows), _tick_labels(row_labels), fontsize=8)
    if col_labels is not None:
        ax.set_xticks(range(cols), _tick_labels(col_labels), fontsize=8, rotation=60, ha="right",
                      rotation_mode="anchor")
    if annotate is None:
        annotate = rows * cols <= 144
    if annotate:
        for i in range(rows):
            for j in range(cols):
                value = matrix[i, j]
                red, green, blue, _ = image.cmap(image.norm(value))
                # Dark text on light cells and light text on dark ones, whatever the colour map.
                light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if light else "white")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def attention_heatmap(
    maps: AttentionMaps,
    layer: int = -1,
    head: int | None = None,
    *,
    start: int = 0,
    length: int = 64,
    title: str | None = None,
) -> Figure:
    """Token × token attention of one layer and head (or the mean over heads when ``head`` is None).

    Rows are queries, columns keys. At most ``length`` tokens per side are drawn, from ``start``
    (clipped to each side), so long inputs stay legible.
    """
    if length < 1:
        raise ValueError(f"length must be at least 1 token, got {length}")
    matrix = maps.matrix(layer, head)
    tq, tk = matrix.shape
    q0 = max(0, min(start, tq - min(length, tq)))
    k0 = max(0, min(start, tk - min(length, tk)))
    q1, k1 = min(tq, q0 + length), min(tk, k0 + length)
    shown = matrix[q0:q1, k0:k1]
    layer_index = layer if layer >= 0 else maps.n_layers + layer
    which = "mean over heads" if head is None else f"head {head}"
    window = "" if (q1 - q0, k1 - k0) == (tq, tk) else f" (queries {q0}–{q1 - 1}, keys {k0}–{k1 - 1})"
    return matrix_heatmap(
        shown,
        maps.query_tokens[q0:q1],
        maps.key_tokens[k0:k1],
        title=title or f"{maps.name}: layer {layer_index}, {which}{window}",
        xlabel="key (attended to)",
        ylabel="query (attending)",
        vmin=0.0,
        vmax=float(max(shown.max(), 1e-6)),
    )


def attention_heatmap_png(maps: AttentionMaps, layer: int = -1, head: int | None = None, **options: object) -> bytes:
    """:func:`attention_heatmap` as PNG bytes."""
    return figure_png(attention_heatmap(maps, layer, head, **options))  # type: ignore[arg-type]


def token_scores_html(tokens: Sequence[str], scores: Sequence[float], *, color: str = "31, 119, 180") -> str:
    """Tokens as inline HTML spans shaded by a score in [0, 1] (e.g. the [CLS] token's attention to each token).

    Scores are scaled by their maximum so the strongest token is fully shaded; the exact value
    is in each span's tooltip. ``color`` is an ``"r, g, b"`` triple.
    """
    values = np.asarray(list(scores), dtype=np.float64)
    if len(values) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(values)} scores")
    peak = float(values.max()) if len(values) and values.max() > 0 else 1.0
    spans = []
    for token, value in zip(tokens, values):
        alpha = max(0.0, float(value)) / peak
        spans.append(
            f'<span title="{value:.4f}" style="background: rgba({color}, {alpha:.3f}); padding: 1px 3px; '
            f'margin: 1px; border-radius: 3px; display: inline-block">{html.escape(str(token))}</span>'
        )
    return "<div>" + "".join(spans) + "</div>"


def signed_token_scores_html(tokens: Sequence[str], scores: Sequence[float]) -> str:
    """Tokens shaded by a signed score: blue for the prediction, red against it, scaled by the largest magnitude.

    Each span carries its exact value in ``data-score`` and its tooltip.
    """
    values = np.asarray(list(scores), dtype=np.float64)
    if len(values) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(values)} scores")
    peak = float(np.abs(values).max()) if len(values) and np.abs(values).max() > 0 else 1.0
    spans = []
    for token, value in zip(tokens, values):
        color = "31, 119, 180" if value >= 0 else "214, 39, 40"
        spans.append(
            f'<span class="gf-score" data-score="{float(value)!r}" title="{value:.4f}" style="background: '
            f'rgba({color}, {abs(float(value)) / peak:.3f}); padding: 1px 3px; margin: 1px; border-radius: 3px; '
            f'display: inline-block">{html.escape(str(token))}</span>'
        )
    return "<div>" + "".join(spans) + "</div>"
