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
from glassformer.tokenizers.encoding import BatchEncoding, Encoding, Offsets, Template, truncate_longest_first

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


class SpecialTokenError(ValueError):
    """Text holds a special token's text that the call did not allow (see `Tokenizer`)."""

    def __init__(self, token: str, position: int, token_id: int, hint: str) -> None:
        super().__init__(f"text contains the special token {token!r} at position {position}; {hint}")
        self.token, self.position, self.token_id = token, position, token_id


SPECIAL_TOKEN_POLICIES = ("raise", "allow", "text")
# The advice for programs that take the policy by name (the predictors, and the CLI's --special-tokens).
POLICY_HINT = ("choose --special-tokens allow (special_tokens='allow' in Python) to read it as that token, or "
               "--special-tokens text ('text') to read it as ordinary characters")


def special_token_policy(name: str, *, hint: str | None = None) -> dict[str, Any]:
    """Encode keyword arguments for a policy by name: ``raise`` (the default), ``allow`` or ``text``.

    ``raise``: special-token text in the input is an error (`hint`, when given, replaces the error's advice,
    e.g. with a command-line flag); ``allow``: it becomes the special token's id; ``text``: it is encoded
    as ordinary characters. ``tokenizer.encode(text, **special_token_policy("allow"))``.
    """
    if name == "raise":
        return {"allowed_special": (), "disallowed_special": "all", **({"special_hint": hint} if hint else {})}
    if name == "allow":
        return {"allowed_special": "all", "disallowed_special": ()}
    if name == "text":
        return {"allowed_special": (), "disallowed_special": ()}
    raise ValueError(f"special-token policy {name!r}; expected one of {', '.join(SPECIAL_TOKEN_POLICIES)}")


class Tokenizer:
    """A tokenizer: text ⇄ a list of integer ids through a fixed vocabulary, plus named special tokens.

    Special-token policy (the same for every subclass, with tiktoken's two knobs): ``special_tokens``
    maps token text such as ``"<|endoftext|>"`` to its id. Text that contains a special token's text
    raises a `SpecialTokenError` by default, because user text that happens to contain ``<|endoftext|>``
    must not silently become a control token. ``allowed_special={"<|endoftext|>"}`` (or ``"all"``)
    encodes the listed ones as their ids; ``disallowed_special=()`` encodes the others as ordinary text
    instead of raising (``encode_ordinary`` does that for all of them).

    The post-processor (`post_processor`, a `Template` or None) adds tokens such as [CLS]/[SEP]: `encode`,
    `encode_plus`, `encode_batch` and calling the tokenizer apply it by default, as transformers' and
    tokenizers' ``encode`` do; ``add_special_tokens=False`` gives the raw pieces (`encode_ordinary` and
    `tokenize` never add them). Truncation to ``max_length`` keeps room for them.
    """

    kind: ClassVar[str] = ""
    # The keys that calling the tokenizer returns by default, as Hugging Face's model_input_names.
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")
    _kinds: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Tokenizer._kinds[cls.kind] = cls

    def __init__(self) -> None:
        self.special_tokens: dict[str, int] = {}
        self._special_regexes: dict[frozenset[str], regex.Pattern] = {}
        self._post_processor: Template | None = None
        self._pad_token: str | None = None

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

    def encode_ordinary_offsets(self, text: str) -> tuple[list[int], Offsets]:
        """`encode_ordinary`'s ids and, for each, the (start, end) characters of `text` it came from."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The text that `ids` stand for (without the special tokens' text if `skip_special_tokens`)."""
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

    # --- special tokens, post-processor, padding -------------------------------------------------

    def add_special_tokens(self, tokens: dict[str, int]) -> None:
        """Register special tokens (text → id)."""
        for token, index in tokens.items():
            if not isinstance(token, str) or not token:
                raise ValueError(f"a special token must be a non-empty str, got {token!r}")
            self.special_tokens[token] = int(index)
        self._special_regexes = {}

    @property
    def post_processor(self) -> Template | None:
        """The template that encoding applies unless ``add_special_tokens=False`` (None: add nothing)."""
        return self._post_processor

    @post_processor.setter
    def post_processor(self, template: Template | None) -> None:
        if template is not None:
            if not isinstance(template, Template):
                raise TypeError(f"post_processor must be a Template or None, got {type(template).__name__}")
            self._require_special(template.special_tokens(), "the post-processor template")
        self._post_processor = template

    @property
    def pad_token(self) -> str | None:
        """The special token that padding fills with (None: this tokenizer cannot pad)."""
        return self._pad_token

    @pad_token.setter
    def pad_token(self, token: str | None) -> None:
        if token is not None:
            self._require_special({token}, "pad_token")
        self._pad_token = token

    @property
    def pad_id(self) -> int:
        """The id of `pad_token`."""
        if self._pad_token is None:
            choices = ", ".join(repr(t) for t in self.special_tokens) or "none yet: add_special_tokens() first"
            raise ValueError(f"{type(self).__name__} has no pad token, so it cannot pad; set one, e.g. "
                             f"tokenizer.pad_token = {next(iter(self.special_tokens), '<pad>')!r} (its special "
                             f"tokens: {choices}), or pass padding=False")
        return self.special_tokens[self._pad_token]

    def _require_special(self, tokens: set[str], what: str) -> None:
        missing = sorted(tokens - set(self.special_tokens))
        if missing:
            known = ", ".join(repr(t) for t in sorted(self.special_tokens)) or "none"
            raise ValueError(f"{what} uses {missing[0]!r}, which is not a special token of this tokenizer "
                             f"(its special tokens: {known}); add it with add_special_tokens() first")

    def resolve_allowed(self, allowed_special: AllowedSpecial, what: str = "allowed_special") -> set[str]:
        """The set of special tokens named by `allowed_special` ("all", "none" or an iterable of token texts)."""
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
            raise ValueError(f"unknown special token {unknown[0]!r} in {what}; "
                             f"this tokenizer's special tokens: {known}")
        return allowed

    def _special_regex(self, tokens: set[str]) -> regex.Pattern:
        key = frozenset(tokens)
        compiled = self._special_regexes.get(key)
        if compiled is None:
            # Longest first, so that a special token that is a prefix of another does not win.
            alternatives = sorted(tokens, key=len, reverse=True)
            compiled = self._special_regexes[key] = regex.compile("|".join(regex.escape(t) for t in alternatives))
        return compiled

    def split_special(self, text: str, allowed_special: AllowedSpecial = (), disallowed_special: AllowedSpecial = "all",
                      special_hint: str | None = None) -> list[tuple[str, int | None]]:
        """Split `text` into (ordinary text, None) and (token text, special id) pieces under the policy.

        As tiktoken: ``disallowed_special="all"`` means every special token not in `allowed_special`; text
        holding a disallowed one raises a `SpecialTokenError`; those neither allowed nor disallowed stay text.
        """
        check_text(text)
        if not self.special_tokens:
            return [(text, None)]
        allowed = self.resolve_allowed(allowed_special)
        if disallowed_special == "all":
            disallowed = set(self.special_tokens) - allowed
        else:
            disallowed = self.resolve_allowed(disallowed_special, "disallowed_special")
        if disallowed:
            match = self._special_regex(disallowed).search(text)
            if match is not None:
                token = match.group()
                index = self.special_tokens[token]
                hint = special_hint or (f"pass allowed_special={{{token!r}}} (or 'all') to encode it as id {index}, "
                                        f"or disallowed_special=() to encode it as ordinary text")
                raise SpecialTokenError(token, match.start(), index, hint)
        if not allowed:
            return [(text, None)]
        pieces: list[tuple[str, int | None]] = []
        start = 0
        for match in self._special_regex(allowed).finditer(text):
            if match.start() > start:
                pieces.append((text[start:match.start()], None))
            pieces.append((match.group(), self.special_tokens[match.group()]))
            start = match.end()
        if start < len(text) or not pieces:
            pieces.append((text[start:], None))
        return pieces

    # --- encoding --------------------------------------------------------------------------------

    def encode(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,
               max_length: int | None = None, allowed_special: AllowedSpecial = (),
               disallowed_special: AllowedSpecial = "all", special_hint: str | None = None) -> list[int]:
        """Ids of `text` (and `pair`) with the post-processor's tokens ([CLS]/[SEP] for BERT; none for GPT-2)
        unless ``add_special_tokens=False``; at most `max_length`.

        Special-token text follows the policy in the class doc (`special_hint` replaces the advice in its
        error); `encode_plus` gives the same ids with their tokens, character offsets, segment ids and how
        many were truncated.
        """
        policy = (allowed_special, disallowed_special, special_hint)
        first = self._encode_segment(text, policy, offsets=False)
        if pair is None and max_length is None and not (add_special_tokens and self._post_processor):
            return first[0]
        second = None if pair is None else self._encode_segment(pair, policy, offsets=False)
        return self._post_process(first, second, add_special_tokens, max_length)[0]

    def encode_plus(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,
                    max_length: int | None = None, allowed_special: AllowedSpecial = (),
                    disallowed_special: AllowedSpecial = "all", special_hint: str | None = None) -> Encoding:
        """`encode` as an `Encoding`: the ids with their tokens, character offsets, segment ids and truncation."""
        policy = (allowed_special, disallowed_special, special_hint)
        first = self._encode_segment(text, policy, offsets=True)
        second = None if pair is None else self._encode_segment(pair, policy, offsets=True)
        ids, offsets, types, cut = self._post_process(first, second, add_special_tokens, max_length)
        return Encoding(ids, [self.id_to_token(i) for i in ids], offsets, types, num_truncated=cut)

    def _encode_segment(self, text: str, policy: tuple, offsets: bool) -> tuple[list[int], Offsets]:
        """Ids and (if `offsets`, else an empty list) their offsets, for one text under the special-token policy."""
        ids: list[int] = []
        spans: Offsets = []
        start = 0
        for piece, special_id in self.split_special(text, *policy):
            if special_id is not None:
                ids.append(special_id)
                if offsets:
                    spans.append((start, start + len(piece)))
            elif offsets:
                piece_ids, piece_spans = self.encode_ordinary_offsets(piece)
                ids += piece_ids
                spans += [(start + a, start + b) for a, b in piece_spans] if start else piece_spans
            else:
                ids += self.encode_ordinary(piece)
            start += len(piece)
        return ids, spans

    def _post_process(self, first: tuple[list[int], Offsets], second: tuple[list[int], Offsets] | None,
                      add_special_tokens: bool, max_length: int | None) -> tuple[list[int], Offsets, list[int], int]:
        """Truncate (longest first, leaving room for the template), then apply the template.

        Returns ids, offsets, segment ids and the number of ids truncated.
        """
        template = self._post_processor if add_special_tokens else None
        cut = 0
        if max_length is not None:
            extra = template.num_added(second is not None) if template else 0
            if max_length < extra:
                raise ValueError(f"max_length={max_length} leaves no room beside {extra} special tokens")
            before = len(first[0]) + (len(second[0]) if second else 0)
            a, b = truncate_longest_first(first[0], second[0] if second else None, max_length - extra)
            cut = before - len(a) - (len(b) if b is not None else 0)
            first = (a, first[1][:len(a)])
            if second is not None and b is not None:
                second = (b, second[1][:len(b)])
        if template is not None:
            ids, offsets, types = template.apply(first, second, self.special_tokens)
            return ids, offsets, types, cut
        if second is None:
            return first[0], first[1], [0] * len(first[0]), cut
        return (first[0] + second[0], first[1] + second[1], [0] * len(first[0]) + [1] * len(second[0]), cut)

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                     add_special_tokens: bool = True, max_length: int | None = None,
                     allowed_special: AllowedSpecial = (), disallowed_special: AllowedSpecial = "all",
                     special_hint: str | None = None) -> list[list[int]]:
        """`encode` of each text (and its pair), in one thread: the tokenizers are pure Python, under the GIL."""
        kwargs = {"add_special_tokens": add_special_tokens, "max_length": max_length,
                  "allowed_special": allowed_special, "disallowed_special": disallowed_special,
                  "special_hint": special_hint}
        texts, pair_list = _batch(texts, pairs)
        return [self.encode(text, pair, **kwargs) for text, pair in zip(texts, pair_list)]

    def decode_batch(self, batch: Sequence[Sequence[int]], *, skip_special_tokens: bool = False) -> list[str]:
        """`decode` of each row of ids."""
        if batch and isinstance(batch[0], int):
            raise TypeError("decode_batch takes a sequence of id sequences, got a flat sequence of ints; "
                            "use decode() for one")
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    def tokenize(self, text: str, pair: str | None = None, *, add_special_tokens: bool = False,
                 allowed_special: AllowedSpecial = (), disallowed_special: AllowedSpecial = "all") -> list[str]:
        """The readable tokens of `text`, one per id of `encode` (no [CLS]/[SEP] unless `add_special_tokens`)."""
        ids = self.encode(text, pair, add_special_tokens=add_special_tokens, allowed_special=allowed_special,
                          disallowed_special=disallowed_special)
        return [self.id_to_token(i) for i in ids]

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
                 add_special_tokens: bool = True, padding: bool | str = False, truncation: bool | str = False,
                 max_length: int | None = None, return_tensors: str | None = None,
                 return_offsets_mapping: bool = False, return_token_type_ids: bool | None = None,
                 return_attention_mask: bool = True, allowed_special: AllowedSpecial = (),
                 disallowed_special: AllowedSpecial = "all", special_hint: str | None = None) -> BatchEncoding:
        """Encode like a Hugging Face tokenizer: ``tok(texts, padding=True, truncation=True, max_length=128,
        return_tensors="pt")`` → ``input_ids``, ``attention_mask`` (``token_type_ids`` where the model reads
        them, ``offset_mapping`` on request).

        `padding`: False, True / "longest" (to the longest row) or "max_length". `truncation`: False or
        True / "longest_first" (needs `max_length`). A single str gives flat lists (one row for tensors).
        Special-token text follows this tokenizer's policy (it raises unless allowed), not Hugging Face's.
        """
        batched = not isinstance(text, str)
        texts, pairs = _batch([text] if not batched else text,
                              None if text_pair is None else [text_pair] if not batched else text_pair)
        if truncation not in (False, True, "longest_first", "do_not_truncate"):
            raise ValueError(f"truncation must be False, True or 'longest_first', got {truncation!r}")
        truncate = truncation not in (False, "do_not_truncate")
        if truncate and max_length is None:
            raise ValueError("truncation=True needs max_length (glassformer tokenizers have no model maximum)")
        if padding not in (False, True, "longest", "max_length", "do_not_pad"):
            raise ValueError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}")
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        encodings = [self.encode_plus(t, p, add_special_tokens=add_special_tokens,
                                      max_length=max_length if truncate else None, allowed_special=allowed_special,
                                      disallowed_special=disallowed_special, special_hint=special_hint)
                     for t, p in zip(texts, pairs)]
        keys = ["input_ids"]
        if return_token_type_ids or (return_token_type_ids is None and "token_type_ids" in self.model_input_names):
            keys.append("token_type_ids")
        if return_attention_mask:
            keys.append("attention_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        fields = {"input_ids": "ids", "token_type_ids": "token_type_ids", "attention_mask": "attention_mask",
                  "offset_mapping": "offsets"}
        rows = {key: [list(getattr(e, fields[key])) for e in encodings] for key in keys}
        if padding not in (False, "do_not_pad"):
            longest = max((len(e) for e in encodings), default=0)
            width = max(longest, max_length) if padding == "max_length" else longest  # type: ignore[type-var]
            fill = {"input_ids": self.pad_id, "token_type_ids": 0, "attention_mask": 0, "offset_mapping": (0, 0)}
            for key in keys:
                for row in rows[key]:
                    row += [fill[key]] * (width - len(row))
        out = BatchEncoding()
        for key in keys:
            value: Any = rows[key]
            if return_tensors == "pt":
                value = _as_tensor(key, value)
            elif return_tensors is not None:
                raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
            elif not batched:
                value = value[0]
            out[key] = value
        return out

    # --- saving ----------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the tokenizer into the new or empty `directory` (or, with `overwrite`, over a saved tokenizer)."""
        directory = Path(directory)
        with atomic_dir(directory, "tokenizer", overwrite=overwrite) as tmp:
            template = self._post_processor
            header = {"kind": self.kind, "special_tokens": self.special_tokens, "pad_token": self._pad_token,
                      "post_processor": template.to_dict() if template else None, **self._header()}
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
        try:
            # Files written before these keys existed keep the subclass's defaults.
            if "pad_token" in header:
                tokenizer.pad_token = header["pad_token"]
            if "post_processor" in header:
                template = header["post_processor"]
                tokenizer.post_processor = Template(template["single"], template.get("pair")) if template else None
        except (TypeError, KeyError, ValueError) as exc:
            raise TokenizerFileError(f"{directory / HEADER_FILE}: {exc}") from None
        return tokenizer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, special_tokens={len(self.special_tokens)})"


def _batch(texts: Sequence[str], pairs: Sequence[str] | None) -> tuple[list[str], list[str | None]]:
    """Check a batch of texts (and pairs) and return them as lists."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of str, got a single str; wrap it in a list")
    texts = list(texts)
    if pairs is None:
        return texts, [None] * len(texts)
    if isinstance(pairs, str):
        raise TypeError("pairs must be a sequence of str, got a single str; wrap it in a list")
    pairs = list(pairs)
    if len(pairs) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
    return texts, pairs


def _as_tensor(key: str, rows: list[list[Any]]) -> Any:
    import torch

    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        raise ValueError(f"return_tensors='pt' needs rows of one length, got {key} lengths {sorted(lengths)}; "
                         f"pass padding=True (and truncation=True, max_length=N)")
    return torch.tensor(rows, dtype=torch.long)


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
