"""Bursts answered as batches: the studio's prediction endpoints gather concurrent requests into one forward pass.

Each ``/predict`` or ``/classify`` request is its own Gradio event (no Gradio batching, no
concurrency limit), and its handler awaits a :class:`~glassformer.serve.batcher.MicroBatcher`, the
one ``glassformer serve`` uses: a request inside a burst waits at most ``max_wait_ms`` for the
others (a lone one not at all), and while a batch runs the next one gathers. Gradio's own event batching hands a batch over
only when its single worker is free and pays its per-batch bookkeeping for every item, so 50
concurrent requests took 14-18x one request alone; here they take a few times one.

The batcher lives on the event loop of the server that runs the handlers (Gradio's), so it starts
there on the first request; a relaunched app (a new loop) gets a new one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Hashable

from glassformer.serve.batcher import MicroBatcher, RunFn
from glassformer.serve.settings import ServeSettings
from glassformer.studio.answering import BATCH_THREADS, compute_with

# A burst of 50 sentences fits in one batch. A request that comes BURST_GAP_MS or more after the one
# before it runs at once (a click alone is not slowed down); one inside a burst waits up to MAX_WAIT_MS
# for the rest of the burst, so that the model runs a few large batches instead of many small ones.
MAX_BATCH = 64
MAX_WAIT_MS = 5.0
BURST_GAP_MS = 50.0


class LoopBatcher:
    """A :class:`MicroBatcher` started on the running event loop the first time a request arrives there."""

    def __init__(self, run: RunFn, *, max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS,
                 burst_gap_ms: float | None = BURST_GAP_MS, queue_size: int = 1024) -> None:
        self.run = run
        self.settings = {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "burst_gap_ms": burst_gap_ms,
                         "queue_size": queue_size}
        self._batcher: MicroBatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run_batch(self, items: list[Any], options: Hashable) -> list[Any]:
        compute_with(BATCH_THREADS)  # a page's request may have left one thread (studio/answering.py)
        return self.run(items, options)

    @property
    def batches_run(self) -> int:
        """How many forward passes answered the requests so far (on the current loop)."""
        return 0 if self._batcher is None else self._batcher.batches_run

    async def submit(self, items: list[Any], options: Hashable = None) -> list[Any]:
        """The results for `items`, computed in one batch with whatever else arrived meanwhile."""
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._loop is not loop:
            self._batcher, self._loop = MicroBatcher(self._run_batch, **self.settings), loop
            await self._batcher.start()
        return await self._batcher.submit(items, options)

    async def one(self, item: Any, options: Hashable = None) -> Any:
        """The result for one item (one request's input)."""
        return (await self.submit([item], options))[0]


# For programs: the studio's sentiment model answered as `glassformer serve` answers it, at /api/predict.
API_SETTINGS = ServeSettings(max_batch=MAX_BATCH, max_wait_ms=MAX_WAIT_MS, burst_gap_ms=BURST_GAP_MS, queue_size=1024)


def api_app(sentiment_dir: str | Path, settings: ServeSettings = API_SETTINGS, *, precision: str = "auto",
            counted: Callable[[RunFn], RunFn] | None = None) -> Any:
    """`glassformer serve`'s app for the sentiment model in `sentiment_dir`: ``POST /predict``, ``/health``, ``/openapi.json``.

    Mounted at ``/api`` beside the Gradio app, it answers outside Gradio's queue, whose bookkeeping
    per request (about 10 ms of a core each) is most of a burst's time. The model is loaded as
    ``glassformer serve`` loads it (`precision` ``auto``: bf16 where the CPU computes it natively).
    `counted` wraps the batch function, so that the thread policy sees these requests too.
    """
    from dataclasses import replace

    from glassformer.serve.app import create_app
    from glassformer.serve.endpoints import load_endpoint

    endpoint = load_endpoint(str(sentiment_dir), precision=precision)
    if counted is not None:
        endpoint = replace(endpoint, run=counted(endpoint.run))
    return create_app(endpoint, settings, {"model": str(sentiment_dir), "precision": precision})
