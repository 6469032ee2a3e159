"""Token and patch embeddings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glassformer.nn import PatchEmbedding, TokenEmbedding, image_to_patches


def test_token_embedding_looks_up_rows_and_scales() -> None:
    emb = TokenEmbedding(10, 4, scale=True)
    ids = torch.tensor([[3, 0, 9]])
    torch.testing.assert_close(emb(ids), emb.weight[[3, 0, 9]].unsqueeze(0) * math.sqrt(4))
    assert TokenEmbedding(10, 4)(ids).shape == (1, 3, 4)


def test_token_ids_out_of_range() -> None:
    emb = TokenEmbedding(10, 4)
    with pytest.raises(ValueError, match="token id 10 is out of range for a vocabulary of size 10"):
        emb(torch.tensor([1, 10]))
    with pytest.raises(ValueError, match="token id -1 is out of range"):
        emb(torch.tensor([-1, 2]))


def test_padding_idx_gets_no_gradient() -> None:
    emb = TokenEmbedding(5, 3, padding_idx=0)
    emb(torch.tensor([0, 1, 0])).sum().backward()
    assert (emb.weight.grad[0] == 0).all() and (emb.weight.grad[1] != 0).all()


def test_patches_are_row_major_and_channel_major() -> None:
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4)  # (C, H, W)
    patches = image_to_patches(image, 2)
    assert patches.shape == (1, 4, 8)
    # Patch 1 is the top-right 2x2 block; channel 0's four pixels come first, then channel 1's.
    assert patches[0, 1].tolist() == [2, 3, 6, 7, 18, 19, 22, 23]


def test_patches_equal_torch_unfold() -> None:
    """Reference: torch.nn.functional.unfold (im2col) with kernel = stride = P."""
    images = torch.randn(3, 3, 12, 8)
    expected = F.unfold(images, kernel_size=4, stride=4).transpose(1, 2)  # (B, N, C*P*P)
    torch.testing.assert_close(image_to_patches(images, 4), expected)


def test_patch_embedding_equals_conv2d_with_reshaped_weight() -> None:
    """Reference: nn.Conv2d(kernel=stride=P), the usual ViT implementation; its weight reshaped to (D, C*P*P)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, kernel_size=4, stride=4)
    patch = PatchEmbedding(image_size=8, patch_size=4, in_channels=3, d_model=16)
    with torch.no_grad():
        patch.proj.weight.copy_(conv.weight.reshape(16, -1))
        patch.proj.bias.copy_(conv.bias)
    images = torch.randn(2, 3, 8, 8)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, N, D)
    torch.testing.assert_close(patch(images), expected, atol=1e-5, rtol=0)


def test_image_size_not_divisible_by_patch_size() -> None:
    with pytest.raises(ValueError, match="image size 10x8 is not divisible by patch_size=4"):
        image_to_patches(torch.zeros(1, 1, 10, 8), 4)
    with pytest.raises(ValueError, match="image_size=30 is not divisible by patch_size=7"):
        PatchEmbedding(30, 7, 1, 8)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\)"):
        PatchEmbedding(28, 7, 1, 8)(torch.zeros(2, 1, 14, 14))
