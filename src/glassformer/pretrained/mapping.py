"""An explicit table from external (Hugging Face) tensor names to ours, applied in both directions.

Each :class:`Rule` pairs one of our parameter names with one external name and says how the
tensor changes on the way (copied, transposed, reshaped). Loading walks the table, checks every
shape, and reports *all* missing, unexpected and mis-shaped tensors in one error, so a wrong
checkpoint is diagnosed in one go rather than one tensor per attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from torch import Tensor

from glassformer.pretrained.loading import CheckpointError

Convert = Callable[[Tensor], Tensor]


def _same(t: Tensor) -> Tensor:
    return t


def _transpose(t: Tensor) -> Tensor:
    return t.t().contiguous()


@dataclass(frozen=True)
class Rule:
    """Our parameter ``ours`` is the external tensor ``theirs`` after ``load`` (and ``theirs`` = ``save(ours)``)."""

    ours: str
    theirs: str
    load: Convert = _same
    save: Convert = _same
    note: str = ""


def copy(ours: str, theirs: str) -> Rule:
    """A tensor stored the same way on both sides."""
    return Rule(ours, theirs)


def transposed(ours: str, theirs: str) -> Rule:
    """A weight stored as (in, out) outside and (out, in) here, e.g. GPT-2's Conv1D."""
    return Rule(ours, theirs, _transpose, _transpose, "transposed")


@dataclass
class Table:
    """The full mapping for one model: rules, external tensors to skip silently, and our tied parameters."""

    rules: list[Rule]
    ignore: list[str] = field(default_factory=list)  # regexes of external names that carry no weights we use
    tied: list[str] = field(default_factory=list)  # our names filled by weight tying, absent from the checkpoint

    def expand(self, n_layers: int) -> "Table":
        """Repeat every rule whose names hold ``{i}`` once per layer."""
        rules: list[Rule] = []
        for rule in self.rules:
            if "{i}" in rule.ours:
                rules += [Rule(rule.ours.format(i=i), rule.theirs.format(i=i), rule.load, rule.save, rule.note)
                          for i in range(n_layers)]
            else:
                rules.append(rule)
        return Table(rules, self.ignore, self.tied)


def convert_to_ours(table: Table, theirs: dict[str, Tensor], ours_shapes: dict[str, tuple[int, ...]],
                    source: str) -> dict[str, Tensor]:
    """Our state dict from an external one; one CheckpointError listing every problem if it does not fit."""
    state: dict[str, Tensor] = {}
    missing: list[str] = []
    mis_shaped: list[str] = []
    used: set[str] = set()
    for rule in table.rules:
        if rule.theirs not in theirs:
            missing.append(f"{rule.theirs} (for {rule.ours})")
            continue
        used.add(rule.theirs)
        tensor = rule.load(theirs[rule.theirs])
        want = ours_shapes.get(rule.ours)
        if want is None:
            raise CheckpointError(f"mapping table names {rule.ours!r}, which this glassformer model does not have")
        if tuple(tensor.shape) != tuple(want):
            how = f" after {rule.note}" if rule.note else ""
            mis_shaped.append(f"{rule.theirs}: shape {tuple(theirs[rule.theirs].shape)}{how} gives "
                              f"{tuple(tensor.shape)}, {rule.ours} needs {tuple(want)}")
            continue
        state[rule.ours] = tensor
    ignore = [re.compile(p) for p in table.ignore]
    unexpected = sorted(name for name in theirs
                        if name not in used and not any(p.fullmatch(name) for p in ignore))
    unmapped = sorted(set(ours_shapes) - {r.ours for r in table.rules} - set(table.tied))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s): " + ", ".join(missing))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): " + ", ".join(unexpected))
    if mis_shaped:
        problems.append(f"{len(mis_shaped)} tensor(s) of the wrong shape: " + "; ".join(mis_shaped))
    if unmapped:
        problems.append(f"{len(unmapped)} glassformer parameter(s) with no rule: " + ", ".join(unmapped))
    if problems:
        raise CheckpointError(f"{source} does not fit the model:\n  " + "\n  ".join(problems))
    return state


def convert_to_theirs(table: Table, ours: dict[str, Tensor], skip: Iterable[str] = ()) -> dict[str, Tensor]:
    """The external state dict for our parameters (tied ones are left out, as Hugging Face does)."""
    skip = set(skip)
    return {rule.theirs: rule.save(ours[rule.ours]).detach().contiguous()
            for rule in table.rules if rule.theirs not in skip}


def strip_prefix(theirs: dict[str, Tensor], prefix: str, anchor: str) -> dict[str, Tensor]:
    """Drop ``prefix`` from names when the checkpoint came from a task model (e.g. ``bert.`` in BertForX)."""
    if anchor in theirs or (prefix + anchor) not in theirs:
        return theirs
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in theirs.items()}
