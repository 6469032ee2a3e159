"""The micro-batcher: concurrent requests run as one batch, each gets its own results, failures stay their own.

The reference is a counting test double for the model: how many times it was called and with what.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from glassformer.serve.batcher import MicroBatcher, QueueFull


class Doubler:
    """A stand-in model: each item x becomes 10·x; records every batch it was given; refuses negative numbers."""

    def __init__(self) -> None:
        self.batches: list[tuple[list, object]] = []

    def __call__(self, items: list, options: object) -> list:
        self.batches.append((list(items), options))
        if any(x < 0 for x in items):
            raise ValueError("negative input")
        return [10 * x for x in items]


def test_concurrent_requests_run_as_one_batch_and_each_gets_its_own_results_in_order():
    model = Doubler()

    async def scenario():
        # The wait is long and the batch exactly holds the four requests' seven items, so the batch closes when full.
        batcher = MicroBatcher(model, max_batch=7, max_wait_ms=10_000, queue_size=16)
        await batcher.start()
        answers = await asyncio.gather(batcher.submit([1]), batcher.submit([2, 3]), batcher.submit([4, 5, 6]),
                                       batcher.submit([7]))
        await batcher.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers == [[10], [20, 30], [40, 50, 60], [70]]
    assert model.batches == [([1, 2, 3, 4, 5, 6, 7], None)]


def test_a_lone_request_waits_only_max_wait_and_options_run_as_separate_groups():
    model = Doubler()

    async def scenario():
        batcher = MicroBatcher(model, max_batch=100, max_wait_ms=20, queue_size=16)
        await batcher.start()
        alone = await batcher.submit([1])
        grouped = await asyncio.gather(batcher.submit([2], "a"), batcher.submit([3], "b"), batcher.submit([4], "a"))
        await batcher.close()
        return alone, grouped

    alone, grouped = asyncio.run(scenario())
    assert alone == [10] and grouped == [[20], [30], [40]]
    assert model.batches == [([1], None), ([2, 4], "a"), ([3], "b")]


def test_a_failing_request_fails_alone_and_its_neighbours_are_answered():
    model = Doubler()

    async def scenario():
        batcher = MicroBatcher(model, max_batch=3, max_wait_ms=10_000, queue_size=16)
        await batcher.start()
        answers = await asyncio.gather(batcher.submit([1]), batcher.submit([-1]), batcher.submit([2]),
                                       return_exceptions=True)
        await batcher.close()
        return answers

    first, bad, last = asyncio.run(scenario())
    assert (first, last) == ([10], [20])
    assert isinstance(bad, ValueError) and str(bad) == "negative input"
    assert model.batches[0] == ([1, -1, 2], None)  # tried together once, then one by one


def test_with_a_burst_gap_a_lone_request_runs_at_once_and_a_burst_still_gathers():
    model = Doubler()

    async def scenario():
        # A minute's wait: without the gap rule the lone request would sit there; the burst closes when full.
        batcher = MicroBatcher(model, max_batch=3, max_wait_ms=60_000, burst_gap_ms=60_000, queue_size=16)
        await batcher.start()
        alone = await asyncio.wait_for(batcher.submit([1]), 30)
        burst = await asyncio.gather(batcher.submit([2]), batcher.submit([3]), batcher.submit([4]))
        await batcher.close()
        return alone, burst

    alone, burst = asyncio.run(scenario())
    assert alone == [10] and burst == [[20], [30], [40]]
    assert model.batches == [([1], None), ([2, 3, 4], None)]


async def in_the_worker(batcher: MicroBatcher) -> None:
    """Returns once the first request has left the queue and its batch is running."""
    while batcher.batches_run == 0:
        await asyncio.sleep(0.005)


def held_doubler():
    """A Doubler, and its run function that waits for the returned event before answering (at most 10 s)."""
    release, model = threading.Event(), Doubler()

    def slow(items, options):
        release.wait(10)
        return model(items, options)

    return release, model, slow


def test_a_full_queue_refuses_and_close_finishes_what_was_accepted():
    release, model, slow = held_doubler()

    async def scenario():
        batcher = MicroBatcher(slow, max_batch=1, max_wait_ms=0, queue_size=1)
        await batcher.start()
        running = asyncio.ensure_future(batcher.submit([1]))
        await in_the_worker(batcher)
        waiting = asyncio.ensure_future(batcher.submit([2]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="1 requests are already waiting"):
            await batcher.submit([3])
        release.set()
        await batcher.close()  # returns only once the accepted requests are answered
        return running.result(), waiting.result()

    assert asyncio.run(scenario()) == ([10], [20])


def test_a_request_that_times_out_is_skipped_by_its_batch():
    release, model, slow = held_doubler()

    async def scenario():
        batcher = MicroBatcher(slow, max_batch=1, max_wait_ms=0, queue_size=4)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit([1]))
        await in_the_worker(batcher)
        with pytest.raises(asyncio.TimeoutError):
            await batcher.submit([2], timeout=0.05)
        release.set()
        result = await first
        await batcher.close()
        return result

    assert asyncio.run(scenario()) == [10]
    assert model.batches == [([1], None)]  # the request that gave up never reached the model


def test_the_wait_counts_from_arrival_so_a_request_that_queued_behind_a_batch_does_not_wait_again():
    model = Doubler()

    async def scenario():
        batcher = MicroBatcher(model, max_batch=100, max_wait_ms=60_000, queue_size=16)
        await batcher.start()
        # Stands for a request that queued a minute ago while the previous batch ran: its wait is over. Counting
        # the wait from when the gatherer took it (the first version) held it for another minute.
        queued = batcher.enqueue([1])
        queued.arrived -= 120
        answer = await asyncio.wait_for(batcher.result(queued), 30)
        await batcher.close()
        return answer

    assert asyncio.run(scenario()) == [10]


def test_the_batches_run_in_the_thread_the_model_was_loaded_in_which_stays_the_callers():
    from glassformer.serve.batcher import model_thread

    worker, threads = model_thread(), []
    loaded_in = worker.submit(threading.get_ident).result()

    def model(items, options):
        threads.append(threading.get_ident())
        return items

    async def scenario():
        batcher = MicroBatcher(model, max_batch=4, max_wait_ms=0, queue_size=4, executor=worker)
        await batcher.start()
        answers = [await batcher.submit([1]), await batcher.submit([2])]
        await batcher.close()
        return answers

    assert asyncio.run(scenario()) == [[1], [2]]
    assert threads == [loaded_in, loaded_in] and loaded_in != threading.get_ident()
    assert worker.submit(threading.get_ident).result() == loaded_in  # close() left it to its owner
    worker.shutdown()
