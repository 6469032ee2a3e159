"""Encoder–decoder Seq2SeqTransformer: cache parity, causality, real cross-attention, training (decoding: tests/inference)."""

from __future__ import annotations

import pytest
import torch

from glassformer.models import Seq2SeqConfig, Seq2SeqTransformer, shift_right

from .helpers import train_steps

V = 30


def _model(seed: int = 0, **overrides: object) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    base = dict(vocab_size=V, max_position=64, d_model=32, n_heads=4, d_ff=64, dropout=0.0)
    base.update(n_encoder_layers=2, n_decoder_layers=2)
    return Seq2SeqTransformer(Seq2SeqConfig(**{**base, **overrides})).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src = torch.randint(3, V, (2, 7))
    src_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    tgt = torch.randint(3, V, (2, 6))
    return src, src_mask, tgt


def test_forward_shapes_and_intermediates() -> None:
    model = _model()
    src, src_mask, tgt = _batch()
    out = model(src, tgt, src_mask, output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (2, 6, V)
    assert out.encoder_last_hidden_state.shape == (2, 7, 32)
    assert len(out.encoder_hidden_states) == 3 and len(out.decoder_hidden_states) == 3
    assert out.encoder_attentions[0].shape == (2, 4, 7, 7)
    assert out.decoder_attentions[0].shape == (2, 4, 6, 6)
    assert len(out.cross_attentions) == 2 and out.cross_attentions[1].shape == (2, 4, 6, 7)
    assert (out.cross_attentions[0][1, :, :, 4:] == 0).all()  # padded source positions


def test_output_projection_is_tied_to_the_shared_embedding() -> None:
    model = _model()
    assert model.output_proj.weight is model.embedding.weight
    assert _model(tie_embeddings=False).output_proj.weight is not _model(tie_embeddings=False).embedding.weight


def test_embedding_starts_normal_with_std_one_over_sqrt_d_and_a_zero_padding_row() -> None:
    """fairseq's Transformer embedding init: N(0, d^-1/2), padding row 0; √d-scaled, each component has variance 1."""
    d, vocab = 64, 4000
    model = _model(vocab_size=vocab, d_model=d, n_heads=4, pad_token_id=0)
    weight = model.embedding.weight.detach()
    assert (weight[0] == 0).all()
    rest = weight[1:].flatten()
    assert abs(rest.mean().item()) < 4 * d ** -0.5 / rest.numel() ** 0.5  # four standard errors
    assert rest.std().item() == pytest.approx(d ** -0.5, rel=0.01)  # 256k samples: the std is within ~0.2%
    # Xavier's uniform bound for this shape would give std sqrt(2 / (vocab + d)) = 0.022, not 0.125.
    scaled = model.embedding(torch.arange(1, vocab)[None])[0]
    assert scaled.var().item() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("norm_first", [False, True])
def test_incremental_decoding_matches_full_recompute(norm_first: bool) -> None:
    model = _model(1, norm_first=norm_first)
    src, src_mask, tgt = _batch()
    full = model(src, tgt, src_mask).logits
    memory = model.encode(src, src_mask).last_hidden_state
    cache = model.new_cache()
    steps = [model.decode(tgt[:, t : t + 1], memory, src_mask, cache=cache).logits for t in range(6)]
    assert cache[0].length == 6
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_changing_a_later_target_token_never_changes_earlier_logits() -> None:
    model = _model(2)
    src, src_mask, tgt = _batch()
    changed = tgt.clone()
    changed[:, 3] = (tgt[:, 3] + 1) % V
    a, b = model(src, tgt, src_mask).logits, model(src, changed, src_mask).logits
    torch.testing.assert_close(a[:, :3], b[:, :3], atol=0, rtol=0)
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-4


def test_decoder_output_depends_on_the_source() -> None:
    """Cross-attention is real: a different source changes the logits at every target position."""
    model = _model(3)
    src, src_mask, tgt = _batch()
    other = src.clone()
    other[:, 0] = (src[:, 0] + 1) % V
    a, b = model(src, tgt, src_mask).logits, model(other, tgt, src_mask).logits
    assert ((a - b).abs().amax(dim=-1) > 1e-5).all()


def test_source_padding_does_not_change_the_output() -> None:
    model = _model(4)
    src, src_mask, tgt = _batch()
    alone = model(src[1:, :4], tgt[1:]).logits
    torch.testing.assert_close(model(src, tgt, src_mask).logits[1:], alone, atol=1e-5, rtol=0)


def test_shift_right() -> None:
    labels = torch.tensor([[5, 6, 2, -100]])
    assert shift_right(labels, bos_token_id=1, pad_token_id=0).tolist() == [[1, 5, 6, 2]]
    assert shift_right(torch.tensor([[5, 2, -100, -100]]), 1, 0).tolist() == [[1, 5, 2, 0]]


def test_training_learns_to_copy() -> None:
    model = _model(7)
    src = torch.randint(3, V, (8, 5))
    labels = torch.cat([src, torch.full((8, 1), 2)], dim=1)
    tgt = shift_right(labels, 1, 0)
    first, last = train_steps(model, lambda: model(src, tgt, labels=labels).loss, steps=20)
    assert last < 0.5 * first


def test_bad_inputs_raise_value_error() -> None:
    model = _model()
    with pytest.raises(ValueError, match=f"token id {V} is out of range"):
        model(torch.tensor([[1, V]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="sequence of length 65 is longer than the max_len=64 positions"):
        model.encode(torch.ones(1, 65, dtype=torch.long))


def test_attention_and_feed_forward_dropout_are_set_apart_from_the_residual_dropout() -> None:
    """fairseq's split: ``dropout`` on the embeddings and each sublayer's output, ``attention_dropout`` and
    ``activation_dropout`` apart; None falls back to ``dropout``, as ``torch.nn.TransformerEncoderLayer`` does."""
    model = _model(dropout=0.3, attn_dropout=0.0, ffn_dropout=0.2)
    layers = list(model.encoder.layers) + list(model.decoder.layers)
    residual = [m.p for layer in layers for name, m in layer.named_children() if name.startswith("dropout")]
    assert residual and set(residual) == {0.3} and model.positional.dropout.p == 0.3
    assert {m.dropout for layer in layers for m in layer.modules() if type(m).__name__ == "MultiHeadAttention"} == {0.0}
    assert {layer.ffn.dropout.p for layer in layers} == {0.2}
    plain = _model(dropout=0.3)
    assert {m.dropout for m in plain.modules() if type(m).__name__ == "MultiHeadAttention"} == {0.3}
    assert {layer.ffn.dropout.p for layer in list(plain.encoder.layers) + list(plain.decoder.layers)} == {0.3}
    with pytest.raises(Exception, match="attn_dropout"):
        _model(attn_dropout=1.0)


@pytest.mark.parametrize("where", ["attn_dropout", "ffn_dropout"])
def test_each_dropout_acts_in_training_alone(where: str) -> None:
    """With the residual dropout 0, a training-mode pass equals the evaluation pass unless the one rate set acts."""
    src, src_mask, tgt = _batch()
    quiet = _model(dropout=0.0, attn_dropout=0.0, ffn_dropout=0.0)
    torch.manual_seed(1)
    assert torch.equal(quiet.train()(src, tgt, src_mask).logits, quiet.eval()(src, tgt, src_mask).logits)
    noisy = _model(**{"dropout": 0.0, "attn_dropout": 0.0, "ffn_dropout": 0.0, where: 0.5})
    evaluated = noisy.eval()(src, tgt, src_mask).logits
    torch.manual_seed(1)
    assert not torch.allclose(noisy.train()(src, tgt, src_mask).logits, evaluated)
