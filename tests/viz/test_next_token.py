"""The next-token distribution the Generate tab draws, against transformers' logits processors on the same logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassformer.viz.next_token import next_token_distribution

SETTINGS = [(t, k, p) for t in (0.3, 0.7, 1.0, 1.6) for k in (0, 1, 5, 40) for p in (0.3, 0.9, 1.0)]


@pytest.fixture(scope="module")
def logits() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(85) * 3  # a character model's vocabulary, logits of a confident model


def test_renormalised_distribution_equals_transformers_processors(logits):
    """Reference: transformers' TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, in generate()'s order.

    As in ``generate``, top-k 0 and top-p 1.0 mean the processor is not used at all.
    """
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    for temperature, top_k, top_p in SETTINGS:
        warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)]
                                      + ([TopKLogitsWarper(top_k)] if top_k else [])
                                      + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else []))
        reference = warpers(torch.zeros(1, 1, dtype=torch.long), logits[None].clone()).softmax(-1)[0].numpy()
        ours = next_token_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p)
        np.testing.assert_allclose(ours.sample_probs, reference, atol=1e-6, err_msg=f"{temperature, top_k, top_p}")
        np.testing.assert_allclose(ours.probs, logits.softmax(-1).numpy(), atol=1e-6)
        assert ours.kept == int(np.count_nonzero(reference))
        assert all((cut == "") == (p > 0) for cut, p in zip(ours.cut, reference))
        if top_k:
            assert ours.kept <= top_k


def test_each_removed_token_names_the_cut_that_removed_it(logits):
    only_k = next_token_distribution(logits, temperature=1.0, top_k=3)
    assert only_k.cut.count("") == 3 and only_k.cut.count("top-k") == 82
    kept = set(only_k.top(3).tolist())
    assert {i for i, cut in enumerate(only_k.cut) if cut == ""} == kept
    both = next_token_distribution(logits, temperature=1.0, top_k=10, top_p=0.5)
    assert both.cut.count("top-k") == 75 and both.cut.count("top-p") == 10 - both.kept


def test_temperature_zero_is_greedy(logits):
    greedy = next_token_distribution(logits, temperature=0.0, top_k=5)
    best = int(logits.argmax())
    assert greedy.greedy and greedy.kept == 1 and greedy.sample_probs[best] == 1.0
    assert greedy.cut[best] == "" and greedy.cut.count("greedy") == 84
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        next_token_distribution(logits, temperature=-1.0)
