"""Bursts answered as batches: the studio's prediction endpoints gather concurrent requests into one forward pass.

Each ``/predict`` or ``/classify`` request is its own Gradio event (no Gradio batching, no
concurrency limit), and its handler awaits a :class:`~glassformer.serve.batcher.MicroBatcher`, the
one ``glassformer serve`` uses: a request inside a burst waits at most ``max_wait_ms`` for the
others (a lone one not at all), and while a batch runs the next one gathers. Gradio's own event batching hands a batch over
only when its single worker is free and pays its per-batch bookkeeping for every item, so 50
concurrent requests took 14-18x one request alone; here they take a few times one.

The batcher lives on the event loop of the server that runs the handlers (Gradio's), so it starts
there on the first request; a relaunched app (a new loop) gets a new one.

Where the batches compute: in the main thread, when the studio runs as ``glassformer studio`` or
``make demo`` (:class:`MainThreadExecutor`, installed by :func:`use_executor`). Torch's CPU threads
(GNU OpenMP) form one team per thread that computes with several; the main thread has one already
(``make demo`` fine-tunes there, and the models are loaded there), and a batch computed in another
thread adds a second, after which the threads sleep between parallel regions instead of spinning
(serve/batcher.py has the figures). Run in the main thread, a batch uses the team that exists.
Without the main loop (an app launched without blocking, as the tests do), each batcher computes in
a worker thread of its own.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Hashable

from glassformer.serve.batcher import MicroBatcher, RunFn, model_thread
from glassformer.serve.settings import ServeSettings
from glassformer.studio.answering import BATCH_THREADS, compute_with

# A burst of 50 sentences fits in one batch. A request that comes BURST_GAP_MS or more after the one
# before it runs at once (a click alone is not slowed down); one inside a burst waits up to MAX_WAIT_MS
# for the rest of the burst, so that the model runs a few large batches instead of many small ones.
MAX_BATCH = 64
MAX_WAIT_MS = 5.0
BURST_GAP_MS = 50.0


class MainThreadExecutor(Executor):
    """An executor whose calls run in the thread that calls :meth:`run` (the main thread), one at a time.

    :meth:`run` returns when its `keep_going` turns false (the app stopped) or the thread is interrupted
    (Ctrl+C, or SIGTERM under :func:`~glassformer.studio.app.sigterm_as_interrupt`; the call it was running
    then fails). From then on (or after :meth:`shutdown`) the waiting calls and any later ones run in a
    worker thread, so that a server shutting down can still finish the requests it accepted.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple, dict] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._fallback: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._fallback is not None:
                return self._fallback.submit(fn, *args, **kwargs)
            future: Future = Future()
            self._calls.put((future, fn, args, kwargs))
            return future

    def run(self, keep_going: Callable[[], bool] = lambda: True, poll: float = 0.2) -> None:
        """Run the submitted calls in this thread while `keep_going()` (checked every `poll` s when idle) and until
        the thread is interrupted (KeyboardInterrupt is re-raised)."""
        try:
            while keep_going():
                try:
                    call = self._calls.get(timeout=poll)  # a timeout, so that Ctrl+C is seen promptly
                except queue.Empty:
                    continue
                if call is None:
                    return
                _settle(*call)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """From now on calls run in a worker thread; those still waiting go there first."""
        with self._lock:
            if self._fallback is None:
                self._fallback = model_thread()
            while True:
                try:
                    call = self._calls.get_nowait()
                except queue.Empty:
                    break
                if call is not None:
                    self._fallback.submit(_settle, *call)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._calls.put(None)  # a run() still looping returns
        self._hand_over()
        assert self._fallback is not None
        self._fallback.shutdown(wait=wait, cancel_futures=cancel_futures)


def _settle(future: Future, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Run one call into its future (unless it was cancelled); an interrupt fails the call and goes on up."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except KeyboardInterrupt:
        future.set_exception(RuntimeError("the studio was interrupted while computing this request"))
        raise
    except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the call
        future.set_exception(exc)
    else:
        future.set_result(result)


# Where the studio's batches compute: None (a worker thread per batcher) unless use_executor() installed one.
_EXECUTOR: Executor | None = None


def use_executor(executor: Executor | None) -> None:
    """Make the batchers created from now on compute in `executor` (None: a worker thread of their own)."""
    global _EXECUTOR
    _EXECUTOR = executor


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
            self._batcher, self._loop = MicroBatcher(self._run_batch, executor=_EXECUTOR, **self.settings), loop
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
    `counted` wraps the batch function, so that the thread policy sees these requests too. Its batches
    compute where :func:`use_executor` says (else in a worker thread), as the page's do.
    """
    from dataclasses import replace

    from glassformer.serve.app import create_app
    from glassformer.serve.endpoints import load_endpoint

    endpoint = load_endpoint(str(sentiment_dir), precision=precision)
    if endpoint.warm_up is not None:
        endpoint.warm_up()  # here: the studio's batches compute in the thread that builds the app
    if counted is not None:
        endpoint = replace(endpoint, run=counted(endpoint.run))
    return create_app(endpoint, settings, {"model": str(sentiment_dir), "precision": precision}, executor=_EXECUTOR)
