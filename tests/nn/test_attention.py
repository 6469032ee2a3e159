"""Attention: parity with torch.nn.MultiheadAttention, explicit vs fused path, masks, cache, gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from glassformer.nn import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
)

from .torch_reference import copy_attention

D_MODEL, N_HEADS = 16, 4


def _pair(seed: int = 0) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    torch.manual_seed(seed)
    ours = MultiHeadAttention(D_MODEL, N_HEADS).eval()
    theirs = nn.MultiheadAttention(D_MODEL, N_HEADS, batch_first=True).eval()
    copy_attention(ours, theirs)
    return ours, theirs


def _lengths_mask(lengths: list[int], t: int) -> torch.Tensor:
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, T) 1 = real


@pytest.mark.parametrize("fused", [True, False])
def test_self_attention_with_padding_matches_torch(fused: bool) -> None:
    """Reference: torch.nn.MultiheadAttention (its key_padding_mask uses True = ignore, the opposite of ours)."""
    ours, theirs = _pair()
    ours.fused = fused
    x = torch.randn(3, 7, D_MODEL)
    attention_mask = _lengths_mask([7, 4, 2], 7)
    out, weights = ours(x, mask=padding_mask(attention_mask), need_weights=not fused)
    ref, ref_w = theirs(
        x, x, x, key_padding_mask=attention_mask == 0, need_weights=True, average_attn_weights=False
    )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    if not fused:
        torch.testing.assert_close(weights, ref_w, atol=1e-6, rtol=0)


def test_cross_attention_with_padding_matches_torch() -> None:
    """Reference: torch.nn.MultiheadAttention(query=x, key=value=memory)."""
    ours, theirs = _pair(1)
    x = torch.randn(2, 5, D_MODEL)
    memory = torch.randn(2, 9, D_MODEL)
    memory_mask = _lengths_mask([9, 6], 9)
    out, weights = ours(x, memory, mask=padding_mask(memory_mask), need_weights=True)
    ref, ref_w = theirs(
        x, memory, memory, key_padding_mask=memory_mask == 0, need_weights=True, average_attn_weights=False
    )
    assert weights.shape == (2, N_HEADS, 5, 9)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, ref_w, atol=1e-6, rtol=0)


def test_causal_self_attention_matches_torch() -> None:
    """Reference: torch.nn.MultiheadAttention with attn_mask = upper triangle (True = blocked)."""
    ours, theirs = _pair(2)
    x = torch.randn(2, 6, D_MODEL)
    out, _ = ours(x, mask=causal_mask(6))
    blocked = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    ref, _ = theirs(x, x, x, attn_mask=blocked, need_weights=False)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


MASKS = {
    "none": lambda: None,
    "padding": lambda: padding_mask(_lengths_mask([8, 5], 8)),
    "causal": lambda: causal_mask(8),
    "padding+causal": lambda: combine_masks(causal_mask(8), padding_mask(_lengths_mask([8, 3], 8))),
}


@pytest.mark.parametrize("kind", list(MASKS))
def test_explicit_and_fused_paths_agree(kind: str) -> None:
    """Reference: torch.nn.functional.scaled_dot_product_attention (fused) vs our softmax(QKᵀ/√d)V."""
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 4, 8, 8) for _ in range(3))
    mask = MASKS[kind]()
    fused, no_weights = scaled_dot_product_attention(q, k, v, mask, fused=True)
    explicit, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    assert no_weights is None
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 8), atol=1e-6, rtol=0)


def test_explicit_path_is_the_formula() -> None:
    """Independent reference: softmax(QKᵀ/√d_k)V written out with math.exp over Python lists."""
    torch.manual_seed(4)
    q, k, v = (torch.randn(1, 1, 3, 2, dtype=torch.float64) for _ in range(3))
    out, weights = scaled_dot_product_attention(q, k, v, need_weights=True)
    Q, K, V = q[0, 0].tolist(), k[0, 0].tolist(), v[0, 0].tolist()
    for i in range(3):
        scores = [sum(a * b for a, b in zip(Q[i], K[j])) / math.sqrt(2) for j in range(3)]
        exps = [math.exp(s) for s in scores]
        probs = [e / sum(exps) for e in exps]
        row = [sum(probs[j] * V[j][c] for j in range(3)) for c in range(2)]
        assert weights[0, 0, i].tolist() == pytest.approx(probs, abs=1e-12)
        assert out[0, 0, i].tolist() == pytest.approx(row, abs=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_fully_masked_row_gives_zeros_not_nan(fused: bool) -> None:
    """A query that may see no key at all gets a zero output row, zero weights and finite gradients."""
    torch.manual_seed(5)
    q, k, v = (torch.randn(2, 2, 4, 8, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    mask[0, :, 1, :] = False  # query 1 of batch 0 sees nothing
    mask[1] = False  # batch 1 sees nothing at all (an all-padding sequence)
    out, weights = scaled_dot_product_attention(q, k, v, mask, fused=fused, need_weights=not fused)
    assert torch.isfinite(out).all()
    assert (out[0, :, 1] == 0).all() and (out[1] == 0).all()
    assert out[0, :, 0].abs().sum() > 0
    if weights is not None:
        assert (weights[0, :, 1] == 0).all() and (weights[1] == 0).all()
    out.sum().backward()
    for tensor in (q, k, v):
        assert torch.isfinite(tensor.grad).all()


def test_bfloat16_training_on_cpu_takes_the_explicit_path_with_the_fused_kernels_gradients() -> None:
    """Reference: PyTorch's fused kernel in float32; ours trains bf16 short sequences through the formula."""
    from glassformer.nn.attention import EXPLICIT_TRAINING_MAX_KEYS, fused_is_slower

    torch.manual_seed(7)
    q, k, v = (torch.randn(2, 4, 8, 16) for _ in range(3))
    mask = MASKS["padding+causal"]()
    low = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    assert fused_is_slower(*low)
    with torch.no_grad():
        assert not fused_is_slower(*low)  # inference keeps the fused kernel
    assert not fused_is_slower(*(t.float().detach().requires_grad_() for t in low))  # so does float32
    long = torch.randn(1, 1, EXPLICIT_TRAINING_MAX_KEYS + 1, 16, dtype=torch.bfloat16, requires_grad=True)
    assert not fused_is_slower(long, long, long)  # and long sequences, where it is the faster
    ours, _ = scaled_dot_product_attention(*low, mask, fused=True)
    ours.float().square().sum().backward()
    high = [t.detach().float().requires_grad_() for t in low]
    theirs = torch.nn.functional.scaled_dot_product_attention(*high, attn_mask=mask)
    theirs.square().sum().backward()
    torch.testing.assert_close(ours.float(), theirs, atol=3e-2, rtol=2e-2)
    for a, b in zip(low, high):
        torch.testing.assert_close(a.grad.float(), b.grad, atol=6e-2, rtol=5e-2)


def test_gradcheck_explicit_attention() -> None:
    """torch.autograd.gradcheck (float64) through softmax(QKᵀ/√d)V with a padding + causal mask."""
    torch.manual_seed(6)
    q, k, v = (torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = combine_masks(causal_mask(4), padding_mask(torch.tensor([[1, 1, 1, 0]])))

    def f(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return scaled_dot_product_attention(q, k, v, mask, fused=False)[0]

    assert torch.autograd.gradcheck(f, (q, k, v))


def test_gradcheck_multi_head_attention() -> None:
    """torch.autograd.gradcheck (float64) through MultiHeadAttention, inputs and weights."""
    torch.manual_seed(7)
    mha = MultiHeadAttention(6, 2).double()
    mha.fused = False
    x = torch.randn(1, 3, 6, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(1, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, m: mha(x, m)[0], (x, memory))
    params = [mha.q_proj.weight, mha.k_proj.weight, mha.out_proj.bias]

    def through_weights(*_: torch.Tensor) -> torch.Tensor:
        return mha(x.detach(), memory.detach())[0]

    assert torch.autograd.gradcheck(through_weights, tuple(params))


def test_self_attention_cache_matches_full_recompute() -> None:
    """Feeding tokens one at a time through a KVCache equals causal attention over the whole sequence."""
    torch.manual_seed(8)
    mha = MultiHeadAttention(D_MODEL, N_HEADS).eval()
    x = torch.randn(2, 6, D_MODEL)
    full, _ = mha(x, mask=causal_mask(6))
    cache = KVCache()
    steps = [mha(x[:, :3], mask=causal_mask(3), cache=cache)[0]]  # prefill 3 positions
    for t in range(3, 6):
        steps.append(mha(x[:, t : t + 1], mask=causal_mask(1, t + 1), cache=cache)[0])
    assert cache.length == 6
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_cross_attention_cache_projects_memory_once() -> None:
    """The cross-attention cache holds the projected memory after the first step and reuses it."""
    torch.manual_seed(9)
    mha = MultiHeadAttention(D_MODEL, N_HEADS).eval()
    memory = torch.randn(2, 5, D_MODEL)
    x = torch.randn(2, 3, D_MODEL)
    cache = KVCache()
    first, _ = mha(x[:, :1], memory, cache=cache)
    stored_k = cache.k
    # A different `memory` on later steps is ignored: the cached projection is what counts.
    second, _ = mha(x[:, 1:], torch.zeros_like(memory), cache=cache)
    assert cache.k is stored_k and cache.length == 5
    full, _ = mha(x, memory)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, atol=1e-5, rtol=0)


def test_d_model_not_divisible_by_heads() -> None:
    with pytest.raises(ValueError, match="d_model=100 is not divisible by n_heads=3"):
        MultiHeadAttention(100, 3)


def test_mask_of_wrong_shape_is_rejected() -> None:
    mha = MultiHeadAttention(D_MODEL, N_HEADS)
    x = torch.randn(2, 5, D_MODEL)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 1, 1, 4\) does not broadcast.*\(2, 4, 5, 5\)"):
        mha(x, mask=torch.ones(2, 1, 1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="must be a bool tensor"):
        mha(x, mask=torch.zeros(1, 1, 5, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
def test_fused_path_on_cuda_matches_explicit_and_handles_empty_rows(dtype: torch.dtype, atol: float) -> None:
    """The CUDA SDPA kernels (flash / memory-efficient) agree with the explicit path, empty rows included."""
    torch.manual_seed(10)
    q, k, v = (torch.randn(2, 4, 16, 32, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    mask = combine_masks(causal_mask(16, device="cuda"), padding_mask(_lengths_mask([16, 9], 16).cuda()))
    mask = mask.expand(2, 1, 16, 16).clone()
    mask[1, :, 3] = False
    fused, _ = scaled_dot_product_attention(q, k, v, mask)
    explicit, _ = scaled_dot_product_attention(q, k, v, mask, fused=False)
    torch.testing.assert_close(fused, explicit, atol=atol, rtol=0)
    assert (fused[1, :, 3] == 0).all()
    fused.float().sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
