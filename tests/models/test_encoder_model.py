"""BERT-style encoder backbone and EncoderClassifier."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from glassformer.models import EncoderClassifier, EncoderConfig, TransformerEncoderModel, mean_pool

from .helpers import train_steps


def _config(**overrides: object) -> EncoderConfig:
    base = dict(vocab_size=50, max_position=16, d_model=32, n_heads=4, n_layers=2, d_ff=64, num_labels=3)
    return EncoderConfig(**{**base, **overrides})


def test_forward_shapes_and_intermediates() -> None:
    torch.manual_seed(0)
    model = TransformerEncoderModel(_config()).eval()
    ids = torch.randint(1, 50, (2, 7))
    out = model(ids, torch.ones(2, 7), output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.shape == (2, 7, 32) and out.pooled.shape == (2, 32)
    assert len(out.hidden_states) == 3 and all(h.shape == (2, 7, 32) for h in out.hidden_states)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 7, 7)
    torch.testing.assert_close(out.attentions[1].sum(-1), torch.ones(2, 4, 7))
    plain = model(ids)
    assert plain.hidden_states is None and plain.attentions is None
    torch.testing.assert_close(plain.last_hidden_state, out.last_hidden_state, atol=1e-5, rtol=0)


def test_presets_have_the_published_sizes() -> None:
    """Known numbers: BERT-base's backbone has 109,482,240 parameters.

    all-MiniLM-L6-v2's model.safetensors holds 22,713,216 weights (plus a 512-entry position_ids buffer).
    """
    with torch.device("meta"):  # count only; no memory, no initialisation cost
        bert = TransformerEncoderModel(EncoderConfig.preset("bert-base"))
        minilm = TransformerEncoderModel(EncoderConfig.preset("minilm-l6", use_pooler=True))
    assert sum(p.numel() for p in bert.parameters()) == 109_482_240
    assert sum(p.numel() for p in minilm.parameters()) == 22_713_216
    with pytest.raises(ValueError, match="unknown encoder preset 'bert'"):
        EncoderConfig.preset("bert")


@pytest.mark.parametrize("pooling, use_pooler", [("cls", True), ("cls", False), ("mean", False)])
def test_padding_does_not_change_the_output(pooling: str, use_pooler: bool) -> None:
    """A padded row (with junk ids in the padded slots) gives the same logits as the sequence alone."""
    torch.manual_seed(1)
    model = EncoderClassifier(_config(pooling=pooling, use_pooler=use_pooler)).eval()
    seq = torch.randint(1, 50, (1, 5))
    padded = torch.cat([seq, torch.randint(1, 50, (1, 4))], dim=1)  # junk, masked out below
    other = torch.randint(1, 50, (1, 9))
    batch = torch.cat([padded, other])
    mask = torch.tensor([[1] * 5 + [0] * 4, [1] * 9])
    alone = model(seq)
    together = model(batch, mask)
    torch.testing.assert_close(together.logits[:1], alone.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(together.last_hidden_state[:1, :5], alone.last_hidden_state, atol=1e-5, rtol=0)


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    torch.testing.assert_close(mean_pool(hidden, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(mean_pool(hidden), hidden.mean(1))


def test_token_types_change_the_output() -> None:
    torch.manual_seed(2)
    model = TransformerEncoderModel(_config()).eval()
    ids = torch.randint(1, 50, (1, 6))
    a = model(ids).last_hidden_state
    b = model(ids, token_type_ids=torch.tensor([[0, 0, 0, 1, 1, 1]])).last_hidden_state
    assert (a - b).abs().max() > 1e-3


def test_attention_and_hidden_dropout_are_separate() -> None:
    model = TransformerEncoderModel(_config(dropout=0.0, attn_dropout=0.3))
    layer = model.encoder.layers[0]
    assert layer.self_attn.dropout == 0.3 and layer.dropout1.p == 0.0 and model.embeddings.dropout.p == 0.0


def test_classifier_loss_and_training_reduces_it() -> None:
    torch.manual_seed(3)
    model = EncoderClassifier(_config(dropout=0.0, attn_dropout=0.0))
    ids = torch.randint(1, 50, (6, 8))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = model(ids, labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    first, last = train_steps(model, lambda: model(ids, labels=labels).loss)
    assert last < 0.5 * first


def test_bad_inputs_raise_value_error() -> None:
    model = EncoderClassifier(_config())
    with pytest.raises(ValueError, match="token id 50 is out of range for a vocabulary of size 50"):
        model(torch.tensor([[1, 50]]))
    with pytest.raises(ValueError, match="sequence of length 17 is longer than the max_len=16 positions"):
        model(torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="d_model=30 is not divisible by n_heads=4"):
        _config(d_model=30)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        _config(pooling="max")
