"""The two source articles' worked numbers, reproduced by glassformer's own code.

Expected values are the articles' printed numbers, or are recomputed here independently with
`math` (never with glassformer itself).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glassformer import numpy_ref
from glassformer.models.markov import MarkovChain


def test_softmax_of_1_2_3():
    np.testing.assert_allclose(numpy_ref.softmax([1, 2, 3]), [0.09003057, 0.24472847, 0.66524096], atol=1e-8)


def test_one_hot_fruit_vocabulary():
    vocab = ["apple", "banana", "orange", "grape"]
    np.testing.assert_array_equal(numpy_ref.one_hot("orange", vocab), [0, 0, 1, 0])
    np.testing.assert_array_equal(numpy_ref.one_hot("kiwi", vocab), [0, 0, 0, 0])


def test_one_hot_selects_a_row():
    """The first article: one_hot('find') · [0.2, 0.7, 0.8] picks the weight of 'find', 0.7."""
    vector = numpy_ref.one_hot("find", {"files": 0, "find": 1, "my": 2})
    assert vector @ np.array([0.2, 0.7, 0.8]) == pytest.approx(0.7, abs=1e-12)


def test_simple_tokenize():
    assert numpy_ref.simple_tokenize("Hello, how are you doing today?") == [
        "Hello", ",", "how", "are", "you", "doing", "today", "?"
    ]


QUERIES = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
KEYS = [[1, 1, 1], [0, 1, 0], [1, 0, 1]]
VALUES = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
WEIGHTS = [
    [0.46831053, 0.06337894, 0.46831053],
    [0.4223188, 0.4223188, 0.1553624],
    [0.57611688, 0.21194156, 0.21194156],
]
OUTPUT = [[4, 5, 6], [3.19913082, 4.19913082, 5.19913082], [2.90747402, 3.90747402, 4.90747402]]


def test_three_token_attention_numpy_ref():
    """The article's unscaled example: softmax(Q Kᵀ) V."""
    out, weights = numpy_ref.scaled_dot_product_attention(QUERIES, KEYS, VALUES, scale=1.0)
    np.testing.assert_allclose(weights, WEIGHTS, atol=1e-7)
    np.testing.assert_allclose(out, OUTPUT, atol=1e-7)


@pytest.mark.parametrize("fused", [False, True])
def test_three_token_attention_torch(fused):
    """The same example through glassformer.nn.attention (explicit path returns weights too)."""
    from glassformer.nn.attention import scaled_dot_product_attention

    q, k, v = (torch.tensor(a, dtype=torch.float64)[None, None] for a in (QUERIES, KEYS, VALUES))  # (1, 1, 3, 3)
    out, weights = scaled_dot_product_attention(q, k, v, fused=fused, need_weights=not fused, scale=1.0)
    torch.testing.assert_close(out[0, 0], torch.tensor(OUTPUT, dtype=torch.float64), atol=1e-7, rtol=0)
    if not fused:
        torch.testing.assert_close(weights[0, 0], torch.tensor(WEIGHTS, dtype=torch.float64), atol=1e-7, rtol=0)


# "Despite the heavy rain": the article prints q = W_Q·x and k = W_K·x for some tokens but we do not
# have its matrices verbatim. This set was constructed to reproduce every printed vector exactly:
# W_Q = 0.1·[[1..4], [5..8], [9..12], [13..16]], W_K = the same numbers in reverse order, and the
# 4-d embeddings below. The test checks the article's printed vectors, dot products and softmax.
W_Q = 0.1 * np.arange(1, 17, dtype=np.float64).reshape(4, 4)
W_K = 0.1 * np.arange(16, 0, -1, dtype=np.float64).reshape(4, 4)
EMBEDDING = {
    "Despite": np.array([0.1, 0.2, 0.2, 0.4]),
    "the": np.array([0.0, 0.0, 0.2, 0.2]),
    "heavy": np.array([0.1, 0.1, 0.3, 0.3]),
}


def test_despite_the_heavy_rain():
    """numpy_ref.SelfAttention, called on the three tokens, gives the article's printed q, k and scores."""
    attention = numpy_ref.SelfAttention(d_model=4, n_heads=1, bias=False)
    # The article writes q = W·x (W is out × in); numpy_ref multiplies x @ W (in × out): transpose.
    attention.W_q, attention.W_k = W_Q.T, W_K.T
    tokens = ["Despite", "the", "heavy"]
    attention(np.stack([EMBEDDING[t] for t in tokens]))                 # (3, 4)
    q, k = attention.queries[0], attention.keys[0]                       # the only head
    np.testing.assert_allclose(q[0], [0.27, 0.63, 0.99, 1.35], atol=1e-12)
    np.testing.assert_allclose(k[1], [0.54, 0.38, 0.22, 0.06], atol=1e-12)
    np.testing.assert_allclose(k[2], [1.12, 0.8, 0.48, 0.16], atol=1e-12)
    np.testing.assert_allclose(k[0], [1.26, 0.9, 0.54, 0.18], atol=1e-12)

    printed = [0.684, 1.4976, 1.6848]                                   # the, heavy, Despite
    np.testing.assert_allclose(attention.scores[0, 0, [1, 2, 0]], printed, atol=1e-12)

    # The article's softmax is over the raw scores; the layer divides them by √d_k = 2 first.
    exps = [math.exp(s) for s in printed]
    np.testing.assert_allclose(numpy_ref.softmax(attention.scores[0, 0, [1, 2, 0]]), [e / sum(exps) for e in exps],
                               atol=1e-12)
    halved = [math.exp(s / 2) for s in printed]
    np.testing.assert_allclose(attention.attention_weights[0, 0, [1, 2, 0]], [e / sum(halved) for e in halved],
                               atol=1e-12)


def test_markov_row_for_my():
    """The first article's transition row: after "my" come files 0.3, photos 0.5, directories 0.2."""
    corpus = [["find", "my", "files"]] * 3 + [["open", "my", "photos"]] * 5 + [["list", "my", "directories"]] * 2
    chain = MarkovChain(order=1, smoothing="none").fit(corpus)
    assert chain.transitions["my"] == pytest.approx({"files": 0.3, "photos": 0.5, "directories": 0.2}, abs=1e-12)
    states, vocab, matrix = chain.transition_matrix()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    row = matrix[states.index("my")]
    assert row[vocab.index("photos")] == pytest.approx(0.5)


def _first_article_torch_table(max_len: int, d_model: int) -> np.ndarray:
    # The first article's torch version: frequencies through exp(-2i·ln(10000)/d_model).
    position = torch.arange(max_len, dtype=torch.float64)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.numpy()


def _second_article_loop_table(max_len: int, d_model: int) -> np.ndarray:
    # The second article's loop: i already steps by 2, and the exponent doubles it again.
    pe = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            pe[pos, i] = math.sin(pos / 10000 ** ((2 * i) / d_model))
            pe[pos, i + 1] = math.cos(pos / 10000 ** ((2 * i) / d_model))
    return pe


def test_positional_encoding_formula_and_first_article():
    max_len, d_model = 50, 16
    table = numpy_ref.positional_encoding(max_len, d_model)
    for pos in (0, 1, 7, 49):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-12)
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-12)
    np.testing.assert_allclose(table, _first_article_torch_table(max_len, d_model), atol=1e-12)


def test_second_article_loop_uses_the_wrong_frequencies():
    """Documents the pitfall: the loop's column 2j has the frequency the formula gives column 4j."""
    max_len, d_model = 50, 16
    table = numpy_ref.positional_encoding(max_len, d_model)
    loop = _second_article_loop_table(max_len, d_model)
    np.testing.assert_allclose(loop[:, :2], table[:, :2], atol=1e-12)   # i = 0 agrees by accident
    assert np.abs(loop[:, 2:] - table[:, 2:]).max() > 0.1
    for j in range(1, d_model // 4):
        np.testing.assert_allclose(loop[:, 2 * j], table[:, 4 * j], atol=1e-12)
