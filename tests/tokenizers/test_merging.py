"""The n log n merge loop against GPT-2's textbook ``bpe()`` loop (naive_bpe.py), and long pieces against tiktoken."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassformer.tokenizers import CharBPE
from glassformer.tokenizers.merging import LONG_PIECE, merge_long, merge_short

from .naive_bpe import naive_encode_piece

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Spaceless runs that the GPT-2 pattern keeps as one piece: letters, digits, punctuation, CJK ideographs.
ALPHABETS = {"letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "digits": "0123456789",
             "punctuation": "!#$%&()*+,-./:;<=>?@[]^_`{|}~",
             "cjk": "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000))}


def _gpt2_tables(gpt2):
    return gpt2._ranks, gpt2.merges, gpt2._results


@FAST
@given(alphabet=st.sampled_from(sorted(ALPHABETS)), length=st.integers(0, 400), seed=st.integers(0, 2**32))
def test_both_merge_loops_equal_the_textbook_loop_with_gpt2_merges(gpt2, alphabet, length, seed):
    rng = random.Random(seed)
    piece = "".join(rng.choice(ALPHABETS[alphabet]) for _ in range(length))
    ids = list(piece.encode("utf-8"))
    expected = naive_encode_piece(ids, *_gpt2_tables(gpt2))
    assert merge_short(list(ids), *_gpt2_tables(gpt2)) == expected
    assert merge_long(list(ids), *_gpt2_tables(gpt2)) == expected


@st.composite
def merge_tables(draw):
    """Random merge tables over a 4-symbol alphabet, including ones where a later merge builds a token that
    an earlier pair's rank outranks (the case where merging one occurrence at a time would differ)."""
    vocab = [(i,) for i in range(4)]
    merges, ranks, results = [], {}, []
    for _ in range(draw(st.integers(0, 14))):
        a = draw(st.integers(0, len(vocab) - 1))
        b = draw(st.integers(0, len(vocab) - 1))
        if (a, b) in ranks:
            continue
        joined = vocab[a] + vocab[b]
        new = vocab.index(joined) if joined in vocab else len(vocab)
        if new == len(vocab):
            vocab.append(joined)
        ranks[(a, b)] = len(merges)
        merges.append((a, b))
        results.append(new)
    return ranks, merges, results


@settings(max_examples=400, deadline=None)
@given(tables=merge_tables(), ids=st.lists(st.integers(0, 3), max_size=120))
def test_both_merge_loops_equal_the_textbook_loop_on_random_merge_tables(tables, ids):
    expected = naive_encode_piece(ids, *tables)
    assert merge_short(list(ids), *tables) == expected
    assert merge_long(list(ids), *tables) == expected


def test_a_pass_finishes_its_pair_before_a_lower_rank_pair_it_created():
    """Symbols a b c = 0 1 2. Merges: bc, ab, (ab)c → abc, (abc)a, then a(bc) → abc again (id reused).
    "abcabc": bc twice → a·bc·a·bc; a(bc) twice → abc·abc (GPT-2's rule). Merging one occurrence at a time
    would join the first abc with the next a (a lower rank) before the second a(bc): [abca, bc]."""
    merges = [(1, 2), (0, 1), (5, 2), (6, 0), (0, 4)]
    results = [4, 5, 6, 7, 6]
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    ids = [0, 1, 2, 0, 1, 2]
    assert naive_encode_piece(ids, ranks, merges, results) == [6, 6]
    assert merge_short(list(ids), ranks, merges, results) == [6, 6]
    assert merge_long(list(ids), ranks, merges, results) == [6, 6]


@pytest.mark.parametrize("alphabet", sorted(ALPHABETS))
def test_64k_spaceless_piece_equals_tiktoken(gpt2, tiktoken_gpt2, alphabet):
    """One 65,536-character piece (the quadratic loop took 9–11 s on letters; this is well under a second)."""
    rng = random.Random(alphabet)
    text = "".join(rng.choice(ALPHABETS[alphabet]) for _ in range(65536))
    assert len(gpt2._regex.findall(text)) == 1
    ids = gpt2.encode(text)
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(ids) == text


def test_long_pieces_are_not_cached(gpt2):
    text = "x" * (4 * LONG_PIECE) + "y" * 10_000
    gpt2.encode(text)
    assert text not in gpt2._cache


def test_char_bpe_long_word_uses_the_same_rule():
    """CharBPE's word segmentation through the shared loop equals the article's rule applied step by step."""
    tokenizer = CharBPE()
    tokenizer.train("low,lowest,newer,wider,lower,widest", 12)
    rng = random.Random(0)
    word = "".join(rng.choice("lowestnrid") for _ in range(3000))
    symbols = list(word) + ["</w>"]
    for pair in tokenizer.merges:  # the article's rule: each merge in learned order, over the whole word
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    assert tokenizer.segment(word) == symbols
