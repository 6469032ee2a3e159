"""GPT-2 and ViT checkpoints written by Hugging Face transformers (small configs, every parameter random and
distinct) load into glassformer with the same logits, and glassformer's save_pretrained loads back into transformers.
A mapping that drops or swaps one bias fails the same checks."""

from __future__ import annotations

import pytest
import torch

from glassformer.inference.generate import generate
from glassformer.pretrained import from_pretrained, gpt2, save_pretrained, vit
from tests.pretrained.helpers import broken_mapping, randomise

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    """A small random GPT2LMHeadModel saved by transformers, and its directory."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=101, n_positions=64, n_embd=48, n_layer=3, n_head=4,
                                     bos_token_id=100, eos_token_id=100)
    model = randomise(transformers.GPT2LMHeadModel(config)).eval()
    directory = tmp_path_factory.mktemp("hf-gpt2")
    model.save_pretrained(directory)
    return model, directory


@pytest.fixture(scope="module")
def hf_vit(tmp_path_factory):
    """A small random ViTForImageClassification saved by transformers, and its directory."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=48,
                                    num_hidden_layers=3, num_attention_heads=4, intermediate_size=96, num_labels=5)
    model = randomise(transformers.ViTForImageClassification(config)).eval()
    directory = tmp_path_factory.mktemp("hf-vit")
    model.save_pretrained(directory)
    return model, directory


def check_gpt2_logits(hf, directory) -> None:
    ours = from_pretrained(directory).model
    ids = torch.randint(0, 101, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        gap = (ours(ids).logits - hf(ids).logits).abs().max().item()
    assert gap <= 1e-5


def test_gpt2_logits_match_hf(hf_gpt2):
    """Reference: transformers GPT2LMHeadModel logits (Conv1D weights transposed, c_attn split)."""
    check_gpt2_logits(*hf_gpt2)


@pytest.mark.parametrize("break_", [{"drop": "blocks.layers.1.ffn.fc1.bias"},
                                    {"swap": ("blocks.layers.0.norm1.bias", "blocks.layers.0.norm2.bias")}],
                         ids=["dropped-bias", "swapped-biases"])
def test_gpt2_check_fails_on_a_broken_mapping(hf_gpt2, monkeypatch, break_):
    broken_mapping(monkeypatch, gpt2, **break_)
    with pytest.raises(AssertionError, match=r"assert .* <= 1e-05"):
        check_gpt2_logits(*hf_gpt2)


def test_gpt2_greedy_generation_matches_hf(hf_gpt2):
    """Reference: transformers generate(do_sample=False): 20 greedy tokens, identical ids."""
    hf, directory = hf_gpt2
    ours = from_pretrained(directory).model
    prompt = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.inference_mode():
        expected = hf.generate(prompt, max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=100)
        got = generate(ours, prompt, max_new_tokens=20, greedy=True)
    assert got.shape == (1, 25)
    assert torch.equal(got, expected)


def check_vit_logits(hf, directory) -> None:
    ours = from_pretrained(directory).model
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        gap = (ours(images).logits - hf(pixel_values=images).logits).abs().max().item()
    assert gap <= 1e-5


def test_vit_logits_match_hf(hf_vit):
    """Reference: transformers ViTForImageClassification logits (conv patch weight reshaped to a Linear)."""
    check_vit_logits(*hf_vit)


def test_vit_check_fails_on_a_broken_mapping(hf_vit, monkeypatch):
    broken_mapping(monkeypatch, vit, drop="patch_embedding.proj.bias")
    with pytest.raises(AssertionError, match=r"assert .* <= 1e-05"):
        check_vit_logits(*hf_vit)


def test_gpt2_round_trip_through_hf(tmp_path):
    """glassformer DecoderLM → save_pretrained → transformers AutoModelForCausalLM → same logits."""
    from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig

    torch.manual_seed(1)
    model = randomise(DecoderLM(DecoderLMConfig.preset("tiny")), seed=1).eval()
    save_pretrained(model, tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
    ids = torch.randint(0, 256, (2, 11))
    with torch.inference_mode():
        assert (model(ids).logits - hf(ids).logits).abs().max() <= 1e-5


def test_vit_round_trip_through_hf(tmp_path):
    """glassformer VisionTransformer → save_pretrained → transformers AutoModelForImageClassification → same logits."""
    from glassformer.models.vit import VisionTransformer, ViTConfig

    torch.manual_seed(2)
    model = randomise(VisionTransformer(ViTConfig(image_size=12, patch_size=4, in_channels=3, d_model=32, n_heads=4,
                                                  n_layers=2, d_ff=64, num_classes=4)), seed=2).eval()
    save_pretrained(model, tmp_path)
    hf = transformers.AutoModelForImageClassification.from_pretrained(str(tmp_path)).eval()
    images = torch.randn(2, 3, 12, 12)
    with torch.inference_mode():
        assert (model(images).logits - hf(pixel_values=images).logits).abs().max() <= 1e-5


def test_pytorch_bin_is_read_weights_only(hf_gpt2, tmp_path):
    """A pytorch_model.bin (torch.save of transformers' state dict) loads through the weights-only unpickler."""
    hf, directory = hf_gpt2
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    ours = from_pretrained(tmp_path).model
    ids = torch.randint(0, 101, (1, 9))
    with torch.inference_mode():
        assert (ours(ids).logits - hf(ids).logits).abs().max() <= 1e-5


def test_gpt2_dropout_rates_travel_both_ways():
    """GPT-2 keeps one rate for the residual branches and embeddings and another for the attention
    probabilities: a model with only residual dropout leaves as a transformers GPT2Config with attn_pdrop 0,
    and each rate comes back from one, both in glassformer's layers."""
    from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig

    config = DecoderLMConfig(vocab_size=101, max_position=64, d_model=48, n_heads=4, n_layers=2, d_ff=96,
                             dropout=0.1, attn_dropout=0.0)
    hf = transformers.GPT2Config(**gpt2.config_to_hf(config))
    assert (hf.resid_pdrop, hf.embd_pdrop, hf.attn_pdrop) == (0.1, 0.1, 0.0)
    back = gpt2.config_from_hf(transformers.GPT2Config(n_embd=48, n_layer=2, n_head=4, resid_pdrop=0.2,
                                                       attn_pdrop=0.05).to_dict())
    layer = DecoderLM(back).blocks.layers[0]
    assert (layer.dropout1.p, layer.self_attn.dropout) == (0.2, 0.05)
    one_rate = DecoderLM(DecoderLMConfig.preset("tiny")).blocks.layers[0]  # attn_dropout None: the one rate
    assert one_rate.self_attn.dropout == one_rate.dropout1.p == 0.1
