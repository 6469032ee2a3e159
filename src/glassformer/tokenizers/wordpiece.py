"""BERT's WordPiece tokenizer: basic tokenisation, then greedy longest-match-first with ``##`` continuations.

The normaliser follows BERT's fast (Rust) tokenizer, in its order: drop NUL, U+FFFD and "other"
characters (categories Cc, Cf, Co, Cs, except tab, newline and carriage return), turn every White_Space
character into a space, put spaces around CJK ideographs, decompose (NFD) and drop non-spacing marks
(Mn), then lowercase character by character (so a word-final Σ becomes σ, not ς).

Every step but one works on each character alone, so the normaliser is a table from a character to its
normalised string, filled on first use; that table also says which characters of the input each
normalised character came from, which is how tokens get their offsets. The exception is NFD's canonical
reordering of combining marks, which can swap two neighbours; it only matters for the 25 marks that are
not Mn (so survive accent stripping), and text holding one takes a slower exact path. There a reordered
mark is said to come from the position it lands on, as Hugging Face aligns it, not from where it was.

Unicode tables: character categories, NFD and lowercasing come from Python's ``unicodedata`` (Unicode
14.0 in Python 3.11); Hugging Face's Rust normaliser uses older crate tables. Characters assigned or
re-categorised in between are classified differently: 503 of the 282,230 assigned code points give
different ids from ``BertTokenizerFast`` in ``"a{c}b"`` (measured with tokenizers 0.23, Python 3.11).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any, Sequence

import regex

from glassformer.tokenizers.base import Tokenizer, TokenizerFileError, check_text, read_list, write_list
from glassformer.tokenizers.encoding import Offsets, Template

# The Unicode White_Space property (what Rust's char::is_whitespace tests), which differs from str.isspace.
_WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                         "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
# "Other" characters that cleaning drops: control, format, private use, surrogate. Unassigned (Cn) ones stay,
# as in the Rust normaliser, and become [UNK].
_OTHER = frozenset({"Cc", "Cf", "Co", "Cs"})
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_WORD = regex.compile(r"[^ ]+")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def _clean(ch: str) -> str:
    """Cleaning and CJK spacing of one character: "" (dropped), " ", " ch " or ch."""
    cp = ord(ch)
    if ch in "\t\n\r":
        return " "
    if cp == 0 or cp == 0xFFFD or unicodedata.category(ch) in _OTHER:
        return ""
    if ch in _WHITE_SPACE:
        return " "
    if cp >= 0x3400 and _is_cjk(cp):
        return f" {ch} "
    return ch


def _finish(chars: str, lowercase: bool, split: bool) -> str:
    """Lowercase character by character, and with `split` put spaces around punctuation."""
    if lowercase:
        chars = "".join(c.lower() for c in chars)
    if split:
        chars = "".join(f" {c} " if _is_punctuation(c) else c for c in chars)
    return chars


class _CharTable(dict):
    """character → its normalised string, computed on first use (see the module docstring)."""

    def __init__(self, lowercase: bool, strip_accents: bool, split: bool) -> None:
        super().__init__()
        self.lowercase, self.strip_accents, self.split = lowercase, strip_accents, split
        # Characters whose normalised form holds a combining mark that accent stripping keeps.
        self.reorderable: set[str] = set()

    def __missing__(self, ch: str) -> str:
        out = _clean(ch)
        if self.strip_accents and out.strip():
            decomposed = unicodedata.normalize("NFD", out)
            out = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
            if any(unicodedata.combining(c) for c in out):
                self.reorderable.add(ch)
        out = self[ch] = _finish(out, self.lowercase, self.split)
        return out

    def normalize(self, text: str) -> str:
        """The normalised text."""
        out = "".join(map(self.__getitem__, text))
        if self.reorderable and not self.reorderable.isdisjoint(text):
            return self._normalize_exactly(text)[0]
        return out

    def normalize_with_origins(self, text: str) -> tuple[str, list[int]]:
        """The normalised text and, for each of its characters, the index of the input character it came from."""
        parts = list(map(self.__getitem__, text))
        if self.reorderable and not self.reorderable.isdisjoint(text):
            return self._normalize_exactly(text)
        return "".join(parts), [i for i, part in enumerate(parts) for _ in part]

    def _normalize_exactly(self, text: str) -> tuple[str, list[int]]:
        """NFD over the whole text, with its canonical reordering of marks, keeping track of origins."""
        decomposed = [(c, i) for i, ch in enumerate(text) for c in unicodedata.normalize("NFD", _clean(ch))]
        # Canonical ordering: within each run of marks (combining class > 0), a stable sort by class.
        start = 0
        while start < len(decomposed):
            if not unicodedata.combining(decomposed[start][0]):
                start += 1
                continue
            end = start
            while end < len(decomposed) and unicodedata.combining(decomposed[end][0]):
                end += 1
            # The marks move; the origins stay where they were. Hugging Face's normaliser aligns a reordered
            # run position by position (the k-th mark after sorting is said to come from the k-th character
            # of the run), and offsets follow that convention.
            run = decomposed[start:end]
            marks = sorted((c for c, _ in run), key=unicodedata.combining)
            decomposed[start:end] = [(c, i) for c, (_, i) in zip(marks, run)]
            start = end
        parts = [(_finish(c, self.lowercase, self.split), i) for c, i in decomposed
                 if unicodedata.category(c) != "Mn"]
        return "".join(p for p, _ in parts), [i for p, i in parts for _ in p]


_TABLES: dict[tuple[bool, bool, bool], _CharTable] = {}


def _table(lowercase: bool, strip_accents: bool | None, split: bool) -> _CharTable:
    strip = strip_accents if strip_accents is not None else lowercase
    key = (lowercase, strip, split)
    if key not in _TABLES:
        _TABLES[key] = _CharTable(lowercase, strip, split)
    return _TABLES[key]


def normalize(text: str, *, lowercase: bool = True, strip_accents: bool | None = None) -> str:
    """BERT's normaliser (see the module docstring); `strip_accents` None follows `lowercase`."""
    return _table(lowercase, strip_accents, split=False).normalize(check_text(text))


def pre_tokenize(text: str) -> list[str]:
    """Split normalised text on White_Space (dropped) and punctuation (each mark its own word)."""
    padded = "".join(" " if ch in _WHITE_SPACE else f" {ch} " if _is_punctuation(ch) else ch for ch in text)
    return _WORD.findall(padded)


class WordPiece(Tokenizer):
    """WordPiece (BERT): each word → the longest vocabulary prefix, then ``##``-prefixed longest pieces.

    A word longer than `max_input_chars_per_word` characters, or one that cannot be covered by pieces,
    becomes ``[UNK]``. The post-processor is BERT's template, so ``encode(text)`` gives ``[CLS] A [SEP]``
    (and ``B [SEP]`` for a pair), as BertTokenizerFast does; ``encode(text, add_special_tokens=False)``
    gives the pieces alone.
    Special-token text in the input follows the policy in `Tokenizer`. `decode` is Hugging Face's
    WordPiece decoder, with its ``cleanup`` of spaces before punctuation unless ``cleanup=False``.
    """

    kind = "WordPiece"
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(self, vocab: Sequence[str], *, lowercase: bool = True, strip_accents: bool | None = None,
                 unk_token: str = "[UNK]",
                 cls_token: str = "[CLS]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 mask_token: str = "[MASK]", prefix: str = "##", max_input_chars_per_word: int = 100,
                 cleanup: bool = True) -> None:
        super().__init__()
        self.vocab = list(vocab)
        self.token_to_id: dict[str, int] = {}
        for index, token in enumerate(self.vocab):
            self.token_to_id.setdefault(token, index)
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.prefix = prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.cleanup = cleanup
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.mask_token = mask_token
        names = {"unk_token": unk_token, "cls_token": cls_token, "sep_token": sep_token, "pad_token": pad_token}
        for name, token in names.items():
            if token not in self.token_to_id:
                raise ValueError(f"{name}={token!r} is not in the vocabulary")
        specials = [unk_token, cls_token, sep_token, pad_token] + ([mask_token] if mask_token in self.token_to_id else [])
        self.add_special_tokens({t: self.token_to_id[t] for t in specials})
        self.pad_token = pad_token
        self.post_processor = Template.bert(cls_token, sep_token)
        self._table = _table(lowercase, strip_accents, split=True)
        # No piece is longer than the longest token, which bounds the longest-match search.
        self._longest = max(map(len, self.vocab), default=0)
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

    # --- the pipeline ----------------------------------------------------------------------------

    def words(self, text: str) -> list[str]:
        """Normalised, pre-tokenised words of `text`."""
        # After normalisation the only whitespace left is " ", so str.split() is the pre-tokenizer.
        return self._table.normalize(check_text(text)).split()

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
                end = min(len(word), start + self._longest)
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

    def encode_ordinary_offsets(self, text: str) -> tuple[list[int], Offsets]:
        """Ids and offsets in `text`, through lower-casing, accent stripping and cleaning, as Hugging Face's."""
        normalized, origin = self._table.normalize_with_origins(check_text(text))
        ids: list[int] = []
        offsets: Offsets = []
        unk = self.token_to_id[self.unk_token]
        for match in _WORD.finditer(normalized):
            start, end = match.span()
            pieces = self.word_pieces(match.group())
            ids += pieces
            if pieces == [unk]:
                offsets.append((origin[start], origin[end - 1] + 1))
                continue
            for k, index in enumerate(pieces):
                stop = start + len(self.vocab[index]) - (len(self.prefix) if k else 0)
                offsets.append((origin[start], origin[stop - 1] + 1))
                start = stop
        return ids, offsets

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Hugging Face's WordPiece decoder: ``##`` pieces join the previous token, others follow a space, and
        with `cleanup` each token loses the space before ``. ? ! ,`` and ``'s 've 're 'm n't``."""
        special_ids = set(self.special_tokens.values()) if skip_special_tokens else set()
        out: list[str] = []
        for index in ids:
            if index in special_ids:
                continue
            token = self.id_to_token(index)
            if out:
                token = token[len(self.prefix):] if token.startswith(self.prefix) else " " + token
            out.append(_cleanup(token) if self.cleanup else token)
        return "".join(out)

    def id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.vocab):
            raise ValueError(f"id {index} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return self.vocab[index]

    # --- saving ----------------------------------------------------------------------------------

    _OPTIONS = ("lowercase", "strip_accents", "unk_token", "cls_token", "sep_token", "pad_token", "mask_token",
                "prefix", "max_input_chars_per_word", "cleanup")

    def _header(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._OPTIONS}

    def _save_files(self, directory: Path) -> None:
        write_list(directory / "vocab.txt", "vocab", self.vocab)
        from glassformer.tokenizers.hf_json import save_tokenizer_json

        save_tokenizer_json(self, directory / "tokenizer.json")

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> WordPiece:
        vocab = read_list(directory / "vocab.txt", "vocab")
        options = {k: header[k] for k in cls._OPTIONS if k in header}
        try:
            return cls(vocab, **options)
        except (TypeError, ValueError) as exc:
            raise TokenizerFileError(f"{directory / 'vocab.txt'}: {exc}") from None


def _cleanup(token: str) -> str:
    """Hugging Face's decoder cleanup, which it applies to each token (with its leading space) alone."""
    for dirty, clean in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                         (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        token = token.replace(dirty, clean)
    return token
