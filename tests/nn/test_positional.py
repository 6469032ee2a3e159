"""Positional encodings: the sinusoidal formula, the first article's torch version, the second article's loop bug."""

from __future__ import annotations

import math

import pytest
import torch

from glassformer.nn import LearnedPositionalEmbedding, SinusoidalPositionalEncoding, sinusoidal_table


def test_table_equals_the_formula_in_plain_python() -> None:
    """Independent reference: PE(pos, 2i) = sin(pos/10000^(2i/d)), PE(pos, 2i+1) = cos(same), with math."""
    max_len, d_model = 60, 10
    table = sinusoidal_table(max_len, d_model, dtype=torch.float64)
    for pos in range(max_len):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-12)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-12)


def test_table_equals_the_first_articles_torch_version() -> None:
    """Reference: the first article's div_term = exp(arange(0, d, 2) * -(log(10000)/d)) construction."""
    max_len, d_model = 200, 64
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * -(math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    torch.testing.assert_close(sinusoidal_table(max_len, d_model, dtype=torch.float64), pe, atol=1e-10, rtol=0)
    torch.testing.assert_close(sinusoidal_table(max_len, d_model), pe.float(), atol=1e-6, rtol=0)


def test_second_articles_loop_uses_the_wrong_frequencies() -> None:
    """Documents the second article's bug: `i` already steps by 2, and the exponent doubles it again.

    Its loop computes sin(pos / 10000**(2*i/d_model)) for column i (even), i.e. exponent 2i/d
    where the formula has i/d for that column. Columns 0 and 1 agree (exponent 0); every other
    pair gets the frequency the formula gives to column 2i, so its frequencies fall twice as fast
    and the second half of the columns carry frequencies the formula never uses.
    """
    max_len, d_model = 50, 16
    article = torch.zeros(max_len, d_model, dtype=torch.float64)
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            article[pos, i] = math.sin(pos / (10000 ** ((2 * i) / d_model)))
            article[pos, i + 1] = math.cos(pos / (10000 ** ((2 * i) / d_model)))
    ours = sinusoidal_table(max_len, d_model, dtype=torch.float64)

    differs = [c for c in range(d_model) if not torch.allclose(article[:, c], ours[:, c], atol=1e-9)]
    assert differs == list(range(2, d_model))  # all but the first sin/cos pair

    article_freq = [1 / 10000 ** (2 * i / d_model) for i in range(0, d_model, 2)]
    formula_freq = [1 / 10000 ** (i / d_model) for i in range(0, d_model, 2)]
    # Article's pair k runs at the formula's frequency of pair 2k.
    for k in range(d_model // 4):
        assert article_freq[k] == pytest.approx(formula_freq[2 * k])
    assert min(article_freq) < min(formula_freq) / 100


def test_odd_d_model_ends_with_a_sine_column() -> None:
    table = sinusoidal_table(5, 7, dtype=torch.float64)
    assert table.shape == (5, 7)
    angle = 3 / 10000 ** (6 / 7)
    assert table[3, 6].item() == pytest.approx(math.sin(angle))


def test_sinusoidal_encoding_adds_table_at_offset_and_is_not_a_parameter() -> None:
    encoding = SinusoidalPositionalEncoding(8, max_len=20)
    x = torch.randn(2, 4, 8)
    torch.testing.assert_close(encoding(x, offset=5), x + sinusoidal_table(20, 8)[5:9])
    assert list(encoding.parameters()) == [] and "pe" not in encoding.state_dict()


def test_sinusoidal_encoding_rejects_sequences_longer_than_max_len() -> None:
    encoding = SinusoidalPositionalEncoding(8, max_len=10)
    with pytest.raises(ValueError, match="sequence of length 11 is longer than the max_len=10 positions"):
        encoding(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError, match="sequence of length 12 is longer"):
        encoding(torch.zeros(1, 4, 8), offset=8)


def test_learned_positions_lookup_and_length_error() -> None:
    learned = LearnedPositionalEmbedding(6, 4)
    torch.testing.assert_close(learned(torch.tensor([[0, 5]])), learned.weight[[0, 5]].unsqueeze(0))
    torch.testing.assert_close(learned.embed_range(3, offset=2), learned.weight[2:5])
    with pytest.raises(ValueError, match="sequence of length 7 is longer than the max_len=6 positions"):
        learned(torch.arange(7))
    with pytest.raises(ValueError, match="sequence of length 8 is longer"):
        learned.embed_range(4, offset=4)
