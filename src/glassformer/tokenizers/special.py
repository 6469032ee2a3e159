"""One switch for special-token text in user input, shared by the predictors and the CLI's ``--special-tokens``.

``raise`` (the default): text that spells a special token (``[CLS]``, ``<|endoftext|>``) is an error
that says how to choose; ``allow``: it becomes the special token's id; ``text``: it is read as
ordinary characters.
"""

from __future__ import annotations

from typing import Any

from glassformer.errors import UsageError

SPECIAL_TOKEN_POLICIES = ("raise", "allow", "text")


def encode_text(tokenizer: Any, text: str, special_tokens: str = "raise", where: str = "the text") -> list[int]:
    """Ids of `text` (no [CLS]/[SEP] added) under the special-token policy `special_tokens`."""
    if special_tokens not in SPECIAL_TOKEN_POLICIES:
        raise UsageError(f"special_tokens={special_tokens!r}; expected one of {', '.join(SPECIAL_TOKEN_POLICIES)}")
    if special_tokens == "text" or not tokenizer.special_tokens:
        return tokenizer.encode_ordinary(text)
    ids: list[int] = []
    position = 0
    for piece, special_id in tokenizer.split_special(text, "all"):
        if special_id is None:
            ids.extend(tokenizer.encode_ordinary(piece))
        elif special_tokens == "raise":
            raise UsageError(f"{where} contains the special token {piece!r} at position {position}; choose "
                             f"--special-tokens allow (special_tokens='allow') to read it as id {special_id}, or "
                             f"--special-tokens text ('text') to read it as ordinary characters")
        else:
            ids.append(special_id)
        position += len(piece)
    return ids
