"""The CPU fast path: the same layers with fused kernels give torch's numbers, keep their classes, and still train;
the decision is taken at construction, and `kernels.plain()` turns the fused kernels off within a block."""

from __future__ import annotations

import pytest
import torch

from glassformer.nn import FeedForward, MultiHeadAttention, kernels
from glassformer.nn.kernels import onednn_linear_available


@pytest.fixture(params=["onednn", "fallback"])
def kernel(request, monkeypatch):
    """Both branches of nn.kernels.linear: the private oneDNN op, and the public-op fallback without it."""
    if request.param == "onednn" and not onednn_linear_available():
        pytest.skip("this PyTorch build has no oneDNN linear")
    if request.param == "fallback":
        monkeypatch.setattr(kernels, "onednn_linear_available", lambda: False)
    return request.param


@pytest.mark.parametrize("activation", [None, "relu", "gelu", "gelu_tanh"])
def test_kernel_linear_equals_torch(kernel, activation):
    """Reference: torch.nn.functional.linear then the activation, float32 and (where oneDNN runs it) bfloat16."""
    torch.manual_seed(0)
    x, weight, bias = torch.randn(3, 100, 24) * 3, torch.randn(40, 24), torch.randn(40)  # float32 fuses from 256 rows
    expected = torch.nn.functional.linear(x, weight, bias)
    if activation == "relu":
        expected = expected.relu()
    elif activation:
        expected = torch.nn.functional.gelu(expected, approximate="tanh" if activation == "gelu_tanh" else "none")
    with torch.inference_mode():
        assert (kernels.linear(x, weight, bias, activation) - expected).abs().max() <= 1e-4
        half = kernels.linear(x.bfloat16(), weight.bfloat16(), bias.bfloat16(), activation).float()
    assert (half - expected).abs().max() <= 0.05 * expected.abs().max()


def test_fast_attention_matches_torch_and_follows_weight_changes(kernel):
    """Reference: torch.nn.MultiheadAttention with the same weights, before and after an in-place update."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(32, 4, fast=True).eval()
    assert type(ours) is MultiHeadAttention and ours.fast and type(ours.q_proj) is torch.nn.Linear
    reference = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x = torch.randn(3, 90, 32)  # 270 rows: float32 fuses from 256 on
    keep = torch.ones(3, 90, dtype=torch.bool)
    keep[1, 6:] = False

    def compare():
        with torch.no_grad():
            reference.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
            reference.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
            reference.out_proj.load_state_dict(ours.out_proj.state_dict())
            expected, _ = reference(x, x, x, key_padding_mask=~keep, need_weights=False)
        with torch.inference_mode():
            got, _ = ours(x, mask=keep[:, None, None, :])
        assert (got - expected).abs().max() <= 1e-5

    compare()
    with torch.no_grad():
        ours.k_proj.weight.mul_(1.5)  # the stacked copy must be rebuilt
    compare()


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "relu"])
def test_fast_feed_forward_matches_torch(kernel, activation):
    """Reference: torch Linear → the activation → Linear, same weights."""
    torch.manual_seed(0)
    ffn = FeedForward(16, 48, activation=activation, fast=True).eval()
    assert type(ffn) is FeedForward and ffn.fast
    x = torch.randn(2, 130, 16) * 3  # 260 rows: float32 fuses from 256 on
    with torch.no_grad():
        pre = x @ ffn.fc1.weight.T + ffn.fc1.bias
        hidden = pre.relu() if activation == "relu" else torch.nn.functional.gelu(
            pre, approximate="tanh" if activation == "gelu_tanh" else "none")
        expected = hidden @ ffn.fc2.weight.T + ffn.fc2.bias
    with torch.inference_mode():
        assert (ffn(x) - expected).abs().max() <= 1e-5


def test_fast_layers_keep_gradients_when_training():
    torch.manual_seed(0)
    ffn = FeedForward(6, 12, activation="gelu", fast=True)
    reference = FeedForward(6, 12, activation="gelu", fast=False)
    reference.load_state_dict(ffn.state_dict())
    x = torch.randn(4, 6)
    ffn(x).square().sum().backward()
    reference(x).square().sum().backward()
    assert torch.allclose(ffn.fc1.weight.grad, reference.fc1.weight.grad, atol=1e-6)


def test_layers_decide_at_construction_and_plain_turns_the_kernels_off(monkeypatch):
    """A layer built by default uses the fused kernels where this build has them; within `kernels.plain()` a fast
    layer calls no fused kernel and gives exactly the numbers of a layer built with ``fast=False``."""
    assert MultiHeadAttention(8, 2).fast == FeedForward(8, 16).fast == onednn_linear_available()
    monkeypatch.setattr(kernels, "onednn_linear_available", lambda: False)
    assert not MultiHeadAttention(8, 2).fast and not FeedForward(8, 16).fast
    monkeypatch.undo()

    torch.manual_seed(0)
    attention, plain_attention = MultiHeadAttention(16, 4, fast=True), MultiHeadAttention(16, 4, fast=False)
    plain_attention.load_state_dict(attention.state_dict())
    ffn, plain_ffn = FeedForward(16, 32, activation="gelu", fast=True), FeedForward(16, 32, activation="gelu", fast=False)
    plain_ffn.load_state_dict(ffn.state_dict())
    x = torch.randn(2, 130, 16)  # 260 rows: float32 fuses from 256 on

    def refuse(*args):
        raise AssertionError("a fused kernel ran within kernels.plain()")

    with torch.inference_mode():
        with kernels.plain():
            assert not kernels.fusable(x, ffn.fc1.weight)
            monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", refuse, raising=False)
            assert torch.equal(attention(x)[0], plain_attention(x)[0]) and torch.equal(ffn(x), plain_ffn(x))
        assert kernels.fusable(x, ffn.fc1.weight) == onednn_linear_available()  # the block ended
        assert not kernels.fusable(x[:, :4], ffn.fc1.weight)  # 8 rows of float32: the plain op is faster there
