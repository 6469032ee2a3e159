"""Copy our weights into PyTorch's own transformer modules, which serve as the independent reference."""

from __future__ import annotations

import torch
from torch import nn

from glassformer.nn import DecoderLayer, EncoderLayer, MultiHeadAttention


@torch.no_grad()
def copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    """torch packs W_Q, W_K, W_V into one (3D, D) in_proj_weight; we keep one Linear each."""
    theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    theirs.out_proj.weight.copy_(ours.out_proj.weight)
    theirs.out_proj.bias.copy_(ours.out_proj.bias)


@torch.no_grad()
def copy_layer(ours: EncoderLayer | DecoderLayer, theirs: nn.Module) -> None:
    """Copy an encoder or decoder layer into nn.TransformerEncoderLayer / nn.TransformerDecoderLayer."""
    copy_attention(ours.self_attn, theirs.self_attn)
    if isinstance(ours, DecoderLayer):
        copy_attention(ours.cross_attn, theirs.multihead_attn)
    theirs.linear1.load_state_dict(ours.ffn.fc1.state_dict())
    theirs.linear2.load_state_dict(ours.ffn.fc2.state_dict())
    norms = ["norm1", "norm2"] + (["norm3"] if isinstance(ours, DecoderLayer) else [])
    for name in norms:
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())


def randomize_norms(module: nn.Module, generator: torch.Generator) -> None:
    """Give every LayerNorm a non-trivial scale and shift, so that copying them is actually tested."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.LayerNorm):
                sub.weight.copy_(1.0 + 0.1 * torch.randn(sub.weight.shape, generator=generator))
                sub.bias.copy_(0.1 * torch.randn(sub.bias.shape, generator=generator))
