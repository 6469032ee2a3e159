"""What a Vision Transformer looks at: the [CLS] token's attention over patches, drawn over the image, and rollout.

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers") follows
attention through the layers: each layer's weights are averaged over heads, the identity is
added for the residual connection, rows are renormalised to sum to 1, and the per-layer
matrices are multiplied, ``R = Â_L ⋯ Â_2 Â_1``. Row 0 of ``R`` (the [CLS] token) says how much
each input patch contributed to the final [CLS] state.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

OVERLAY_CMAP = "inferno"


def attention_rollout(attentions: Sequence[Tensor], *, add_residual: bool = True) -> Tensor:
    """Attention rollout ``R = Â_L ⋯ Â_1`` with ``Â_l = rownorm(mean_heads(A_l) + I)``; returns ``(B, T, T)``.

    ``attentions`` is one ``(B, H, T, T)`` (or ``(H, T, T)``) tensor per layer, first layer first.
    With ``add_residual=False`` the identity is not added (the plain product of mean attentions).
    """
    if not attentions:
        raise ValueError("attention rollout needs at least one layer of attention weights")
    rollout = None
    for index, layer in enumerate(attentions):
        layer = layer.detach().to(torch.float64)
        if layer.dim() == 3:
            layer = layer.unsqueeze(0)
        if layer.dim() != 4 or layer.shape[-1] != layer.shape[-2]:
            raise ValueError(f"layer {index}: expected (B, H, T, T) self-attention, got shape {tuple(layer.shape)}")
        mixed = layer.mean(dim=1)  # (B, T, T)
        if add_residual:
            mixed = mixed + torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout  # later layers multiply on the left
    return rollout.float()


def patch_grid(n_patches: int) -> int:
    """The side of the square patch grid: 16 patches → 4."""
    side = math.isqrt(n_patches)
    if side * side != n_patches:
        raise ValueError(f"{n_patches} patches do not form a square grid")
    return side


def cls_attention(attentions: Sequence[Tensor], layer: int, head: int | None = None, batch_index: int = 0) -> np.ndarray:
    """How much [CLS] attends to each patch in one layer (one head, or the mean when None), as a ``(g, g)`` grid."""
    weights = attentions[layer][batch_index].detach().float().cpu()  # (H, T, T)
    row = weights[:, 0, 1:].mean(dim=0) if head is None else weights[head, 0, 1:]  # (N,)
    side = patch_grid(row.numel())
    return row.reshape(side, side).numpy()


def rollout_map(attentions: Sequence[Tensor], batch_index: int = 0) -> np.ndarray:
    """The [CLS] row of :func:`attention_rollout` over the patches, as a ``(g, g)`` grid."""
    row = attention_rollout(attentions)[batch_index, 0, 1:]
    side = patch_grid(row.numel())
    return row.reshape(side, side).cpu().numpy()


def _display_shape(array: np.ndarray) -> np.ndarray:
    """``(B, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` → what imshow draws: ``(H, W)`` grey or ``(H, W, 3)`` colour."""
    if array.ndim == 4:
        array = array[0]
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
    return array


def _display_image(image: Tensor | np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image ``(C, H, W)`` or ``(H, W)`` stretched to [0, 1] for drawing, and the colour map it needs."""
    array = image.detach().float().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image, dtype=np.float32)
    array = _display_shape(array)
    low, high = float(array.min()), float(array.max())
    array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return array, ("gray" if array.ndim == 2 else None)


def image_png(image: Tensor | np.ndarray, value_range: tuple[float, float] | None = None) -> bytes:
    """An image ``(C, H, W)`` or ``(H, W)`` as PNG bytes at its own size, its values stretched to the full range.

    `value_range` maps (low, high) to black and white instead of the image's own minimum and
    maximum, so that the patches of one picture keep its contrast. No figure is drawn, so it is
    cheap enough for one PNG per patch; a page scales it up with ``image-rendering: pixelated``.
    """
    from matplotlib.image import imsave

    picture, cmap = _display_image(image)
    if value_range is not None:
        array = image.detach().float().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image, np.float32)
        low, high = value_range
        picture = np.clip((_display_shape(array) - low) / max(high - low, 1e-12), 0.0, 1.0)
    buffer = io.BytesIO()
    imsave(buffer, picture, cmap=cmap, vmin=0.0, vmax=1.0, format="png")
    return buffer.getvalue()


def _draw_overlay(ax, picture: np.ndarray, cmap: str | None, heat: np.ndarray, title: str, alpha: float) -> None:
    height, width = picture.shape[:2]
    ax.imshow(picture, cmap=cmap, extent=(0, width, height, 0))
    ax.imshow(heat, cmap=OVERLAY_CMAP, alpha=alpha, extent=(0, width, height, 0), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def overlay_figure(image: Tensor | np.ndarray, heat: np.ndarray, title: str = "", alpha: float = 0.55) -> Figure:
    """One patch map ``(g, g)`` drawn over the image, beside the image alone."""
    picture, cmap = _display_image(image)
    fig = Figure(figsize=(6, 3.2))
    left, right = fig.subplots(1, 2)
    left.imshow(picture, cmap=cmap)
    left.set_title("image", fontsize=9)
    left.set_xticks([])
    left.set_yticks([])
    _draw_overlay(right, picture, cmap, np.asarray(heat), title, alpha)
    fig.tight_layout()
    return fig


def image_attention_figure(
    image: Tensor | np.ndarray,
    attentions: Sequence[Tensor],
    *,
    layers: Sequence[int] | None = None,
    heads: bool = True,
    alpha: float = 0.55,
    title: str | None = None,
) -> Figure:
    """The [CLS] attention over the patches per layer (rows) and head (columns, plus the mean), and the rollout.

    The first row holds the image and the rollout across all layers; each later row is one
    layer: its mean over heads, then each head. Pass ``heads=False`` for the means only.
    """
    picture, cmap = _display_image(image)
    n_layers = len(attentions)
    layers = list(range(n_layers)) if layers is None else [layer if layer >= 0 else n_layers + layer for layer in layers]
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise ValueError(f"layer {layer} is out of range for {n_layers} layers")
    n_heads = attentions[0].shape[1]
    cols = 1 + (n_heads if heads else 0)
    cols = max(cols, 2)
    rows = 1 + len(layers)
    fig = Figure(figsize=(1.5 * cols + 0.4, 1.55 * rows + 0.5))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(picture, cmap=cmap)
    axes[0, 0].set_title("image", fontsize=8)
    _draw_overlay(axes[0, 1], picture, cmap, rollout_map(attentions), "rollout (all layers)", alpha)
    axes[0, 1].axis("on")
    for row, layer in enumerate(layers, start=1):
        _draw_overlay(axes[row, 0], picture, cmap, cls_attention(attentions, layer), f"layer {layer}, mean", alpha)
        axes[row, 0].axis("on")
        if heads:
            for head in range(n_heads):
                ax = axes[row, 1 + head]
                _draw_overlay(ax, picture, cmap, cls_attention(attentions, layer, head), f"L{layer} head {head}", alpha)
                ax.axis("on")
    fig.suptitle(title or "[CLS] attention over patches", fontsize=10)
    fig.tight_layout()
    return fig
