"""The second article's plain NumPy transformer, made correct, for learners to read beside it.

Everything here is NumPy only (no torch) and runs forward passes only (no training, no dropout).
The names and positional arguments are the article's own (`softmax`, `one_hot_encode`,
`simple_tokenize`, `byte_pair_encoding`, `positional_encoding(max_len, d_model)`,
`EmbeddingLayer(vocab_size, d_model)`, `PositionalEncoding(d_model, max_len=5000)`,
`SelfAttention(d_model)`, `FeedForward(d_model, d_ff)`, `LayerNorm(d_model, eps)`,
`EncoderLayer(d_model, d_ff)`, `DecoderLayer(d_model, d_ff)(x, enc_output)`), so the article's code
runs with only its import lines changed (tests/test_articles_verbatim.py runs it). Everything the
article does not have (several heads, activations, pre-norm, masks, seeds) is a keyword argument.
Each class computes the same numbers as the matching torch module in `glassformer.nn` (and in
`torch.nn`) when it is given the same weights; tests/test_numpy_ref.py proves it to 1e-6 in float64.

What was fixed relative to the article:

* `softmax` subtracts the row maximum before `exp`, so large scores do not overflow to inf/NaN.
* `LayerNorm` is torch's: biased variance, `eps` inside the square root, learned gamma and beta.
* The positional table uses PE(pos, 2i) = sin(pos / 10000^(2i/d_model)) with i counting sine/cosine
  *pairs*. The article's loop stepped `i` by 2 and then wrote `2 * i` again, which squares the
  intended frequency spacing.
* `DecoderLayer` masks its self-attention causally and its cross-attention really attends to the
  encoder output `enc_output`. The article's decoder called its "cross-attention" with `x` only, so the encoder
  output never reached the decoder: the layer was a second self-attention.
* Attention is optionally multi-head (`n_heads`), so it can match `MultiHeadAttention`.

Conventions, the same as the rest of glassformer:

* Weights are stored the way the article multiplies them, `x @ W` with W of shape (d_in, d_out).
  torch's `nn.Linear` stores the transpose (out, in): copy `linear.weight.T` into `W`.
* Masks are boolean, True = may attend. A query row with nothing to attend to gives zeros.
* Arrays may be (T, d) for one sequence or (B, T, d) for a batch.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "softmax",
    "one_hot",
    "one_hot_encode",
    "simple_tokenize",
    "byte_pair_encoding",
    "positional_encoding",
    "causal_mask",
    "scaled_dot_product_attention",
    "EmbeddingLayer",
    "PositionalEncoding",
    "SelfAttention",
    "relu",
    "gelu",
    "gelu_tanh",
    "FeedForward",
    "LayerNorm",
    "EncoderLayer",
    "DecoderLayer",
]

DTYPE = np.float64


# ----------------------------------------------------------------------------- small functions


def softmax(x: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x).

    Subtracting the maximum changes nothing mathematically (it cancels between numerator and
    denominator) but keeps exp() from overflowing: softmax([1000, 1001]) works.
    A row that is entirely -inf (a query with nothing to attend to) gives zeros, not NaN.
    """
    x = np.asarray(x, dtype=DTYPE)
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    e = np.exp(x - peak)
    total = np.sum(e, axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def one_hot(word: str, vocab: Sequence[str] | Mapping[str, int]) -> np.ndarray:
    """One-hot vector of `word` over `vocab` (a list of words, or a word -> index mapping).

    A word outside the vocabulary gives the all-zeros vector: it matches no row of any embedding
    matrix, which is exactly how an unknown word carries no information.
    """
    index = vocab if isinstance(vocab, Mapping) else {w: i for i, w in enumerate(vocab)}
    size = (max(index.values()) + 1) if index else 0
    vector = np.zeros(size, dtype=DTYPE)
    if word in index:
        vector[index[word]] = 1.0
    return vector


def one_hot_encode(word: str, vocab: Sequence[str] | Mapping[str, int]) -> list[int]:
    """The second article's spelling of `one_hot`: the same vector as a list of ints, ``[1, 0, 0, 0]``."""
    return [int(value) for value in one_hot(word, vocab)]


_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def simple_tokenize(text: str) -> list[str]:
    """Split text into words and single punctuation marks: "Hi, you!" -> ['Hi', ',', 'you', '!']."""
    return _WORD_OR_PUNCT.findall(text)


def byte_pair_encoding(data: Sequence[str], n: int, verbose: bool = True) -> dict[str, int]:
    """The article's BPE run: `n` times, merge the most frequent adjacent pair of symbols in `data`'s words.

    Words are split into characters plus the end-of-word symbol ``</w>``. Returns the vocabulary as the
    article prints it: each word's symbols joined by spaces → its count. With `verbose` every step is
    printed the way the article prints it. The merging is :class:`glassformer.tokenizers.CharBPE`'s,
    with the article's tie-break (of equally frequent pairs, the first one seen wins).
    """
    from collections import Counter

    from glassformer.tokenizers.char_bpe import END_OF_WORD, CharBPE

    bpe = CharBPE()
    counts = Counter(word for line in data for word in bpe.words(line))
    vocab = {" ".join([*word, END_OF_WORD]): count for word, count in counts.items()}
    for step in bpe.train(data, n):
        if verbose:
            print("-----")
            print("most frequent pair:", step.pair)
            print("vocab before merge:", *vocab.items())
            print("vocab after merge:", *step.words.items())
        vocab = step.words
    return vocab


def positional_encoding(max_len: int, d_model: int) -> np.ndarray:
    """Sinusoidal table: PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(same).

    Returns shape (max_len, d_model). Column 2i and 2i+1 share one frequency; for odd d_model the
    last column is a sine with no cosine partner.
    """
    if max_len < 1 or d_model < 1:
        raise ValueError(f"max_len and d_model must be >= 1, got max_len={max_len}, d_model={d_model}")
    pos = np.arange(max_len, dtype=DTYPE)[:, None]                  # (max_len, 1)
    two_i = np.arange(0, d_model, 2, dtype=DTYPE)                   # 0, 2, 4, ... = 2i
    angle = pos / np.power(10000.0, two_i / d_model)                # (max_len, ceil(d/2))
    table = np.zeros((max_len, d_model), dtype=DTYPE)
    table[:, 0::2] = np.sin(angle)
    table[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return table


def causal_mask(size: int) -> np.ndarray:
    """Boolean (size, size) mask, True on and below the diagonal: position t may attend to 0..t."""
    return np.tril(np.ones((size, size), dtype=bool))


def scaled_dot_product_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Attention(Q, K, V) = softmax(Q Kᵀ · scale) V with scale = 1/sqrt(d_k) unless given.

    q: (..., Tq, d_k), k: (..., Tk, d_k), v: (..., Tk, d_v); mask broadcastable to (..., Tq, Tk),
    True = may attend. Returns (output (..., Tq, d_v), weights (..., Tq, Tk)).
    """
    q, k, v = (np.asarray(a, dtype=DTYPE) for a in (q, k, v))
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys need the same last dimension, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values need the same length, got {k.shape[-2]} and {v.shape[-2]}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ np.swapaxes(k, -1, -2)) * scale                     # (..., Tq, Tk)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        expected = scores.shape[-2:]
        if mask.ndim < 2 or any(m not in (1, e) for m, e in zip(mask.shape[-2:], expected)):
            raise ValueError(f"mask of shape {mask.shape} does not fit attention scores (..., {expected[0]}, {expected[1]})")
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ v, weights


def _init(rng: np.random.Generator, d_in: int, d_out: int) -> np.ndarray:
    # Uniform(-1/sqrt(d_in), 1/sqrt(d_in)), the same spread torch gives nn.Linear, so activations
    # keep a sensible size through a stack of layers.
    bound = 1.0 / math.sqrt(d_in)
    return rng.uniform(-bound, bound, size=(d_in, d_out)).astype(DTYPE)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ----------------------------------------------------------------------------- layers


class EmbeddingLayer:
    """Token embedding: row `id` of a (vocab_size, d_model) matrix; the same as one_hot(id) @ W."""

    def __init__(self, vocab_size: int, d_model: int, seed: int | np.random.Generator | None = 0):
        self.vocab_size, self.d_model = vocab_size, d_model
        self.W = _rng(seed).normal(0.0, 1.0, size=(vocab_size, d_model)).astype(DTYPE)

    def __call__(self, token_ids: np.ndarray | Sequence[int]) -> np.ndarray:
        ids = np.asarray(token_ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got min {ids.min()}, max {ids.max()}")
        return self.W[ids]                                           # (..., T, d_model)


class PositionalEncoding:
    """Adds the sinusoidal table to embeddings: x + PE[:T]; ``PositionalEncoding(d_model, max_len=5000)`` as in the article."""

    def __init__(self, d_model: int, max_len: int = 5000):
        self.max_len, self.d_model = max_len, d_model
        self.pe = positional_encoding(max_len, d_model)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        length = x.shape[-2]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} is longer than max_len={self.max_len}")
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected last dimension d_model={self.d_model}, got {x.shape[-1]}")
        return x + self.pe[:length]


class SelfAttention:
    """Multi-head attention: concat_h softmax(Q_h K_hᵀ/√d_k) V_h · W_o, with Q = x W_q, K = c W_k, V = c W_v.

    `c` is `x` itself for self-attention and the encoder output for cross-attention
    (`__call__(x, context=memory)`). With n_heads=1 this is the article's single-head layer plus the
    output projection W_o. The last call's per-head queries and keys (`self.queries`, `self.keys`, shape
    (..., n_heads, T, d_k)), raw scores Q Kᵀ before the 1/√d_k (`self.scores`) and attention weights
    (`self.attention_weights`, shape (..., n_heads, Tq, Tk)) are kept, so they can be drawn or checked.
    """

    def __init__(self, d_model: int, n_heads: int = 1, bias: bool = True, seed: int | np.random.Generator | None = 0):
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        rng = _rng(seed)
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.W_q, self.W_k, self.W_v, self.W_o = (_init(rng, d_model, d_model) for _ in range(4))
        self.b_q, self.b_k, self.b_v, self.b_o = (np.zeros(d_model, dtype=DTYPE) if bias else None for _ in range(4))
        self.queries: np.ndarray | None = None
        self.keys: np.ndarray | None = None
        self.scores: np.ndarray | None = None
        self.attention_weights: np.ndarray | None = None

    def _split_heads(self, x: np.ndarray) -> np.ndarray:
        *lead, length, _ = x.shape
        return np.swapaxes(x.reshape(*lead, length, self.n_heads, self.d_k), -2, -3)  # (..., h, T, d_k)

    @staticmethod
    def _linear(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        return x @ W if b is None else x @ W + b

    def __call__(self, x: np.ndarray, context: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=DTYPE)
        context = x if context is None else np.asarray(context, dtype=DTYPE)
        q = self._split_heads(self._linear(x, self.W_q, self.b_q))          # (..., h, Tq, d_k)
        k = self._split_heads(self._linear(context, self.W_k, self.b_k))    # (..., h, Tk, d_k)
        v = self._split_heads(self._linear(context, self.W_v, self.b_v))    # (..., h, Tk, d_k)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.ndim >= 3:
                mask = mask[..., None, :, :]                                  # one mask for every head
        heads, self.attention_weights = scaled_dot_product_attention(q, k, v, mask)
        self.queries, self.keys, self.scores = q, k, q @ np.swapaxes(k, -1, -2)
        *lead, _, length, _ = heads.shape
        concat = np.swapaxes(heads, -2, -3).reshape(*lead, length, self.d_model)  # (..., Tq, d_model)
        return self._linear(concat, self.W_o, self.b_o)


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU(x) = max(x, 0)."""
    return np.maximum(x, 0.0)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU(x) = x · Φ(x) = x/2 · (1 + erf(x/√2)), torch's default (BERT, ViT)."""
    erf = np.vectorize(math.erf, otypes=[DTYPE])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's tanh approximation: x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


class FeedForward:
    """Position-wise feed-forward: FFN(x) = act(x W_1 + b_1) W_2 + b_2, act = ReLU or GELU."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", seed: int | np.random.Generator | None = 0):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        rng = _rng(seed)
        self.activation = activation
        self.W_1, self.b_1 = _init(rng, d_model, d_ff), np.zeros(d_ff, dtype=DTYPE)
        self.W_2, self.b_2 = _init(rng, d_ff, d_model), np.zeros(d_model, dtype=DTYPE)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        hidden = np.asarray(x, dtype=DTYPE) @ self.W_1 + self.b_1           # (..., T, d_ff)
        hidden = ACTIVATIONS[self.activation](hidden)
        return hidden @ self.W_2 + self.b_2                                   # (..., T, d_model)


class LayerNorm:
    """LayerNorm(x) = gamma · (x - mean) / sqrt(var + eps) + beta over the last axis, var biased (÷ d)."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        self.eps = eps
        self.gamma = np.ones(d_model, dtype=DTYPE)
        self.beta = np.zeros(d_model, dtype=DTYPE)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=DTYPE)
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)            # biased, as torch uses
        return self.gamma * (x - mean) / np.sqrt(var + self.eps) + self.beta


class EncoderLayer:
    """Encoder layer: self-attention then feed-forward, each wrapped in residual + LayerNorm.

    Post-norm (the original Transformer, BERT): x = norm1(x + attn(x)); x = norm2(x + ffn(x)).
    Pre-norm (GPT-2, ViT), `norm_first=True`: x = x + attn(norm1(x)); x = x + ffn(norm2(x)).
    ``EncoderLayer(d_model, d_ff)`` is the article's single-head layer; ``n_heads`` and the rest are
    keywords only, so a call in torch's order ``(d_model, n_heads, d_ff)`` fails instead of
    silently swapping the widths.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        *,
        n_heads: int = 1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        seed: int | np.random.Generator | None = 0,
    ):
        rng = _rng(seed)
        self.norm_first = norm_first
        self.self_attn = SelfAttention(d_model, n_heads, seed=rng)
        self.ffn = FeedForward(d_model, d_ff, activation, seed=rng)
        self.norm1 = LayerNorm(d_model, layer_norm_eps)
        self.norm2 = LayerNorm(d_model, layer_norm_eps)

    def __call__(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """x: (..., T, d_model); mask: (T, T), or (B, 1, T) for padding, True = may attend."""
        x = np.asarray(x, dtype=DTYPE)
        if self.norm_first:
            x = x + self.self_attn(self.norm1(x), mask=mask)
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.self_attn(x, mask=mask))
        return self.norm2(x + self.ffn(x))


class DecoderLayer:
    """Decoder layer: causal self-attention, cross-attention to the encoder output, feed-forward.

    Post-norm: x = norm1(x + self_attn(x, causal)); x = norm2(x + cross_attn(x, memory));
    x = norm3(x + ffn(x)). Pre-norm (`norm_first=True`) normalises each sub-layer's input instead.

    Pitfall in the article: its decoder called the "cross-attention" with `x` alone, so the keys
    and values came from the decoder itself and the encoder output was silently ignored (the
    decoder could not see the source sentence at all). Here the queries come from `x` and the keys
    and values from `enc_output`, and the self-attention is causal, so position t never sees t+1.
    ``DecoderLayer(d_model, d_ff)(x, enc_output)`` is the article's call; ``n_heads`` and the rest
    are keywords only.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        *,
        n_heads: int = 1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        seed: int | np.random.Generator | None = 0,
    ):
        rng = _rng(seed)
        self.norm_first = norm_first
        self.self_attn = SelfAttention(d_model, n_heads, seed=rng)
        self.cross_attn = SelfAttention(d_model, n_heads, seed=rng)
        self.ffn = FeedForward(d_model, d_ff, activation, seed=rng)
        self.norm1 = LayerNorm(d_model, layer_norm_eps)
        self.norm2 = LayerNorm(d_model, layer_norm_eps)
        self.norm3 = LayerNorm(d_model, layer_norm_eps)

    def __call__(
        self,
        x: np.ndarray,
        enc_output: np.ndarray,
        self_mask: np.ndarray | None = None,
        memory_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """x: (..., T, d_model) decoder input; enc_output: (..., S, d_model) encoder output.

        The causal mask is always applied; `self_mask` (e.g. target padding) is combined with it.
        `memory_mask` (..., T, S) or (..., 1, S) hides encoder padding from the cross-attention.
        """
        x = np.asarray(x, dtype=DTYPE)
        memory = np.asarray(enc_output, dtype=DTYPE)
        mask = causal_mask(x.shape[-2])
        if self_mask is not None:
            mask = mask & np.asarray(self_mask, dtype=bool)
        if self.norm_first:
            x = x + self.self_attn(self.norm1(x), mask=mask)
            x = x + self.cross_attn(self.norm2(x), context=memory, mask=memory_mask)
            return x + self.ffn(self.norm3(x))
        x = self.norm1(x + self.self_attn(x, mask=mask))
        x = self.norm2(x + self.cross_attn(x, context=memory, mask=memory_mask))
        return self.norm3(x + self.ffn(x))
