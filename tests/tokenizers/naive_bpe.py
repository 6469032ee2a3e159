"""The textbook byte-level BPE trainer: recount every pair of every word at every step.

It is the reference the optimised trainer in glassformer.tokenizers.byte_bpe must agree with. The rule
for ties is the documented one: highest count, then smaller first id, then smaller second id; a merge
whose bytes are already a token reuses that token's id.
"""

from __future__ import annotations

from collections import Counter


def _merge(word: tuple[int, ...], pair: tuple[int, int], new: int) -> tuple[int, ...]:
    out = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def naive_learn_merges(counts: dict[str, int], n_new_tokens: int) -> tuple[list[bytes], list[tuple[int, int]]]:
    words = [(tuple(piece.encode("utf-8")), freq) for piece, freq in counts.items()]
    vocab = [bytes([b]) for b in range(256)]
    merges: list[tuple[int, int]] = []
    while len(vocab) - 256 < n_new_tokens:
        stats: Counter[tuple[int, int]] = Counter()
        for word, freq in words:
            for pair in zip(word, word[1:]):
                stats[pair] += freq
        if not stats:
            break
        best = min(stats, key=lambda pair: (-stats[pair], pair))
        joined = vocab[best[0]] + vocab[best[1]]
        if joined in vocab:
            new = vocab.index(joined)
        else:
            new = len(vocab)
            vocab.append(joined)
        merges.append(best)
        words = [(_merge(word, best, new), freq) for word, freq in words]
    return vocab, merges


def naive_encode_piece(ids: list[int], ranks: dict[tuple[int, int], int], merges: list[tuple[int, int]],
                       results: list[int]) -> list[int]:
    """GPT-2's ``bpe()`` loop: each round, find the lowest-ranked adjacent pair and merge all its occurrences."""
    ids = tuple(ids)
    while len(ids) > 1:
        found = [ranks[pair] for pair in zip(ids, ids[1:]) if pair in ranks]
        if not found:
            break
        rank = min(found)
        ids = _merge(ids, merges[rank], results[rank])
    return list(ids)
