"""Character-level tokenizer: one id per character of the training text, for character language models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from glassformer.tokenizers.base import Tokenizer, TokenizerFileError, check_text, read_list, write_list
from glassformer.tokenizers.encoding import Offsets

UNK = "<unk>"
END_OF_TEXT = "<|endoftext|>"


class CharTokenizer(Tokenizer):
    """Character tokenizer: id = position of the character in a vocabulary; unseen characters map to ``<unk>``.

    Ids 0 and 1 are the special tokens ``<unk>`` and ``<|endoftext|>`` (which separates documents and
    starts the context of a language model); the characters follow in code-point order.
    """

    kind = "CharTokenizer"

    def __init__(self, chars: Iterable[str] = (), *, unk_token: str = UNK, end_token: str = END_OF_TEXT) -> None:
        super().__init__()
        if unk_token == end_token:
            raise ValueError(f"unk_token and end_token must differ, both are {unk_token!r}")
        self.unk_token = unk_token
        self.end_token = end_token
        self._set_chars(chars)

    def _set_chars(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"a CharTokenizer vocabulary holds single characters, got {bad[0]!r}")
        self.vocab: list[str] = [self.unk_token, self.end_token] + chars
        self.char_to_id: dict[str, int] = {c: i for i, c in enumerate(chars, start=2)}
        self.special_tokens = {}
        self.add_special_tokens({self.unk_token: 0, self.end_token: 1})

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def unk_id(self) -> int:
        return 0

    @property
    def end_id(self) -> int:
        return 1

    def train(self, texts: Iterable[str] | str, vocab_size: int | None = None) -> None:
        """Take every distinct character of `texts` (`vocab_size`, if given, must be large enough to hold them)."""
        if isinstance(texts, str):
            texts = [texts]
        chars: set[str] = set()
        for text in texts:
            chars.update(check_text(text))
        if vocab_size is not None and vocab_size < len(chars) + 2:
            raise ValueError(f"vocab_size={vocab_size} cannot hold the {len(chars)} characters of the text "
                             f"plus {self.unk_token!r} and {self.end_token!r}")
        self._set_chars(chars)

    def encode_ordinary(self, text: str) -> list[int]:
        get = self.char_to_id.get
        return [get(c, 0) for c in check_text(text)]

    def encode_ordinary_offsets(self, text: str) -> tuple[list[int], Offsets]:
        """Ids and offsets: id k is character k."""
        return self.encode_ordinary(text), [(i, i + 1) for i in range(len(text))]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The characters concatenated; special tokens appear as their text unless `skip_special_tokens`."""
        if skip_special_tokens:
            special = set(self.special_tokens.values())
            ids = [i for i in ids if int(i) not in special]
        return "".join(self.id_to_token(int(i)) for i in ids)

    def id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.vocab):
            raise ValueError(f"id {index} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return self.vocab[index]

    def _header(self) -> dict[str, Any]:
        return {"unk_token": self.unk_token, "end_token": self.end_token}

    def _save_files(self, directory: Path) -> None:
        # JSON strings, because the vocabulary holds "\n" and the list file is one entry per line.
        write_list(directory / "chars.txt", "chars", [json.dumps(c, ensure_ascii=False) for c in self.vocab[2:]])

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> CharTokenizer:
        path = directory / "chars.txt"
        chars = []
        for number, line in enumerate(read_list(path, "chars"), start=2):
            try:
                char = json.loads(line)
            except json.JSONDecodeError:
                char = None
            if not isinstance(char, str) or len(char) != 1:
                raise TokenizerFileError(f"{path}: line {number} should be one character as a JSON string, "
                                         f"got {line[:40]!r}")
            chars.append(char)
        return cls(chars, unk_token=header.get("unk_token", UNK), end_token=header.get("end_token", END_OF_TEXT))
