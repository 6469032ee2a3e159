"""Figures a benchmark hands to `benchmarks/headline.py`: one JSON line each, appended to ``$GLASSFORMER_FIGURES``.

A benchmark run by hand prints its own tables and this does nothing; run by the headline script (which
sets the variable), every figure it calls :func:`record` for also lands in the dated headline table,
with the anchor it was measured against in the same run. :func:`median_seconds` is the timing rule the
micro-benchmarks share: the median of repeated calls after a few unmeasured ones.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ENV = "GLASSFORMER_FIGURES"


def record(figure: str, value: float, unit: str, *, anchor: str = "", anchor_value: float | None = None,
           spread: str = "", target: str = "", met: bool | None = None, note: str = "") -> None:
    """Append one figure (and its same-run anchor, if it has one) to the file named by ``$GLASSFORMER_FIGURES``.

    The headline table prints ``value / anchor_value`` as the ratio; `spread` says how repeated
    measurements varied (e.g. "p90 0.61 s"); `target` and `met` state an acceptance line.
    """
    path = os.environ.get(ENV)
    if not path:
        return
    row = {"figure": figure, "value": value, "unit": unit, "anchor": anchor, "anchor_value": anchor_value,
           "spread": spread, "target": target, "met": met, "note": note,
           "load": round(os.getloadavg()[0], 2)}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """The median wall time of `repeats` calls of `fn`, after `warmup` calls that are not timed."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)
