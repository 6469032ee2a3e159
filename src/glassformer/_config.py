"""Checking dataclass configurations field by field: the type each annotation names, and simple ranges.

Model configs and presets call these from ``__post_init__``, so a configuration read from a file
(``config.json``) or typed on the command line is refused before anything is built from it, with a
message naming the field, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from glassformer.errors import ConfigError


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if origin in (list, dict) or hint in (list, dict):
        return isinstance(value, origin or hint)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not model is left to the class itself


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(option) for option in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def check_types(config: Any) -> None:
    """Raise ConfigError unless every field of dataclass `config` holds a value of its annotated type.

    Integers are not accepted for ``bool`` fields nor floats for ``int`` fields (``6.0`` layers is
    refused, not rounded); ``float`` fields take integers and refuse NaN and infinities.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        hint = hints.get(field.name, Any)
        if not _matches(value, hint):
            raise ConfigError(f"{type(config).__name__}.{field.name} must be {_hint_name(hint)}, "
                              f"got {value!r} ({type(value).__name__})")


def check_range(config: Any, name: str, low: float | None = None, high: float | None = None, *,
                high_inclusive: bool = True) -> None:
    """Raise ConfigError unless ``config.<name>`` (when not None) lies in [low, high] (or [low, high))."""
    value = getattr(config, name)
    if value is None:
        return
    above = high is not None and (value > high if high_inclusive else value >= high)
    if (low is not None and value < low) or above:
        upper = "" if high is None else (f" and <= {high}" if high_inclusive else f" and < {high}")
        lower = "" if low is None else f">= {low}"
        raise ConfigError(f"{type(config).__name__}.{name} must be {lower}{upper}, got {value!r}")


def check_positive(config: Any, *names: str) -> None:
    """Each named field (a size or a count) must be at least 1."""
    for name in names:
        check_range(config, name, 1)


def check_probabilities(config: Any, *names: str) -> None:
    """Each named field (a dropout rate, a smoothing weight) must lie in [0, 1)."""
    for name in names:
        check_range(config, name, 0.0, 1.0, high_inclusive=False)


def check_choice(config: Any, name: str, choices: typing.Iterable[str]) -> None:
    """The named field must be one of `choices`."""
    choices = list(choices)
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; {type(config).__name__}.{name} must be one of "
                          f"{', '.join(map(repr, choices))}")
