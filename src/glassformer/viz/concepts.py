"""The first article's pictures: one-hot vectors, the embedding lookup, and dot-product similarity.

Each function takes words (or any tokens) and draws what the article computes with them, using
:mod:`glassformer.numpy_ref`'s own functions so the picture shows exactly those numbers.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from glassformer import numpy_ref
from glassformer.viz.heatmaps import matrix_heatmap

EXAMPLE_WORDS = ("the", "cat", "sat", "on", "the", "mat")


def _vocabulary(words: Sequence[str]) -> list[str]:
    """The distinct words in order of first appearance."""
    return list(dict.fromkeys(words))


def _check_words(words: Sequence[str]) -> list[str]:
    words = [str(w) for w in words]
    if not words:
        raise ValueError("give at least one word to draw")
    return words


def one_hot_figure(words: Sequence[str] = EXAMPLE_WORDS, vocab: Sequence[str] | None = None) -> Figure:
    """One row per word: its one-hot vector over the vocabulary, a single 1 at the word's index."""
    words = _check_words(words)
    vocab = _vocabulary(words) if vocab is None else list(vocab)
    matrix = np.stack([numpy_ref.one_hot(w, vocab) for w in words])  # (n_words, V)
    return matrix_heatmap(matrix, words, vocab, title="One-hot vectors: word → row of the identity matrix",
                          xlabel="vocabulary index (word)", ylabel="word in the sentence", cmap="Greys",
                          vmin=0.0, vmax=1.0)


def embedding_lookup_figure(
    words: Sequence[str] = EXAMPLE_WORDS, embedding: np.ndarray | None = None, d_model: int = 8, seed: int = 0
) -> Figure:
    """The lookup ``one_hot(word) @ W = W[id]``: the embedding matrix W beside the rows picked for the words.

    Without ``embedding`` (shape ``(V, d_model)`` over the words' vocabulary) a random one is drawn
    the way :class:`glassformer.numpy_ref.EmbeddingLayer` initialises it.
    """
    words = _check_words(words)
    vocab = _vocabulary(words)
    table = (numpy_ref.EmbeddingLayer(len(vocab), d_model, seed=seed).W if embedding is None
             else np.asarray(embedding, dtype=np.float64))
    if table.shape[0] != len(vocab):
        raise ValueError(f"embedding has {table.shape[0]} rows but the words have {len(vocab)} distinct entries")
    one_hots = np.stack([numpy_ref.one_hot(w, vocab) for w in words])  # (n, V)
    looked_up = one_hots @ table  # (n, d): the same as table[ids]
    limit = float(np.abs(table).max()) or 1.0
    fig = Figure(figsize=(11, 1.6 + 0.36 * max(len(vocab), len(words))), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax, data, labels, title in (
        (left, table, [f"{i}: {w}" for i, w in enumerate(vocab)], f"embedding matrix W ({len(vocab)} × {table.shape[1]})"),
        (right, looked_up, [f"{w} → row {vocab.index(w)}" for w in words], "one_hot(word) @ W = row W[id] for each word"),
    ):
        image = ax.imshow(data, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("embedding dimension")
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=[left, right], fraction=0.03, pad=0.02)
    return fig


def dot_product_figure(
    words: Sequence[str] = EXAMPLE_WORDS, vectors: np.ndarray | None = None, *, normalize: bool = False
) -> Figure:
    """Similarity ``s_ij = x_i · x_j`` between every pair of words (cosine when ``normalize``).

    ``vectors`` is ``(n_words, d)``; without it the words' one-hot vectors are used, whose dot
    products are 1 for the same word and 0 otherwise — the article's point that one-hot vectors
    know nothing about meaning.
    """
    words = _check_words(words)
    if vectors is None:
        vocab = _vocabulary(words)
        vectors = np.stack([numpy_ref.one_hot(w, vocab) for w in words])
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors must be ({len(words)}, d), one per word, got shape {vectors.shape}")
    if normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scores = vectors @ vectors.T
    return matrix_heatmap(scores, words, words, title="cosine similarity" if normalize else "dot product x_i · x_j",
                          xlabel="word j", ylabel="word i", cmap="viridis")
