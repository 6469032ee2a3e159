"""What this CPU can compute natively, read once from ``/proc/cpuinfo``: the floor that both the number
formats (:mod:`glassformer.precision`) and the int8 layers (:mod:`glassformer.nn.quantize`) stand on."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The flags line of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_int8_dot() -> bool:
    """Whether this CPU has integer dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8).

    Without them ``torch._int_mm`` on the CPU is many times slower than an fp32 matmul (measured on an
    AVX2-only EPYC: 27x), so int8 layers multiply their integer values in fp32 instead.
    """
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})
