"""The tokenizer files of a Hugging Face–format directory, read into glassformer and written from it.

transformers' ``AutoTokenizer`` reads ``tokenizer.json`` (the whole pipeline: normalizer, pre-tokenizer,
vocabulary, the [CLS]/[SEP] template) and ``tokenizer_config.json``, which names the tokenizer class, the
special tokens by role (``pad_token``, ``cls_token`` …; without a ``pad_token``, ``padding=True`` fails)
and ``model_max_length`` (where ``truncation=True`` cuts). glassformer writes both, and ``vocab.txt``
beside a WordPiece for older readers; it reads the family's own files first (``vocab.txt``,
``vocab.json`` + ``merges.txt``), then ``tokenizer.json``, which is all transformers 5 writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glassformer._files import atomic_write
from glassformer.tokenizers import Tokenizer, WordPiece, load_tokenizer_json, save_tokenizer_json

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
END_OF_TEXT = "<|endoftext|>"
# Hugging Face's roles for special tokens glassformer's tokenizers name by these texts when they have them.
_CONVENTIONAL = {"cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]", "unk_token": "[UNK]",
                 "bos_token": END_OF_TEXT, "eos_token": END_OF_TEXT}


def special_roles(tokenizer: Tokenizer) -> dict[str, str]:
    """Each Hugging Face special-token role (``pad_token``, ``cls_token`` …) this tokenizer fills, with its text."""
    roles = {role: text for role, text in _CONVENTIONAL.items() if text in tokenizer.special_tokens}
    for role in ("unk_token", "cls_token", "sep_token", "mask_token"):
        text = getattr(tokenizer, role, None)
        if isinstance(text, str) and text in tokenizer.special_tokens:
            roles[role] = text
    if tokenizer.pad_token is not None:
        roles["pad_token"] = tokenizer.pad_token
    return roles


def write_tokenizer(tokenizer: Tokenizer, directory: Path, max_length: int) -> None:
    """``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` (and ``vocab.txt`` for WordPiece)."""
    save_tokenizer_json(tokenizer, directory / TOKENIZER_JSON)
    roles = special_roles(tokenizer)
    settings: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
                                "padding_side": "right", "truncation_side": "right",
                                "clean_up_tokenization_spaces": False, **roles}
    if isinstance(tokenizer, WordPiece):
        settings.update(tokenizer_class="BertTokenizer", do_lower_case=tokenizer.lowercase,
                        strip_accents=tokenizer.strip_accents, clean_up_tokenization_spaces=tokenizer.cleanup)
        with atomic_write(directory / "vocab.txt") as handle:
            handle.write("".join(token + "\n" for token in tokenizer.vocab))
    for name, document in ((TOKENIZER_CONFIG, settings), (SPECIAL_TOKENS_MAP, roles)):
        with atomic_write(directory / name) as handle:
            json.dump(document, handle, indent=2, ensure_ascii=False)
            handle.write("\n")


def tokenizer_config(directory: Path) -> dict[str, Any]:
    """The parsed ``tokenizer_config.json`` of a directory (empty when it has none)."""
    path = directory / TOKENIZER_CONFIG
    if not path.is_file():
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else {}


def read_tokenizer(directory: Path, family_files: Tokenizer | None) -> Tokenizer | None:
    """The directory's tokenizer: the family's own files (already read, `family_files`), else ``tokenizer.json``.

    ``tokenizer_config.json``'s ``pad_token`` becomes the pad token when the tokenizer has that special token.
    """
    tokenizer = family_files
    if tokenizer is None and (directory / TOKENIZER_JSON).is_file():
        tokenizer = load_tokenizer_json(directory / TOKENIZER_JSON)
    if tokenizer is None:
        return None
    pad = tokenizer_config(directory).get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad  # older files store AddedToken objects
    if isinstance(pad, str) and pad in tokenizer.special_tokens:
        tokenizer.pad_token = pad
    return tokenizer


def model_max_length(directory: Path, limit: int) -> int:
    """``tokenizer_config.json``'s ``model_max_length``, at most `limit` (transformers writes 1e30 for "none")."""
    value = tokenizer_config(directory).get("model_max_length")
    return int(value) if isinstance(value, (int, float)) and 2 <= value < limit else limit
