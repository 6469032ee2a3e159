"""How the studio shares the cores between answering requests and training in the background.

The policy: **a request comes first**. While any request is being answered, a background training
run waits at its next batch boundary (before an optimizer step or an evaluation batch), and the
request computes with every torch thread (torch's default: one per core). When the last request in
flight is answered, training goes on from where it stopped, with the same weights it would have
reached without the pause.

Why not split the cores (one thread each)? ``torch.set_num_threads`` is global to the process, and
training runs in a thread of the studio's process, so both would get the same count; two threads
each running a 2-thread torch region oversubscribe 2 cores, and a request then waits on the
trainer's threads (the Explain button measured 4x slower that way). Pausing costs training only
the seconds that requests take, and a request meets at most the end of one training step.

:class:`Answering` counts the requests in flight: :meth:`Answering.install` wraps every event
handler of a Gradio app, :meth:`Answering.counted` a plain function (the ``/api`` batch), and
:meth:`Answering.pausing` wraps a training function so that its Trainer waits through
:func:`glassformer.training.pause_points`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from typing import Any, Callable, Iterator

from glassformer.training import pause_points


class Answering:
    """The requests in flight, and the wait a training run makes at a step boundary while there are any."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._in_flight = 0
        self.pauses = 0  # how many times a training run waited for requests (for tests and the benchmark)
        self.holding = threading.Event()  # set while a training run waits at a boundary

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """The block answers a request: training waits at its next boundary until the block (and every other) ends."""
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.notify_all()

    def wait_until_idle(self) -> None:
        """Block while any request is in flight (what a training run calls at each boundary)."""
        with self._idle:
            if self._in_flight == 0:
                return
            self.pauses += 1
            self.holding.set()
            try:
                self._idle.wait_for(lambda: self._in_flight == 0)
            finally:
                self.holding.clear()

    def pausing(self, train: Callable[..., Any]) -> Callable[..., Any]:
        """`train` (which runs a Trainer in the calling thread) made to wait at step boundaries while requests run."""
        @functools.wraps(train)
        def run(*args: Any, **kwargs: Any) -> Any:
            with pause_points(self.wait_until_idle):
                return train(*args, **kwargs)
        return run

    def counted(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` counted as a request while it runs (plain, coroutine, generator or async generator function)."""
        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def agen(*args: Any, **kwargs: Any) -> Any:
                with self.request():
                    async for item in fn(*args, **kwargs):
                        yield item
            return agen
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Any:
                with self.request():
                    yield from fn(*args, **kwargs)
            return gen
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def coro(*args: Any, **kwargs: Any) -> Any:
                with self.request():
                    return await fn(*args, **kwargs)
            return coro

        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any) -> Any:
            with self.request():
                return fn(*args, **kwargs)
        return plain

    def install(self, app: Any) -> Any:
        """Count every event handler of the Gradio Blocks `app` as a request while it runs; returns `app`.

        Handlers marked with :func:`not_a_request` (the page's own progress timers) are left alone.
        """
        for block_fn in app.fns.values():
            if block_fn.fn is not None and not getattr(block_fn.fn, "_glassformer_counted", False) \
                    and not getattr(block_fn.fn, "_glassformer_not_a_request", False):
                block_fn.fn = self.counted(block_fn.fn)
                block_fn.fn._glassformer_counted = True
        return app


def not_a_request(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn` as the page's own refresh (a timer redrawing a training run's progress), not a person's request.

    Training does not wait for it: an open page ticks every few seconds per tab, and holding the run at
    each tick made the background training of a first launch about 1.8 times slower.
    """
    fn._glassformer_not_a_request = True
    return fn
