"""Decoder-only generation: the cached stream and the batched ``generate`` equal full recomputation without a
cache, greedy and sampled; seeds reproduce; top-k / top-p / temperature draw from the distributions computed here
by hand."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from glassformer.inference.generate import generate, stream_text, stream_tokens
from glassformer.inference.sampling import process_logits, sample_next_token
from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
from glassformer.tokenizers import ByteLevelBPE, CharTokenizer

V = 40


@pytest.fixture(scope="module")
def model() -> DecoderLM:
    torch.manual_seed(0)
    lm = DecoderLM(DecoderLMConfig.preset("tiny", vocab_size=V, max_position=32, dropout=0.0))
    # Larger weights than the 0.02 initialisation, so that the next-token distribution is far from uniform.
    with torch.no_grad():
        for p in lm.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.5)
    return lm.eval()


def _small(seed: int) -> DecoderLM:
    torch.manual_seed(seed)
    config = DecoderLMConfig(vocab_size=V, max_position=32, d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0)
    return DecoderLM(config).eval()


def test_greedy_stream_equals_recomputing_the_whole_prefix_without_cache(model):
    prompt = [3, 1, 4, 1, 5]
    streamed = list(stream_tokens(model, prompt, 20, greedy=True))
    ids = list(prompt)
    for _ in range(20):
        with torch.no_grad():
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert streamed == ids[len(prompt):]


def test_greedy_generation_matches_argmax_without_cache() -> None:
    """Reference: recompute the whole sequence each step and take the argmax, a batch of two prompts."""
    model = _small(5)
    prompt = torch.randint(0, V, (2, 3))
    generated = generate(model, prompt, max_new_tokens=6, greedy=True)
    expected = prompt
    for _ in range(6):
        next_id = model(expected).logits[:, -1].argmax(-1, keepdim=True)
        expected = torch.cat([expected, next_id], dim=1)
    assert torch.equal(generated, expected)


def test_sampled_stream_and_generate_equal_a_draw_by_hand_with_the_same_seed(model):
    """Reference: the whole prefix re-run each step, the cuts of process_logits, softmax, torch.multinomial."""
    prompt = torch.tensor([[7, 2, 9]])
    settings = {"temperature": 0.9, "top_k": 10, "top_p": 0.95}
    generator, ids = torch.Generator().manual_seed(123), prompt
    with torch.no_grad():
        for _ in range(25):
            probs = process_logits(model(ids).logits[:, -1].float(), **settings).softmax(-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    expected = ids[0, 3:].tolist()
    assert list(stream_tokens(model, prompt, 25, seed=123, **settings)) == expected
    assert generate(model, prompt, 25, seed=123, **settings)[0, 3:].tolist() == expected


def test_sampling_is_reproducible_and_respects_top_k() -> None:
    model = _small(6)
    prompt = torch.randint(0, V, (1, 2))
    a = generate(model, prompt, 8, top_k=5, generator=torch.Generator().manual_seed(0))
    b = generate(model, prompt, 8, top_k=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (1, 10)
    assert torch.equal(generate(model, prompt, 5, top_k=1), generate(model, prompt, 5, greedy=True))


def test_sample_next_token_filters() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next_token(logits, top_p=0.7, generator=g).ids) for _ in range(200)}
    assert draws == {0, 1}  # 0.5 < 0.7 needs the second token; 0.8 >= 0.7 stops there
    draws = {int(sample_next_token(logits, top_k=3, generator=g).ids) for _ in range(300)}
    assert draws == {0, 1, 2}
    assert int(sample_next_token(logits, temperature=0.0).ids) == 0


def test_generate_stops_at_eos_and_checks_length() -> None:
    model = _small(7)
    prompt = torch.randint(0, V, (2, 3))
    first = generate(model, prompt, 1, greedy=True)[:, -1]
    assert generate(model, prompt[:1], 10, greedy=True, eos_token_id=int(first[0])).shape == (1, 4)
    out = generate(model, prompt, 10, greedy=True, eos_token_id=int(first[0]))
    assert out.shape[1] > 4 or int(first[1]) == int(first[0])  # the other row goes on unless it ended too
    assert out[0, 3:].tolist() == [int(first[0])] * (out.shape[1] - 3)  # an ended row keeps emitting the end token
    with pytest.raises(ValueError, match="does not fit in max_position=32"):
        generate(model, prompt, 31)


def test_fixed_seed_is_reproducible_and_different_seeds_differ(model):
    runs = [list(stream_tokens(model, [1, 2], 28, temperature=1.5, seed=s)) for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_stream_is_lazy_and_stops_at_the_end_token(model):
    stream = stream_tokens(model, [1, 2, 3], 10, greedy=True)
    first = next(stream)  # produced before the rest is asked for
    rest = list(stream)
    assert len(rest) == 9
    stopped = list(stream_tokens(model, [1, 2, 3], 10, greedy=True, eos_token_id=first))
    assert stopped == [first]


def test_generation_slides_past_the_context_length(model):
    window = model.config.max_position
    out = list(stream_tokens(model, list(range(1, 30)), 3 * window, greedy=True))
    assert len(out) == 3 * window
    # Right after the first slide, the next token is the greedy choice given the recent half of the context.
    full = list(range(1, 30)) + out
    crossed = window - 29 + 1  # the first token drawn after the cache was full and slid
    context = full[29 + crossed - (window // 2 + 1): 29 + crossed]
    with torch.no_grad():
        assert out[crossed] == int(model(torch.tensor([context])).logits[0, -1].argmax())


def _frequencies(logits: list[float], n: int = 40_000, **kwargs) -> dict[int, float]:
    batch = torch.tensor([logits]).repeat(n, 1)
    draws = sample_next_token(batch, generator=torch.Generator().manual_seed(0), **kwargs).ids.flatten().tolist()
    return {k: v / n for k, v in Counter(draws).items()}


# p = (0.5, 0.3, 0.15, 0.05) as logits.
PROBS = [0.5, 0.3, 0.15, 0.05]
LOGITS = [math.log(p) for p in PROBS]


def test_top_k_keeps_the_k_most_likely_renormalised():
    freq = _frequencies(LOGITS, top_k=2)
    assert set(freq) == {0, 1}
    assert freq[0] == pytest.approx(0.5 / 0.8, abs=0.01)  # 0.625
    assert freq[1] == pytest.approx(0.3 / 0.8, abs=0.01)


def test_top_p_keeps_the_smallest_set_reaching_p():
    # 0.5 < 0.7 ≤ 0.5 + 0.3: the nucleus is {0, 1}.
    freq = _frequencies(LOGITS, top_p=0.7)
    assert set(freq) == {0, 1}
    assert freq[0] == pytest.approx(0.625, abs=0.01)
    # 0.5 + 0.3 < 0.9 ≤ 0.95: the nucleus is {0, 1, 2}.
    freq = _frequencies(LOGITS, top_p=0.9)
    assert set(freq) == {0, 1, 2}
    assert freq[2] == pytest.approx(0.15 / 0.95, abs=0.01)
    # A nucleus smaller than the top token still keeps it.
    assert set(_frequencies(LOGITS, top_p=0.1, n=2000)) == {0}


def test_temperature_sharpens_as_powers_of_the_probabilities():
    freq = _frequencies(LOGITS, temperature=0.5)  # p_i^2 / Σ p_j^2
    norm = sum(p * p for p in PROBS)
    for i, p in enumerate(PROBS):
        assert freq.get(i, 0.0) == pytest.approx(p * p / norm, abs=0.01)


def test_top_k_then_top_p_combine():
    # top_k=3 leaves (0.5, 0.3, 0.15)/0.95 = (0.526, 0.316, 0.158); top_p=0.8 then keeps {0, 1}.
    freq = _frequencies(LOGITS, top_k=3, top_p=0.8)
    assert set(freq) == {0, 1}


def test_text_stream_of_characters_joins_to_the_decoded_ids(model):
    tokenizer = CharTokenizer("abcdefghijklmnopqrstuvwxyz .,\n'ABCDEFG")
    assert tokenizer.vocab_size == model.config.vocab_size
    pieces = list(stream_text(model, tokenizer, "to be", 30, start_ids=[tokenizer.end_id], stop_at_end=False,
                              seed=3))
    ids = list(stream_tokens(model, [tokenizer.end_id] + tokenizer.encode("to be"), 30, seed=3))
    assert "".join(pieces) == tokenizer.decode(ids)
    assert len(pieces) == 30


def test_text_stream_holds_back_bytes_of_a_split_character():
    tokenizer = ByteLevelBPE()
    tokenizer.train(["héllo wörld"], 258, progress=False)
    torch.manual_seed(1)
    lm = DecoderLM(DecoderLMConfig.preset("tiny", vocab_size=tokenizer.vocab_size, max_position=64)).eval()
    pieces = list(stream_text(lm, tokenizer, "é", 40, stop_at_end=False, seed=0, temperature=2.0))
    ids = list(stream_tokens(lm, tokenizer.encode("é"), 40, seed=0, temperature=2.0))
    assert "".join(pieces) == tokenizer.decode(ids)
    # 'é' is two bytes; fed one byte per token it must come out whole, never as two replacement characters.
    assert tokenizer.encode("é") == list("é".encode("utf-8"))


def test_bad_arguments_are_reported(model):
    with pytest.raises(ValueError, match="at least one token"):
        next(stream_tokens(model, [], 3))
    with pytest.raises(ValueError, match="seed or generator"):
        next(stream_tokens(model, [1], 3, seed=1, generator=torch.Generator()))


def test_step_probabilities_equal_transformers_logits_processors(model):
    """Reference: transformers' TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper on the same logits.

    Each step reports p(token | context) at temperature 1 and the probability of the distribution it
    was drawn from; both must equal what the references give for that step's logits.
    """
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from glassformer.inference.generate import stream_steps

    steps = list(stream_steps(model, [3, 1, 4], 6, temperature=0.7, top_k=12, top_p=0.9, seed=1))
    warpers = LogitsProcessorList([TemperatureLogitsWarper(0.7), TopKLogitsWarper(12), TopPLogitsWarper(0.9)])
    for step in steps:
        logits = step.logits[None]
        reference = warpers(torch.zeros(1, 1, dtype=torch.long), logits.clone()).softmax(-1)[0]
        ours = process_logits(logits, temperature=0.7, top_k=12, top_p=0.9).softmax(-1)[0]
        assert torch.allclose(ours, reference, atol=1e-6)
        assert step.sample_prob == pytest.approx(float(reference[step.token]), abs=1e-6)
        assert step.prob == pytest.approx(float(logits.softmax(-1)[0, step.token]), abs=1e-6)
