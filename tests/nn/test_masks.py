"""Mask helpers: one convention, True = may attend, broadcastable to (B, H, T_q, T_k)."""

from __future__ import annotations

import pytest
import torch

from glassformer.nn import causal_mask, check_mask, combine_masks, padding_mask


def test_padding_mask_shape_and_values() -> None:
    mask = padding_mask(torch.tensor([[1, 1, 0], [1, 0, 0]]))
    assert mask.shape == (2, 1, 1, 3) and mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]


def test_padding_mask_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"\(batch, seq_len\), got shape \(3,\)"):
        padding_mask(torch.ones(3))


def test_causal_mask_is_lower_triangular() -> None:
    expected = [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(3).shape == (1, 1, 3, 3)
    assert causal_mask(3)[0, 0].tolist() == expected


def test_causal_mask_with_cached_keys() -> None:
    """Two new queries after three cached positions: query i is absolute position 3 + i."""
    mask = causal_mask(2, 5)[0, 0]
    assert mask.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    with pytest.raises(ValueError, match="t_q=3, t_k=2"):
        causal_mask(3, 2)


def test_combine_masks_is_logical_and_and_skips_none() -> None:
    combined = combine_masks(None, causal_mask(3), padding_mask(torch.tensor([[1, 1, 0]])), None)
    assert combined.shape == (1, 1, 3, 3)
    assert combined[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert combine_masks() is None and combine_masks(None) is None


def test_check_mask_names_expected_and_given_shapes() -> None:
    check_mask(torch.ones(2, 1, 1, 5, dtype=torch.bool), 2, 4, 3, 5)
    with pytest.raises(ValueError, match=r"\(2, 1, 3, 4\) does not broadcast to .* = \(2, 4, 3, 5\)"):
        check_mask(torch.ones(2, 1, 3, 4, dtype=torch.bool), 2, 4, 3, 5)
    with pytest.raises(ValueError, match="bool tensor"):
        check_mask(torch.ones(2, 1, 1, 5), 2, 4, 3, 5)
