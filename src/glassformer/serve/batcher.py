"""Dynamic micro-batching: requests that arrive together are run through the model as one batch.

A request puts its items (texts, images) on a bounded queue and waits. One gatherer takes the first
waiting request, then keeps taking more until ``max_batch`` items are gathered or ``max_wait_ms`` has
passed since the first, and hands the whole batch to ``run`` once, in a worker thread so the server
keeps accepting. While the model runs, the next batch gathers, so under load batches grow by
themselves and a lone request waits at most ``max_wait_ms``. With ``burst_gap_ms``, a request that
arrives that long after the one before it does not wait at all: only a request that is part of a burst
waits for the rest of it, so a lone request is not slowed down to help bursts.

The model runs in one worker thread, and it is best loaded there too (:func:`model_thread`, then pass
it as ``executor``). Torch's CPU wheel parallelises with GNU OpenMP, which gives every thread that
starts parallel work a team of its own; a model loaded in the main thread leaves a second team
behind, and once the teams hold more threads than there are cores, libgomp stops spinning between
parallel regions and sleeps, so each of a forward pass's small regions pays a wake-up. Measured on 2
cores with the quick sentiment model (bf16): one sentence 9.0 ms with the model loaded in the main
thread against 4.4 ms loaded in the worker, a batch of 50 sentences 40 ms against 34 ms.

Requests with different options (a beam size, a special-token policy) are run as separate groups
of the same batch, since ``run`` applies one set of options to all its items. If a group fails and
it holds several requests, each is run again alone, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

# run(items, options) -> one result per item, in order.
RunFn = Callable[[list[Any], Any], Sequence[Any]]


class QueueFull(Exception):
    """The queue holds as many requests as it may; the client should come back later."""


class BatcherClosed(Exception):
    """The server is shutting down and accepts no new requests."""


@dataclass
class Request:
    """One request's items, its options, where its results go, and whether its client gave up."""

    items: list[Any]
    options: Hashable
    future: asyncio.Future
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = 0.0  # the event loop's clock when it was enqueued


def model_thread() -> ThreadPoolExecutor:
    """The single worker thread to load a model in and run its batches on (see the module's docstring)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="glassformer-model")


class MicroBatcher:
    """Gathers concurrent requests for at most `max_wait_ms` or `max_batch` items and runs them as one batch."""

    def __init__(self, run: RunFn, *, max_batch: int = 64, max_wait_ms: float = 5.0, queue_size: int = 256,
                 burst_gap_ms: float | None = None, executor: Executor | None = None) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait_ms < 0 or (burst_gap_ms is not None and burst_gap_ms < 0):
            raise ValueError(f"max_batch={max_batch} and queue_size={queue_size} must be >= 1, "
                             f"max_wait_ms={max_wait_ms} and burst_gap_ms={burst_gap_ms} >= 0")
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        # None: every batch waits up to max_wait; else only one whose first request came within this of the last
        self.burst_gap = None if burst_gap_ms is None else burst_gap_ms / 1000
        self._last_arrival = float("-inf")
        self.queue_size = queue_size
        self.batches_run = 0  # how many times `run` was called (for /health and tests)
        self.items_run = 0  # the items those calls computed (items_run / batches_run: the mean batch)
        self.run_seconds = 0.0  # the time spent inside `run`: what a burst costs the model, the rest is HTTP
        self._queue: asyncio.Queue[Request] | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        # One worker: the model already uses every core through torch's own threads. close() shuts down the
        # one the batcher made; a given one (the thread the model was loaded in) belongs to the caller.
        self._owns_executor = executor is None
        self._executor: Executor = model_thread() if executor is None else executor

    async def start(self) -> None:
        """Begin gathering (call from the event loop that will submit)."""
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._task = asyncio.create_task(self._gather_forever())

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` has begun (new requests are refused)."""
        return self._closing

    @property
    def waiting(self) -> int:
        """Requests on the queue, not yet in a batch."""
        return 0 if self._queue is None else self._queue.qsize()

    def enqueue(self, items: list[Any], options: Hashable = None) -> "Request":
        """Put `items` on the queue now; QueueFull when it is full, BatcherClosed while shutting down."""
        if self._queue is None or self._closing:
            raise BatcherClosed("the server is shutting down")
        loop = asyncio.get_running_loop()
        request = Request(list(items), options, loop.create_future(), arrived=loop.time())
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise QueueFull(f"{self.queue_size} requests are already waiting") from None
        return request

    async def result(self, request: "Request", timeout: float | None = None) -> list[Any]:
        """The results of an enqueued request once its batch has run; TimeoutError after `timeout` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(request.future), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            request.cancelled.set()  # a batch not yet run skips it; a stream that runs stops
            raise

    async def submit(self, items: list[Any], options: Hashable = None, timeout: float | None = None) -> list[Any]:
        """The results for `items` once their batch has run: :meth:`enqueue` then :meth:`result`."""
        return await self.result(self.enqueue(items, options), timeout)

    async def close(self) -> None:
        """Refuse new requests, finish every accepted one, then stop the gatherer and the worker."""
        self._closing = True
        if self._queue is not None:
            await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._owns_executor:
            self._executor.shutdown(wait=True)

    async def _gather_forever(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].items)
            alone = self.burst_gap is not None and batch[0].arrived - self._last_arrival >= self.burst_gap
            self._last_arrival = batch[0].arrived
            # The wait counts from the first request's arrival: one that queued while the last batch ran
            # has waited already, and the requests behind it are taken without waiting again.
            deadline = batch[0].arrived + (0.0 if alone else self.max_wait)
            while size < self.max_batch:
                left = deadline - loop.time()
                if left <= 0 and self._queue.empty():
                    break
                try:
                    request = self._queue.get_nowait() if left <= 0 else await asyncio.wait_for(self._queue.get(), left)
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(request)
                size += len(request.items)
                self._last_arrival = max(self._last_arrival, request.arrived)
            live = [r for r in batch if not r.cancelled.is_set() and not r.future.done()]
            try:
                if live:
                    outcomes = await loop.run_in_executor(self._executor, self._run_batch, live)
                    for request, (ok, value) in zip(live, outcomes):
                        if request.future.done():
                            continue
                        if ok:
                            request.future.set_result(value)
                        else:
                            request.future.set_exception(value)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _run_batch(self, batch: list[Request]) -> list[tuple[bool, Any]]:
        """Each request's (ok, results or exception), running each options group through `run` once."""
        outcomes: dict[int, tuple[bool, Any]] = {}
        groups: dict[Hashable, list[int]] = {}
        for index, request in enumerate(batch):
            groups.setdefault(request.options, []).append(index)
        for options, members in groups.items():
            items = [item for i in members for item in batch[i].items]
            try:
                results = list(self._call(items, options))
            except Exception as exc:  # noqa: BLE001 - handed to the request, which answers with it
                if len(members) == 1:
                    outcomes[members[0]] = (False, exc)
                    continue
                for i in members:  # find which request it was; the others get their answers
                    try:
                        outcomes[i] = (True, list(self._call(batch[i].items, options)))
                    except Exception as alone:  # noqa: BLE001
                        outcomes[i] = (False, alone)
                continue
            start = 0
            for i in members:
                count = len(batch[i].items)
                outcomes[i] = (True, results[start:start + count])
                start += count
        return [outcomes[i] for i in range(len(batch))]

    def _call(self, items: list[Any], options: Hashable) -> Sequence[Any]:
        self.batches_run += 1
        self.items_run += len(items)
        started = time.perf_counter()
        try:
            results = self.run(items, options)
        finally:
            self.run_seconds += time.perf_counter() - started
        if len(results) != len(items):
            raise RuntimeError(f"the model answered {len(results)} results for {len(items)} inputs")
        return results
