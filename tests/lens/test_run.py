"""run_with_cache / run_with_hooks: only what is asked is kept; the accumulated residual stream equals transformers'
hidden states; hooks go away afterwards, also after an error; every family has the same names."""

from __future__ import annotations

import pytest
import torch

from glassformer.lens import ActivationCache, resid_names, run_with_cache, run_with_hooks, stacks
from tests.lens.conftest import VOCAB


def test_keeps_only_what_is_asked(gpt2):
    _, ours = gpt2
    ids = torch.randint(0, VOCAB, (1, 6))
    _, cache = run_with_cache(ours, ids, names="*.self_attn.hook_pattern")
    assert list(cache) == [f"blocks.layers.{i}.self_attn.hook_pattern" for i in range(3)]
    assert cache.stack("*.hook_pattern").shape == (3, 1, 4, 6, 6)
    _, cache = run_with_cache(ours, ids, names=lambda name: name.endswith("hook_logits"))
    assert list(cache) == ["hook_logits"]
    _, everything = run_with_cache(ours, ids)
    assert len(everything) == sum(1 for _ in everything) > 40 and isinstance(everything, ActivationCache)
    with pytest.raises(KeyError, match="not in this cache"):
        cache["hook_embed"]
    with pytest.raises(ValueError, match="no hook point matches"):
        run_with_cache(ours, ids, names="*.hook_nothing")


def test_accumulated_resid_equals_transformers_hidden_states(gpt2):
    """Reference: transformers GPT2Model hidden_states (embeddings + positions, then each block; the last has ln_f)."""
    hf, ours = gpt2
    ids = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        _, cache = run_with_cache(ours, ids, names=resid_names(ours))
        states = hf(ids, output_hidden_states=True).hidden_states
        resid = cache.accumulated_resid()
        assert resid.shape == (4, 2, 7, 24)
        for layer in range(3):
            assert (resid[layer] - states[layer]).abs().max() <= 1e-10
        assert (ours.blocks.norm(resid[3]) - states[3]).abs().max() <= 1e-10


def test_hooks_edit_and_are_removed_even_after_an_error(gpt2):
    _, ours = gpt2
    ids = torch.randint(0, VOCAB, (1, 5))
    with torch.no_grad():
        plain = ours(ids).logits
        doubled = run_with_hooks(ours, ids, fwd_hooks={"blocks.layers.1.hook_resid_post": lambda x, p: 2 * x}).logits
    assert not torch.allclose(plain, doubled)

    def boom(x, point):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_with_hooks(ours, ids, fwd_hooks={"hook_logits": boom})
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, plain)
    assert all(not p._forward_hooks for p in ours.modules())


def test_every_family_is_cached_under_the_same_names():
    from glassformer.models import (
        DecoderLM,
        DecoderLMConfig,
        EncoderClassifier,
        EncoderConfig,
        Seq2SeqConfig,
        Seq2SeqTransformer,
        VisionTransformer,
        ViTConfig,
    )

    torch.manual_seed(0)
    cases = [
        (DecoderLM(DecoderLMConfig.preset("tiny")), (torch.randint(0, 256, (1, 5)),), {"blocks": 2}),
        (EncoderClassifier(EncoderConfig.preset("tiny")), (torch.randint(0, 1000, (1, 5)),), {"encoder.encoder": 2}),
        (VisionTransformer(ViTConfig.preset("tiny")), (torch.randn(1, 1, 8, 8),), {"encoder": 2}),
        (Seq2SeqTransformer(Seq2SeqConfig.preset("tiny")), (torch.randint(3, 128, (1, 5)), torch.randint(3, 128, (1, 4))),
         {"encoder": 2, "decoder": 2}),
    ]
    for model, inputs, expected in cases:
        model.eval()
        assert stacks(model) == expected
        for stack in expected:
            _, cache = run_with_cache(model, *inputs, names=resid_names(model, stack) + ["*.hook_z"])
            resid = cache.accumulated_resid(stack)
            assert resid.shape[0] == expected[stack] + 1
            assert cache.stack(f"{stack}.layers.*.self_attn.hook_z").shape[:2] == (expected[stack], 1)
