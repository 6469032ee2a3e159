"""Plain text for the language model: the user's own file, folder of files or ``hf:NAME`` set, read as a stream.

``load_corpus(spec)`` understands:

* a UTF-8 text file: its last 5% (cut at a line end) is held out;
* a folder: every ``*.txt`` below it (recursively, sorted by path), each file one document; whole
  files are held out, drawn in a seeded order until they hold 5% of the bytes (at least one file);
* ``hf:NAME`` or ``hf:NAME:CONFIG`` with a text column: a folder written by ``datasets``'
  ``save_to_disk`` is read offline (``load_from_disk``), any other name through ``load_dataset``;
  each row is one document; the set's validation split is held out, or a seeded 5% of its rows.

`validation` and `test` (``--validation-data``, ``--test-data``) replace the held-out text: all of
`spec` is then trained on.

Nothing here holds a whole corpus in memory. Files are read in blocks of about 1 MiB
(:func:`read_blocks`), cut where a byte-level BPE's regex pieces end anyway, so encoding block by
block gives the ids of encoding the whole text at once; a tokenizer learns from an evenly spread
sample of at most :data:`TOKENIZER_SAMPLE_CHARS` characters (:func:`sample`); the training ids are
written to a token file on disk (:func:`encode_to_file`) that training reads windows from through a
memory map; and at most :data:`SCORE_CHARS` characters of held-out text are read to be scored.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import regex

from glassformer.data.text import split_order

HOLDOUT_FRACTION = 0.05
BLOCK_BYTES = 1 << 20
# A line longer than this is cut where it stands (its ids there may then differ from encoding it whole).
MAX_CARRY_CHARS = 1 << 24
TOKENIZER_SAMPLE_CHARS = 20_000_000  # about four times Shakespeare's training works
CHAIN_SAMPLE_CHARS = 5_000_000  # the Markov chain baseline is fitted on this much (Shakespeare's size)
SCORE_CHARS = 2_000_000  # held-out characters scored at the end of a run and by `eval`
TEXT_COLUMNS = ("text", "content", "document", "sentence", "story")

# Just after a newline with a non-space character on each side: GPT-2's and GPT-4's patterns end a piece
# there whether or not the text goes on. (Not after "\r\n" or " \n": at the end of a block, those run into
# one whitespace piece that the whole text splits in two.)
_SAFE_CUT = regex.compile(r"(?<=\S)\n(?=\S)", flags=regex.REVERSE)


# --- reading ----------------------------------------------------------------------------------------

def _line_of(path: Path, offset: int) -> int:
    """The 1-based line number of byte `offset` of `path` (counted only when an error needs it)."""
    lines, done = 1, 0
    with open(path, "rb") as handle:
        while done < offset:
            data = handle.read(min(BLOCK_BYTES, offset - done))
            if not data:
                break
            lines += data.count(b"\n")
            done += len(data)
    return lines


def read_blocks(path: str | Path, start: int = 0, end: int | None = None,
                progress: Callable[[int], Any] | None = None) -> Iterator[str]:
    """Bytes `start`..`end` of a UTF-8 file as text blocks of about 1 MiB, never the whole file at once.

    A block ends just after a newline between two non-space characters (or, for a line longer than
    :data:`MAX_CARRY_CHARS`, where it stands). Bytes that are not UTF-8 raise a ValueError naming the
    file and line. `progress` is called with the number of bytes read after each read.
    """
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    carry, lines, remaining = "", 0, None if end is None else end - start
    with open(path, "rb") as handle:
        handle.seek(start)
        while True:
            data = handle.read(BLOCK_BYTES if remaining is None else min(BLOCK_BYTES, remaining))
            if remaining is not None:
                remaining -= len(data)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                line = _line_of(path, start) + lines + (pending + data)[:exc.start].count(b"\n")
                raise ValueError(f"{path}:{line}: not valid UTF-8 ({exc.reason}); the language model reads "
                                 f"UTF-8 text") from None
            lines += data.count(b"\n")
            if progress is not None and data:
                progress(len(data))
            carry += text
            if not data:
                if carry:
                    yield carry
                return
            match = _SAFE_CUT.search(carry)
            cut = match.end() if match else (len(carry) if len(carry) > MAX_CARRY_CHARS else 0)
            if cut > 0:
                yield carry[:cut]
                carry = carry[cut:]


def _next_line_start(path: Path, offset: int, size: int) -> int:
    """The first byte at or after `offset` that starts a line (or `size`)."""
    if offset <= 0:
        return 0
    with open(path, "rb") as handle:
        handle.seek(offset - 1)
        position = offset - 1
        while position < size:
            data = handle.read(1 << 16)
            if not data:
                break
            found = data.find(b"\n")
            if found >= 0:
                return position + found + 1
            position += len(data)
    return size


def _last_line_start(path: Path, start: int, end: int) -> int:
    """Where the last non-empty line of bytes `start`..`end` begins (`start` when there is one line), read backwards."""
    position, trailing = end, True
    with open(path, "rb") as handle:
        while position > start:
            size = min(1 << 16, position - start)
            handle.seek(position - size)
            data = handle.read(size)
            if trailing:
                stripped = data.rstrip(b"\n")
                trailing = not stripped
                position -= size - len(stripped)
                data = stripped
                if trailing:
                    continue
            found = data.rfind(b"\n")
            if found >= 0:
                return position - len(data) + found + 1
            position -= len(data)
    return start


# --- parts of a corpus --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileRange:
    """Bytes `start`..`end` of one text file: a whole file, or the head or tail of one."""

    path: Path
    start: int
    end: int
    name: str

    @property
    def size(self) -> int:
        return self.end - self.start

    def documents(self, progress: Callable[[int], Any] | None = None) -> Iterator[Iterator[str]]:
        """One document: the range's text in blocks."""
        yield read_blocks(self.path, self.start, self.end, progress)

    def identity(self) -> list[Any]:
        stat = self.path.stat()
        return [str(self.path.resolve()), stat.st_size, stat.st_mtime_ns, self.start, self.end]

    def spread(self, n_chars: int) -> list[FileRange]:
        """Pieces of about 1 MiB at evenly spaced line starts, about `n_chars` bytes in all (the whole range if smaller)."""
        if self.size <= n_chars:
            return [self]
        count = max(1, n_chars // BLOCK_BYTES)
        size = self.path.stat().st_size
        pieces = []
        for i in range(count):
            begin = _next_line_start(self.path, self.start + i * self.size // count, size)
            stop = min(self.end, _next_line_start(self.path, begin + min(BLOCK_BYTES, n_chars), size))
            if begin < stop:
                pieces.append(FileRange(self.path, begin, stop, f"{self.name}@{begin}"))
        return pieces


@dataclass(frozen=True)
class Rows:
    """Rows of a Hugging Face set's text column, each row one document."""

    table: Any  # a datasets.Dataset
    column: str
    indices: Sequence[int]
    where: str

    @property
    def size(self) -> int:
        """Characters, estimated from up to 1,000 evenly spaced rows."""
        if not len(self.indices):
            return 0
        step = max(1, len(self.indices) // 1000)
        probe = list(self.indices[::step])
        return int(sum(len(self._text(i)) for i in probe) / len(probe) * len(self.indices))

    def _text(self, index: int) -> str:
        value = self.table[int(index)][self.column]
        if not isinstance(value, str):
            raise ValueError(f"{self.where}: row {index} has no text in column {self.column!r} (got {value!r})")
        return value

    def documents(self, progress: Callable[[int], Any] | None = None) -> Iterator[Iterator[str]]:
        """Each row's text as a one-block document, read 1,000 rows at a time."""
        for begin in range(0, len(self.indices), 1000):
            chunk = [int(i) for i in self.indices[begin:begin + 1000]]
            for index, text in zip(chunk, list(self.table.select(chunk)[self.column])):
                if not isinstance(text, str):
                    raise ValueError(f"{self.where}: row {index} has no text in column {self.column!r} "
                                     f"(got {text!r})")
                if progress is not None:
                    progress(len(text))
                yield iter([text])

    def identity(self) -> list[Any]:
        fingerprint = getattr(self.table, "_fingerprint", None)
        return [self.where, fingerprint, self.column, len(self.indices), int(self.indices[0]) if len(self.indices) else 0]

    def spread(self, n_chars: int) -> list[Rows]:
        size = self.size
        if size <= n_chars:
            return [self]
        step = math.ceil(size / n_chars)
        return [Rows(self.table, self.column, self.indices[::step], self.where)]


Part = FileRange | Rows


def documents(parts: Iterable[Part], progress: Callable[[int], Any] | None = None) -> Iterator[Iterator[str]]:
    """Every document of `parts` in order, each as an iterator of text blocks."""
    for part in parts:
        yield from part.documents(progress)


def sample(parts: Sequence[Part], n_chars: int) -> list[Part]:
    """Pieces spread evenly over `parts`, about `n_chars` characters in all: every part when they are smaller."""
    total = sum(p.size for p in parts)
    if total <= n_chars:
        return list(parts)
    return [piece for p in parts for piece in p.spread(max(1, n_chars * p.size // total))]


def read_documents(parts: Sequence[Part], max_chars: int = SCORE_CHARS) -> list[str]:
    """The documents of `parts` as strings, the first `max_chars` characters in all (the last one cut)."""
    texts, left = [], max_chars
    for blocks in documents(parts):
        pieces = []
        for block in blocks:
            pieces.append(block[:left])
            left -= len(pieces[-1])
            if left <= 0:
                break
        texts.append("".join(pieces))
        if left <= 0:
            break
    return [t for t in texts if t]


# --- a corpus -----------------------------------------------------------------------------------------

@dataclass
class TextCorpus:
    """Plain text in training, held-out (validation) and optional test parts, and what chose them."""

    spec: str
    train: list[Part]
    validation: list[Part]
    test: list[Part] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> str:
        """A digest of the corpus as it is on disk (paths, sizes, modification times, ranges) and its split."""
        key = {part: [p.identity() for p in getattr(self, part)] for part in ("train", "validation", "test")}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _text_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.txt") if p.is_file())


def _file_parts(spec: str) -> list[FileRange]:
    """One whole-file part per text file named by `spec` (a file or a folder); bad or empty input is a ValueError."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not any(path.iterdir()):
            raise ValueError(f"{path}: empty folder; expected .txt files (read recursively)")
        files = _text_files(path)
        if not files:
            raise ValueError(f"{path}: no .txt files in this folder or below it; the language model reads UTF-8 "
                             f".txt files")
        parts = [FileRange(f, 0, f.stat().st_size, str(f.relative_to(path))) for f in files]
        parts = [p for p in parts if p.size > 0]
        if not parts:
            raise ValueError(f"{path}: every .txt file in this folder is empty")
        return parts
    if path.is_file():
        size = path.stat().st_size
        if size == 0:
            raise ValueError(f"{path}: empty file; expected UTF-8 text")
        return [FileRange(path, 0, size, path.name)]
    raise FileNotFoundError(f"{spec}: no such file or folder (expected a text file, a folder of .txt files or "
                            f"hf:NAME)")


def _hold_out_files(parts: list[FileRange], seed: int) -> tuple[list[FileRange], list[FileRange]]:
    """Whole files in a seeded order until they hold 5% of the bytes (at least one, and one left to train on)."""
    order = split_order([p.name for p in parts], seed)
    total, held = sum(p.size for p in parts), set()
    for index in order[:-1]:
        held.add(index)
        if sum(parts[i].size for i in held) >= HOLDOUT_FRACTION * total:
            break
    return ([p for i, p in enumerate(parts) if i not in held], [p for i, p in enumerate(parts) if i in held])


def _hold_out_tail(part: FileRange) -> tuple[FileRange, FileRange]:
    """The file's last 5%, from a line start, held out (from the last line when the file is short)."""
    cut = _next_line_start(part.path, part.start + round(part.size * (1 - HOLDOUT_FRACTION)), part.end)
    if cut >= part.end:  # no line starts after 95%: hold out the last line, or refuse a one-line file
        cut = _last_line_start(part.path, part.start, part.end)
    if cut <= part.start or cut >= part.end:
        raise ValueError(f"{part.path}: one line of text cannot be split into training and held-out text; give "
                         f"more lines, or the held-out text with --validation-data")
    return (FileRange(part.path, part.start, cut, part.name),
            FileRange(part.path, cut, part.end, f"{part.name} (last {HOLDOUT_FRACTION:.0%})"))


def _load_hf_table(spec: str) -> tuple[Any, str]:
    """The ``datasets`` object named by ``hf:NAME[:CONFIG]`` (a local ``save_to_disk`` folder is read offline)."""
    name, _, config = spec[3:].partition(":")
    if not name:
        raise ValueError(f"{spec!r}: expected hf:NAME or hf:NAME:CONFIG")
    try:
        import datasets
    except ImportError:
        raise ImportError(f"{spec} needs the Hugging Face `datasets` library, which is not installed; install it "
                          f"with `pip install datasets` (or give a text file or folder instead)") from None
    try:
        if Path(name).expanduser().is_dir():
            return datasets.load_from_disk(str(Path(name).expanduser())), spec
        return (datasets.load_dataset(name, config) if config else datasets.load_dataset(name)), spec
    except Exception as exc:
        raise ValueError(f"{spec}: the `datasets` library could not load it ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}); without a network, give a folder written by "
                         f"save_to_disk or a text file") from None


def _hf_split(table: Any, names: Sequence[str]) -> Any | None:
    if not hasattr(table, "keys"):  # a single Dataset
        return table if "train" in names else None
    lowered = {k.lower(): k for k in table.keys()}
    return next((table[lowered[n]] for n in names if n in lowered), None)


def _pick_text_column(table: Any, wanted: str | None, where: str) -> str:
    columns = list(table.column_names)
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{where}: no text column {wanted!r}; the columns are {columns}")
        return wanted
    found = next((c for c in columns if c.lower() in TEXT_COLUMNS), None)
    if found is None:
        raise ValueError(f"{where}: cannot tell which column holds the text; name it with --text-column "
                         f"(the columns are {columns})")
    return found


def _hf_parts(spec: str, text_column: str | None, seed: int) -> tuple[list[Rows], list[Rows], str]:
    table, where = _load_hf_table(spec)
    train = _hf_split(table, ("train",))
    if train is None:
        raise ValueError(f"{where}: no train split; the splits are {list(table.keys())}")
    column = _pick_text_column(train, text_column, where)
    if len(train) == 0:
        raise ValueError(f"{where}: the train split has no rows")
    held = _hf_split(table, ("validation", "valid", "val", "dev"))
    if held is not None:
        return [Rows(train, column, range(len(train)), where)], [Rows(held, column, range(len(held)), where)], column
    if len(train) < 2:
        raise ValueError(f"{where}: one row cannot be split into training and held-out text")
    order = split_order([str(i) for i in range(len(train))], seed)
    n_held = max(1, round(len(order) * HOLDOUT_FRACTION))
    return ([Rows(train, column, sorted(order[n_held:]), where)],
            [Rows(train, column, sorted(order[:n_held]), where)], column)


def _parts(spec: str, text_column: str | None, seed: int) -> list[Part]:
    """Every document of `spec` (for --validation-data, --test-data and `eval --data`)."""
    if spec.startswith("hf:"):
        train, held, _ = _hf_parts(spec, text_column, seed)
        return [*train, *held]
    return list(_file_parts(spec))


def data_spec(spec: str) -> str:
    """`spec` as a saved model records it: hf: names as given, paths made absolute."""
    if spec.startswith("hf:"):
        name, sep, config = spec[3:].partition(":")
        path = Path(name).expanduser()
        return f"hf:{path.resolve()}{sep}{config}" if path.is_dir() else spec
    return str(Path(spec).expanduser().resolve())


def load_corpus(spec: str, *, text_column: str | None = None, seed: int = 0, validation: str | None = None,
                test: str | None = None) -> TextCorpus:
    """The training and held-out text named by `spec` (see the module docstring); nothing is read but sizes."""
    info: dict[str, Any] = {"data": data_spec(spec), "seed": seed}
    if spec.startswith("hf:"):
        train, held, column = _hf_parts(spec, text_column, seed)
        info["text_column"] = column
        if validation is not None:
            train = [*train, *held]
    else:
        train = _file_parts(spec)
        if validation is None and len(train) > 1:
            train, held = _hold_out_files(train, seed)
            info["validation_files"] = [p.name for p in held]
        elif validation is None:
            train, held = map(lambda p: [p], _hold_out_tail(train[0]))
            info["validation_tail"] = {"file": train[0].name, "from_byte": held[0].start}
    if validation is not None:
        held = _parts(validation, text_column, seed)
        info["validation_data"] = data_spec(validation)
    test_parts = _parts(test, text_column, seed) if test is not None else []
    if test is not None:
        info["test_data"] = data_spec(test)
    return TextCorpus(spec, train, held, test_parts, info)


def eval_parts(spec: str, text_column: str | None = None) -> list[Part]:
    """Every document of `spec` (a file, folder or hf: set), for scoring a saved model on any text."""
    return _parts(spec, text_column, 0)


# --- encoding to a token file ---------------------------------------------------------------------------

def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id: uint16 up to 65,536 ids, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def encode_to_file(parts: Sequence[Part], encode_document_start: Callable[[], list[int]],
                   encode: Callable[[str], list[int]], vocab_size: int, path: str | Path, *,
                   progress: bool = False) -> int:
    """Write the ids of every document of `parts` to `path`, block by block; returns how many were written.

    Each document starts with ``encode_document_start()`` (the ``<|endoftext|>`` a language model
    reads before a work), then ``encode(block)`` of each of its blocks. The file is raw ids in
    :func:`token_dtype` order (native byte order), readable with ``numpy.memmap``.
    """
    from tqdm.auto import tqdm

    dtype = token_dtype(vocab_size)
    total = sum(p.size for p in parts)
    count = 0
    with tqdm(total=total, desc="encoding", unit="B", unit_scale=True, disable=not progress) as bar, \
            open(path, "wb") as handle:
        for blocks in documents(parts, bar.update):
            ids = encode_document_start()
            for block in blocks:
                ids.extend(encode(block))
                handle.write(np.asarray(ids, dtype=dtype).tobytes())
                count += len(ids)
                ids = []
            if ids:
                handle.write(np.asarray(ids, dtype=dtype).tobytes())
                count += len(ids)
    return count


def open_tokens(path: str | Path, vocab_size: int) -> np.ndarray:
    """The ids in a token file written by :func:`encode_to_file`, as a read-only memory map."""
    if os.path.getsize(path) == 0:
        return np.zeros(0, dtype=token_dtype(vocab_size))
    return np.memmap(path, dtype=token_dtype(vocab_size), mode="r")
