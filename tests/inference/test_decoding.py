"""Greedy and beam search for the encoder–decoder: cache vs. no cache, beam 1 = greedy, beam vs. exhaustive search."""

from __future__ import annotations

import itertools

import pytest
import torch

from glassformer.inference.generate import (
    WordBias,
    beam_search,
    greedy_search,
    length_penalty,
    sequence_log_probs,
    target_ids,
)
from glassformer.models import Seq2SeqConfig, Seq2SeqTransformer

PAD, BOS, EOS = 0, 1, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(vocab: int = 24, seed: int = 0, scale: float = 3.0) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    config = Seq2SeqConfig(vocab_size=vocab, max_position=64, d_model=32, n_heads=4, n_encoder_layers=2,
                           n_decoder_layers=2, d_ff=64, dropout=0.0, pad_token_id=PAD, bos_token_id=BOS,
                           eos_token_id=EOS)
    model = Seq2SeqTransformer(config).eval()
    with torch.no_grad():  # sharper next-token distributions than at init, so searches disagree
        model.embedding.weight.mul_(scale)
    return model


def _sources(vocab: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (6, 9), generator=generator)
    lengths = torch.tensor([9, 3, 7, 5, 9, 1])
    mask = (torch.arange(9)[None] < lengths[:, None]).long()
    return src.masked_fill(mask == 0, PAD), mask


def _favoured(words: list[list[int]], prefix: list[int]) -> set[int]:
    """By hand: each word not yet in `prefix` gives the piece after the longest start of it that `prefix` ends with."""
    out = set()
    for word in words:
        text, piece = " ".join(map(str, prefix)), " ".join(map(str, word))
        if f" {piece} " in f" {text} ":
            continue
        k = max([k for k in range(1, len(word)) if prefix[len(prefix) - k:] == word[:k]], default=0)
        out.add(word[k])
    return out


def _biased(logits: torch.Tensor, words: list[list[int]] | None, weight: float, prefix: list[int]) -> torch.Tensor:
    logp = logits.float().log_softmax(-1)
    if words is not None:
        for token in _favoured(words, prefix):
            logp[token] += weight
    return logp.log_softmax(-1)


def _uncached_greedy(model: Seq2SeqTransformer, src: torch.Tensor, mask: torch.Tensor, max_len: int,
                     words: list[list[list[int]]] | None = None, weight: float = 0.0) -> list[list[int]]:
    """The textbook loop: re-run the whole decoder on the whole prefix at every step, one sentence at a time."""
    out = []
    for i in range(src.shape[0]):
        row_src, row_mask = src[i : i + 1, : int(mask[i].sum())], None
        prefix = [BOS]
        for step in range(max_len):
            with torch.no_grad():
                logits = model(row_src, torch.tensor([prefix]), row_mask).logits[0, -1]
            logits = _biased(logits, None if words is None else words[i], weight, prefix[1:])
            token = EOS if step == max_len - 1 else int(logits.argmax())
            if token == EOS:
                break
            prefix.append(token)
        out.append(prefix[1:])
    return out


def test_cached_greedy_equals_uncached_textbook_loop() -> None:
    model = _model()
    src, mask = _sources(24)
    hyps = greedy_search(model, src, mask, max_len=12)
    assert [h.tokens for h in hyps] == _uncached_greedy(model, src, mask, 12)
    # The scores the cached search accumulated equal one teacher-forced pass without a cache.
    reference = sequence_log_probs(model, src, mask, [h.tokens for h in hyps])
    torch.testing.assert_close(torch.tensor([h.log_prob for h in hyps]), reference, rtol=1e-4, atol=1e-4)


def test_target_ids_hold_the_searched_tokens_between_bos_and_eos() -> None:
    """Reference: the textbook loop's tokens, which a teacher-forced pass (explanations, views) must read."""
    model = _model(seed=3)
    src, mask = _sources(24, seed=4)
    ids = target_ids(model, greedy_search(model, src, mask, max_len=20))
    for row, tokens in zip(ids.tolist(), _uncached_greedy(model, src, mask, 20)):
        assert row[: len(tokens) + 2] == [BOS, *tokens, EOS] and set(row[len(tokens) + 2:]) <= {PAD}


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_one_is_greedy(alpha: float) -> None:
    model = _model(seed=5)
    src, mask = _sources(24, seed=6)
    greedy = greedy_search(model, src, mask, max_len=15, alpha=alpha)
    beam = beam_search(model, src, mask, beam_size=1, max_len=15, alpha=alpha)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    torch.testing.assert_close(torch.tensor([h.score for h in beam]), torch.tensor([h.score for h in greedy]))


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_never_scores_below_greedy(alpha: float) -> None:
    # Not a theorem for beam search in general; it holds on this toy model, and a broken beam loses it.
    for seed in range(4):
        model = _model(seed=seed)
        src, mask = _sources(24, seed=10 + seed)
        greedy = greedy_search(model, src, mask, max_len=15, alpha=alpha)
        beam = beam_search(model, src, mask, beam_size=4, max_len=15, alpha=alpha)
        rescored = sequence_log_probs(model, src, mask, [h.tokens for h in beam])
        for g, b, r in zip(greedy, beam, rescored.tolist()):
            assert b.score >= g.score - 1e-5
            assert abs(b.log_prob - r) < 1e-4  # the beam's score is the model's own log P(Y | X)
            assert abs(b.score - r / length_penalty(len(b.tokens) + 1, alpha)) < 1e-4


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_wide_beam_finds_the_exhaustive_best(alpha: float) -> None:
    """A beam wider than the whole hypothesis space returns the argmax found by enumerating every target."""
    vocab, max_len = 6, 4  # targets: up to 3 non-EOS tokens, then EOS
    model = _model(vocab=vocab, seed=7, scale=6.0)
    src, mask = _sources(vocab, seed=8)
    src, mask = src[:3], mask[:3]
    non_eos = [t for t in range(vocab) if t != EOS]
    space = [list(t) for n in range(max_len) for t in itertools.product(non_eos, repeat=n)]
    beam = beam_search(model, src, mask, beam_size=1000, max_len=max_len, alpha=alpha)
    for i in range(src.shape[0]):
        rows = torch.full((len(space),), i)
        scores = sequence_log_probs(model, src[rows], mask[rows], space)
        normalised = torch.tensor([s / length_penalty(len(t) + 1, alpha) for s, t in zip(scores.tolist(), space)])
        best = int(normalised.argmax())
        assert beam[i].tokens == space[best]
        assert abs(beam[i].score - float(normalised[best])) < 1e-4


def test_word_bias_favours_the_next_piece_of_each_unwritten_word() -> None:
    bias = WordBias([[[5, 6, 7], [9]]], 2.0)
    assert bias.pieces(0, []) == [5, 9]
    assert bias.pieces(0, [3, 5]) == [6, 9]
    assert bias.pieces(0, [5, 6]) == [7, 9]
    assert bias.pieces(0, [5, 6, 7, 4]) == [9]  # written: no longer favoured
    assert bias.pieces(0, [9, 5, 8]) == [5]  # a start broken off: the word is favoured from its first piece again
    logp = torch.log_softmax(torch.zeros(2, 10), -1)
    raised = bias.apply(logp, [0, 0], [[], [5, 6, 7, 9]])
    assert raised[0].exp().sum() == pytest.approx(1.0) and raised[0, 5] > logp[0, 5] and raised[0, 6] < logp[0, 6]
    torch.testing.assert_close(raised[1], logp[1])  # both words written: nothing changes
    torch.testing.assert_close(WordBias([[[5]]], 0.0).apply(logp, [0, 0], [[], []]), logp)


def _words(vocab: int, rows: int, seed: int = 2) -> list[list[list[int]]]:
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randint(3, vocab, (n,), generator=generator).tolist() for n in (1, 2, 3)] for _ in range(rows)]


def test_biased_greedy_equals_the_textbook_loop_with_the_bias_added() -> None:
    """Reference: the uncached loop adding the weight to the pieces chosen by hand (_favoured), sentence by sentence."""
    model = _model(seed=2)
    src, mask = _sources(24, seed=3)
    words = _words(24, src.shape[0])
    plain = [h.tokens for h in greedy_search(model, src, mask, max_len=12)]
    hyps = [h.tokens for h in greedy_search(model, src, mask, max_len=12, bias=WordBias(words, 3.0))]
    assert hyps == _uncached_greedy(model, src, mask, 12, words, 3.0)
    assert hyps != plain  # the bias changed some translations
    beam = beam_search(model, src, mask, beam_size=1, max_len=12, bias=WordBias(words, 3.0))
    assert [h.tokens for h in beam] == hyps


def test_wide_biased_beam_finds_the_exhaustive_best_under_the_bias() -> None:
    """Every target scored by hand under the biased distribution; a beam wider than the space returns the best."""
    vocab, max_len, weight = 6, 4, 2.0
    model = _model(vocab=vocab, seed=7, scale=6.0)
    src, mask = _sources(vocab, seed=8)
    src, mask = src[:3], mask[:3]
    words = [[[3, 4], [5]], [[4]], [[5, 3, 4]]]
    non_eos = [t for t in range(vocab) if t != EOS]
    space = [list(t) for n in range(max_len) for t in itertools.product(non_eos, repeat=n)]
    beam = beam_search(model, src, mask, beam_size=1000, max_len=max_len, alpha=0.0, bias=WordBias(words, weight))
    for i in range(src.shape[0]):
        row_src = src[i : i + 1, : int(mask[i].sum())]
        scores = []
        for target in space:
            steps = [*target, EOS]
            with torch.no_grad():
                logits = model(row_src, torch.tensor([[BOS, *target]])).logits[0]
            scores.append(sum(float(_biased(logits[t], words[i], weight, target[:t])[token])
                              for t, token in enumerate(steps)))
        best = max(range(len(space)), key=lambda j: scores[j])
        assert beam[i].tokens == space[best]
        assert abs(beam[i].score - scores[best]) < 1e-4


def test_length_penalty_is_gnmt() -> None:
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(30, 0.0) == 1.0


def test_bad_arguments_say_what_was_expected() -> None:
    model = _model()
    src, mask = _sources(24)
    with pytest.raises(ValueError, match="beam_size must be >= 1, got 0"):
        beam_search(model, src, mask, beam_size=0)
    with pytest.raises(ValueError, match="max_len must be >= 1"):
        greedy_search(model, src, mask, max_len=0)
    with pytest.raises(ValueError, match="src_attention_mask has shape"):
        greedy_search(model, src, mask[:, :3])
