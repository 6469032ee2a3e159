"""Applying learned BPE merges to one piece, in time that grows as n log n in the piece's length.

The rule (GPT-2's ``bpe()``): among adjacent pairs that have a merge, take the one of lowest rank and
merge every occurrence of it, left to right without overlap; repeat until no pair has a merge.

Two implementations of that one rule, chosen by length (a test holds both to the textbook loop):

- `merge_short`, for ordinary words: keeps the list of pair ranks and after each merge re-ranks only
  the two pairs that touch the new token, so a round costs one ``min`` over the ranks in C.
- `merge_long`, for long pieces (a minified file, a base64 blob, 64k letters without a space): the
  textbook loop recomputes every pair at every round, which is quadratic. Here each pair's position
  sits in a bucket under its rank, a heap yields the ranks in order, and the tokens form a linked list,
  so a merge costs O(log n) whatever the length. tiktoken keeps a separate merge for large pieces for
  the same reason.
"""

from __future__ import annotations

import heapq
from itertools import repeat
from typing import Mapping, Sequence

# From this many symbols on, buckets beat the list (measured with GPT-2's merges on random letters: the
# list loop is faster up to about 40 bytes, 1.5× slower at 64, 3× at 128 and 14× at 1,024).
LONG_PIECE = 48


def merge(ids: list[int], ranks: Mapping[tuple[int, int], int], merges: Sequence[tuple[int, int]],
          results: Sequence[int]) -> list[int]:
    """BPE on one piece: `ids` (consumed) merged by `ranks` (pair → rank); merge r yields `results[r]`."""
    if len(ids) < LONG_PIECE:
        return merge_short(ids, ranks, merges, results)
    return merge_long(ids, ranks, merges, results)


def merge_short(ids: list[int], ranks: Mapping[tuple[int, int], int], merges: Sequence[tuple[int, int]],
                results: Sequence[int]) -> list[int]:
    """The merge rule on a list: O(n) per merge, fast for the short pieces that make up ordinary text."""
    if len(ids) < 2:
        return ids
    never = len(merges)
    get = ranks.get
    pair_ranks = list(map(get, zip(ids, ids[1:]), repeat(never)))
    while True:
        rank = min(pair_ranks)
        if rank == never:
            break
        new = results[rank]
        i = pair_ranks.index(rank)
        while True:
            # Merge at i: ids[i], ids[i + 1] → new; the pairs at i - 1 and i now involve the new token.
            ids[i] = new
            del ids[i + 1]
            del pair_ranks[i]
            n_pairs = len(pair_ranks)
            if not n_pairs:
                return ids
            if i:
                pair_ranks[i - 1] = get((ids[i - 1], new), never)
            if i < n_pairs:
                pair_ranks[i] = get((new, ids[i + 1]), never)
            # Further occurrences of the pair lie right of i: a pair that touches the new token is never
            # the pair just merged, because the new token is longer than either of its parts.
            if rank not in pair_ranks:
                break
            i = pair_ranks.index(rank, i)
    return ids


def merge_long(ids: list[int], ranks: Mapping[tuple[int, int], int], merges: Sequence[tuple[int, int]],
               results: Sequence[int]) -> list[int]:
    """The merge rule with rank buckets, a heap of ranks and a linked list: O(n log n) for any piece."""
    n = len(ids)
    tokens = list(ids)  # tokens[i]: the token that starts at position i, or -1 once merged into its left
    following = list(range(1, n + 1))  # next live position (n: none)
    preceding = list(range(-1, n - 1))  # previous live position (-1: none)
    get = ranks.get
    buckets: dict[int, list[int]] = {}
    for i, rank in enumerate(map(get, zip(ids, ids[1:]))):
        if rank is not None:
            bucket = buckets.get(rank)
            if bucket is None:
                buckets[rank] = [i]
            else:
                bucket.append(i)
    heap = list(buckets)
    heapq.heapify(heap)

    def add(rank: int, position: int) -> None:
        bucket = buckets.get(rank)
        if bucket is None:
            buckets[rank] = [position]
            heapq.heappush(heap, rank)
        else:
            bucket.append(position)

    while heap:
        rank = heapq.heappop(heap)
        positions = buckets.pop(rank)
        positions.sort()  # every occurrence, left to right, as the textbook loop scans them
        a, b = merges[rank]
        new = results[rank]
        for i in positions:
            # A position whose pair has since changed is stale (lazy deletion): skip it.
            if tokens[i] != a:
                continue
            j = following[i]
            if j == n or tokens[j] != b:
                continue
            k = following[j]
            tokens[i] = new
            tokens[j] = -1
            following[i] = k
            if k < n:
                preceding[k] = i
                right = get((new, tokens[k]))
                if right is not None:
                    add(right, i)
            h = preceding[i]
            if h >= 0:
                left = get((tokens[h], new))
                if left is not None:
                    add(left, h)
    out = []
    i = 0
    while i < n:
        out.append(tokens[i])
        i = following[i]
    return out
