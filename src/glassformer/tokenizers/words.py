"""The article's word tokenizer: a regex splits text into words and punctuation, a vocabulary numbers them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import regex

from glassformer.tokenizers.base import Tokenizer, TokenizerFileError, check_text, read_list, write_list
from glassformer.tokenizers.encoding import Offsets

WORD_PATTERN = r"\w+|[^\w\s]"


def split_words(text: str, pattern: str = WORD_PATTERN, lowercase: bool = True) -> list[str]:
    """The article's splitter: runs of letters/digits are words, each other visible character stands alone."""
    check_text(text)
    return regex.findall(pattern, text.lower() if lowercase else text)


class WordTokenizer(Tokenizer):
    """Word-level tokenizer: id = position of the word in a vocabulary; unseen words map to ``<unk>``.

    A word's one-hot vector is the row ``e_id`` of the identity matrix I_V (V = vocab_size).
    """

    kind = "WordTokenizer"

    def __init__(self, vocab: Sequence[str] = (), *, unk_token: str = "<unk>", lowercase: bool = True,
                 pattern: str = WORD_PATTERN) -> None:
        super().__init__()
        self.unk_token = unk_token
        self.lowercase = lowercase
        self.pattern = pattern
        self._regex = regex.compile(pattern)
        self._set_vocab(list(vocab))

    def _set_vocab(self, words: list[str]) -> None:
        self.vocab: list[str] = [self.unk_token] + [w for w in words if w != self.unk_token]
        self.word_to_id: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        self.add_special_tokens({self.unk_token: 0})

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def unk_id(self) -> int:
        return 0

    def split(self, text: str) -> list[str]:
        """The words of `text` by the tokenizer's pattern (lowercased if the tokenizer lowercases)."""
        return split_words(text, self.pattern, self.lowercase)

    def train(self, texts: Iterable[str] | str, vocab_size: int | None = None, *, min_count: int = 1) -> None:
        """Number the words of `texts`: most frequent first, ties in order of first appearance."""
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.split(text))
        words = [w for w, c in counts.most_common() if c >= min_count]
        if vocab_size is not None:
            if vocab_size < 1:
                raise ValueError(f"vocab_size must be at least 1 (room for {self.unk_token!r}), got {vocab_size}")
            words = words[:vocab_size - 1]
        self._set_vocab(words)

    def encode_ordinary(self, text: str) -> list[int]:
        get = self.word_to_id.get
        return [get(w, 0) for w in self.split(text)]

    def encode_ordinary_offsets(self, text: str) -> tuple[list[int], Offsets]:
        """Ids and the offsets of their words in `text` (before lower-casing)."""
        check_text(text)
        lowered = text.lower() if self.lowercase else text
        # Lower-casing can lengthen a character ("İ" → "i̇"); origin maps lowered positions back.
        origin = (range(len(text)) if len(lowered) == len(text) else
                  [i for i, ch in enumerate(text) for _ in ch.lower()])
        get = self.word_to_id.get
        ids: list[int] = []
        offsets: Offsets = []
        for match in self._regex.finditer(lowered):
            start, end = match.span()
            ids.append(get(match.group(), 0))
            offsets.append((origin[start], origin[end - 1] + 1))
        return ids, offsets

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The words joined by single spaces (the split loses the original spacing and case)."""
        if skip_special_tokens:
            special = set(self.special_tokens.values())
            ids = [i for i in ids if i not in special]
        return " ".join(self.id_to_token(i) for i in ids)

    def id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.vocab):
            raise ValueError(f"id {index} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return self.vocab[index]

    def one_hot(self, text: str, *, allowed_special: Any = ()) -> np.ndarray:
        """One row per word: a (n_words, vocab_size) float32 matrix with a single 1 in each row."""
        ids = self.encode(text, add_special_tokens=False, allowed_special=allowed_special)
        vectors = np.zeros((len(ids), self.vocab_size), dtype=np.float32)
        vectors[np.arange(len(ids)), ids] = 1.0
        return vectors

    def _header(self) -> dict[str, Any]:
        return {"unk_token": self.unk_token, "lowercase": self.lowercase, "pattern": self.pattern}

    def _save_files(self, directory: Path) -> None:
        write_list(directory / "vocab.txt", "vocab", self.vocab)

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> WordTokenizer:
        vocab = read_list(directory / "vocab.txt", "vocab")
        unk = header.get("unk_token", "<unk>")
        if not vocab or vocab[0] != unk:
            raise TokenizerFileError(f"{directory / 'vocab.txt'}: the first entry should be the unknown "
                                     f"token {unk!r}, got {vocab[0] if vocab else 'nothing'!r}")
        return cls(vocab[1:], unk_token=unk, lowercase=bool(header.get("lowercase", True)),
                   pattern=header.get("pattern", WORD_PATTERN))
