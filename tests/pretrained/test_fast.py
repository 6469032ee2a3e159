"""The CPU fast path: FastLinear gives torch.nn.Linear's numbers, keeps its parameters, and still trains."""

from __future__ import annotations

import pytest
import torch

from glassformer.pretrained.fast import FastLinear, onednn_linear_available, use_fast_path

pytestmark = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch build has no oneDNN linear")


def test_fast_linear_matches_torch_linear_and_keeps_parameters():
    """Reference: torch.nn.Linear (same weights) on 2-D, 3-D and single-row inputs, with and without bias."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.GELU(), torch.nn.Linear(40, 8, bias=False))
    reference = [torch.nn.Linear(24, 40), torch.nn.Linear(40, 8, bias=False)]
    reference[0].load_state_dict(model[0].state_dict())
    reference[1].load_state_dict(model[2].state_dict())
    names_before = {k: v.data_ptr() for k, v in model.state_dict().items()}
    use_fast_path(model)
    assert isinstance(model[0], FastLinear) and isinstance(model[2], FastLinear)
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == names_before
    for x in (torch.randn(5, 24), torch.randn(3, 7, 24), torch.randn(1, 24)):
        with torch.inference_mode():
            expected = reference[1](torch.nn.functional.gelu(reference[0](x)))
            assert (model(x) - expected).abs().max() <= 1e-5


def test_fast_linear_keeps_gradients_when_training():
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 3)
    reference = torch.nn.Linear(6, 3)
    reference.load_state_dict(layer.state_dict())
    use_fast_path(torch.nn.Sequential(layer))
    x = torch.randn(4, 6)
    layer(x).square().sum().backward()
    reference(x).square().sum().backward()
    assert torch.allclose(layer.weight.grad, reference.weight.grad, atol=1e-6)


def test_fused_qkv_attention_matches_torch_and_follows_weight_changes():
    """Reference: torch.nn.MultiheadAttention with the same weights, before and after an in-place update."""
    from glassformer.nn import MultiHeadAttention
    from glassformer.pretrained.fast import FusedQKVAttention

    torch.manual_seed(0)
    ours = MultiHeadAttention(32, 4).eval()
    use_fast_path(torch.nn.Sequential(ours))
    assert isinstance(ours, FusedQKVAttention)
    reference = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x = torch.randn(3, 9, 32)
    keep = torch.ones(3, 9, dtype=torch.bool)
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


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_fused_gelu_feed_forward_matches_torch(activation):
    """Reference: torch Linear → torch.nn.functional.gelu (exact or tanh) → Linear, same weights."""
    from glassformer.nn import FeedForward
    from glassformer.pretrained.fast import FusedGELUFeedForward

    torch.manual_seed(0)
    ffn = FeedForward(16, 48, activation=activation).eval()
    use_fast_path(torch.nn.Sequential(ffn))
    assert isinstance(ffn, FusedGELUFeedForward)
    x = torch.randn(2, 5, 16) * 3
    approximate = "tanh" if activation == "gelu_tanh" else "none"
    with torch.no_grad():
        hidden = torch.nn.functional.gelu(x @ ffn.fc1.weight.T + ffn.fc1.bias, approximate=approximate)
        expected = hidden @ ffn.fc2.weight.T + ffn.fc2.bias
    with torch.inference_mode():
        assert (ffn(x) - expected).abs().max() <= 1e-5
