"""Shared references for the lens tests: one tiny random GPT-2 in transformers (float64, LayerNorm weights and
biases drawn at random so that the final norm's treatment matters), the same weights in glassformer (through
its GPT-2 checkpoint mapping) and in a TransformerLens bridge (raw weights: no folding, no centring)."""

from __future__ import annotations

import pytest
import torch

VOCAB = 61


def bridge_of(hf_model, tmp_path_factory):
    """A TransformerLens TransformerBridge over `hf_model` with a word-level tokenizer "t0".."tN" (t0 = BOS)."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import PreTrainedTokenizerFast

    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = hf_model.config.vocab_size
    words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    directory = tmp_path_factory.mktemp("tl-tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=words, bos_token="t0", eos_token="t0", unk_token="t0",
                            pad_token="t0").save_pretrained(directory)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory))
    return TransformerBridge.boot_transformers("gpt2", hf_model=hf_model, tokenizer=tokenizer, device="cpu",
                                               dtype=torch.float64)


@pytest.fixture(scope="session")
def gpt2(tmp_path_factory):
    """(transformers GPT2LMHeadModel, glassformer DecoderLM) with the same random weights, both float64, eval."""
    transformers = pytest.importorskip("transformers")
    from glassformer.pretrained import from_pretrained

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=24, n_layer=3, n_head=4,
                                     bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                param.normal_(1.0 if name.endswith("weight") else 0.0, 0.3)
            elif name.endswith("bias"):
                param.normal_(0.0, 0.05)
    directory = tmp_path_factory.mktemp("hf-gpt2")
    hf.save_pretrained(directory)
    ours = from_pretrained(directory).model.double().eval()
    return hf.double(), ours


@pytest.fixture(scope="session")
def bridge(gpt2, tmp_path_factory):
    """TransformerLens's view of the same GPT-2 (raw weights, as the research notes advise for parity)."""
    pytest.importorskip("transformer_lens")
    hf, _ = gpt2
    return bridge_of(hf, tmp_path_factory)
