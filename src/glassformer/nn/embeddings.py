"""Token embeddings and the patch embedding that turns an image into a sequence of tokens."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_ids(ids: Tensor, vocab_size: int) -> None:
    """Raise ValueError naming the first id outside ``[0, vocab_size)``, in eager CPU runs only.

    The check reads the ids' values, so it is skipped while ``torch.export``, ``torch.compile`` or the
    ONNX exporter trace the model (a value-dependent branch cannot be traced) and on accelerators
    (reading the values would make the host wait for the device at every step; the embedding kernel
    asserts there instead).
    """
    if torch.compiler.is_compiling() or ids.device.type != "cpu" or ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"token id {bad} is out of range for a vocabulary of size {vocab_size}")


class TokenEmbedding(nn.Module):
    """Token embedding: row E[id] of a learned table per token id, optionally times √d_model (Vaswani et al.)."""

    def __init__(self, vocab_size: int, d_model: int, padding_idx: int | None = None, scale: bool = False) -> None:
        super().__init__()
        if padding_idx is not None and not 0 <= padding_idx < vocab_size:
            raise ValueError(f"padding_idx={padding_idx} is outside the vocabulary of size {vocab_size}")
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.padding_idx = padding_idx
        self.scale = math.sqrt(d_model) if scale else 1.0
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model))

    def forward(self, ids: Tensor) -> Tensor:
        """Look up ``ids`` of any shape; returns ``ids.shape + (d_model,)``."""
        check_ids(ids, self.vocab_size)
        # padding_idx only stops the gradient of that row, as in nn.Embedding.
        return F.embedding(ids, self.weight, padding_idx=self.padding_idx) * self.scale


def image_to_patches(images: Tensor, patch_size: int) -> Tensor:
    """Cut ``(B, C, H, W)`` (or ``(C, H, W)``) images into ``(B, N, C·P·P)`` flattened patches.

    Patches follow the grid row by row (N = (H/P)·(W/P)); each is flattened channel-major as
    ``(C, P, P)``, so ``Linear`` with a ``Conv2d(kernel=stride=P)`` weight reshaped to
    ``(D, C·P·P)`` computes the same projection as the convolution.
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not divisible by patch_size={patch_size}")
    rows, cols = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    patches = patches.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, P, P)
    return patches.reshape(batch, rows * cols, channels * patch_size * patch_size)


class PatchEmbedding(nn.Module):
    """Patch embedding (ViT): split the image into P×P patches, flatten each, project it linearly to d_model."""

    def __init__(self, image_size: int, patch_size: int, in_channels: int, d_model: int) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size={image_size} is not divisible by patch_size={patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.n_patches = (image_size // patch_size) ** 2
        self.proj = nn.Linear(in_channels * patch_size * patch_size, d_model)

    def forward(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` images → ``(B, N, d_model)`` patch tokens."""
        if images.dim() == 3:
            images = images.unsqueeze(0)
        _, channels, height, width = images.shape
        if channels != self.in_channels or height != self.image_size or width != self.image_size:
            raise ValueError(
                f"expected images of shape (B, {self.in_channels}, {self.image_size}, {self.image_size}), "
                f"got {tuple(images.shape)}"
            )
        return self.proj(image_to_patches(images, self.patch_size))  # (B, N, D)
