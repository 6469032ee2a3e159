"""Fused CPU kernels for inference, behind the ``fast`` decision of the layers; the one place that calls a private op.

``nn.Linear`` on a CPU computes x Wᵀ + b as "copy b into every output row, then a matmul that adds
to it", one extra pass over the output per layer; an activation after it is another pass. oneDNN's
linear primitive, which PyTorch ships (and its own compiler, inductor, calls for CPU linears), adds
the bias and applies ReLU or GELU inside the matmul's epilogue. PyTorch exposes it only as the
private ``torch.ops.mkldnn._linear_pointwise``, so :func:`linear` takes it when it exists and
applies (CPU, float32 or bfloat16, no gradient recorded) and computes the same thing with public
ops otherwise; a test holds both branches to ``torch.nn.functional``.

A layer decides at construction whether to use these kernels (:func:`use_fused_kernels`, as timm decides
``fused_attn``); nothing switches it later. Whether a call can take them is checked on each call (eval
mode, no gradient, CPU, matching dtypes), and :func:`plain` makes every layer compute with public ops
within a block, for tracing into formats that have no operator for the fused kernels (ONNX).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from glassformer.nn.feedforward import ACTIVATIONS

# glassformer activation name → oneDNN's (post-op, algorithm)
_ONEDNN_ACTIVATIONS = {None: ("none", ""), "relu": ("relu", ""), "gelu": ("gelu", "none"),
                       "gelu_tanh": ("gelu", "tanh")}
# Set within a `plain()` block; a context variable, so a block in one thread leaves the others fused.
_PLAIN: ContextVar[bool] = ContextVar("glassformer_plain_kernels", default=False)


@lru_cache(maxsize=1)
def onednn_linear_available() -> bool:
    """Whether this PyTorch build has the oneDNN linear kernel (``torch.ops.mkldnn._linear_pointwise``)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@lru_cache(maxsize=1)
def onednn_bf16_available() -> bool:
    """Whether oneDNN multiplies bfloat16 on this CPU (AVX512-BF16/AMX; on AVX2 its bf16 linear does not exist)."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(probe is not None and probe())


def use_fused_kernels() -> bool:
    """Whether a layer built now uses the fused kernels at inference (its ``fast=None`` default): when they exist."""
    return onednn_linear_available()


@contextmanager
def plain() -> Iterator[None]:
    """Within the block every layer computes with public ops only (what ``torch.onnx.export`` must trace)."""
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


# In float32 oneDNN's linear only pays from a few hundred rows on: for one row (a token generated at a time) it
# took 25-51 us against F.linear's 8-29 us, and it drew level near 256 rows (AVX512 Xeon, 2 threads; measured
# 7 December 2026, benchmarks/RESULTS.md). In bfloat16 it was faster at every size measured, from one row up.
FP32_MIN_ROWS = 256


def fusable(x: Tensor, weight: Tensor, activation: str | None = None) -> bool:
    """Whether :func:`linear` takes the oneDNN kernel for these operands (never within :func:`plain`)."""
    if torch.compiler.is_compiling():  # torch.export / compile trace the public ops (shapes may be symbolic there)
        return False
    return (not _PLAIN.get() and activation in _ONEDNN_ACTIVATIONS and x.device.type == "cpu"
            and x.dtype == weight.dtype
            and ((x.dtype == torch.float32 and x.numel() >= FP32_MIN_ROWS * x.shape[-1])
                 or (x.dtype == torch.bfloat16 and onednn_bf16_available()))
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and onednn_linear_available())


# A plain weight is reordered into oneDNN's blocked layout inside every bfloat16 call. Reordered once and kept,
# a call took 0.4-0.6x the time at 18 rows (one short sentence) and 0.85-0.95x at 900 (measured 7 December
# 2026, AVX512-BF16 and AMX Xeon, benchmarks/RESULTS.md). The layout is chosen for about this many rows.
PACK_ROWS = 64
# id(weight) → (a weak reference to it, what it was reordered from, the reordered copy); an entry leaves with
# its weight, and a weight changed in place (a training step, a copy into its storage) is reordered again.
_REORDERED: dict[int, tuple[weakref.ref, tuple, Tensor]] = {}


def _forget(key: int) -> None:
    _REORDERED.pop(key, None)


def reordered(weight: Tensor) -> Tensor:
    """`weight` ``(out, in)`` in oneDNN's blocked layout for bfloat16 matmuls, reordered once per weight version."""
    version = (weight.data_ptr(), weight.shape, -1 if weight.is_inference() else weight._version)
    entry = _REORDERED.get(id(weight))
    if entry is None or entry[0]() is not weight or entry[1] != version:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACK_ROWS)
        entry = (weakref.ref(weight, lambda _, key=id(weight): _forget(key)), version, packed)
        _REORDERED[id(weight)] = entry
    return entry[2]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, activation: str | None = None) -> Tensor:
    """act(x Wᵀ + b) for ``x`` ``(..., in)``, ``weight`` ``(out, in)``; the activation is a name of ``ACTIVATIONS``."""
    if fusable(x, weight, activation):
        post_op, algorithm = _ONEDNN_ACTIVATIONS[activation]
        if x.dtype == torch.bfloat16 and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
            weight = reordered(weight)
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, post_op, [], algorithm)
    out = F.linear(x, weight, bias)
    return ACTIVATIONS[activation](out) if activation else out
