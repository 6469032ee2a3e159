"""Which number format to compute in: ``auto``, ``fp32``, ``bf16`` or ``int8``, chosen from what the hardware has.

bfloat16 keeps float32's range with an 8-bit mantissa; where the hardware multiplies it natively (CPUs
with AVX512-BF16 or AMX, CUDA GPUs from Ampere on) a matmul runs about twice as fast as in float32.
``auto`` picks bf16 there and fp32 everywhere else, so a machine with AVX2 only keeps full fp32
speed. Training in bf16 runs the forward and backward passes under autocast and keeps the weights,
the optimizer state and the loss in float32 ("mixed precision"). ``int8`` is for CPU inference only:
the Linear layers are quantised (:mod:`glassformer.nn.quantize`).
"""

from __future__ import annotations

import contextlib
import os
from typing import ContextManager

import torch

from glassformer._cpu import cpu_flags, cpu_has_int8_dot
from glassformer.errors import UsageError

__all__ = ["PRECISIONS", "autocast", "cpu_flags_summary", "cpu_has_int8_dot", "cpu_has_native_bf16",
           "parameter_dtype", "prepare_for_inference", "resolve"]

PRECISIONS = ("auto", "fp32", "bf16", "int8")
# Set to 0 or 1 to override what the CPU's flags say (to try the other machine's path here).
ENV_OVERRIDE = "GLASSFORMER_CPU_BF16"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16)."""
    override = os.environ.get(ENV_OVERRIDE)
    if override in ("0", "1"):
        return override == "1"
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_flags_summary() -> str:
    """The CPU features that decide the kernels, as RESULTS tables quote them (e.g. ``avx2 avx512f avx512_bf16``)."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return " ".join(flag for flag in wanted if flag in cpu_flags()) or "unknown"


def resolve(precision: str, device: torch.device | str = "cpu", *, training: bool = False) -> str:
    """The concrete format for `precision` on `device`: ``fp32``, ``bf16`` or (inference on a CPU) ``int8``."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision={precision!r}; expected one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if precision == "int8":
        if training:
            raise UsageError("precision='int8' is for inference; train in auto, fp32 or bf16")
        if device.type != "cpu":
            raise UsageError("precision='int8' runs on the CPU only")
        return "int8"
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def autocast(precision: str, device: torch.device | str = "cpu") -> ContextManager:
    """bf16 autocast on `device` for ``bf16``; nothing for the other formats."""
    device = torch.device(device)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_for_inference(model: torch.nn.Module, precision: str = "fp32", *, skip: tuple[str, ...] = ()) -> str:
    """Put a model (in eval mode) into the format `precision` names for inference; returns the resolved name.

    ``bf16`` converts every weight to bfloat16 (activations follow, and the fused kernels run in
    bf16); ``int8`` quantises the Linear layers except those named in `skip`; ``fp32`` changes nothing.
    """
    device = next(model.parameters()).device
    resolved = resolve(precision, device)
    if resolved == "bf16":
        model.to(torch.bfloat16)
    elif resolved == "int8":
        from glassformer.nn.quantize import quantize_int8

        quantize_int8(model, skip=skip)
    return resolved


def parameter_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating-point type of a model's weights (what its float inputs must be cast to)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32
