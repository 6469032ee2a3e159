"""Packed encoder inference: the bucket sizes and the packing worked out by hand, the packed stack against
torch.nn.TransformerEncoderLayer on the real tokens of a padded batch, and when the packed path stands aside."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassformer.nn import Encoder, EncoderLayer, kernels, packed

from .torch_reference import copy_layer, randomize_norms

D_MODEL, N_HEADS, D_FF = 16, 4, 32


def test_bucket_rows_and_sizes():
    assert [packed.bucket_rows(n) for n in (1, 16, 17, 64, 65, 128, 129, 1024, 1025)] == \
        [16, 16, 32, 64, 128, 128, 192, 1024, 1280]
    assert packed.bucket_sizes(100) == [16, 32, 48, 64, 128]
    assert packed.bucket_sizes(1100)[-3:] == [960, 1024, 1280]
    with pytest.raises(ValueError, match="rows must be >= 1"):
        packed.bucket_rows(0)


def test_packing_of_a_hand_made_mask():
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    p = packed.Packing.of(mask, bucket=False)
    # Real tokens at flat positions 0, 1, 2 (sentence 0), 3 (sentence 1), 6, 7 (sentence 2).
    assert p.to_packed.tolist() == [0, 1, 2, 3, 6, 7] and p.tokens == p.rows == 6
    assert p.to_padded.tolist() == [0, 1, 2, 3, 3, 3, 4, 5, 4]  # padding reads its sentence's first row
    assert p.starts.tolist() == [0, 3, 4] and p.lengths.tolist() == [3, 1, 2]
    bucketed = packed.Packing.of(mask)
    assert bucketed.rows == 16 and bucketed.to_packed[6:].tolist() == [0] * 10
    padded = torch.arange(9.0).view(3, 3, 1)
    assert p.pack(padded).squeeze(1).tolist() == [0, 1, 2, 3, 6, 7]
    assert p.unpack(p.pack(padded)).squeeze(-1).tolist() == [[0, 1, 2], [3, 3, 3], [6, 7, 6]]
    assert p.mean(p.pack(padded)).squeeze(1).tolist() == [1.0, 3.0, 6.5]


@pytest.mark.parametrize("mask, message", [([[0, 1], [1, 1]], "right padding"), ([[1, 1], [0, 0]], "at least one"),
                                           ([1, 1], "must be")])
def test_packing_refuses_what_it_cannot_pack(mask, message):
    with pytest.raises(ValueError, match=message):
        packed.Packing.of(torch.tensor(mask))
    if len(torch.tensor(mask).shape) == 2 and message == "right padding":
        assert not packed.right_padded(torch.tensor(mask))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_stack_matches_torch_on_the_real_tokens(norm_first, dtype):
    """Reference: two torch.nn.TransformerEncoderLayer with our weights, on the padded batch with its padding mask."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    stack = Encoder(lambda: EncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, activation="gelu",
                                         norm_first=norm_first), 2, final_norm=norm_first).eval()
    randomize_norms(stack, g)
    theirs = [nn.TransformerEncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, activation="gelu",
                                         norm_first=norm_first, batch_first=True).eval() for _ in range(2)]
    for ours, reference in zip(stack.layers, theirs):
        copy_layer(ours, reference)
    x = torch.randn(3, 7, D_MODEL)
    lengths = torch.tensor([7, 6, 5])
    attention_mask = (torch.arange(7)[None] < lengths[:, None]).long()
    expected = x
    for reference in theirs:  # gradients on: torch's ordinary path, not its nested-tensor one
        expected = reference(expected, src_key_padding_mask=attention_mask == 0)
    if norm_first:
        expected = torch.nn.functional.layer_norm(expected, (D_MODEL,), stack.norm.weight, stack.norm.bias,
                                                  stack.norm.eps)
    stack.to(dtype)
    with torch.no_grad():
        assert packed.can_pack(stack, stack)
        packing = packed.Packing.of(attention_mask)
        got = packed.encode(stack, packing.pack(x.to(dtype)), packing).float()  # (32 rows, D): 18 real
        # Each sentence's first token alone, the last layer computing 16 rows, not 32: (16, D), 3 real.
        first = packed.encode(stack, packing.pack(x.to(dtype)), packing, first_only=True).float()
        # One sentence: its 7 tokens and its [CLS] both round to 16 rows, so every row goes through.
        alone = packed.Packing.of(attention_mask[:1])
        first_alone = packed.encode(stack, alone.pack(x[:1].to(dtype)), alone, first_only=True).float()
    real = expected[attention_mask.bool()]  # (18, D) in sentence order
    tolerance = 1e-5 if dtype == torch.float32 else 0.1
    assert got.shape == (32, D_MODEL) and first.shape == first_alone.shape == (16, D_MODEL)
    torch.testing.assert_close(got[:18], real.detach(), atol=tolerance, rtol=0)
    torch.testing.assert_close(first[:3], expected[:, 0].detach(), atol=tolerance, rtol=0)
    torch.testing.assert_close(first_alone[:1], expected[:1, 0].detach(), atol=tolerance, rtol=0)
    assert packed.first_rows(packing).tolist() == [0, 7, 13] + [0] * 13


def test_the_packed_path_stands_aside_for_training_gradients_and_hooks():
    stack = Encoder(lambda: EncoderLayer(D_MODEL, N_HEADS, D_FF), 1)
    assert not packed.can_pack(stack, stack)  # training mode
    stack.eval()
    assert not packed.can_pack(stack, stack)  # gradients on
    with torch.no_grad():
        assert packed.can_pack(stack, stack)
        handle = stack.layers[0].self_attn.hook_pattern.register_forward_hook(lambda m, i, o: None)
        assert not packed.can_pack(stack, stack)  # a hook reads an intermediate the packed path never makes
        handle.remove()
        handle = stack.layers[0].ffn.fc1.register_forward_hook(lambda m, i, o: None)
        assert not packed.can_pack(stack, stack)  # any forward hook
        handle.remove()
        stack.layers[0].ffn.fc1 = nn.Sequential(stack.layers[0].ffn.fc1)
        assert not packed.can_pack(stack, stack)  # only plain Linear layers


@pytest.mark.skipif(not kernels.onednn_bf16_available(), reason="oneDNN multiplies no bfloat16 on this CPU")
def test_reordered_weights_follow_their_weight():
    """Reference: torch.nn.functional.linear in float32 on the same bfloat16 numbers."""
    torch.manual_seed(0)
    weight, bias, x = torch.randn(24, 16).bfloat16(), torch.randn(24).bfloat16(), torch.randn(5, 16).bfloat16()

    def check(weight):
        with torch.no_grad():
            got = kernels.linear(x, weight, bias).float()
        expected = torch.nn.functional.linear(x.float(), weight.float(), bias.float())
        assert (got - expected).abs().max() <= 0.02 * expected.abs().max()

    check(weight)
    assert id(weight) in kernels._REORDERED
    with torch.no_grad():
        weight.mul_(-2)  # changed in place: the reordered copy must follow
    check(weight)
    key = id(weight)
    del weight
    assert key not in kernels._REORDERED  # the copy leaves with its weight


def test_warm_up_runs_every_bucket_size_once_through_the_packed_path(tmp_path, monkeypatch):
    from glassformer.tasks.sentiment import SentimentClassifier
    from tests.pretrained.helpers import sentiment_dir

    classifier = SentimentClassifier.load(sentiment_dir(tmp_path / "sentiment"))
    rows = []
    monkeypatch.setattr(packed, "encode", lambda stack, x, p, _encode=packed.encode, **kwargs: rows.append(p.rows) or
                        _encode(stack, x, p, **kwargs))
    assert classifier.warm_up(max_rows=192) == 6
    assert rows == [16, 32, 48, 64, 128, 192] == packed.bucket_sizes(192)
    rows.clear()
    classifier(["a fine film", "bad"])  # a real batch then takes a size already built
    assert rows == [16]
    classifier.model.train()
    assert classifier.warm_up(max_rows=200) == 0  # not an inference model: nothing to build


def test_sentence_encoder_warm_up_embeds_every_bucket_size(tmp_path, monkeypatch):
    from glassformer.pretrained.sentence import SentenceConfig, SentenceEncoder
    from glassformer.tasks.sentiment import SentimentClassifier
    from tests.pretrained.helpers import sentiment_dir

    classifier = SentimentClassifier.load(sentiment_dir(tmp_path / "sentiment"))
    encoder = SentenceEncoder(classifier.model.encoder, classifier.tokenizer, SentenceConfig(48, "mean"))
    rows = []
    monkeypatch.setattr(packed, "encode", lambda stack, x, p, _encode=packed.encode, **kwargs: rows.append(p.rows) or
                        _encode(stack, x, p, **kwargs))
    assert encoder.warm_up(max_rows=64) == 4
    assert rows == [16, 32, 48, 64]
    rows.clear()
    encoder.encode(["a fine film", "bad", "a film"], batch_size=2)  # two batches, each packed
    assert rows == [16, 16]
