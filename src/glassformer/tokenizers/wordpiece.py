"""BERT's WordPiece tokenizer: basic tokenisation, then greedy longest-match-first with ``##`` continuations.

The normaliser follows BERT's fast (Rust) tokenizer, in its order: drop NUL, U+FFFD and "other"
characters (categories Cc, Cf, Co, Cs, except tab, newline and carriage return), turn every White_Space
character into a space, put spaces around CJK ideographs, decompose (NFD) and drop non-spacing marks
(Mn), then lowercase character by character (so a word-final Σ becomes σ, not ς).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from glassformer.tokenizers.base import (AllowedSpecial, Tokenizer, TokenizerFileError, check_text,
                                         read_list, write_list)

# The Unicode White_Space property (what Rust's char::is_whitespace tests), which differs from str.isspace.
_WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                         "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
# "Other" characters that cleaning drops: control, format, private use, surrogate. Unassigned (Cn) ones stay,
# as in the Rust normaliser, and become [UNK].
_OTHER = frozenset({"Cc", "Cf", "Co", "Cs"})
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def normalize(text: str, *, lowercase: bool = True, strip_accents: bool | None = None) -> str:
    """BERT's normaliser (see the module docstring); `strip_accents` None follows `lowercase`."""
    out = []
    for ch in text:
        cp = ord(ch)
        if ch in "\t\n\r":
            out.append(" ")
        elif cp == 0 or cp == 0xFFFD or unicodedata.category(ch) in _OTHER:
            continue
        elif ch in _WHITE_SPACE:
            out.append(" ")
        elif cp >= 0x3400 and _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = "".join(out)
    if strip_accents if strip_accents is not None else lowercase:
        text = "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")
    if lowercase:
        # str.lower() treats a word-final capital sigma specially; BERT lowercases each character alone.
        text = "".join(ch.lower() for ch in text) if "Σ" in text else text.lower()
    return text


def pre_tokenize(text: str) -> list[str]:
    """Split normalised text on White_Space (dropped) and punctuation (each mark its own word)."""
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch in _WHITE_SPACE:
            if current:
                words.append("".join(current))
                current = []
        elif _is_punctuation(ch):
            if current:
                words.append("".join(current))
                current = []
            words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


@dataclass
class Encoding:
    """One encoded input: ids, their tokens, segment ids (0 = first text, 1 = second) and attention mask."""

    ids: list[int]
    tokens: list[str]
    token_type_ids: list[int]
    attention_mask: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.attention_mask:
            self.attention_mask = [1] * len(self.ids)


@dataclass
class BatchEncoding:
    """A padded batch: equal-length rows of input_ids, token_type_ids and attention_mask (0 on padding)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    attention_mask: list[list[int]]
    tokens: list[list[str]]


class WordPiece(Tokenizer):
    """WordPiece (BERT): each word → the longest vocabulary prefix, then ``##``-prefixed longest pieces.

    A word longer than `max_input_chars_per_word` characters, or one that cannot be covered by pieces,
    becomes ``[UNK]``. `encode` adds ``[CLS] A [SEP]`` (and ``B [SEP]`` for a pair) unless
    ``add_special_tokens=False``. Special-token text in the input follows the policy in `Tokenizer`.
    """

    kind = "WordPiece"

    def __init__(self, vocab: Sequence[str], *, lowercase: bool = True, strip_accents: bool | None = None,
                 unk_token: str = "[UNK]",
                 cls_token: str = "[CLS]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 mask_token: str = "[MASK]", prefix: str = "##", max_input_chars_per_word: int = 100) -> None:
        super().__init__()
        self.vocab = list(vocab)
        self.token_to_id: dict[str, int] = {}
        for index, token in enumerate(self.vocab):
            self.token_to_id.setdefault(token, index)
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.prefix = prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token, self.mask_token = pad_token, mask_token
        names = {"unk_token": unk_token, "cls_token": cls_token, "sep_token": sep_token, "pad_token": pad_token}
        for name, token in names.items():
            if token not in self.token_to_id:
                raise ValueError(f"{name}={token!r} is not in the vocabulary")
        specials = [unk_token, cls_token, sep_token, pad_token] + ([mask_token] if mask_token in self.token_to_id else [])
        self.add_special_tokens({t: self.token_to_id[t] for t in specials})
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_vocab_file(cls, path: str | Path, **kwargs: Any) -> WordPiece:
        """Load a BERT ``vocab.txt`` (one token per line; the line number is the id)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"WordPiece vocabulary not found: {path}") from None
        except UnicodeDecodeError as exc:
            raise TokenizerFileError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
        vocab = text.split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()
        if not vocab:
            raise TokenizerFileError(f"{path}: the vocabulary is empty")
        try:
            return cls(vocab, **kwargs)
        except ValueError as exc:
            raise TokenizerFileError(f"{path}: {exc}") from None

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return self.token_to_id[self.pad_token]

    # --- the pipeline ----------------------------------------------------------------------------

    def words(self, text: str) -> list[str]:
        """Normalised, pre-tokenised words of `text`."""
        return pre_tokenize(normalize(check_text(text), lowercase=self.lowercase,
                                      strip_accents=self.strip_accents))

    def word_pieces(self, word: str) -> list[int]:
        """Greedy longest-match-first ids of one word, or [UNK] for the whole word."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        unk = [self.token_to_id[self.unk_token]]
        ids: list[int] = []
        if len(word) > self.max_input_chars_per_word:
            ids = unk
        else:
            start = 0
            while start < len(word):
                end = len(word)
                found = None
                while start < end:
                    piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                    found = self.token_to_id.get(piece)
                    if found is not None:
                        break
                    end -= 1
                if found is None:
                    ids = unk
                    break
                ids.append(found)
                start = end
        if len(self._cache) < (1 << 18):
            self._cache[word] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of `text` without [CLS]/[SEP]; special-token text is treated as ordinary text."""
        return [i for word in self.words(text) for i in self.word_pieces(word)]

    def _encode_segment(self, text: str, allowed_special: AllowedSpecial) -> list[int]:
        ids: list[int] = []
        for piece, special_id in self.split_special(text, allowed_special):
            if special_id is None:
                ids.extend(self.encode_ordinary(piece))
            else:
                ids.append(special_id)
        return ids

    def encode_plus(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,
                    max_length: int | None = None, allowed_special: AllowedSpecial = ()) -> Encoding:
        """Encode one text or a pair, truncated (longest first) so that the result fits `max_length`."""
        first = self._encode_segment(text, allowed_special)
        second = self._encode_segment(pair, allowed_special) if pair is not None else None
        if max_length is not None:
            extra = (3 if second is not None else 2) if add_special_tokens else 0
            if max_length < extra:
                raise ValueError(f"max_length={max_length} leaves no room beside {extra} special tokens")
            first, second = truncate_longest_first(first, second, max_length - extra)
        cls_id, sep_id = self.token_to_id[self.cls_token], self.token_to_id[self.sep_token]
        if add_special_tokens:
            ids = [cls_id] + first + [sep_id]
            types = [0] * len(ids)
            if second is not None:
                ids += second + [sep_id]
                types += [1] * (len(second) + 1)
        else:
            ids = first + (second or [])
            types = [0] * len(first) + [1] * len(second or [])
        return Encoding(ids, [self.vocab[i] for i in ids], types)

    def encode(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,  # type: ignore[override]
               max_length: int | None = None, allowed_special: AllowedSpecial = ()) -> list[int]:
        """Ids of `text` (and `pair`), with [CLS]/[SEP] unless ``add_special_tokens=False``."""
        return self.encode_plus(text, pair, add_special_tokens=add_special_tokens, max_length=max_length,
                                allowed_special=allowed_special).ids

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                     add_special_tokens: bool = True, max_length: int | None = None,
                     padding: str | bool = "longest", allowed_special: AllowedSpecial = ()) -> BatchEncoding:
        """Encode many texts and pad with [PAD] to the longest (``padding="longest"``) or to `max_length`."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, got a single str; wrap it in a list")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
        encodings = [self.encode_plus(t, pairs[i] if pairs is not None else None,
                                      add_special_tokens=add_special_tokens, max_length=max_length,
                                      allowed_special=allowed_special) for i, t in enumerate(texts)]
        if padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length")
            width = max_length
        elif padding in ("longest", True):
            width = max((len(e.ids) for e in encodings), default=0)
        elif padding is False:
            width = 0
        else:
            raise ValueError(f"padding must be 'longest', 'max_length' or False, got {padding!r}")
        batch = BatchEncoding([], [], [], [])
        for e in encodings:
            pad = max(width - len(e.ids), 0)
            batch.input_ids.append(e.ids + [self.pad_id] * pad)
            batch.token_type_ids.append(e.token_type_ids + [0] * pad)
            batch.attention_mask.append(e.attention_mask + [0] * pad)
            batch.tokens.append(e.tokens + [self.pad_token] * pad)
        return batch

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Join the tokens: ``##`` pieces attach to the previous one (the lowercasing is not undone)."""
        special_ids = set(self.special_tokens.values()) if skip_special_tokens else set()
        words: list[str] = []
        for index in ids:
            if index in special_ids:
                continue
            token = self.id_to_token(index)
            if token.startswith(self.prefix) and words:
                words[-1] += token[len(self.prefix):]
            else:
                words.append(token)
        return " ".join(words)

    def id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.vocab):
            raise ValueError(f"id {index} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return self.vocab[index]

    # --- saving ----------------------------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "strip_accents": self.strip_accents, "unk_token": self.unk_token, "cls_token": self.cls_token,
                "sep_token": self.sep_token, "pad_token": self.pad_token, "mask_token": self.mask_token,
                "prefix": self.prefix, "max_input_chars_per_word": self.max_input_chars_per_word}

    def _save_files(self, directory: Path) -> None:
        write_list(directory / "vocab.txt", "vocab", self.vocab)
        from glassformer.tokenizers.hf_json import save_tokenizer_json

        save_tokenizer_json(self, directory / "tokenizer.json")

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> WordPiece:
        vocab = read_list(directory / "vocab.txt", "vocab")
        options = {k: header[k] for k in ("lowercase", "strip_accents", "unk_token", "cls_token", "sep_token", "pad_token",
                                          "mask_token", "prefix", "max_input_chars_per_word") if k in header}
        try:
            return cls(vocab, **options)
        except (TypeError, ValueError) as exc:
            raise TokenizerFileError(f"{directory / 'vocab.txt'}: {exc}") from None


def truncate_longest_first(first: list[int], second: list[int] | None,
                           budget: int) -> tuple[list[int], list[int] | None]:
    """Cut `first` (and `second`) to at most `budget` ids together, taking from the longer one first.

    When both must be cut, the shorter keeps budget // 2 and the longer the rest, as Hugging Face does.
    """
    if second is None:
        return first[:budget], None
    if len(first) + len(second) <= budget:
        return first, second
    short, long_ = sorted((len(first), len(second)))
    n_short = short
    n_long = max(short, budget - short) if short <= budget else short
    if n_short + n_long > budget:
        n_short = budget // 2
        n_long = n_short + budget % 2
    if len(first) <= len(second):
        return first[:n_short], second[:n_long]
    return first[:n_long], second[:n_short]
