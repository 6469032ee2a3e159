"""Running a model while reading or editing its intermediates: ``run_with_cache`` and ``run_with_hooks``.

Both are thin over :mod:`glassformer.nn.hooks`: a cache is the dictionary that
:func:`~glassformer.nn.hooks.caching` fills, wrapped in :class:`ActivationCache` so that the usual
questions ("every layer's residual stream, stacked", "the residual stream as it accumulates") are
one call. Names are the model's hook-point names (``blocks.layers.3.self_attn.hook_z``) or shell
patterns over them (``"*.hook_pattern"``), exactly as :func:`glassformer.nn.hooks.select` reads them.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import Tensor, nn

from glassformer.errors import UsageError
from glassformer.nn.hooks import HookFn, caching, hook_points, hooks

Names = str | Iterable[str] | Callable[[str], bool] | None
_LAYER = re.compile(r"^(?P<stack>.*?)\.?layers\.(?P<layer>\d+)\.")


def stacks(model: nn.Module) -> dict[str, int]:
    """The model's layer stacks by name prefix (``"blocks"``, ``"encoder"``, ``"decoder"``...) and their layer counts."""
    found: dict[str, int] = {}
    for name in hook_points(model):
        match = _LAYER.match(name)
        if match:
            found[match["stack"]] = max(found.get(match["stack"], 0), int(match["layer"]) + 1)
    return found


def resolve_stack(model: nn.Module, stack: str | None) -> str:
    """`stack`, checked; or the only stack of a one-stack model (a two-stack model must name one)."""
    found = stacks(model)
    if stack is None:
        if len(found) != 1:
            raise UsageError(f"{type(model).__name__} has the layer stacks {', '.join(found)}; pass stack= one of them")
        return next(iter(found))
    if stack not in found:
        raise UsageError(f"stack={stack!r} is not a layer stack of {type(model).__name__}; it has {', '.join(found)}")
    return stack


def _prefix(stack: str) -> str:
    return f"{stack}.layers" if stack else "layers"


class ActivationCache(Mapping[str, Tensor]):
    """The intermediates one forward pass produced, by hook-point name (a read-only mapping)."""

    def __init__(self, tensors: Mapping[str, Tensor], model: nn.Module | None = None) -> None:
        self._tensors = dict(tensors)
        self.model = model

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._tensors:
            examples = ", ".join(list(self._tensors)[:3]) or "nothing"
            raise KeyError(f"{name!r} is not in this cache (it holds {len(self._tensors)} names: {examples}, …); "
                           f"ask run_with_cache for it with names=")
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} tensors: {', '.join(list(self)[:4])}{', …' if len(self) > 4 else ''})"

    def names(self, pattern: str) -> list[str]:
        """The cached names matching a shell pattern, in forward order (layers by number)."""
        import fnmatch

        chosen = [name for name in self._tensors if fnmatch.fnmatchcase(name, pattern)]
        if not chosen:
            raise KeyError(f"no cached name matches {pattern!r}; the cache holds {', '.join(list(self)[:4])}, …")
        return chosen

    def stack(self, pattern: str) -> Tensor:
        """The tensors whose names match `pattern`, stacked along a new first axis (e.g. ``(L, B, T, D)``)."""
        return torch.stack([self._tensors[name] for name in self.names(pattern)])

    def accumulated_resid(self, stack: str | None = None) -> Tensor:
        """The residual stream as it accumulates, ``(L + 1, B, T, D)``: the embedding output, then after each layer.

        Entry 0 is what the first layer reads (token embeddings plus positions: ``layers.0.hook_resid_pre``);
        entry l is ``layers.{l-1}.hook_resid_post``. No final LayerNorm is applied (the logit lens does that).
        """
        if self.model is None:
            raise UsageError("accumulated_resid needs the model the cache came from (ActivationCache(tensors, model))")
        stack = resolve_stack(self.model, stack)
        prefix, n_layers = _prefix(stack), stacks(self.model)[stack]
        names = [f"{prefix}.0.hook_resid_pre"] + [f"{prefix}.{i}.hook_resid_post" for i in range(n_layers)]
        missing = [name for name in names if name not in self._tensors]
        if missing:
            raise KeyError(f"accumulated_resid needs {missing[0]!r}; run with names=resid_names(model) or names=None")
        return torch.stack([self._tensors[name] for name in names])


def resid_names(model: nn.Module, stack: str | None = None) -> list[str]:
    """The hook points :meth:`ActivationCache.accumulated_resid` reads, for ``run_with_cache(names=...)``."""
    stack = resolve_stack(model, stack)
    prefix = _prefix(stack)
    return [f"{prefix}.0.hook_resid_pre", f"{prefix}.*.hook_resid_post"]


def run_with_cache(model: nn.Module, *inputs: Any, names: Names = None, detach: bool = True,
                   **kwargs: Any) -> tuple[Any, ActivationCache]:
    """``model(*inputs, **kwargs)`` and the intermediates it produced: all of them (``names=None``) or those chosen.

    `names` is a hook-point name, a shell pattern, a list of them or a predicate on the name; only the
    chosen points are hooked, so the rest of the pass keeps its fused kernels. `detach=False` keeps
    the tensors in the autograd graph.
    """
    with caching(model, names, detach=detach) as cache:
        output = model(*inputs, **kwargs)
    return output, ActivationCache(cache, model)


def run_with_hooks(model: nn.Module, *inputs: Any, fwd_hooks: Mapping[str, HookFn], **kwargs: Any) -> Any:
    """``model(*inputs, **kwargs)`` with ``fn(tensor, point) -> replacement or None`` on each named (or matched) point.

    The hooks are removed when the pass ends, also after an exception.
    """
    with hooks(model, fwd_hooks):
        return model(*inputs, **kwargs)
