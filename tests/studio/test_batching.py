"""The studio's batches compute in the main thread: MainThreadExecutor runs calls there, and hands them on when it stops.

The reference for "which thread" is ``threading.get_ident`` in the caller and in the call.
"""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("gradio")

from glassformer.studio.batching import MainThreadExecutor  # noqa: E402


def test_calls_from_other_threads_run_in_the_thread_that_runs_the_executor():
    executor, results, done = MainThreadExecutor(), [], threading.Event()

    def client():
        results.extend(executor.submit(lambda x: (x * 10, threading.get_ident()), n).result(30) for n in (1, 2))
        with pytest.raises(ValueError, match="bad"):
            executor.submit(int, "bad").result(30)  # a failing call reaches its caller; the loop goes on
        results.append(executor.submit(lambda: threading.get_ident()).result(30))
        done.set()

    thread = threading.Thread(target=client)
    thread.start()
    executor.run(lambda: not done.is_set(), poll=0.01)
    thread.join(30)
    here = threading.get_ident()
    assert results == [(10, here), (20, here), here]


def test_after_the_loop_stops_waiting_and_later_calls_run_in_a_worker_thread():
    executor = MainThreadExecutor()
    waiting = executor.submit(lambda: threading.get_ident())  # submitted while no loop runs
    executor.run(lambda: False)  # stops at once, as after Ctrl+C
    later = executor.submit(lambda: threading.get_ident())
    assert waiting.result(30) == later.result(30) != threading.get_ident()
    executor.shutdown()


def test_an_interrupt_during_a_call_fails_that_call_and_stops_the_loop():
    executor = MainThreadExecutor()

    def interrupted():
        raise KeyboardInterrupt

    call = executor.submit(interrupted)
    after = executor.submit(time.monotonic)
    with pytest.raises(KeyboardInterrupt):
        executor.run()
    with pytest.raises(RuntimeError, match="interrupted"):
        call.result(30)
    assert isinstance(after.result(30), float)  # handed to the worker thread, not lost
    executor.shutdown()
