"""Hugging Face ``tokenizer.json``: export and import for `ByteLevelBPE`, `WordPiece` and `CharTokenizer`.

The file describes HF's pipeline (normalizer → pre-tokenizer → model → post-processor → decoder) as JSON.
We write the pieces that reproduce our tokenizers exactly and read back only files of those shapes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from glassformer._files import atomic_write
from glassformer.tokenizers.base import Tokenizer, TokenizerFileError
from glassformer.tokenizers.byte_bpe import GPT2_PATTERN, ByteLevelBPE, token_to_unicode, unicode_to_token
from glassformer.tokenizers.chars import CharTokenizer
from glassformer.tokenizers.encoding import Template
from glassformer.tokenizers.wordpiece import WordPiece

# A character tokenizer in Hugging Face's terms: every code point is a pre-token (one regex match each,
# newlines included), looked up whole in a WordLevel vocabulary; decoding concatenates ("Fuse").
CHAR_SPLIT = r"[\s\S]"


def _added(token: str, index: int) -> dict[str, Any]:
    return {"id": index, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def _template_json(tokenizer: Tokenizer) -> dict[str, Any] | None:
    """The post-processor as Hugging Face's TemplateProcessing (None when the tokenizer has none)."""
    template = tokenizer.post_processor
    if template is None:
        return None

    def items(is_pair: bool) -> list[dict[str, Any]]:
        return [{"Sequence": {"id": name[1:], "type_id": type_id}} if name.startswith("$")
                else {"SpecialToken": {"id": name, "type_id": type_id}} for name, type_id in template.items(is_pair)]

    ids = tokenizer.special_tokens
    return {"type": "TemplateProcessing", "single": items(False), "pair": items(True),
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in sorted(template.special_tokens())}}


def _template_from_json(processor: dict[str, Any], path: Path) -> tuple[Template, dict[str, int]]:
    """A TemplateProcessing post-processor as a Template, and the special tokens it names (text → id)."""

    def text(items: list[dict[str, Any]]) -> str:
        words = []
        for item in items:
            kind, entry = next(iter(item.items()))
            name = f"${entry['id']}" if kind == "Sequence" else entry["id"]
            words.append(f"{name}:{entry['type_id']}" if entry.get("type_id") else name)
        return " ".join(words)

    specials = {}
    for name, entry in (processor.get("special_tokens") or {}).items():
        if len(entry.get("ids", [])) != 1:
            raise TokenizerFileError(f"{path}: the post-processor's special token {name!r} stands for "
                                     f"{len(entry.get('ids', []))} ids; glassformer templates use one id each")
        specials[name] = entry["ids"][0]
    try:
        return Template(text(processor["single"]), text(processor["pair"]) if processor.get("pair") else None), specials
    except ValueError as exc:
        raise TokenizerFileError(f"{path}: post-processor: {exc}") from None


def _post_processor_from_json(document: dict[str, Any], tokenizer: Tokenizer, path: Path) -> None:
    """Install the file's TemplateProcessing on `tokenizer` (alone or in a Sequence); none → None.

    A ByteLevel post-processor is skipped: it changes no ids (with ``trim_offsets`` it would trim spaces
    from offsets, which glassformer does not do).
    """
    processor = document.get("post_processor")
    steps = [] if processor is None else processor.get("processors", []) if processor.get("type") == "Sequence" \
        else [processor]
    templates = [step for step in steps if step.get("type") == "TemplateProcessing"]
    others = sorted({step.get("type") for step in steps} - {"TemplateProcessing", "ByteLevel"}, key=str)
    if others or len(templates) > 1:
        raise TokenizerFileError(f"{path}: post-processor {others[0] if others else 'with two templates'!r} is not "
                                 f"supported; expected TemplateProcessing, ByteLevel, a Sequence of them, or none")
    if not templates:
        tokenizer.post_processor = None
        return
    template, specials = _template_from_json(templates[0], path)
    tokenizer.add_special_tokens({t: i for t, i in specials.items() if t not in tokenizer.special_tokens})
    tokenizer.post_processor = template


def to_tokenizer_json(tokenizer: Tokenizer) -> dict[str, Any]:
    """The ``tokenizer.json`` document for a ByteLevelBPE or WordPiece tokenizer."""
    added = [_added(t, i) for t, i in sorted(tokenizer.special_tokens.items(), key=lambda item: item[1])]
    if isinstance(tokenizer, ByteLevelBPE):
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        if tokenizer.pattern == GPT2_PATTERN:
            pre_tokenizer: dict[str, Any] = byte_level
        else:
            pre_tokenizer = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": tokenizer.pattern}, "behavior": "Isolated", "invert": False},
                {**byte_level, "use_regex": False}]}
        vocab = {token_to_unicode(t): i for i, t in sorted(tokenizer.id_to_bytes.items())}
        vocab.update(tokenizer.special_tokens)
        merges = [[token_to_unicode(tokenizer.id_to_bytes[a]), token_to_unicode(tokenizer.id_to_bytes[b])]
                  for a, b in tokenizer.merges]
        return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                "normalizer": None, "pre_tokenizer": pre_tokenizer, "post_processor": _template_json(tokenizer),
                "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                          "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                          "ignore_merges": False, "vocab": vocab, "merges": merges}}
    if isinstance(tokenizer, WordPiece):
        return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                               "strip_accents": tokenizer.strip_accents, "lowercase": tokenizer.lowercase},
                "pre_tokenizer": {"type": "BertPreTokenizer"},
                "post_processor": _template_json(tokenizer),
                "decoder": {"type": "WordPiece", "prefix": tokenizer.prefix, "cleanup": tokenizer.cleanup},
                "model": {"type": "WordPiece", "unk_token": tokenizer.unk_token,
                          "continuing_subword_prefix": tokenizer.prefix,
                          "max_input_chars_per_word": tokenizer.max_input_chars_per_word,
                          "vocab": {t: i for i, t in enumerate(tokenizer.vocab)}}}
    if isinstance(tokenizer, CharTokenizer):
        return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
                "pre_tokenizer": {"type": "Split", "pattern": {"Regex": CHAR_SPLIT}, "behavior": "Isolated",
                                  "invert": False},
                "post_processor": _template_json(tokenizer), "decoder": {"type": "Fuse"},
                "model": {"type": "WordLevel", "unk_token": tokenizer.unk_token,
                          "vocab": {t: i for i, t in enumerate(tokenizer.vocab)}}}
    raise TypeError(f"tokenizer.json export supports ByteLevelBPE, WordPiece and CharTokenizer, got "
                    f"{type(tokenizer).__name__}")


def save_tokenizer_json(tokenizer: Tokenizer, path: str | os.PathLike) -> Path:
    """Write `tokenizer` as a Hugging Face ``tokenizer.json`` (atomically)."""
    path = Path(path)
    document = to_tokenizer_json(tokenizer)
    with atomic_write(path) as handle:
        json.dump(document, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return path


def load_tokenizer_json(path: str | os.PathLike) -> ByteLevelBPE | WordPiece | CharTokenizer:
    """Read a Hugging Face ``tokenizer.json`` holding a byte-level BPE, a BERT WordPiece or a character tokenizer."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer.json not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerFileError(f"{path}: not valid JSON ({exc})") from None
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, dict) or "vocab" not in model:
        raise TokenizerFileError(f"{path}: expected a tokenizer.json with a 'model' that has a 'vocab'")
    specials = {t["content"]: t["id"] for t in document.get("added_tokens") or [] if t.get("special")}
    kind = model.get("type")
    try:
        if kind == "BPE":
            return _bpe_from_json(document, model, specials, path)
        if kind == "WordPiece":
            return _wordpiece_from_json(document, model, path)
        if kind == "WordLevel":
            return _chars_from_json(document, model, specials, path)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, TokenizerFileError):
            raise
        raise TokenizerFileError(f"{path}: malformed {kind} model: {exc!r}") from None
    raise TokenizerFileError(f"{path}: model type {kind!r} is not supported; expected 'BPE', 'WordPiece' or "
                             f"'WordLevel' (characters)")


def _bpe_from_json(document: dict, model: dict, specials: dict[str, int], path: Path) -> ByteLevelBPE:
    pre = document.get("pre_tokenizer") or {}
    pattern = None
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"):
        pattern = GPT2_PATTERN
    elif pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers", [])
        if (len(steps) == 2 and steps[0].get("type") == "Split" and "Regex" in steps[0].get("pattern", {})
                and steps[1].get("type") == "ByteLevel" and not steps[1].get("use_regex")
                and not steps[1].get("add_prefix_space")):
            pattern = steps[0]["pattern"]["Regex"]
    if pattern is None:
        raise TokenizerFileError(f"{path}: a BPE tokenizer.json needs a ByteLevel pre-tokenizer without a prefix "
                                 f"space (alone, or after a regex Split); got {json.dumps(pre)[:200]}")
    vocab = {int(i): unicode_to_token(t, str(path)) for t, i in model["vocab"].items() if t not in specials}
    by_text = {t: i for t, i in model["vocab"].items()}
    merges = []
    for number, merge in enumerate(model.get("merges", [])):
        a, b = merge.split(" ") if isinstance(merge, str) else merge
        if a not in by_text or b not in by_text or a + b not in by_text:
            raise TokenizerFileError(f"{path}: merge {number} ({a!r}, {b!r}) uses tokens missing from the vocab")
        merges.append((by_text[a], by_text[b]))
    tokenizer = ByteLevelBPE(pattern)
    tokenizer._set_model(vocab, merges)
    tokenizer.add_special_tokens(specials)
    _post_processor_from_json(document, tokenizer, path)
    return tokenizer


def _wordpiece_from_json(document: dict, model: dict, path: Path) -> WordPiece:
    normalizer = document.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer":
        raise TokenizerFileError(f"{path}: a WordPiece tokenizer.json needs a BertNormalizer, got "
                                 f"{normalizer.get('type')!r}")
    vocab_map = model["vocab"]
    vocab = [""] * len(vocab_map)
    for token, index in vocab_map.items():
        if not 0 <= index < len(vocab) or vocab[index]:
            raise TokenizerFileError(f"{path}: vocabulary ids are not 0..{len(vocab) - 1} each used once "
                                     f"(id {index} for {token!r})")
        vocab[index] = token
    decoder = document.get("decoder") or {}
    tokenizer = WordPiece(vocab, lowercase=bool(normalizer.get("lowercase", True)),
                          strip_accents=normalizer.get("strip_accents"), unk_token=model["unk_token"],
                          prefix=model.get("continuing_subword_prefix", "##"),
                          max_input_chars_per_word=model.get("max_input_chars_per_word", 100),
                          cleanup=bool(decoder.get("cleanup", True)))
    _post_processor_from_json(document, tokenizer, path)
    return tokenizer


def _chars_from_json(document: dict, model: dict, specials: dict[str, int], path: Path) -> CharTokenizer:
    """A character tokenizer written by `to_tokenizer_json`: ids 0 and 1 the unknown and end-of-text tokens."""
    pre = document.get("pre_tokenizer") or {}
    if pre.get("type") != "Split" or (pre.get("pattern") or {}).get("Regex") != CHAR_SPLIT:
        raise TokenizerFileError(f"{path}: a WordLevel tokenizer.json is read as characters only, with the "
                                 f"pre-tokenizer Split {CHAR_SPLIT!r}; got {json.dumps(pre)[:200]}")
    by_id = {index: token for token, index in model["vocab"].items()}
    if sorted(by_id) != list(range(len(by_id))) or len(by_id) < 2 or by_id[0] != model["unk_token"]:
        raise TokenizerFileError(f"{path}: expected ids 0..N-1 with the unknown token {model['unk_token']!r} at 0")
    end = by_id[1]
    tokenizer = CharTokenizer([by_id[i] for i in range(2, len(by_id))], unk_token=by_id[0], end_token=end)
    tokenizer.add_special_tokens({t: i for t, i in specials.items() if t not in tokenizer.special_tokens})
    _post_processor_from_json(document, tokenizer, path)
    return tokenizer
