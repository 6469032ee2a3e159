"""The Brown corpus as plain text: each document's ``word/TAG`` tokens with the tags removed."""

from __future__ import annotations

import re
from pathlib import Path

_DOCUMENT = re.compile(r"c[a-r]\d\d")


def brown_texts(directory: str | Path | None = None) -> list[str]:
    """The 500 Brown documents in file order (ca01 … cr09), one sentence per line, words joined by spaces.

    `directory` defaults to the fetched ``brown`` source. The result is about 6.1 MB of UTF-8.
    """
    if directory is None:
        from glassformer.data import fetch

        directory = fetch("brown")
    files = sorted(p for p in Path(directory).iterdir() if _DOCUMENT.fullmatch(p.name))
    if not files:
        raise FileNotFoundError(f"no Brown documents (ca01 … cr09) in {directory}")
    texts = []
    for path in files:
        sentences = []
        for line in path.read_text(encoding="utf-8").splitlines():
            words = [token.rsplit("/", 1)[0] for token in line.split()]
            if words:
                sentences.append(" ".join(words))
        texts.append("\n".join(sentences))
    return texts
