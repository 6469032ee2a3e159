"""The positional-encoding heatmap and the one-hot / embedding / dot-product pictures show the right numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glassformer import numpy_ref
from glassformer.viz import dot_product_figure, embedding_lookup_figure, one_hot_figure, positional_encoding_figure


def _array(ax) -> np.ndarray:
    return np.asarray(ax.images[0].get_array())


def test_positional_heatmap_is_the_sinusoid_table():
    fig = positional_encoding_figure(length=10, d_model=6)
    table = _array(fig.axes[0])
    assert table.shape == (10, 6)
    # PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), written out for known cells.
    assert table[0, 0] == 0.0 and table[0, 1] == 1.0
    assert table[1, 0] == pytest.approx(math.sin(1.0))
    assert table[3, 2] == pytest.approx(math.sin(3 / 10000 ** (2 / 6)))
    assert table[7, 5] == pytest.approx(math.cos(7 / 10000 ** (4 / 6)))
    assert fig.axes[0].get_xlabel() == "dimension" and fig.axes[0].get_ylabel() == "position"
    with pytest.raises(ValueError, match="positive"):
        positional_encoding_figure(0, 4)


def test_one_hot_rows():
    words = ["the", "cat", "the"]
    table = _array(one_hot_figure(words).axes[0])
    np.testing.assert_array_equal(table, [[1, 0], [0, 1], [1, 0]])


def test_embedding_lookup_picks_rows():
    words = ["a", "b", "a", "c"]
    weights = np.arange(12, dtype=float).reshape(3, 4)
    fig = embedding_lookup_figure(words, weights)
    np.testing.assert_array_equal(_array(fig.axes[0]), weights)
    np.testing.assert_array_equal(_array(fig.axes[1]), weights[[0, 1, 0, 2]])
    with pytest.raises(ValueError, match="3 distinct"):
        embedding_lookup_figure(words, np.zeros((2, 4)))


def test_dot_product_similarity():
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_allclose(_array(dot_product_figure(["x", "y", "z"], vectors).axes[0]),
                               [[1, 1, 0], [1, 2, 2], [0, 2, 4]])
    cosine = _array(dot_product_figure(["x", "y", "z"], vectors, normalize=True).axes[0])
    assert cosine[0, 1] == pytest.approx(1 / math.sqrt(2)) and cosine[2, 2] == pytest.approx(1.0)
    one_hot = _array(dot_product_figure(["a", "b", "a"]).axes[0])
    np.testing.assert_array_equal(one_hot, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    assert numpy_ref.one_hot("a", ["a", "b"]).tolist() == [1.0, 0.0]
