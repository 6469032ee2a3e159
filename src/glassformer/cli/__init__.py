"""The `glassformer` command: parses arguments, calls the library, prints.

Every error is one line on standard error, ``glassformer: error: …``, never a traceback (``--debug``
shows it). Exit codes:

- 0: done (also when the reader of the output went away, as ``| head`` does);
- 1: something failed while running (a damaged saved model, a registry that cannot be reached, a bug);
- 2: the command as typed cannot run (an unknown flag, a value out of range, a missing or unreadable
  input file, an output location that holds something glassformer must not replace);
- 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Sequence

import glassformer
from glassformer.cli import commands, export, tasks
from glassformer.cli._io import Parser
from glassformer.errors import ConfigError, GlassformerError, OutputExistsError, UsageError

# Errors that mean "the command as typed cannot run": exit status 2.
_USAGE_ERRORS = (UsageError, ConfigError, OutputExistsError, FileNotFoundError, IsADirectoryError,
                 NotADirectoryError)


def build_parser(argv: Sequence[str] = ()) -> Parser:
    """The whole command line; the ``train`` and ``eval`` flags, made from the tasks' presets, only when asked for."""
    parser = Parser(prog="glassformer", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"glassformer {glassformer.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    commands.add_all(sub)
    export.add(sub)
    tasks.add_train_and_eval(sub, detailed=bool(set(argv) & {"train", "eval"}))
    return parser


def exit_code(exc: BaseException) -> int:
    """The documented exit status for an error."""
    if isinstance(exc, _USAGE_ERRORS) or (isinstance(exc, (ValueError, TypeError))
                                         and not isinstance(exc, GlassformerError)):
        return 2
    return 1


def one_line(exc: BaseException) -> str:
    """The error's message on one line (a bug's type is named, since its message alone may not say much)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (GlassformerError, OSError, ValueError, TypeError)) or isinstance(exc, _USAGE_ERRORS):
        return message
    return f"{type(exc).__name__}: {message} (run again with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `glassformer` command; returns its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A write past `ulimit -f` must fail with EFBIG (one line naming the file) instead of killing the process.
    # CPython ignores SIGXFSZ at start-up, but a host that embeds it may not; off the main thread it cannot be set.
    with contextlib.suppress(ValueError, AttributeError):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]  # accepted anywhere on the line
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print("\nglassformer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (| head): stop quietly, and keep Python's final flush from complaining.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # standard output is not a real file (captured)
            pass
        return 0
    except Exception as exc:
        if debug:
            raise
        print(f"glassformer: error: {one_line(exc)}", file=sys.stderr)
        return exit_code(exc)
