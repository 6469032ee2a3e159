"""How the studio shares the cores between answering requests and training in the background.

The policy: **a request comes first**. While any request is being answered, background training
stands still. A page's request computes with one torch thread (:data:`PAGE_THREADS`), a batch of
gathered requests (``/api/predict``, the page's ``/predict`` and ``/classify``) with every thread
(torch's default: one per core). When the last request in flight is answered, training goes on from
where it stopped.

Why one thread for the page: Gradio runs each handler in a worker thread, and in a thread other than
the main one a two-thread computation of small pieces (a token at a time) was 2.5–3 times slower than
the same computation with one thread (120 generated tokens: 0.50 s against 0.19 s; in the main thread
two threads take 0.16 s). GNU OpenMP, which torch's CPU build uses, gives each thread that starts
parallel work a team of its own; once the teams hold more threads than there are cores, its threads
stop spinning between parallel regions and sleep, and each of the thousands of small regions then
pays a wake-up. Every page interaction measured was as fast or faster with one thread (Explain the
same); a batch of 50 sentences was not (83 ms with two against 145 ms with one), so batches keep
every thread (benchmarks/RESULTS.md, "One torch thread for the page's requests").

The studio trains in a child process (``glassformer train``, see :class:`~.jobs.TrainCommand`): run in
a thread of the studio's own process, the same training went at about half its standalone speed
(benchmarks/RESULTS.md: the training thread waited on the GIL behind the server's event loop, and
torch's worker threads idled). The child also computes with one torch thread per core; it is
stopped with SIGSTOP when the first request arrives and continued with SIGCONT when the last one
ends, so the two never compute at once. Platforms without SIGSTOP (Windows) do not pause the child:
there training and requests share the cores.

Why not split the cores instead (one thread each)? Two 2-thread computations on 2 cores slow each
other down, and a request then waits on the trainer's threads (the Explain button measured 4x
slower that way inside one process). Pausing costs training only the seconds that requests take.

A trainer that is a plain function still runs in a thread of this process (tests drive the queue
that way); it waits at its next batch boundary (before an optimizer step or an evaluation batch)
through :func:`glassformer.training.pause_points`, with the same weights it would have reached
without the pause.

:class:`Answering` counts the requests in flight: :meth:`Answering.install` wraps every event
handler of a Gradio app, :meth:`Answering.counted` a plain function (the ``/api`` batch), and
:meth:`Answering.pausing` makes a slot's trainer pause for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import signal
import subprocess
import threading
from typing import Any, Callable, Iterator

import torch

from glassformer.studio.jobs import TrainCommand
from glassformer.training import pause_points

# The torch threads a page's request (a Gradio handler) computes with, and a batch of gathered requests
# (/api/predict, the page's /predict and /classify): see the module's docstring. torch's default count,
# one per core, is read here, when the studio is imported (in the main thread, whose count is its own).
PAGE_THREADS = 1
BATCH_THREADS = torch.get_num_threads()


def compute_with(threads: int | None) -> None:
    """Make the calling thread's torch computations use `threads` threads (None: leave the count alone)."""
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)

# None where the platform cannot stop a process (Windows): the child then trains on through requests.
STOP, CONTINUE = getattr(signal, "SIGSTOP", None), getattr(signal, "SIGCONT", None)


class Answering:
    """The requests in flight, and the background training they hold: a child process stopped, a thread waiting."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._in_flight = 0
        self._children: list[subprocess.Popen[bytes]] = []
        self.pauses = 0  # how many times a training run was held for requests (for tests and the benchmark)
        self.holding = threading.Event()  # set while a training run is held

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def request(self, threads: int | None = None) -> Iterator[None]:
        """The block answers a request: training is held until the block (and every other) ends.

        With `threads`, the block computes with that many torch threads. torch's count is shared by every
        thread but the main one, so each request sets its own on entry; two requests of different counts
        that overlap only change each other's speed, never a result.
        """
        compute_with(threads)
        with self._idle:
            self._in_flight += 1
            if self._in_flight == 1 and self._children:
                self._signal_children(STOP)
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.notify_all()
                    if self._children:
                        self._signal_children(CONTINUE)

    def _signal_children(self, sig: signal.Signals | None) -> None:
        """Stop or continue every training child (the caller holds the lock); counts a stop as a pause."""
        if sig is None:
            return
        for child in self._children:
            child.send_signal(sig)  # a child that has just exited is skipped by Popen
        if sig == STOP:
            self.pauses += 1
            self.holding.set()
        else:
            self.holding.clear()

    @contextlib.contextmanager
    def stopping(self, child: subprocess.Popen[bytes]) -> Iterator[None]:
        """While the block runs, the training process `child` is stopped whenever requests are in flight."""
        with self._idle:
            self._children.append(child)
            if self._in_flight:
                self._signal_children(STOP)
        try:
            yield
        finally:
            with self._idle:
                self._children.remove(child)
                if self._in_flight and CONTINUE is not None:
                    child.send_signal(CONTINUE)  # leaving while stopped (the studio ends it): let it act on that
                    if not self._children:
                        self.holding.clear()

    def wait_until_idle(self) -> None:
        """Block while any request is in flight (what a training run in a thread calls at each boundary)."""
        with self._idle:
            if self._in_flight == 0:
                return
            self.pauses += 1
            self.holding.set()
            try:
                self._idle.wait_for(lambda: self._in_flight == 0)
            finally:
                self.holding.clear()

    def pausing(self, trainer: TrainCommand | Callable[..., Any]) -> TrainCommand | Callable[..., Any]:
        """A slot's `trainer` made to pause while requests run.

        A :class:`TrainCommand`'s child is stopped and continued by this object; a function (which
        runs a Trainer in the calling thread) waits at its step boundaries.
        """
        if isinstance(trainer, TrainCommand):
            return dataclasses.replace(trainer, answering=self)

        @functools.wraps(trainer)
        def run(*args: Any, **kwargs: Any) -> Any:
            with pause_points(self.wait_until_idle):
                return trainer(*args, **kwargs)
        return run

    def counted(self, fn: Callable[..., Any], threads: int | None = None) -> Callable[..., Any]:
        """`fn` counted as a request while it runs (plain, coroutine, generator or async generator function),
        computing with `threads` torch threads (None: whatever the count is)."""
        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def agen(*args: Any, **kwargs: Any) -> Any:
                with self.request(threads):
                    async for item in fn(*args, **kwargs):
                        yield item
            return agen
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Any:
                with self.request(threads):
                    yield from fn(*args, **kwargs)
            return gen
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def coro(*args: Any, **kwargs: Any) -> Any:
                with self.request(threads):
                    return await fn(*args, **kwargs)
            return coro

        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any) -> Any:
            with self.request(threads):
                return fn(*args, **kwargs)
        return plain

    def install(self, app: Any, threads: int | None = PAGE_THREADS) -> Any:
        """Count every event handler of the Gradio Blocks `app` as a request while it runs, computing with
        `threads` torch threads; returns `app`.

        Handlers marked with :func:`not_a_request` (the page's own progress timers) are left alone.
        """
        for block_fn in app.fns.values():
            if block_fn.fn is not None and not getattr(block_fn.fn, "_glassformer_counted", False) \
                    and not getattr(block_fn.fn, "_glassformer_not_a_request", False):
                block_fn.fn = self.counted(block_fn.fn, threads)
                block_fn.fn._glassformer_counted = True
        return app


def not_a_request(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn` as the page's own refresh (a timer redrawing a training run's progress), not a person's request.

    Training does not wait for it: an open page ticks every few seconds per tab, and holding the run at
    each tick made the background training of a first launch about 1.8 times slower.
    """
    fn._glassformer_not_a_request = True
    return fn
