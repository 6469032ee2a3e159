"""Markov chain (n-gram) next-token model: the first article's transition matrix, and the baseline.

A Markov chain of order N predicts the next token from the N tokens before it and nothing else:
P(x_t | x_1 .. x_{t-1}) ≈ P(x_t | x_{t-N} .. x_{t-1}). With N = 1 this is the first article's
transition matrix, one row per word, e.g. after "my": files 0.3, photos 0.5, directories 0.2.
Transformers are measured against it: a language model that cannot beat a smoothed n-gram model
on held-out text has learned nothing beyond local word statistics.

Sequences are padded the usual way: N copies of `bos` in front (so the first token has a full
context) and one `eos` at the end (so the model learns where sequences stop). `bos` is context
only and never predicted; `eos` is predicted like any token. Tokens never seen in training are
mapped to `unk`, which is part of the vocabulary with a training count of zero: smoothing gives it
probability, the unsmoothed model gives it none.

Smoothing (how probability is moved to transitions never seen in training):

* ``"none"``: maximum likelihood, P(w | h) = c(h w) / c(h). An unseen context is an error.
* ``"add_k"``: P(w | h) = (c(h w) + k) / (c(h) + k·|V|); k = 1 is Laplace smoothing.
* ``"kneser_ney"``: interpolated Kneser–Ney (Chen & Goodman 1998), one discount D_m per context
  length m, described in :meth:`MarkovChain._kn_step`. Lower orders use *continuation counts*
  N1+(• h w), the number of distinct tokens seen before "h w", instead of raw counts: a word that
  follows many different contexts is a better guess for a new context than a frequent word that
  only ever follows one (the classic "Francisco" after "San"). The recursion ends in the uniform
  distribution over the vocabulary, so every token, `unk` included, gets probability > 0 as long
  as the unigram discount D_0 > 0.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np

from glassformer._files import atomic_write

Token = Hashable
Context = tuple

SMOOTHINGS = ("none", "add_k", "kneser_ney")
FORMAT = "glassformer.markov"
FORMAT_VERSION = 1
_FALLBACK_DISCOUNT = 0.75
_MAX_MATRIX_ENTRIES = 50_000_000


@dataclass(frozen=True)
class Evaluation:
    """Cross-entropy of a model on held-out sequences, in the three usual units."""

    loss: float  # mean negative log-likelihood, nats per token (eos included)
    perplexity: float  # exp(loss)
    bits_per_token: float  # loss / ln 2
    n_tokens: int


class MarkovChain:
    """Order-N Markov chain P(x_t | x_{t-N} .. x_{t-1}) estimated from counts, with optional smoothing.

    ``order`` is the number of previous tokens in the context: 1 is the first article's
    first-order chain (a bigram model), 2 a trigram model, 0 a unigram model.
    ``discount`` (Kneser–Ney only): ``None`` estimates D_m = n1 / (n1 + 2·n2) for each context
    length m from that level's counts of counts (Ney et al. 1994); a number uses it at every level;
    a sequence gives one value per context length 0..order.
    """

    def __init__(
        self,
        order: int = 1,
        smoothing: str = "kneser_ney",
        k: float = 1.0,
        discount: float | Sequence[float] | None = None,
        bos: str = "<s>",
        eos: str = "</s>",
        unk: str = "<unk>",
    ) -> None:
        if not isinstance(order, int) or order < 0:
            raise ValueError(f"order must be an integer >= 0, got {order!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        if smoothing == "add_k" and not k > 0:
            raise ValueError(f"add-k smoothing needs k > 0, got k={k}")
        if len({bos, eos, unk}) != 3:
            raise ValueError(f"bos, eos and unk must differ, got {bos!r}, {eos!r}, {unk!r}")
        if discount is not None:
            values = [discount] if isinstance(discount, (int, float)) else list(discount)
            if not isinstance(discount, (int, float)) and len(values) != order + 1:
                raise ValueError(f"discount needs one value per context length 0..{order} ({order + 1} values), got {len(values)}")
            if any(not 0.0 <= d <= 1.0 for d in values):
                raise ValueError(f"Kneser-Ney discounts must lie in [0, 1] for probabilities to sum to 1, got {values}")
        self.order = order
        self.smoothing = smoothing
        self.k = float(k)
        self.discount = discount
        self.bos, self.eos, self.unk = bos, eos, unk
        self.vocab: list[Token] = []
        self.counts: dict[Context, Counter] = {}
        self.discounts: list[float] = []
        self._index: dict[Token, int] = {}
        self._levels: list[dict[Context, Counter]] = []
        self._totals: list[dict[Context, int]] = []
        self._row_totals: dict[Context, int] = {}

    # ------------------------------------------------------------------------- training

    def fit(self, sequences: Iterable[Sequence[Token]]) -> "MarkovChain":
        """Count every (context, next token) pair in `sequences`; replaces any earlier fit.

        Each sequence is a list of tokens (words, ids); a string counts as a sequence of
        characters, so ``fit(["some text"])`` gives a character-level chain.
        """
        if isinstance(sequences, str):
            raise TypeError("fit expects a collection of sequences; for one text pass [text]")
        reserved = {self.bos, self.eos, self.unk}
        seen: dict[Token, None] = {}
        counts: dict[Context, Counter] = {}
        for sequence in sequences:
            tokens = list(sequence)
            for token in tokens:
                if token in reserved:
                    raise ValueError(
                        f"token {token!r} is one of the reserved markers bos/eos/unk; "
                        "choose other markers with MarkovChain(bos=..., eos=..., unk=...)"
                    )
                seen.setdefault(token)
            padded = [self.bos] * self.order + tokens + [self.eos]
            for t in range(self.order, len(padded)):
                counts.setdefault(tuple(padded[t - self.order : t]), Counter())[padded[t]] += 1
        if not counts:
            raise ValueError("fit got no sequences")
        self._build(list(seen) + [self.eos, self.unk], counts)
        return self

    def _build(self, vocab: list[Token], counts: dict[Context, Counter]) -> None:
        self.vocab = vocab
        self._index = {token: i for i, token in enumerate(vocab)}
        self.counts = counts
        self._row_totals = {h: sum(row.values()) for h, row in counts.items()}
        if self.smoothing != "kneser_ney":
            self._levels, self._totals, self.discounts = [], [], []
            return
        # Level m holds the counts used with contexts of length m: raw counts at the top level,
        # continuation counts N1+(• h w) below it. Every event has a full (bos-padded) history,
        # so each shorter n-gram "h w" that ends on a predicted token has a token before it.
        levels: list[dict[Context, Counter]] = [dict() for _ in range(self.order + 1)]
        levels[self.order] = counts
        for m in range(self.order):
            distinct: set[tuple] = set()
            for context, row in counts.items():
                for token in row:
                    distinct.add(context[self.order - m - 1 :] + (token,))  # (v, h..., w)
            level = levels[m]
            for gram in distinct:
                level.setdefault(gram[1:-1], Counter())[gram[-1]] += 1
        self._levels = levels
        self._totals = [{h: sum(row.values()) for h, row in level.items()} for level in levels[:-1]]
        self._totals.append(self._row_totals)
        self.discounts = self._resolve_discounts()

    def _resolve_discounts(self) -> list[float]:
        if isinstance(self.discount, (int, float)):
            return [float(self.discount)] * (self.order + 1)
        if self.discount is not None:
            return [float(d) for d in self.discount]
        discounts = []
        for level in self._levels:
            of_count = Counter(c for row in level.values() for c in row.values())
            n1, n2 = of_count[1], of_count[2]
            # Ney's estimate needs singletons; without any (a tiny or repetitive corpus) fall back
            # to the customary 0.75 rather than a discount of 0, which would smooth nothing.
            discounts.append(n1 / (n1 + 2 * n2) if n1 > 0 else _FALLBACK_DISCOUNT)
        return discounts

    # ------------------------------------------------------------------------- probabilities

    def _check_fitted(self) -> None:
        if not self.vocab:
            raise RuntimeError("this MarkovChain has not been fitted; call fit(sequences) first")

    def _context(self, context: Sequence[Token]) -> Context:
        """The last `order` tokens, bos-padded on the left, unknown tokens mapped to unk."""
        tokens = [t if (t in self._index or t == self.bos) else self.unk for t in context]
        tokens = [self.bos] * max(0, self.order - len(tokens)) + tokens
        return tuple(tokens[len(tokens) - self.order :])

    def _kn_step(self, m: int, h: Context, lower: np.ndarray | float, token: Token | None) -> np.ndarray | float:
        """One interpolation step at context length m:

        P_m(w | h) = max(c_m(h w) − D_m, 0) / c_m(h•) + D_m · N1+(h •) / c_m(h•) · P_{m−1}(w | h'),

        h' = h without its first token, c_m = raw counts at the top level and continuation counts
        below, N1+(h •) = number of distinct tokens after h. If h was never seen the lower-order
        estimate is used unchanged. Works on one token (`token`) or the whole vocabulary (None).
        """
        row = self._levels[m].get(h)
        if not row:
            return lower
        total, discount = self._totals[m][h], self.discounts[m]
        backoff = discount * len(row) / total
        if token is not None:
            return max(row.get(token, 0) - discount, 0.0) / total + backoff * lower
        observed = np.zeros(len(self.vocab))
        for w, c in row.items():
            observed[self._index[w]] = c
        return np.maximum(observed - discount, 0.0) / total + backoff * lower

    def _probabilities(self, context: Context) -> np.ndarray:
        """P(· | context) over `self.vocab` for an already-normalised context."""
        if self.smoothing == "kneser_ney":
            p: np.ndarray | float = np.full(len(self.vocab), 1.0 / len(self.vocab))
            for m in range(self.order + 1):
                p = self._kn_step(m, context[self.order - m :], p, None)
            return np.asarray(p)
        row = self.counts.get(context)
        observed = np.zeros(len(self.vocab))
        for w, c in (row or {}).items():
            observed[self._index[w]] = c
        if self.smoothing == "add_k":
            return (observed + self.k) / (observed.sum() + self.k * len(self.vocab))
        if not row:
            raise ValueError(f"context {context!r} was never seen in training; use smoothing='add_k' or 'kneser_ney'")
        return observed / observed.sum()

    def prob(self, token: Token, context: Sequence[Token] = ()) -> float:
        """P(token | context). Unknown tokens are scored as unk; bos is never predicted (0)."""
        self._check_fitted()
        h = self._context(context)
        if token == self.bos:
            return 0.0
        w = token if token in self._index else self.unk
        if self.smoothing == "kneser_ney":
            p = 1.0 / len(self.vocab)
            for m in range(self.order + 1):
                p = self._kn_step(m, h[self.order - m :], p, w)
            return float(p)
        row = self.counts.get(h)
        total = self._row_totals.get(h, 0)
        count = row.get(w, 0) if row else 0
        if self.smoothing == "add_k":
            return (count + self.k) / (total + self.k * len(self.vocab))
        if not row:
            raise ValueError(f"context {h!r} was never seen in training; use smoothing='add_k' or 'kneser_ney'")
        return count / total

    def next_distribution(self, context: Sequence[Token] = ()) -> dict[Token, float]:
        """P(next | context) for every token of the vocabulary (eos and unk included); sums to 1."""
        self._check_fitted()
        return dict(zip(self.vocab, self._probabilities(self._context(context)).tolist()))

    # ------------------------------------------------------------------------- the article's view

    def _state_key(self, context: Context) -> Token | Context:
        # A first-order chain's states are single tokens, as in the article's matrix.
        return context[0] if self.order == 1 else context

    def transition_matrix(self) -> tuple[list, list[Token], np.ndarray]:
        """(states, vocab, P): one row per context seen in training, P[i, j] = P(vocab[j] | states[i]).

        The matrix is dense, which suits the article's small examples; for a real vocabulary ask
        `next_distribution(context)` one context at a time.
        """
        self._check_fitted()
        contexts = list(self.counts)
        if len(contexts) * len(self.vocab) > _MAX_MATRIX_ENTRIES:
            raise ValueError(
                f"the transition matrix would have {len(contexts)} x {len(self.vocab)} entries "
                f"(limit {_MAX_MATRIX_ENTRIES}); use next_distribution(context) instead"
            )
        matrix = np.stack([self._probabilities(h) for h in contexts])
        return [self._state_key(h) for h in contexts], list(self.vocab), matrix

    @property
    def transitions(self) -> dict:
        """Dict-of-dicts view ``transitions[state][next] = p`` over seen states, zero entries left out."""
        states, vocab, matrix = self.transition_matrix()
        return {s: {w: float(p) for w, p in zip(vocab, row) if p > 0} for s, row in zip(states, matrix)}

    # ------------------------------------------------------------------------- generation

    def sample(self, context: Sequence[Token] = (), rng: np.random.Generator | int | None = None) -> Token:
        """Draw one next token. unk is never drawn: it stands for many unseen words, not one."""
        self._check_fitted()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        p = self._probabilities(self._context(context))
        p[self._index[self.unk]] = 0.0
        if p.sum() <= 0:
            raise ValueError(f"no token other than unk has probability after context {tuple(context)!r}")
        return self.vocab[rng.choice(len(p), p=p / p.sum())]

    def generate(
        self,
        seed_tokens: Sequence[Token] = (),
        n: int = 20,
        rng: np.random.Generator | int | None = None,
        stop_at_eos: bool = True,
    ) -> list[Token]:
        """Extend `seed_tokens` by up to `n` sampled tokens; returns seed + new tokens (eos not included)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        tokens = list(seed_tokens)
        for _ in range(n):
            token = self.sample(tokens, rng)
            if token == self.eos and stop_at_eos:
                break
            tokens.append(token)
        return tokens

    # ------------------------------------------------------------------------- evaluation

    def log_prob(self, sequence: Sequence[Token]) -> float:
        """Natural-log probability of a whole sequence, eos included (−inf if any step has probability 0)."""
        tokens = list(sequence) + [self.eos]
        total = 0.0
        for t, token in enumerate(tokens):
            p = self.prob(token, tokens[max(0, t - self.order) : t])
            if p <= 0.0:
                return -math.inf
            total += math.log(p)
        return total

    def evaluate(self, sequences: Iterable[Sequence[Token]]) -> Evaluation:
        """Cross-entropy on held-out sequences: loss (nats/token), perplexity, bits per token."""
        if isinstance(sequences, str):
            raise TypeError("evaluate expects a collection of sequences; for one text pass [text]")
        total, n_tokens = 0.0, 0
        for sequence in sequences:
            tokens = list(sequence)
            total += self.log_prob(tokens)
            n_tokens += len(tokens) + 1
        if n_tokens == 0:
            raise ValueError("evaluate got no sequences")
        loss = -total / n_tokens
        return Evaluation(loss, math.exp(loss) if loss < 700 else math.inf, loss / math.log(2), n_tokens)

    # ------------------------------------------------------------------------- files

    def config_dict(self) -> dict:
        """The settings that define this chain (what a saved model's config.json records)."""
        discount = list(self.discount) if isinstance(self.discount, Sequence) else self.discount
        return {"order": self.order, "smoothing": self.smoothing, "k": self.k, "discount": discount}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON (settings, vocabulary, counts), atomically."""
        self._check_fitted()
        for token in self.vocab:
            if isinstance(token, bool) or not isinstance(token, (str, int)):
                raise TypeError(f"only str and int tokens can be saved as JSON, got {token!r} ({type(token).__name__})")
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "order": self.order,
            "smoothing": self.smoothing,
            "k": self.k,
            "discount": list(self.discount) if isinstance(self.discount, Sequence) else self.discount,
            "bos": self.bos,
            "eos": self.eos,
            "unk": self.unk,
            "vocab": self.vocab,
            "counts": [[list(h), w, c] for h, row in self.counts.items() for w, c in row.items()],
        }
        with atomic_write(path) as handle:
            json.dump(payload, handle, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MarkovChain":
        """Read a model written by :meth:`save`."""
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
        if payload.get("format") != FORMAT or payload.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} is not a {FORMAT} v{FORMAT_VERSION} file "
                f"(format={payload.get('format')!r}, version={payload.get('version')!r})"
            )
        model = cls(
            order=payload["order"],
            smoothing=payload["smoothing"],
            k=payload["k"],
            discount=payload["discount"],
            bos=payload["bos"],
            eos=payload["eos"],
            unk=payload["unk"],
        )
        counts: dict[Context, Counter] = {}
        for h, w, c in payload["counts"]:
            counts.setdefault(tuple(h), Counter())[w] = c
        model._build(payload["vocab"], counts)
        return model

    def __repr__(self) -> str:
        fitted = f", vocab={len(self.vocab)}, states={len(self.counts)}" if self.vocab else ""
        return f"MarkovChain(order={self.order}, smoothing={self.smoothing!r}{fitted})"
