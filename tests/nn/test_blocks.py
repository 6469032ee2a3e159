"""Encoder/decoder layers and stacks: parity with torch.nn.Transformer*Layer, causality, real cross-attention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassformer.nn import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    causal_mask,
    combine_masks,
    padding_mask,
)

from .torch_reference import copy_layer, randomize_norms

D_MODEL, N_HEADS, D_FF = 16, 4, 32


def _lengths_mask(lengths: list[int], t: int) -> torch.Tensor:
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).long()


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(activation: str, norm_first: bool) -> None:
    """Reference: torch.nn.TransformerEncoderLayer with our weights copied, padding mask on."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ours = EncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, activation=activation, norm_first=norm_first).eval()
    randomize_norms(ours, g)
    theirs = nn.TransformerEncoderLayer(
        D_MODEL, N_HEADS, D_FF, dropout=0.0, activation=activation, norm_first=norm_first, batch_first=True
    ).eval()
    copy_layer(ours, theirs)
    x = torch.randn(3, 6, D_MODEL)
    attention_mask = _lengths_mask([6, 4, 1], 6)
    out, _ = ours(x, padding_mask(attention_mask))
    # Gradients stay enabled so torch takes its ordinary path, not the nested-tensor fast path
    # that zeroes padded positions.
    ref = theirs(x, src_key_padding_mask=attention_mask == 0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first: bool) -> None:
    """Reference: torch.nn.TransformerDecoderLayer, with causal + target padding + memory padding masks."""
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    ours = DecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, norm_first=norm_first).eval()
    randomize_norms(ours, g)
    theirs = nn.TransformerDecoderLayer(
        D_MODEL, N_HEADS, D_FF, dropout=0.0, norm_first=norm_first, batch_first=True
    ).eval()
    copy_layer(ours, theirs)
    x, memory = torch.randn(2, 5, D_MODEL), torch.randn(2, 7, D_MODEL)
    tgt_mask, mem_mask = _lengths_mask([5, 3], 5), _lengths_mask([7, 4], 7)
    out, self_w, cross_w = ours(
        x,
        memory,
        combine_masks(causal_mask(5), padding_mask(tgt_mask)),
        padding_mask(mem_mask),
        need_weights=True,
    )
    ref = theirs(
        x,
        memory,
        tgt_mask=torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1),
        tgt_key_padding_mask=tgt_mask == 0,
        memory_key_padding_mask=mem_mask == 0,
    )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert self_w.shape == (2, N_HEADS, 5, 5) and cross_w.shape == (2, N_HEADS, 5, 7)
    assert (cross_w[1, :, :, 4:] == 0).all()  # padded memory positions get no attention


def _decoder(norm_first: bool = False) -> Decoder:
    torch.manual_seed(2)
    return Decoder(
        lambda: DecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, norm_first=norm_first), 2, final_norm=norm_first
    ).eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_is_causal(norm_first: bool) -> None:
    """Changing target position 4 leaves positions 0..3 unchanged."""
    decoder = _decoder(norm_first)
    x, memory = torch.randn(2, 6, D_MODEL), torch.randn(2, 5, D_MODEL)
    changed = x.clone()
    changed[:, 4] = torch.randn(2, D_MODEL)
    a = decoder(x, memory, causal_mask(6)).last_hidden_state
    b = decoder(changed, memory, causal_mask(6)).last_hidden_state
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=0, rtol=0)
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-3


def test_decoder_cross_attention_reads_the_encoder_output() -> None:
    """Unlike the second article's DecoderLayer, the output depends on `memory` at every position."""
    decoder = _decoder()
    x, memory = torch.randn(2, 4, D_MODEL), torch.randn(2, 5, D_MODEL)
    a = decoder(x, memory, causal_mask(4)).last_hidden_state
    b = decoder(x, memory + torch.randn_like(memory), causal_mask(4)).last_hidden_state
    assert ((a - b).abs().amax(dim=-1) > 1e-3).all()


def test_decoder_cache_matches_full_recompute() -> None:
    decoder = _decoder(norm_first=True)
    x, memory = torch.randn(2, 5, D_MODEL), torch.randn(2, 6, D_MODEL)
    full = decoder(x, memory, causal_mask(5)).last_hidden_state
    caches = decoder.new_cache()
    steps = [decoder(x[:, t : t + 1], memory, causal_mask(1, t + 1), caches=caches).last_hidden_state for t in range(5)]
    assert caches[0].length == 5 and caches[0].cross_attn.length == 6
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_stacks_return_intermediates() -> None:
    torch.manual_seed(3)
    encoder = Encoder(lambda: EncoderLayer(D_MODEL, N_HEADS, D_FF, norm_first=True), 3, final_norm=True).eval()
    x = torch.randn(2, 5, D_MODEL)
    out = encoder(x, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 4 and out.hidden_states[0] is x
    assert len(out.attentions) == 3 and out.attentions[0].shape == (2, N_HEADS, 5, 5)
    torch.testing.assert_close(out.last_hidden_state, encoder.norm(out.hidden_states[-1]))
    assert encoder(x).hidden_states is None and encoder(x).attentions is None

    decoder = _decoder()
    out = decoder(x, torch.randn(2, 3, D_MODEL), output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    assert out.cross_attentions[1].shape == (2, N_HEADS, 5, 3)


def test_stack_needs_a_layer() -> None:
    with pytest.raises(ValueError, match="n_layers=0"):
        Encoder(lambda: EncoderLayer(D_MODEL, N_HEADS, D_FF), 0)
