"""Hook points: named places in a forward pass where an intermediate can be read or replaced.

Every layer marks its intermediates with a :class:`HookPoint` (``hook_q``, ``hook_pattern``,
``hook_resid_post`` ...), an identity module whose full name in the model says where it sits
(``encoder.layers.2.self_attn.hook_pattern``). A hook is an ordinary PyTorch forward hook on that
module: it sees the tensor and may return a replacement (ablation, patching, steering).

With no hook attached, a layer passes its tensor through :func:`hook` without calling the module
at all, so the points cost nothing (a dictionary check) in an ordinary forward pass.

Shapes of the common points (B batch, T positions, H heads, D width, d = D / H):

==========================  ====================  ===========================================
``hook_q/k/v``              (B, H, T, d)          queries, keys, values per head
``hook_attn_scores``        (B, H, T_q, T_k)      Q Kᵀ / √d, masked keys at -inf
``hook_pattern``            (B, H, T_q, T_k)      softmax of the scores: the attention weights
``hook_z``                  (B, H, T_q, d)        each head's output, before the output projection
``hook_attn_out``           (B, T, D)             the attention sublayer's output
``mlp.hook_pre/post``       (B, T, d_ff)          feed-forward hidden units before/after the activation
``hook_resid_pre/mid/post`` (B, T, D)             the residual stream into, inside and out of a layer
==========================  ====================  ===========================================
"""

from __future__ import annotations

import contextlib
import fnmatch
from typing import Callable, Iterable, Iterator, Mapping

from torch import Tensor, nn

HookFn = Callable[[Tensor, "HookPoint"], Tensor | None]


class HookPoint(nn.Module):
    """An identity layer that names an intermediate, so that hooks can read or replace it."""

    def forward(self, x: Tensor) -> Tensor:
        """``x`` unchanged; attached forward hooks may return a replacement."""
        return x


def hook(point: HookPoint, x: Tensor) -> Tensor:
    """``point(x)`` when something is attached to it, else ``x`` at the cost of one dictionary check."""
    if point._forward_hooks or point._forward_pre_hooks:
        return point(x)
    return x


def is_hooked(point: HookPoint) -> bool:
    """Whether anything reads or replaces this intermediate (layers then compute it even on a fused path)."""
    return bool(point._forward_hooks or point._forward_pre_hooks)


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Every hook point of `model` by its full name, in forward order."""
    return {name: module for name, module in model.named_modules() if isinstance(module, HookPoint)}


def select(model: nn.Module, names: str | Iterable[str] | Callable[[str], bool] | None) -> dict[str, HookPoint]:
    """The hook points chosen by `names`: all (None), shell patterns (``"*.hook_pattern"``), or a predicate."""
    points = hook_points(model)
    if names is None:
        return points
    if callable(names):
        return {name: p for name, p in points.items() if names(name)}
    patterns = [names] if isinstance(names, str) else list(names)
    chosen = {name: p for name, p in points.items() if any(fnmatch.fnmatchcase(name, pat) for pat in patterns)}
    unmatched = [pat for pat in patterns if not any(fnmatch.fnmatchcase(name, pat) for name in points)]
    if unmatched:
        examples = ", ".join(list(points)[:4])
        raise ValueError(f"no hook point matches {unmatched[0]!r}; names look like {examples}, …")
    return chosen


@contextlib.contextmanager
def hooks(model: nn.Module, fns: Mapping[str, HookFn]) -> Iterator[None]:
    """Attach ``fn(tensor, point) -> replacement or None`` to the hook points named (or matched) by each key.

    Every hook is removed when the block ends, also after an exception.
    """
    handles = []
    try:
        for pattern, fn in fns.items():
            for point in select(model, pattern).values():
                handles.append(point.register_forward_hook(lambda module, args, out, fn=fn: fn(out, module)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def caching(model: nn.Module, names: str | Iterable[str] | Callable[[str], bool] | None = None,
            *, detach: bool = True) -> Iterator[dict[str, Tensor]]:
    """Collect the chosen intermediates of every forward pass run inside the block into a dict (name → tensor).

    Only the points asked for are hooked, so the rest of the forward pass keeps its fused kernels.
    """
    cache: dict[str, Tensor] = {}
    points = select(model, names)
    handles = []

    def keep(name: str) -> Callable:
        def store(module: nn.Module, args: tuple, out: Tensor) -> None:
            cache[name] = out.detach() if detach else out
        return store

    try:
        for name, point in points.items():
            handles.append(point.register_forward_hook(keep(name)))
        yield cache
    finally:
        for handle in handles:
            handle.remove()
