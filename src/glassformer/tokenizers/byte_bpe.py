"""Byte-level BPE as in GPT-2: a regex cuts text into pieces, each piece's UTF-8 bytes are merged by rank.

Training (``ByteLevelBPE.train``) counts each distinct piece once with its frequency, then keeps the
count of every adjacent pair up to date as merges happen: a heap holds (−count, first id, second id),
entries whose count has since changed are skipped when popped (lazy invalidation), and an index from each
pair to the pieces that contain it means one merge only rewrites those pieces.

Tie-breaking rule (shared with the textbook trainer in the tests): the pair with the highest count wins;
among equal counts, the pair with the smaller first id wins, then the smaller second id. Byte ``b`` has
id ``b``; the n-th new token has id ``255 + n``. If a merge produces bytes that are already a token
(``(ab, c)`` after ``(a, bc)``), that token's id is reused, so the vocabulary holds each byte string once.
"""

from __future__ import annotations

import codecs
import heapq
import json
import os
from collections import Counter, defaultdict
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import regex

from glassformer.tokenizers.base import Tokenizer, TokenizerFileError, check_text, read_list, write_list
from glassformer.tokenizers.merging import merge

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
                r"""|\s*[\r\n]|\s+(?!\S)|\s+""")
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}

_CACHE_LIMIT = 1 << 18
# Longer pieces (a base64 blob, a minified file) are rarely seen twice; caching them would hold megabytes.
_CACHE_MAX_PIECE = 256
_BLOCK_BYTES = 1 << 20


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte: printable Latin-1 bytes stand for themselves, the others
    (space, control bytes, ...) for the characters from U+0100 upward, in byte order. ``" "`` → ``"Ġ"``."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def token_to_unicode(token: bytes) -> str:
    """A token's bytes in GPT-2's printable form (no spaces or newlines, one char per byte)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def unicode_to_token(text: str, where: str = "") -> bytes:
    """Inverse of `token_to_unicode`; a character outside the 256 stand-ins raises a TokenizerFileError."""
    inverse = _unicode_to_bytes()
    try:
        return bytes(inverse[ch] for ch in text)
    except KeyError as exc:
        raise TokenizerFileError(f"{where}: {text!r} contains {exc.args[0]!r}, which is not one of "
                                 f"GPT-2's 256 byte characters") from None


@lru_cache(maxsize=1)
def _unicode_to_bytes() -> dict[str, int]:
    return {ch: b for b, ch in bytes_to_unicode().items()}


# --- reading a corpus as a stream -------------------------------------------------------------------

def iter_file_blocks(path: str | os.PathLike, block_bytes: int = _BLOCK_BYTES) -> Iterator[str]:
    """Yield a UTF-8 file as text blocks of about `block_bytes`, without holding the whole file.

    Blocks end just after a newline between two non-space characters. GPT-2's and GPT-4's
    patterns always end a piece at such a newline, so the pieces found block by block are the pieces of
    the whole file. Bytes that are not UTF-8 raise a ValueError naming the file and byte offset.
    """
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    carry = ""
    offset = 0
    with open(path, "rb") as handle:
        while True:
            data = handle.read(block_bytes)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                position = offset - pending + exc.start
                raise ValueError(f"{path}: not valid UTF-8 at byte {max(position, 0)} ({exc.reason})") from None
            offset += len(data)
            carry += text
            if not data:
                if carry:
                    yield carry
                return
            cut = _safe_cut(carry)
            if cut > 0:
                yield carry[:cut]
                carry = carry[cut:]


_SAFE_CUT = regex.compile(r"(?<=\S)\n(?=\S)", flags=regex.REVERSE)


def _safe_cut(text: str) -> int:
    """Index just after the last newline between two non-space characters, or 0.

    A cut after "\\r\\n" or " \\n" would make one whitespace piece where the whole text has two.
    """
    match = _SAFE_CUT.search(text)
    return match.end() if match else 0


def count_pieces(blocks: Iterable[str], pattern: str = GPT2_PATTERN, progress: Any = None) -> Counter[str]:
    """How often each regex piece occurs across `blocks` (each a str)."""
    compiled = regex.compile(pattern)
    counts: Counter[str] = Counter()
    for block in blocks:
        check_text(block, "each training text")
        counts.update(compiled.findall(block))
        if progress is not None:
            progress.update(len(block))
    return counts


def _piece_bytes(counts: dict[str, int]) -> tuple[list[list[int]], list[int]]:
    words: list[list[int]] = []
    freqs: list[int] = []
    for piece, freq in counts.items():
        try:
            words.append(list(piece.encode("utf-8")))
        except UnicodeEncodeError as exc:
            raise ValueError(f"training text contains a lone surrogate {piece[exc.start]!r}, which has no "
                             f"UTF-8 bytes") from None
        freqs.append(freq)
    return words, freqs


# --- the trainer --------------------------------------------------------------------------------------

def _merge_ids(word: list[int], a: int, b: int, new: int) -> list[int] | None:
    """`word` with each non-overlapping (a, b), left to right, replaced by `new`; None if there is none."""
    out: list[int] = []
    start = 0
    last = len(word) - 1
    found = False
    index = word.index
    while True:
        try:
            j = index(a, start)
        except ValueError:
            break
        if j < last and word[j + 1] == b:
            out.extend(word[start:j])
            out.append(new)
            start = j + 2
            found = True
        else:
            out.extend(word[start:j + 1])
            start = j + 1
    if not found:
        return None
    out.extend(word[start:])
    return out


def learn_merges(counts: dict[str, int], n_new_tokens: int,
                 progress: bool | None = None) -> tuple[list[bytes], list[tuple[int, int]]]:
    """Learn merges from piece counts until `n_new_tokens` new tokens exist or no pair is left.

    Returns the vocabulary (id → bytes, the 256 bytes first) and the merges as id pairs in order.
    """
    from tqdm.auto import tqdm

    words, freqs = _piece_bytes(counts)
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        freq = freqs[i]
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(i)
    heap = [(-count, a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)

    vocab = [bytes([b]) for b in range(256)]
    ids = {token: i for i, token in enumerate(vocab)}
    merges: list[tuple[int, int]] = []
    bar = tqdm(total=n_new_tokens, desc="merges", unit="tok", disable=_disabled(progress))
    while len(vocab) - 256 < n_new_tokens and heap:
        negative, a, b = heapq.heappop(heap)
        if pair_counts.get((a, b)) != -negative:
            continue  # stale: this pair's count changed after the entry was pushed
        joined = vocab[a] + vocab[b]
        new = ids.get(joined)
        if new is None:
            new = len(vocab)
            vocab.append(joined)
            ids[joined] = new
            bar.update(1)
        merges.append((a, b))
        delta: dict[tuple[int, int], int] = defaultdict(int)
        for i in where.pop((a, b)):
            word = words[i]
            merged = _merge_ids(word, a, b, new)
            if merged is None:
                continue  # the pair left this word in an earlier merge; the index is cleaned lazily
            freq = freqs[i]
            for pair in zip(word, word[1:]):
                delta[pair] -= freq
            for pair in zip(merged, merged[1:]):
                delta[pair] += freq
                if new in pair:
                    where[pair].add(i)
            words[i] = merged
        for pair, change in delta.items():
            if change:
                count = pair_counts[pair] + change
                if count > 0:
                    pair_counts[pair] = count
                    heapq.heappush(heap, (-count, pair[0], pair[1]))
                else:
                    del pair_counts[pair]
                    where.pop(pair, None)
    bar.close()
    return vocab, merges


class _PieceCache(dict):
    """piece → ids, filled on first use by BPE and emptied when it reaches `_CACHE_LIMIT` entries."""

    def __init__(self, encode_piece: Any) -> None:
        super().__init__()
        self.encode_piece = encode_piece

    def __missing__(self, piece: str) -> list[int]:
        ids = self.encode_piece(piece)
        if len(piece) < _CACHE_MAX_PIECE:
            if len(self) >= _CACHE_LIMIT:
                self.clear()
            self[piece] = ids
        return ids


# --- the tokenizer ------------------------------------------------------------------------------------

class ByteLevelBPE(Tokenizer):
    """Byte-level byte-pair encoding (GPT-2): pieces = regex(text); ids = BPE merges over each piece's UTF-8 bytes.

    ``decode(encode(s)) == s`` for every str s that can be written in UTF-8, which is every str without a
    lone surrogate (U+D800–U+DFFF not in a pair): those have no UTF-8 bytes, and ``encode`` rejects them
    with a ValueError rather than guess (tiktoken replaces them with U+FFFD, which does not round-trip).
    Special tokens follow the policy in `Tokenizer`. Ids that end inside a UTF-8 character decode with
    U+FFFD in its place. A piece of any length encodes in O(n log n) time (see `merging`).
    """

    kind = "ByteLevelBPE"

    def __init__(self, pattern: str = GPT2_PATTERN) -> None:
        super().__init__()
        self.pattern = PATTERNS.get(pattern, pattern)
        self._regex = regex.compile(self.pattern)
        self._set_model([bytes([b]) for b in range(256)], [])

    def _set_model(self, vocab: Sequence[bytes] | dict[int, bytes], merges: Sequence[tuple[int, int]]) -> None:
        """Install a vocabulary (id → bytes) and merges (pairs of ids, in rank order)."""
        self.id_to_bytes: dict[int, bytes] = dict(enumerate(vocab)) if not isinstance(vocab, dict) else dict(vocab)
        self.bytes_to_id: dict[bytes, int] = {}
        for index, token in self.id_to_bytes.items():
            if token in self.bytes_to_id:
                raise ValueError(f"token {token!r} has two ids: {self.bytes_to_id[token]} and {index}")
            self.bytes_to_id[token] = index
        missing = [b for b in range(256) if bytes([b]) not in self.bytes_to_id]
        if missing:
            raise ValueError(f"the vocabulary lacks {len(missing)} single bytes (first: {missing[0]}); "
                             f"byte-level BPE needs all 256")
        self.merges: list[tuple[int, int]] = list(merges)
        self._byte_ids = [self.bytes_to_id[bytes([b])] for b in range(256)]
        # When the 256 byte tokens have ids 0..255 (ours, GPT-2's), bytes.translate maps a piece in C.
        self._byte_table = bytes(self._byte_ids) if sorted(self._byte_ids) == list(range(256)) else None
        self._ranks: dict[tuple[int, int], int] = {}
        self._results: list[int] = []
        self._lengths = {index: len(token) for index, token in self.id_to_bytes.items()}
        for rank, (a, b) in enumerate(self.merges):
            joined = self.id_to_bytes[a] + self.id_to_bytes[b]
            self._ranks.setdefault((a, b), rank)
            self._results.append(self.bytes_to_id[joined])
        self._cache = _PieceCache(self._encode_piece)
        self._decode_table: dict[int, bytes] = dict(self.id_to_bytes)
        for token, index in self.special_tokens.items():
            self._decode_table[index] = token.encode("utf-8")

    def add_special_tokens(self, tokens: dict[str, int]) -> None:
        for token, index in tokens.items():
            if index in self.id_to_bytes:
                raise ValueError(f"special token {token!r} would take id {index}, which is the ordinary token "
                                 f"{self.id_to_bytes[index]!r}")
        super().add_special_tokens(tokens)
        for token, index in tokens.items():
            self._decode_table[int(index)] = token.encode("utf-8")

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_bytes) + len(self.special_tokens)

    # --- training --------------------------------------------------------------------------------

    def train(self, texts: Iterable[str] | str, vocab_size: int, *, special_tokens: Sequence[str] = (),
              progress: bool | None = None) -> None:
        """Learn merges from an iterable of texts (streamed, never joined) until `vocab_size` ids exist.

        `vocab_size` counts the 256 bytes, the merges and `special_tokens` (given the last ids).
        `progress`: True/False shows/hides progress bars; None shows them only on a terminal.
        """
        if isinstance(texts, str):
            texts = [texts]
        from tqdm.auto import tqdm

        bar = tqdm(desc="counting", unit="char", unit_scale=True, disable=_disabled(progress))
        counts = count_pieces(texts, self.pattern, bar)
        bar.close()
        self._train_from_counts(counts, vocab_size, special_tokens, progress)

    def train_from_files(self, paths: Sequence[str | os.PathLike] | str | os.PathLike, vocab_size: int, *,
                         special_tokens: Sequence[str] = (), progress: bool | None = None) -> None:
        """Like `train`, reading UTF-8 files block by block (each file is one text)."""
        from tqdm.auto import tqdm

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [Path(p) for p in paths]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"training file not found: {path}")
        total = sum(p.stat().st_size for p in paths)
        bar = tqdm(total=total, desc="counting", unit="B", unit_scale=True, disable=_disabled(progress))
        counts: Counter[str] = Counter()
        for path in paths:
            for block in iter_file_blocks(path):
                counts.update(count_pieces([block], self.pattern))
                bar.update(len(block.encode("utf-8")))
        bar.close()
        self._train_from_counts(counts, vocab_size, special_tokens, progress)

    def _train_from_counts(self, counts: dict[str, int], vocab_size: int, special_tokens: Sequence[str],
                           progress: bool | None) -> None:
        minimum = 256 + len(special_tokens)
        if vocab_size < minimum:
            raise ValueError(f"vocab_size={vocab_size} is below {minimum} (256 bytes + "
                             f"{len(special_tokens)} special tokens)")
        vocab, merges = learn_merges(counts, vocab_size - minimum, progress=progress)
        self.special_tokens = {}
        self._special_regexes = {}
        self._set_model(vocab, merges)
        self.add_special_tokens({token: len(vocab) + i for i, token in enumerate(special_tokens)})
        # A pad token or template naming a special token that this training did not keep would fail later.
        if self.pad_token not in self.special_tokens:
            self.pad_token = None
        if self.post_processor is not None and not self.post_processor.special_tokens() <= set(self.special_tokens):
            self.post_processor = None

    # --- encoding --------------------------------------------------------------------------------

    def _encode_piece(self, piece: str) -> list[int]:
        """BPE on one regex piece: repeatedly merge the adjacent pair of lowest rank, all its occurrences."""
        try:
            data = piece.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"text contains a lone surrogate {piece[exc.start]!r}, which has no UTF-8 "
                             f"bytes") from None
        ids = list(data.translate(self._byte_table)) if self._byte_table else [self._byte_ids[b] for b in data]
        return merge(ids, self._ranks, self.merges, self._results)

    def encode_ordinary(self, text: str) -> list[int]:
        check_text(text)
        # The cache maps a piece to its ids and computes missing ones itself, so the loop over pieces
        # runs inside map() and chain() rather than in Python bytecode.
        return list(chain.from_iterable(map(self._cache.__getitem__, self._regex.findall(text))))

    def encode_ordinary_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character offsets; a token holding part of a character's bytes spans that whole character."""
        check_text(text)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        lengths = self._lengths
        for match in self._regex.finditer(text):
            piece = match.group()
            piece_ids = self._cache[piece]
            ids += piece_ids
            start = match.start()
            if piece.isascii():
                for index in piece_ids:
                    end = start + lengths[index]
                    offsets.append((start, end))
                    start = end
                continue
            # The character that each byte of the piece belongs to.
            owner = [k for k, ch in enumerate(piece) for _ in range(_utf8_length(ch))]
            first = 0
            for index in piece_ids:
                last = first + lengths[index] - 1
                offsets.append((start + owner[first], start + owner[last] + 1))
                first = last + 1
        return ids, offsets

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The raw bytes of `ids` (special tokens as their UTF-8 text)."""
        table = self._decode_table
        try:
            return b"".join([table[i] for i in ids])
        except KeyError as exc:
            raise ValueError(f"id {exc.args[0]!r} is not in the vocabulary (size {self.vocab_size})") from None
        except TypeError:
            bad = next(i for i in ids if not isinstance(i, int))
            raise TypeError(f"ids must be ints, got {type(bad).__name__} {bad!r}") from None

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The UTF-8 text of the ids' bytes; bytes that are not UTF-8 become U+FFFD, as in Hugging Face."""
        if skip_special_tokens:
            special = set(self.special_tokens.values())
            ids = [i for i in ids if i not in special]
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def id_to_token(self, index: int) -> str:
        """GPT-2's printable form of the token's bytes (``"Ġthe"``), or a special token's text."""
        if index not in self.id_to_bytes:
            for token, special in self.special_tokens.items():
                if special == index:
                    return token
            raise ValueError(f"id {index} is not in the vocabulary (size {self.vocab_size})")
        return token_to_unicode(self.id_to_bytes[index])

    def token_to_id(self, token: str) -> int:
        """Inverse of `id_to_token`."""
        if token in self.special_tokens:
            return self.special_tokens[token]
        index = self.bytes_to_id.get(unicode_to_token(token, "token"))
        if index is None:
            raise ValueError(f"{token!r} is not in the vocabulary")
        return index

    # --- GPT-2's files and our own ---------------------------------------------------------------

    @classmethod
    def from_gpt2(cls, encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike) -> ByteLevelBPE:
        """Load GPT-2's vocabulary (encoder.json: token → id) and merges (vocab.bpe, rank order)."""
        encoder_json, vocab_bpe = Path(encoder_json), Path(vocab_bpe)
        try:
            encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"GPT-2 encoder file not found: {encoder_json}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TokenizerFileError(f"{encoder_json}: not a valid JSON object of token → id ({exc})") from None
        if not isinstance(encoder, dict):
            raise TokenizerFileError(f"{encoder_json}: expected a JSON object of token → id, got "
                                     f"{type(encoder).__name__}")
        try:
            lines = vocab_bpe.read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            raise FileNotFoundError(f"GPT-2 merges file not found: {vocab_bpe}") from None
        if not lines[0].startswith("#version"):
            raise TokenizerFileError(f"{vocab_bpe}: first line should be '#version: 0.2', got {lines[0][:60]!r}")
        specials = {t: i for t, i in encoder.items() if t.startswith("<|") and t.endswith("|>")}
        vocab = {int(i): unicode_to_token(t, str(encoder_json)) for t, i in encoder.items() if t not in specials}
        tokenizer = cls(GPT2_PATTERN)
        merges = _parse_merges(lines[1:], {token_to_unicode(v): k for k, v in vocab.items()}, vocab_bpe)
        tokenizer._set_model(vocab, merges)
        tokenizer.add_special_tokens(specials)
        return tokenizer

    def _header(self) -> dict[str, Any]:
        return {"pattern": self.pattern}

    def _save_files(self, directory: Path) -> None:
        write_list(directory / "vocab.txt", "vocab",
                   (f"{i} {token_to_unicode(t)}" for i, t in sorted(self.id_to_bytes.items())))
        write_list(directory / "merges.txt", "merges",
                   (f"{token_to_unicode(self.id_to_bytes[a])} {token_to_unicode(self.id_to_bytes[b])}"
                    for a, b in self.merges))
        from glassformer.tokenizers.hf_json import save_tokenizer_json

        save_tokenizer_json(self, directory / "tokenizer.json")

    @classmethod
    def _from_files(cls, directory: Path, header: dict[str, Any]) -> ByteLevelBPE:
        vocab_path = directory / "vocab.txt"
        vocab: dict[int, bytes] = {}
        for number, line in enumerate(read_list(vocab_path, "vocab"), start=2):
            index, _, token = line.partition(" ")
            if not index.isdigit() or not token:
                raise TokenizerFileError(f"{vocab_path}: line {number} should be 'ID TOKEN', got {line[:60]!r}")
            vocab[int(index)] = unicode_to_token(token, f"{vocab_path} line {number}")
        merges_path = directory / "merges.txt"
        by_text = {token_to_unicode(t): i for i, t in vocab.items()}
        merges = _parse_merges(read_list(merges_path, "merges"), by_text, merges_path, first_line=2)
        tokenizer = cls(header.get("pattern", GPT2_PATTERN))
        try:
            tokenizer._set_model(vocab, merges)
        except (ValueError, KeyError) as exc:
            raise TokenizerFileError(f"{directory}: vocab.txt and merges.txt do not fit together: {exc}") from None
        return tokenizer


def _parse_merges(lines: Iterable[str], ids: dict[str, int], path: Path, first_line: int = 2) -> list[tuple[int, int]]:
    """Merge lines "A B" (GPT-2's printable form) → id pairs; both parts and A+B must be in `ids`."""
    merges = []
    for number, line in enumerate(lines, start=first_line):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise TokenizerFileError(f"{path}: line {number} should be two tokens separated by one space, "
                                     f"got {line[:60]!r}")
        a, b = parts
        for token in (a, b, a + b):
            if token not in ids:
                raise TokenizerFileError(f"{path}: line {number} ({line!r}) uses {token!r}, which is not "
                                         f"in the vocabulary")
        merges.append((ids[a], ids[b]))
    return merges


def _utf8_length(ch: str) -> int:
    cp = ord(ch)
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def _disabled(progress: bool | None) -> bool | None:
    """tqdm's `disable`: None lets tqdm hide the bar when stderr is not a terminal."""
    return None if progress is None else not progress
