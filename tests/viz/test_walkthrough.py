"""The walkthroughs of the decoder LM, the encoder–decoder and the ViT: every number against the model's own pass.

References: the models' forward passes (``output_attentions``, ``output_hidden_states``, logits),
their own sub-modules called directly (projections, LayerNorms), the sinusoidal table, PyTorch's
``unfold`` and ``conv2d`` for the patches, ``inference.generate.generate`` and greedy decoding without a cache, and
cached step-by-step decoding for the decoder's "one token at a time". Random tiny models: what is
checked is the bookkeeping, which training does not change.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glassformer.inference.generate import generate
from glassformer.models import DecoderLM, DecoderLMConfig, Seq2SeqConfig, Seq2SeqTransformer, VisionTransformer, ViTConfig
from glassformer.nn.positional import sinusoidal_table
from glassformer.tokenizers import CharTokenizer
from glassformer.viz.walkthrough import lm_walkthrough, translation_walkthrough, vision_walkthrough
from tests.models.helpers import textbook_greedy

ATOL = 1e-5


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    chars = CharTokenizer()
    chars.train(["the quick brown fox jumps over the lazy dog. ROMEO: hello"])
    return chars


def _heads(x: torch.Tensor, n_heads: int) -> np.ndarray:
    """(T, D) → (H, T, d), the model's head split done by hand."""
    t, d = x.shape
    return x.reshape(t, n_heads, d // n_heads).transpose(0, 1).numpy()


def _scores(q: np.ndarray, k: np.ndarray, masked: np.ndarray | None = None) -> np.ndarray:
    scores = q @ k.T / math.sqrt(q.shape[-1])
    return scores if masked is None else np.where(masked, -np.inf, scores)


def _check_head(steps, q, k, v, weights, masked=None) -> None:
    np.testing.assert_allclose(steps.q, q, atol=ATOL)
    np.testing.assert_allclose(steps.k, k, atol=ATOL)
    np.testing.assert_allclose(steps.v, v, atol=ATOL)
    np.testing.assert_allclose(steps.scores, _scores(q, k, masked), atol=ATOL)
    np.testing.assert_allclose(steps.weights, weights, atol=ATOL)
    np.testing.assert_allclose(steps.weights.sum(-1), 1.0, atol=ATOL)
    np.testing.assert_allclose(steps.z, weights @ v, atol=ATOL)


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.0, None, None), (0.8, 5, 0.9), (1.3, None, 0.5)])
def test_lm_walkthrough_equals_the_models_own_pass(tokenizer, temperature, top_k, top_p):
    """Reference: DecoderLM's forward (hidden states, attentions, logits), its modules, and its own generate()."""
    torch.manual_seed(0)
    model = DecoderLM(DecoderLMConfig.preset("tiny", vocab_size=tokenizer.vocab_size)).eval()
    ids = tokenizer.encode_ordinary("ROMEO: the fox")
    layer, head, t = 1, 2, len(ids)
    steps = lm_walkthrough(model, tokenizer, ids, layer=layer, head=head, temperature=temperature, top_k=top_k,
                           top_p=top_p, seed=3)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True, output_attentions=True)
        block = model.blocks.layers[layer]
        x = out.hidden_states[layer][0]
        normed = block.norm1(x)  # pre-norm: Q, K and V read LayerNorm(x)
        q, k, v = (_heads(proj(normed), 4)[head] for proj in (block.self_attn.q_proj, block.self_attn.k_proj,
                                                                  block.self_attn.v_proj))
    assert steps.tokens == list("ROMEO:␣the␣fox")
    np.testing.assert_allclose(steps.token_embed, model.token_embedding.weight[ids].detach().numpy(), atol=0)
    np.testing.assert_allclose(steps.position, model.position_embedding.weight[:t].detach().numpy(), atol=0)
    np.testing.assert_allclose(steps.layer_input, x.numpy(), atol=ATOL)
    np.testing.assert_allclose(steps.layer_output, out.hidden_states[layer + 1][0].numpy(), atol=ATOL)
    causal = np.triu(np.ones((t, t), dtype=bool), k=1)  # a key after its query
    assert (steps.attention.masked == causal).all()
    assert (steps.attention.weights[causal] == 0).all()
    _check_head(steps.attention, q, k, v, out.attentions[layer][0, head].numpy(), causal)
    np.testing.assert_allclose(steps.logits, out.logits[0, -1].numpy(), atol=ATOL)
    np.testing.assert_allclose(steps.next_token.probs, out.logits[0, -1].softmax(-1).numpy(), atol=1e-6)
    generated = generate(model, torch.tensor([ids]), 1, temperature=temperature, top_k=top_k, top_p=top_p,
                         generator=torch.Generator().manual_seed(3))
    assert steps.chosen == int(generated[0, -1])
    assert steps.next_token.sample_probs[steps.chosen] > 0


def test_translation_walkthrough_equals_the_models_pass_and_cached_decoding(tokenizer):
    """Reference: Seq2SeqTransformer's forward, its modules, greedy decoding without a cache, and decode() one token at
    a time with a cache."""
    torch.manual_seed(1)
    config = Seq2SeqConfig.preset("tiny", vocab_size=tokenizer.vocab_size, dropout=0.0)
    model = Seq2SeqTransformer(config).eval()
    src_ids = tokenizer.encode_ordinary("the lazy dog")
    enc_layer, dec_layer, head = 1, 0, 3
    steps = translation_walkthrough(model, tokenizer, src_ids, encoder_layer=enc_layer, decoder_layer=dec_layer,
                                    head=head, max_len=12)
    src = torch.tensor([src_ids])
    with torch.no_grad():
        greedy = textbook_greedy(model, src, 12)[0].tolist()
        target = torch.tensor([[config.bos_token_id, *steps.output_ids[:-1]]])
        out = model(src, target, output_hidden_states=True, output_attentions=True)
        d = config.d_model
        table = sinusoidal_table(64, d)
        embed = model.embedding.weight.detach()
        np.testing.assert_allclose(steps.encoder_embed, (embed[src_ids] * math.sqrt(d) + table[:len(src_ids)]).numpy(),
                                   atol=ATOL)
        np.testing.assert_allclose(steps.decoder_embed,
                                   (embed[target[0]] * math.sqrt(d) + table[:target.shape[1]]).numpy(), atol=ATOL)
        # encoder: post-norm, so Q, K and V read the layer's input itself
        enc = model.encoder.layers[enc_layer]
        x = out.encoder_hidden_states[enc_layer][0]
        qkv = [_heads(p(x), 4)[head] for p in (enc.self_attn.q_proj, enc.self_attn.k_proj, enc.self_attn.v_proj)]
        _check_head(steps.encoder_attention, *qkv, out.encoder_attentions[enc_layer][0, head].numpy())
        assert not steps.encoder_attention.masked.any()
        np.testing.assert_allclose(steps.encoder_layer_output, out.encoder_hidden_states[enc_layer + 1][0].numpy(),
                                   atol=ATOL)
        memory = out.encoder_last_hidden_state[0]
        np.testing.assert_allclose(steps.memory, memory.numpy(), atol=ATOL)
        # decoder: masked self-attention, then cross-attention whose keys and values come from the encoder
        dec = model.decoder.layers[dec_layer]
        y = out.decoder_hidden_states[dec_layer][0]
        t = target.shape[1]
        causal = np.triu(np.ones((t, t), dtype=bool), k=1)
        qkv = [_heads(p(y), 4)[head] for p in (dec.self_attn.q_proj, dec.self_attn.k_proj, dec.self_attn.v_proj)]
        _check_head(steps.self_attention, *qkv, out.decoder_attentions[dec_layer][0, head].numpy(), causal)
        assert (steps.self_attention.masked == causal).all()
        attended, _ = dec.self_attn(y[None], mask=torch.from_numpy(~causal)[None, None])
        mid = dec.norm1(y + attended[0])
        q = _heads(dec.cross_attn.q_proj(mid), 4)[head]
        k, v = (_heads(p(memory), 4)[head] for p in (dec.cross_attn.k_proj, dec.cross_attn.v_proj))
        _check_head(steps.cross_attention, q, k, v, out.cross_attentions[dec_layer][0, head].numpy())
        np.testing.assert_allclose(steps.logits, out.logits[0].numpy(), atol=ATOL)
        np.testing.assert_allclose(steps.probs, out.logits[0].softmax(-1).numpy(), atol=1e-6)

        # one token at a time: row t is what step t computed with the key/value cache
        cache = model.new_cache()
        encoded = model.encode(src).last_hidden_state
        for step in range(t):
            one = model.decode(target[:, step:step + 1], encoded, cache=cache, output_attentions=True)
            np.testing.assert_allclose(steps.logits[step], one.logits[0, 0].numpy(), atol=ATOL)
            np.testing.assert_allclose(steps.self_attention.weights[step, :step + 1],
                                       one.attentions[dec_layer][0, head, 0].numpy(), atol=ATOL)
            np.testing.assert_allclose(steps.cross_attention.weights[step],
                                       one.cross_attentions[dec_layer][0, head, 0].numpy(), atol=ATOL)
            if step < t - 1 or not steps.forced_end:
                assert int(np.argmax(steps.logits[step])) == steps.output_ids[step]
    eos = config.eos_token_id
    assert steps.output_ids[:-1] == greedy[1:t]  # [BOS] y_1 … (no end token when it runs out of room)
    assert steps.output_ids[-1] == eos and steps.target_tokens[0] == tokenizer.id_to_token(config.bos_token_id)
    assert len(steps.target_tokens) == len(steps.output_tokens) == t
    assert steps.forced_end == (t == 12)  # an untrained model never picks the end token: the search stops it


def test_vision_walkthrough_equals_the_models_pass():
    """Reference: VisionTransformer's forward and parameters, PyTorch's unfold and conv2d for the patches."""
    torch.manual_seed(2)
    config = ViTConfig.preset("tiny")
    model = VisionTransformer(config).eval()
    pixels = torch.rand(1, 8, 8)
    layer, head = 1, 1
    steps = vision_walkthrough(model, pixels, ["a", "b", "c"], layer=layer, head=head, preprocess=lambda x: x * 2 - 1)
    inputs = pixels[None] * 2 - 1
    p, d = config.patch_size, config.d_model
    with torch.no_grad():
        out = model(inputs, output_hidden_states=True, output_attentions=True)
        unfolded = F.unfold(inputs, kernel_size=p, stride=p)[0].T  # (N, C·P·P), channel-major like the model
        conv = F.conv2d(inputs, model.patch_embedding.proj.weight.reshape(d, 1, p, p), model.patch_embedding.proj.bias,
                        stride=p)  # (1, D, g, g)
        block = model.encoder.layers[layer]
        x = out.hidden_states[layer][0]
        normed = block.norm1(x)
        qkv = [_heads(proj(normed), 2)[head] for proj in (block.self_attn.q_proj, block.self_attn.k_proj,
                                                          block.self_attn.v_proj)]
    assert steps.grid == 2 and steps.tokens == ["[CLS]", "0,0", "0,1", "1,0", "1,1"]
    np.testing.assert_allclose(steps.image, inputs[0].numpy(), atol=0)
    np.testing.assert_allclose(steps.patches, unfolded.numpy(), atol=0)
    np.testing.assert_allclose(steps.patch_vectors, conv[0].flatten(1).T.numpy(), atol=ATOL)
    np.testing.assert_allclose(steps.cls_token, model.cls_token[0, 0].detach().numpy(), atol=0)
    np.testing.assert_allclose(steps.position, model.position_embeddings[0].detach().numpy(), atol=0)
    np.testing.assert_allclose(steps.embedded, out.hidden_states[0][0].numpy(), atol=ATOL)
    _check_head(steps.attention, *qkv, out.attentions[layer][0, head].numpy())
    np.testing.assert_allclose(steps.cls_to_patches, out.attentions[layer][0, head, 0, 1:].reshape(2, 2).numpy(),
                               atol=ATOL)
    np.testing.assert_allclose(steps.layer_output, out.hidden_states[layer + 1][0].numpy(), atol=ATOL)
    np.testing.assert_allclose(steps.features, out.pooled[0].numpy(), atol=ATOL)
    np.testing.assert_allclose(steps.logits, out.logits[0].numpy(), atol=ATOL)
    np.testing.assert_allclose(steps.probs, out.logits[0].softmax(-1).numpy(), atol=1e-6)


def test_walkthroughs_refuse_other_models_and_out_of_range_choices(tokenizer):
    torch.manual_seed(0)
    lm = DecoderLM(DecoderLMConfig.preset("tiny", vocab_size=tokenizer.vocab_size))
    with pytest.raises(ValueError, match="layer=2; the model has layers 0..1"):
        lm_walkthrough(lm, tokenizer, [1, 2], layer=2)
    with pytest.raises(ValueError, match="1..64 tokens"):
        lm_walkthrough(lm, tokenizer, [1] * 65)
    with pytest.raises(TypeError, match="needs a Seq2SeqTransformer"):
        translation_walkthrough(lm, tokenizer, [1, 2])
    with pytest.raises(TypeError, match="needs a VisionTransformer"):
        vision_walkthrough(lm, torch.zeros(1, 8, 8), [])
