"""The `glassformer` command: parses arguments, calls the library, prints.

Each area adds its subcommands in one `_add_*` function below; the work happens in the library.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="list, fetch and describe the named data sets and weights")
    verbs = data.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="list the known sources").set_defaults(func=_data_list)
    fetch = verbs.add_parser("fetch", help="fetch a source into the cache")
    fetch.add_argument("name")
    fetch.set_defaults(func=_data_fetch)


def _data_list(args: argparse.Namespace) -> int:
    from glassformer.data import SOURCES, is_fetched

    for name, source in sorted(SOURCES.items()):
        state = "fetched" if is_fetched(name) else "not fetched"
        print(f"{name:16s} {state:12s} {source.description}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from glassformer.data import fetch

    print(fetch(args.name))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glassformer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"glassformer: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
