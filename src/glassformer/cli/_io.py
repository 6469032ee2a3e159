"""What every command shares: the argument parser, bounded numbers, reading text, writing results.

Errors are one line: the parser raises :class:`CommandLineError` instead of printing its usage, and
``glassformer.cli.main`` prints every error as ``glassformer: error: …`` with a documented exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import queue
import select
import sys
import threading
from typing import Any, Callable, Iterable, Iterator, Sequence

from glassformer.errors import UsageError


class CommandLineError(UsageError):
    """The command line itself is wrong (unknown flag, missing argument, bad value)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and which, when `intermixed`, takes options between positionals.

    ``predict DIR --json TEXT...``: plain argparse matches ``DIR`` and an empty ``TEXT...`` before the
    first option and then rejects the texts after it; intermixed parsing reads all options first.
    """

    def __init__(self, *args: Any, intermixed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intermixed = intermixed
        self._intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if not self.intermixed or self._intermixing:  # the intermixed parse calls back in here twice
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandLineError(f"{self.prog}: {message} (see {self.prog} --help)")


def bounded(kind: Callable[[str], Any], low: float | None = None, high: float | None = None,
            *, low_open: bool = False) -> Callable[[str], Any]:
    """An argparse type: `kind` of the text, refused unless it lies in [low, high] ((low, high] with `low_open`)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            lower = "" if low is None else (f"> {low}" if low_open else f">= {low}")
            upper = "" if high is None else f"<= {high}"
            raise argparse.ArgumentTypeError(f"expected a value {' and '.join(p for p in (lower, upper) if p)}, "
                                             f"got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def check_utf8(texts: Sequence[str], what: str = "argument") -> list[str]:
    """The texts, refused if one holds bytes that were not UTF-8 (Python keeps them as lone surrogates)."""
    for index, text in enumerate(texts, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(f"{what} {index} is not valid UTF-8 (at character {exc.start}); glassformer reads "
                             f"UTF-8 text") from None
    return list(texts)


class _StdinLines:
    """The non-blank lines of standard input, decoded as UTF-8 one by one; a bad byte names its line.

    A thread reads the bytes and the main thread takes the lines from a queue, waking every fraction of
    a second: Ctrl+C must interrupt a wait for the next line, and the kernel may hand SIGINT to any
    thread (torch's workers included), which interrupts only that thread's system call. A main thread
    blocked in ``read`` would then wait for the next line before it noticed.
    """

    _POLL = 0.2  # seconds between checks for a pending signal while no line is waiting

    def __init__(self) -> None:
        self._raw = getattr(sys.stdin, "buffer", None)
        self._lines: queue.Queue = queue.Queue()
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self._fd = self._raw.fileno()
        if self._fd is not None:
            threading.Thread(target=self._read, name="glassformer-stdin", daemon=True).start()

    def _read(self) -> None:
        # os.read on the descriptor, not the buffered stream: a daemon thread blocked inside the stream would
        # hold its lock when the interpreter shuts down, which aborts the process.
        pending = b""
        try:
            while chunk := os.read(self._fd, 1 << 16):
                *lines, pending = (pending + chunk).split(b"\n")
                for data in lines:
                    self._lines.put(data + b"\n")
            if pending:
                self._lines.put(pending)
        except BaseException as exc:  # handed to the main thread, which raises it
            self._lines.put(exc)
        self._lines.put(None)

    def _queued(self) -> Iterator[bytes]:
        while True:
            try:
                data = self._lines.get(timeout=self._POLL)
            except queue.Empty:
                continue  # back in Python between waits: a pending Ctrl+C is raised here
            if data is None:
                return
            if isinstance(data, BaseException):
                raise data
            yield data

    def more_waiting(self) -> bool:
        """Whether another line is already read or standard input has more bytes ready right now."""
        return not self._lines.empty() or _more_waiting()

    def __iter__(self) -> Iterator[str]:
        if self._raw is None:  # a text stream put in place of stdin (tests, embedding): already decoded
            yield from (line.rstrip("\r\n") for line in sys.stdin if line.strip())
            return
        for number, data in enumerate(self._queued() if self._fd is not None else self._raw, start=1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"line {number} of standard input is not valid UTF-8 (byte {exc.start + 1}: "
                                 f"{data[exc.start:exc.start + 4]!r}); glassformer reads UTF-8 text") from None
            if line.strip():
                yield line.rstrip("\r\n")


def stdin_lines() -> Iterator[str]:
    """The non-blank lines of standard input, decoded as UTF-8 one by one; a bad byte names its line."""
    return iter(_StdinLines())


def _more_waiting() -> bool:
    """Whether standard input has more bytes ready right now (True when that cannot be told)."""
    try:
        ready, _, _ = select.select([sys.stdin.fileno()], [], [], 0)
    except (OSError, ValueError, io.UnsupportedOperation):
        return True
    return bool(ready)


def text_batches(texts: Sequence[str], verb: str, size: int = 64) -> Iterator[list[str]]:
    """The TEXT arguments as one batch, or standard input's lines in batches as they arrive.

    A batch is handed on when it holds `size` lines or when no more input is waiting, so a person
    typing lines gets each answer at once and a long pipe is answered in full batches.
    """
    if texts:
        yield check_utf8(texts)
        return
    batch: list[str] = []
    empty = True
    lines = _StdinLines()
    for line in lines:
        empty = False
        batch.append(line)
        if len(batch) == size or not lines.more_waiting():
            yield batch
            batch = []
    if batch:
        yield batch
    elif empty:
        raise UsageError(f"no text to {verb}: pass TEXT arguments or lines on standard input")


def read_text(text: str | None, file: str | None) -> str:
    """One text: the argument, the file (``-`` for standard input), or standard input when neither is given."""
    from glassformer.tokenizers.base import read_text_file

    if text is not None:
        return check_utf8([text])[0]
    if file is None or file == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise UsageError(f"line {line} of standard input is not valid UTF-8 (byte {exc.start + 1}); "
                             f"glassformer reads UTF-8 text") from None
    return read_text_file(file)


class JsonList:
    """Writes one JSON array item by item, flushing after each batch, so results appear while input still arrives."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, items: Iterable[Any]) -> None:
        for item in items:
            sys.stdout.write(("[" if self.count == 0 else ",\n ") + json.dumps(item, ensure_ascii=False))
            self.count += 1
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.write("[]\n" if self.count == 0 else "]\n")
        sys.stdout.flush()


def print_json(value: Any) -> None:
    """One JSON document on standard output."""
    print(json.dumps(value, ensure_ascii=False))


def add_verify(parser: argparse.ArgumentParser) -> None:
    """``--no-verify``: skip the sha256 check of a saved model's files (for directories you trust)."""
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="do not check the saved files against their manifest's sha256 digests")


def add_ablate(parser: argparse.ArgumentParser) -> None:
    """``--ablate L.H[,L.H...]``: answer with those attention heads zeroed (checked against the model once loaded)."""
    parser.add_argument("--ablate", metavar="L.H[,L.H...]",
                        help="zero these attention heads (layer.head, counted from 0) before the output projection; "
                             "translation models name the attention: encoder.L.H, decoder.L.H or cross.L.H")


def ablation(model: Any, spec: str | None) -> contextlib.AbstractContextManager:
    """The ``--ablate`` heads zeroed in `model` for the duration of a ``with`` block (nothing when not given)."""
    if spec is None:
        return contextlib.nullcontext()
    heads = [part.strip() for part in spec.split(",") if part.strip()]
    if not heads:
        raise UsageError("--ablate needs at least one head as L.H (layer.head), e.g. --ablate 0.1,1.3")
    from glassformer.lens import ablated

    return ablated(model, heads=heads)


def add_special_tokens(parser: argparse.ArgumentParser) -> None:
    """``--special-tokens raise|allow|text``: what text that spells a special token becomes."""
    from glassformer.tokenizers.base import SPECIAL_TOKEN_POLICIES

    parser.add_argument("--special-tokens", choices=SPECIAL_TOKEN_POLICIES, default="raise",
                        help="text that spells a special token such as [CLS] or <|endoftext|>: raise an error "
                             "(default), allow it as the special token, or read it as plain text")


def add_precision(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--precision auto|fp32|bf16|int8``: the number format the model runs in."""
    from glassformer.precision import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help=f"number format: auto (bf16 where the CPU or GPU computes it natively, else fp32), fp32 "
                             f"(the model's exact numbers), bf16, or int8 (quantised Linear layers, CPU); default "
                             f"{default}")
