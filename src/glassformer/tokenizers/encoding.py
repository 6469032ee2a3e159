"""What an encoded text carries besides its ids, and the post-processor that adds [CLS]/[SEP] and the like.

The last two stages of Hugging Face's tokenizer pipeline (normalizer → pre-tokenizer → model →
post-processor → decoder) that every glassformer tokenizer shares: truncation to ``max_length`` and a
`Template` that places special tokens around one text or a pair (``[CLS] A [SEP] B [SEP]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import regex

Offsets = list[tuple[int, int]]


@dataclass
class Encoding:
    """One encoded input: ids, their tokens, character offsets, segment ids, attention mask and truncation count.

    ``offsets[k] == (start, end)`` means token k came from ``text[start:end]`` of the text it belongs to
    (the first text, or for tokens of a pair's second text, that text); tokens added by the post-processor
    have ``(0, 0)``. ``num_truncated`` counts the ids that ``max_length`` cut off (0: nothing was cut).
    """

    ids: list[int]
    tokens: list[str]
    offsets: Offsets
    token_type_ids: list[int]
    attention_mask: list[int] = field(default_factory=list)
    num_truncated: int = 0

    def __post_init__(self) -> None:
        if not self.attention_mask:
            self.attention_mask = [1] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class BatchEncoding(dict):
    """What calling a tokenizer returns: ``input_ids``, ``attention_mask`` (and more) by key or as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"this BatchEncoding has no {name!r}; it holds {sorted(self)}") from None


_ITEM = regex.compile(r"(\$[AB]|[^\s:$][^\s:]*)(?::(\d+))?")


@dataclass(frozen=True, eq=False)
class Template:
    """A post-processor template (Hugging Face's TemplateProcessing): special tokens placed around the texts.

    ``Template("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1")``: ``$A`` is the first text, ``$B`` the
    second; ``:1`` gives an item segment id 1 (``token_type_ids``), 0 by default. Every other item is a
    special token of the tokenizer. ``pair`` None means ``"$A $B:1"``, Hugging Face's default.
    """

    single: str
    pair: str | None = None

    def __post_init__(self) -> None:
        # Parsed once here, because a template is applied on every encode.
        object.__setattr__(self, "_items", {False: _parse(self.single, ["$A"], "single"),
                                            True: _parse(self.pair or "$A $B:1", ["$A", "$B"], "pair")})

    def __eq__(self, other: object) -> bool:
        # Equal when they place the same items: "$A" and "$A:0" are one template.
        return isinstance(other, Template) and self._items == other._items  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(tuple(items) for items in self._items.values()))  # type: ignore[attr-defined]

    @classmethod
    def bert(cls, cls_token: str = "[CLS]", sep_token: str = "[SEP]") -> Template:
        """BERT's ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` (B and its [SEP] in segment 1)."""
        return cls(f"{cls_token} $A {sep_token}", f"{cls_token} $A {sep_token} $B:1 {sep_token}:1")

    def items(self, is_pair: bool) -> list[tuple[str, int]]:
        """The template's items in order, each (``$A``, ``$B`` or a special token, segment id)."""
        return self._items[is_pair]  # type: ignore[attr-defined]

    def special_tokens(self) -> set[str]:
        """The special-token texts the template uses."""
        found = set()
        for items in self._items.values():  # type: ignore[attr-defined]
            found.update(name for name, _ in items if not name.startswith("$"))
        return found

    def num_added(self, is_pair: bool) -> int:
        """How many special tokens the template adds to one text (`is_pair` False) or a pair."""
        return sum(not name.startswith("$") for name, _ in self.items(is_pair))

    def apply(self, first: tuple[list[int], Offsets], second: tuple[list[int], Offsets] | None,
              special_ids: dict[str, int]) -> tuple[list[int], Offsets, list[int]]:
        """(ids, offsets, segment ids) of the template filled with `first` (and `second`) as (ids, offsets)."""
        ids: list[int] = []
        offsets: Offsets = []
        types: list[int] = []
        for name, type_id in self.items(second is not None):
            if name.startswith("$"):
                part_ids, part_offsets = first if name == "$A" else second  # type: ignore[misc]
                ids += part_ids
                offsets += part_offsets
                types += [type_id] * len(part_ids)
            else:
                ids.append(special_ids[name])
                offsets.append((0, 0))
                types.append(type_id)
        return ids, offsets, types

    def to_dict(self) -> dict[str, str | None]:
        """The form saved in a tokenizer's header file."""
        return {"single": self.single, "pair": self.pair}


def _parse(template: str, sequences: list[str], which: str) -> list[tuple[str, int]]:
    """The items of a template string as (``$A``, ``$B`` or a token, segment id)."""
    items = []
    for word in template.split():
        match = _ITEM.fullmatch(word)
        if match is None:
            raise ValueError(f"template item {word!r} should be $A, $B or a token, optionally followed "
                             f"by :<segment id>, as in '[SEP]:1'")
        items.append((match.group(1), int(match.group(2) or 0)))
    found = sorted(name for name, _ in items if name.startswith("$"))
    if found != sequences:
        raise ValueError(f"the {which} template must hold {' and '.join(sequences)} once each, got {template!r}")
    return items


def truncate_longest_first(first: list[Any], second: list[Any] | None,
                           budget: int) -> tuple[list[Any], list[Any] | None]:
    """Cut `first` (and `second`) to at most `budget` items together, taking from the longer one first.

    When both must be cut, the shorter keeps budget // 2 and the longer the rest, as Hugging Face does.
    """
    if second is None:
        return first[:budget], None
    if len(first) + len(second) <= budget:
        return first, second
    short, long_ = sorted((len(first), len(second)))
    n_short = short
    n_long = max(short, budget - short) if short <= budget else short
    if n_short + n_long > budget:
        n_short = budget // 2
        n_long = n_short + budget % 2
    if len(first) <= len(second):
        return first[:n_short], second[:n_long]
    return first[:n_long], second[:n_short]
