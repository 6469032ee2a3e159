"""The article's byte-pair encoding over characters: words end in ``</w>``, the most frequent pair merges.

Tie-breaking, as in the article's run: among pairs with the highest count, the pair seen first wins,
where pairs are seen word by word in order of each word's first appearance, left to right inside a word.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import regex

from glassformer.tokenizers.base import Tokenizer, TokenizerFileError, check_text, read_list, write_list
from glassformer.tokenizers.encoding import Offsets
from glassformer.tokenizers.merging import merge

END_OF_WORD = "</w>"
# Words only: commas, spaces and other punctuation separate words, as in the article's corpus
# "low,lowest,newer,wider".
CHAR_BPE_PATTERN = r"\w+(?:'\w+)*"


@dataclass(frozen=True)
class MergeStep:
    """One training step: the pair merged, its count, and every word as symbols afterwards (word → count)."""

    step: int
    pair: tuple[str, str]
    count: int
    words: dict[str, int]

    def __str__(self) -> str:
        lines = [f"Step {self.step}: merge {self.pair!r} (count {self.count})"]
        lines += [f"  {word}: {count}" for word, count in self.words.items()]
        return "\n".join(lines)


def _merge_word(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Replace each non-overlapping occurrence of `pair` (left to right) by the joined symbol."""
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


class CharBPE(Tokenizer):
    """Character-level byte-pair encoding (Sennrich et al. 2016): repeatedly merge the most frequent pair.

    Ids: 0 is ``<unk>`` (characters never seen in training), then the characters seen in training in
    sorted order, then ``</w>``, then one id per merge in the order learned.
    """

    kind = "CharBPE"

    def __init__(self, *, pattern: str = CHAR_BPE_PATTERN, unk_token: str = "<unk>") -> None:
        super().__init__()
        self.pattern = pattern
        self._regex = regex.compile(pattern)
        self.unk_token = unk_token
        self.merges: list[tuple[str, str]] = []
        self.steps: list[MergeStep] = []
        self._set_vocab([END_OF_WORD], [])

    def _set_vocab(self, alphabet: list[str], merges: list[tuple[str, str]]) -> None:
        self.merges = list(merges)
        self.vocab: list[str] = [self.unk_token] + alphabet + [a + b for a, b in self.merges]
        self.token_to_id: dict[str, int] = {}
        for index, token in enumerate(self.vocab):
            self.token_to_id.setdefault(token, index)
        # The merges as id pairs, for the shared merge loop: distinct symbols have distinct ids.
        ids = self.token_to_id
        for a, b in self.merges:
            if a not in ids or b not in ids:
                raise ValueError(f"merge ({a!r}, {b!r}) uses a symbol that is not in the vocabulary")
        self._ranks: dict[tuple[int, int], int] = {}
        for rank, (a, b) in enumerate(self.merges):
            self._ranks.setdefault((ids[a], ids[b]), rank)
        self._id_merges = [(ids[a], ids[b]) for a, b in self.merges]
        self._results = [ids[a + b] for a, b in self.merges]
        self._cache: dict[str, list[str]] = {}
        self.add_special_tokens({self.unk_token: 0})

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def words(self, text: str) -> list[str]:
        """The words of `text` that the BPE works on."""
        return self._regex.findall(check_text(text))

    def train(self, texts: Iterable[str] | str, num_merges: int, *, verbose: bool = False) -> list[MergeStep]:
        """Learn `num_merges` merges from `texts` and return one step record per merge (also in ``self.steps``).

        With ``verbose=True`` each step is printed as it happens.
        """
        if num_merges < 0:
            raise ValueError(f"num_merges must be >= 0, got {num_merges}")
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.words(text))
        corpus = {tuple(word) + (END_OF_WORD,): count for word, count in counts.items()}
        alphabet = sorted({ch for word in counts for ch in word}) + [END_OF_WORD]
        merges: list[tuple[str, str]] = []
        steps: list[MergeStep] = []
        for step in range(1, num_merges + 1):
            pairs: Counter[tuple[str, str]] = Counter()
            for symbols, count in corpus.items():
                for pair in zip(symbols, symbols[1:]):
                    pairs[pair] += count
            if not pairs:
                break
            # max() returns the first of equal counts, and the Counter keeps first-seen order: the article's rule.
            best = max(pairs, key=pairs.__getitem__)
            corpus = {_merge_word(symbols, best): count for symbols, count in corpus.items()}
            merges.append(best)
            record = MergeStep(step, best, pairs[best], {" ".join(s): c for s, c in corpus.items()})
            steps.append(record)
            if verbose:
                print(record)
        self._set_vocab(alphabet, merges)
        self.steps = steps
        return steps

    def segment(self, word: str) -> list[str]:
        """The symbols of one word after applying the learned merges in the order they were learned."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        # Characters outside the vocabulary get ids of their own below 0, which no merge uses.
        unknown: dict[int, str] = {}
        ids = []
        for ch in word:
            index = self.token_to_id.get(ch)
            if index is None:
                index = -1 - len(unknown)
                unknown[index] = ch
            ids.append(index)
        ids.append(self.token_to_id[END_OF_WORD])
        merged = merge(ids, self._ranks, self._id_merges, self._results)
        symbols = [unknown[i] if i < 0 else self.vocab[i] for i in merged]
        if len(self._cache) < (1 << 18):
            self._cache[word] = symbols
        return symbols

    def encode_ordinary(self, text: str) -> list[int]:
        get = self.token_to_id.get
        return [get(symbol, 0) for word in self.words(text) for symbol in self.segment(word)]

    def encode_ordinary_offsets(self, text: str) -> tuple[list[int], Offsets]:
        """Ids and offsets; a symbol ending in ``</w>`` spans its characters only (a lone ``</w>`` is empty)."""
        get = self.token_to_id.get
        ids: list[int] = []
        offsets: Offsets = []
        for match in self._regex.finditer(check_text(text)):
            start = match.start()
            for symbol in self.segment(match.group()):
                end = start + len(symbol) - (len(END_OF_WORD) if symbol.endswith(END_OF_WORD) else 0)
                ids.append(get(symbol, 0))
                offsets.append((start, end))
                start = end
        return ids, offsets

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Symbols joined; each ``</w>`` becomes a space (punctuation and original spacing are not kept)."""
        if skip_special_tokens:
            special = set(self.special_tokens.values())
            ids = [i for i in ids if i not in special]
        text = "".join(self.id_to_token(i) for i in ids)
        return text.replace(END_OF_WORD, " ").rstrip(" ")

    def id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.vocab):
            raise ValueError(f"id {index} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return self.vocab[index]

    def _header(self) -> dict[str, Any]:
        alphabet = self.vocab[1:len(self.vocab) - len(self.merges)]
        return {"pattern": self.pattern, "unk_token": self.unk_token, "alphabet": alphabet}

    def _save_files(self, directory: Path) -> None:
        write_list(directory / "merges.txt", "merges", (f"{a} {b}" for a, b in self.merges))

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> CharBPE:
        tokenizer = cls(pattern=header.get("pattern", CHAR_BPE_PATTERN), unk_token=header.get("unk_token", "<unk>"))
        path = directory / "merges.txt"
        merges = []
        for number, line in enumerate(read_list(path, "merges"), start=2):
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise TokenizerFileError(f"{path}: line {number} should be two symbols separated by one space, "
                                         f"got {line!r}")
            merges.append((parts[0], parts[1]))
        alphabet = header.get("alphabet")
        if not isinstance(alphabet, list):
            raise TokenizerFileError(f"{directory}: header has no 'alphabet' list")
        try:
            tokenizer._set_vocab(alphabet, merges)
        except ValueError as exc:
            raise TokenizerFileError(f"{path}: {exc}") from None
        return tokenizer
