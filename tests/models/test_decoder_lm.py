"""GPT-style DecoderLM: KV-cache parity, causality, padding, training (generation: tests/inference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from glassformer.models import DecoderLM, DecoderLMConfig

from .helpers import train_steps

V = 40


def _model(seed: int = 0, **overrides: object) -> DecoderLM:
    torch.manual_seed(seed)
    base = dict(vocab_size=V, max_position=32, d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0)
    return DecoderLM(DecoderLMConfig(**{**base, **overrides})).eval()


def test_forward_shapes_and_intermediates() -> None:
    model = _model()
    ids = torch.randint(0, V, (2, 9))
    out = model(ids, output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (2, 9, V) and out.loss is None and out.cache is None
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    assert out.attentions[0].shape == (2, 4, 9, 9)
    assert (out.attentions[0].triu(diagonal=1) == 0).all()  # nothing attends to the future


def test_gpt2_preset_has_the_published_size() -> None:
    """Known number: GPT-2 small has 124,439,808 parameters (token embedding tied to the LM head)."""
    with torch.device("meta"):  # count only; no memory, no initialisation cost
        model = DecoderLM(DecoderLMConfig.preset("gpt2"))
    assert sum(p.numel() for p in model.parameters()) == 124_439_808
    assert model.lm_head.weight is model.token_embedding.weight


def test_untied_head_is_a_separate_weight() -> None:
    model = _model(tie_embeddings=False)
    assert model.lm_head.weight is not model.token_embedding.weight


@pytest.mark.parametrize("prefill", [1, 4])
def test_incremental_decoding_matches_full_recompute(prefill: int) -> None:
    model = _model(1)
    ids = torch.randint(0, V, (3, 10))
    full = model(ids).logits
    out = model(ids[:, :prefill], use_cache=True)
    steps = [out.logits]
    for t in range(prefill, 10):
        steps.append(model(ids[:, t : t + 1], cache=out.cache).logits)
    assert out.cache[0].length == 10
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_changing_a_later_token_never_changes_earlier_logits() -> None:
    model = _model(2)
    ids = torch.randint(0, V, (2, 12))
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] + 1) % V
    a, b = model(ids).logits, model(changed).logits
    torch.testing.assert_close(a[:, :7], b[:, :7], atol=0, rtol=0)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-4


def test_right_padding_does_not_change_real_positions() -> None:
    model = _model(3)
    seq = torch.randint(0, V, (1, 5))
    batch = torch.cat([torch.cat([seq, torch.randint(0, V, (1, 3))], dim=1), torch.randint(0, V, (1, 8))])
    mask = torch.tensor([[1] * 5 + [0] * 3, [1] * 8])
    torch.testing.assert_close(model(batch, mask).logits[:1, :5], model(seq).logits, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="cover the 0 cached and 8 new positions"):
        model(batch, mask[:, :5])


def test_loss_is_next_token_cross_entropy() -> None:
    """Reference: F.cross_entropy of the logits at t against the token at t + 1."""
    model = _model(4)
    ids = torch.randint(0, V, (2, 6))
    out = model(ids, labels=ids)
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, expected)
    ignored = ids.clone()
    ignored[:, 3:] = -100
    expected = F.cross_entropy(out.logits[:, :2].reshape(-1, V), ids[:, 1:3].reshape(-1))
    torch.testing.assert_close(model(ids, labels=ignored).loss, expected)


def test_training_reduces_loss() -> None:
    model = _model(8)
    ids = torch.randint(0, V, (4, 12))
    first, last = train_steps(model, lambda: model(ids, labels=ids).loss)
    assert last < 0.7 * first


def test_bad_inputs_raise_value_error() -> None:
    model = _model()
    with pytest.raises(ValueError, match=f"token id {V} is out of range for a vocabulary of size {V}"):
        model(torch.tensor([[0, V]]))
    with pytest.raises(ValueError, match="sequence of length 33 is longer than the max_len=32 positions"):
        model(torch.zeros(1, 33, dtype=torch.long))
    out = model(torch.zeros(1, 30, dtype=torch.long), use_cache=True)
    with pytest.raises(ValueError, match="sequence of length 33 is longer"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=out.cache)
    with pytest.raises(ValueError, match="d_model=30 is not divisible by n_heads=4"):
        DecoderLMConfig(d_model=30, n_heads=4)


def test_attention_only_blocks_save_and_reload(tmp_path) -> None:
    """attn_only=True: no feed-forward sublayer (no parameters, the residual stream only gains attention); the saved
    config records the option, and configs saved before the option existed still read as attn_only=False."""
    import json

    from glassformer.training.saved import load_saved, save_model

    torch.manual_seed(0)
    model = DecoderLM(DecoderLMConfig.preset("tiny", attn_only=True)).eval()
    assert not any("ffn" in name or "norm2" in name for name, _ in model.named_parameters())
    ids = torch.randint(0, 256, (2, 6))
    out = model(ids, output_intermediates="*.hook_resid_*")
    layer = out.intermediates
    assert torch.equal(layer["blocks.layers.0.hook_resid_mid"], layer["blocks.layers.0.hook_resid_post"])
    save_model(tmp_path / "m", model, task="lm")
    again = load_saved(tmp_path / "m", load_tokenizer=False).model.eval()
    assert again.config.attn_only and torch.equal(again(ids).logits, out.logits)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_config"]["attn_only"] is True
    without = {k: v for k, v in config["model_config"].items() if k != "attn_only"}
    assert DecoderLMConfig(**without).attn_only is False
