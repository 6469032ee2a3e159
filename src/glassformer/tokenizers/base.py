"""The tokenizer base class, the special-token policy and the saved-file format shared by every tokenizer.

A saved tokenizer is a directory. Its first file, ``glassformer-tokenizer.txt``, starts with the line
``glassformer-tokenizer 1`` (format name and version) followed by ``key value`` lines whose values are
JSON (``kind "ByteLevelBPE"``, ``special_tokens {"<|endoftext|>": 50256}``, ...). Lists (vocabulary,
merges) live beside it in plain text files, one entry per line, each with its own header line
``#glassformer-<name> 1 count=<N>`` so that a truncated file is caught rather than half-loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import regex

from glassformer._files import atomic_dir, atomic_write
from glassformer.errors import GlassformerError

FORMAT_NAME = "glassformer-tokenizer"
FORMAT_VERSION = 1
HEADER_FILE = "glassformer-tokenizer.txt"

AllowedSpecial = str | Iterable[str]


class TokenizerFileError(GlassformerError, ValueError):
    """A saved tokenizer file is missing, corrupt, truncated or of an unknown format."""


def check_text(text: Any, what: str = "text") -> str:
    """Return `text` if it is a str; otherwise raise a TypeError that says what was given."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"{what} must be str, got {type(text).__name__}; decode it first, "
                        f"e.g. data.decode('utf-8')")
    raise TypeError(f"{what} must be str, got {type(text).__name__}")


def read_text_file(path: str | os.PathLike) -> str:
    """The whole file as UTF-8 text; bytes that are not UTF-8 give a ValueError naming the file and offset."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; expected a UTF-8 text file")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 at byte {exc.start} "
                         f"({data[exc.start:exc.start + 4]!r}: {exc.reason})") from None


class Tokenizer:
    """A tokenizer: text ⇄ a list of integer ids through a fixed vocabulary, plus named special tokens.

    Special-token policy (the same for every subclass): ``special_tokens`` maps token text such as
    ``"<|endoftext|>"`` to its id. Text passed to ``encode`` that contains a special token's text raises
    a ValueError by default, because user text that happens to contain ``<|endoftext|>`` must not silently
    become a control token. ``encode(text, allowed_special={"<|endoftext|>"})`` (or ``"all"``) encodes the
    listed ones as their ids; ``encode_ordinary(text)`` encodes all such text as ordinary characters.
    """

    kind: ClassVar[str] = ""
    _kinds: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Tokenizer._kinds[cls.kind] = cls

    def __init__(self) -> None:
        self.special_tokens: dict[str, int] = {}
        self._special_regex: regex.Pattern | None = None

    # --- what subclasses provide -----------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        raise NotImplementedError

    def train(self, texts: Iterable[str], vocab_size: int) -> Any:
        """Learn the vocabulary from texts."""
        raise NotImplementedError(f"{type(self).__name__} cannot be trained")

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of `text`, treating special-token text as ordinary text."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        """The text that `ids` stand for."""
        raise NotImplementedError

    def id_to_token(self, index: int) -> str:
        """The readable form of one id."""
        raise NotImplementedError

    def _header(self) -> dict[str, Any]:
        """Extra ``key value`` lines for the header file."""
        return {}

    def _save_files(self, directory: Path) -> None:
        """Write the subclass's list files into `directory`."""

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError

    # --- shared behaviour ------------------------------------------------------------------------

    def encode(self, text: str, *, allowed_special: AllowedSpecial = ()) -> list[int]:
        """Ids of `text`; special-token text raises unless listed in `allowed_special` (see the class doc)."""
        ids: list[int] = []
        for piece, special_id in self.split_special(text, allowed_special):
            if special_id is None:
                ids.extend(self.encode_ordinary(piece))
            else:
                ids.append(special_id)
        return ids

    def tokenize(self, text: str, *, allowed_special: AllowedSpecial = ()) -> list[str]:
        """The readable tokens of `text`, one per id."""
        return [self.id_to_token(i) for i in self.encode(text, allowed_special=allowed_special)]

    def add_special_tokens(self, tokens: dict[str, int]) -> None:
        """Register special tokens (text → id)."""
        for token, index in tokens.items():
            if not isinstance(token, str) or not token:
                raise ValueError(f"a special token must be a non-empty str, got {token!r}")
            self.special_tokens[token] = int(index)
        self._special_regex = None

    def resolve_allowed(self, allowed_special: AllowedSpecial) -> set[str]:
        """The set of special tokens named by `allowed_special` ("all" or an iterable of token texts)."""
        if isinstance(allowed_special, str):
            if allowed_special == "all":
                return set(self.special_tokens)
            if allowed_special == "none":
                return set()
            allowed_special = [allowed_special]
        allowed = set(allowed_special)
        unknown = sorted(allowed - set(self.special_tokens))
        if unknown:
            known = ", ".join(repr(t) for t in sorted(self.special_tokens)) or "none"
            raise ValueError(f"unknown special token {unknown[0]!r} in allowed_special; "
                             f"this tokenizer's special tokens: {known}")
        return allowed

    def split_special(self, text: str, allowed_special: AllowedSpecial = ()) -> list[tuple[str, int | None]]:
        """Split `text` into (ordinary text, None) and (token text, special id) pieces under the policy."""
        check_text(text)
        allowed = self.resolve_allowed(allowed_special)
        if not self.special_tokens:
            return [(text, None)]
        if self._special_regex is None:
            # Longest first, so that a special token that is a prefix of another does not win.
            alternatives = sorted(self.special_tokens, key=len, reverse=True)
            self._special_regex = regex.compile("|".join(regex.escape(t) for t in alternatives))
        pieces: list[tuple[str, int | None]] = []
        start = 0
        for match in self._special_regex.finditer(text):
            token = match.group()
            if token not in allowed:
                raise ValueError(
                    f"text contains the special token {token!r} at position {match.start()}; pass "
                    f"allowed_special={{{token!r}}} (or 'all') to encode it as id {self.special_tokens[token]}, "
                    f"or use encode_ordinary() to encode it as ordinary text")
            if match.start() > start:
                pieces.append((text[start:match.start()], None))
            pieces.append((token, self.special_tokens[token]))
            start = match.end()
        if start < len(text) or not pieces:
            pieces.append((text[start:], None))
        return pieces

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the tokenizer into the new or empty `directory` (or, with `overwrite`, over a saved tokenizer)."""
        directory = Path(directory)
        with atomic_dir(directory, "tokenizer", overwrite=overwrite) as tmp:
            header = {"kind": self.kind, "special_tokens": self.special_tokens, **self._header()}
            with atomic_write(tmp / HEADER_FILE) as handle:
                handle.write(f"{FORMAT_NAME} {FORMAT_VERSION}\n")
                for key, value in header.items():
                    handle.write(f"{key} {json.dumps(value, ensure_ascii=False)}\n")
            self._save_files(tmp)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer saved by `save`; the subclass is chosen by the header's ``kind``."""
        directory = Path(directory)
        header = read_header(directory / HEADER_FILE)
        kind = header.get("kind")
        target = Tokenizer._kinds.get(kind)
        if target is None:
            raise TokenizerFileError(f"{directory / HEADER_FILE}: unknown tokenizer kind {kind!r}; "
                                     f"expected one of {sorted(Tokenizer._kinds)}")
        if cls is not Tokenizer and not issubclass(target, cls):
            raise TokenizerFileError(f"{directory / HEADER_FILE}: holds a {kind}, not a {cls.__name__}")
        tokenizer = target._from_files(directory, header)
        specials = header.get("special_tokens", {})
        if not isinstance(specials, dict):
            raise TokenizerFileError(f"{directory / HEADER_FILE}: special_tokens must be a JSON object, "
                                     f"got {specials!r}")
        tokenizer.add_special_tokens(specials)
        return tokenizer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, special_tokens={len(self.special_tokens)})"


# --- the list files ----------------------------------------------------------------------------------

def read_header(path: Path) -> dict[str, Any]:
    """Parse a header file into a dict, with errors that name the file, line and problem."""
    if not path.is_file():
        raise TokenizerFileError(f"{path}: not found; a saved glassformer tokenizer directory has this file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise TokenizerFileError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    expected = f"{FORMAT_NAME} {FORMAT_VERSION}"
    if not lines or lines[0].strip() != expected:
        got = lines[0][:60] if lines else "an empty file"
        raise TokenizerFileError(f"{path}: first line should be {expected!r}, got {got!r}")
    header: dict[str, Any] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        key, _, value = line.partition(" ")
        try:
            header[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TokenizerFileError(f"{path}: line {number} ({key}) is not valid JSON: {exc.msg}") from None
    return header


def write_list(path: Path, name: str, lines: Iterable[str]) -> None:
    """Write a list file: a header with the entry count, then one entry per line."""
    lines = list(lines)
    with atomic_write(path) as handle:
        handle.write(f"#glassformer-{name} {FORMAT_VERSION} count={len(lines)}\n")
        for line in lines:
            handle.write(line + "\n")


def read_list(path: Path, name: str) -> list[str]:
    """Read a list file written by `write_list`; a wrong header or count raises TokenizerFileError."""
    if not path.is_file():
        raise TokenizerFileError(f"{path}: not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerFileError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    lines = text.split("\n")
    match = regex.fullmatch(rf"#glassformer-{name} (\d+) count=(\d+)", lines[0])
    if match is None:
        raise TokenizerFileError(f"{path}: first line should be '#glassformer-{name} "
                                 f"{FORMAT_VERSION} count=N', got {lines[0][:60]!r}")
    if int(match.group(1)) != FORMAT_VERSION:
        raise TokenizerFileError(f"{path}: format version {match.group(1)}, this glassformer reads "
                                 f"version {FORMAT_VERSION}")
    count = int(match.group(2))
    entries = lines[1:]
    if entries and entries[-1] == "":
        entries.pop()
    else:
        # Every entry ends with a newline, so a missing final newline means the file was cut off.
        raise TokenizerFileError(f"{path}: truncated (the last line has no newline)")
    if len(entries) != count:
        raise TokenizerFileError(f"{path}: truncated or corrupt: the header says {count} entries, "
                                 f"found {len(entries)}")
    return entries
