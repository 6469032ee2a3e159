"""The studio's policy for a trainer run in a thread: while a request is answered, it waits at a step boundary.

(The studio's own slots train in a child process, which is stopped instead: test_training_process.py.)
A tiny real Trainer (a linear model, a few dozen steps) runs in a thread the way a function trainer
runs; the test steps it with events, never with the clock: the training callback blocks at
a chosen step until the test lets it go, and :attr:`Answering.holding` says when the trainer waits
at a boundary. Reference for "the pause changes nothing": the same run without pausing.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from glassformer.studio.answering import Answering
from glassformer.training import TrainConfig, Trainer

WAIT = 60  # seconds an event may take before the test fails (a hang guard, never a timing assert)


def tiny_run(steps: int, callbacks=(), evaluate=None) -> Trainer:
    """A linear regression trained for `steps` steps with a held-out set (so evaluation batches run too)."""
    torch.manual_seed(0)
    xs = torch.randn(64, 4)
    data = [{"x": x, "y": x.sum(-1, keepdim=True)} for x in xs]

    def collate(batch):
        return {"x": torch.stack([b["x"] for b in batch]), "y": torch.stack([b["y"] for b in batch])}

    def loss(model, batch):
        return nn.functional.mse_loss(model(batch["x"]), batch["y"])

    config = TrainConfig(max_steps=steps, batch_size=8, lr=0.05, eval_every=10, progress=False, precision="fp32",
                         warmup_ratio=0.0)
    return Trainer(nn.Linear(4, 1), config, data, collate_fn=collate, loss_fn=loss, eval_data=data[:16],
                   callbacks=callbacks, evaluate=evaluate)


def test_a_request_holds_training_at_a_step_boundary_and_training_resumes_after():
    answering = Answering()
    steps: list[int] = []
    at_step_3, go_on = threading.Event(), threading.Event()

    def record(trainer, record) -> None:
        steps.append(record["step"])
        if record["step"] == 3:
            at_step_3.set()
            assert go_on.wait(WAIT)

    trainer = tiny_run(30, [record])
    errors: list[BaseException] = []

    def train() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=answering.pausing(train))
    thread.start()
    assert at_step_3.wait(WAIT)
    with answering.request():  # a request arrives while step 3's callback runs
        go_on.set()
        assert answering.holding.wait(WAIT), "training did not stop at the next boundary"
        assert steps == [1, 2, 3]  # nothing more was trained while the request was in flight
        assert thread.is_alive()
    thread.join(WAIT)
    assert not thread.is_alive() and errors == []
    assert steps == list(range(1, 31)) and answering.pauses == 1 and answering.in_flight == 0

    alone = tiny_run(30)
    alone.fit()
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[name]), f"{name} differs after the pause"


def test_a_request_holds_an_evaluation_between_its_batches():
    answering = Answering()
    scored: list[int] = []
    in_eval, go_on = threading.Event(), threading.Event()

    def evaluate(model, loader):
        for batch in loader:
            scored.append(len(batch["x"]))
            if len(scored) == 1:
                in_eval.set()
                assert go_on.wait(WAIT)
        return {"loss": 0.0}

    trainer = tiny_run(10, evaluate=evaluate)  # one evaluation (two batches of 8) at step 10
    thread = threading.Thread(target=answering.pausing(trainer.fit))
    thread.start()
    assert in_eval.wait(WAIT)
    with answering.request():
        go_on.set()
        assert answering.holding.wait(WAIT), "the evaluation did not stop before its next batch"
        assert scored == [8]
    thread.join(WAIT)
    assert not thread.is_alive() and scored == [8, 8]


def test_training_outside_the_studio_never_waits():
    """pause_points belong to the thread that opened them: a run in another thread is not held."""
    answering = Answering()
    trainer = tiny_run(5)
    with answering.request():
        trainer.fit()  # in this thread, with no pause_points open: it must not wait for the request above
    assert trainer.progress.step == 5 and answering.pauses == 0


def test_counted_handlers_count_while_they_run_whatever_their_kind():
    answering = Answering()
    seen: list[int] = []

    def plain(x):
        seen.append(answering.in_flight)
        return x

    def gen(x):
        seen.append(answering.in_flight)
        yield x

    async def coro(x):
        seen.append(answering.in_flight)
        return x

    import asyncio

    assert answering.counted(plain)(1) == 1
    assert list(answering.counted(gen)(2)) == [2]
    assert asyncio.run(answering.counted(coro)(3)) == 3
    assert seen == [1, 1, 1] and answering.in_flight == 0


def test_a_request_through_gradio_holds_the_training_job():
    """A real Gradio app with the policy installed: its handler runs while the training thread waits."""
    gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")
    from gradio_client import Client

    from tests.studio.helpers import serve

    answering = Answering()
    arrived = threading.Event()

    def wait_for_a_request(trainer, record) -> None:
        if record["step"] == 2:
            arrived.wait(WAIT)

    trainer = tiny_run(20, [wait_for_a_request])

    def handler(text: str) -> str:
        arrived.set()  # training leaves step 2's callback and stops at the next boundary
        held = answering.holding.wait(WAIT)
        return f"{text}: training held at step {trainer.progress.step}" if held else "training kept going"

    with gr.Blocks() as app:
        box, out = gr.Textbox(), gr.Textbox()
        box.submit(handler, box, out, api_name="hold")
    answering.install(app)
    job = threading.Thread(target=answering.pausing(trainer.fit))
    job.start()
    for url in serve(app):
        answer = Client(url, verbose=False).predict("hello", api_name="/hold")
    job.join(WAIT)
    assert answer == "hello: training held at step 2"
    assert trainer.progress.step == 20 and answering.pauses >= 1


def test_the_pages_own_progress_timer_is_not_a_request_and_never_holds_training():
    """A handler marked not_a_request runs uncounted: training does not wait for a page's refresh ticks."""
    gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")
    from glassformer.studio.answering import not_a_request

    answering = Answering()
    seen: list[int] = []

    def clicked() -> None:
        seen.append(answering.in_flight)

    @not_a_request
    def ticked() -> None:
        seen.append(answering.in_flight)

    with gr.Blocks() as app:
        button = gr.Button()
        button.click(clicked)
        gr.Timer(3.0).tick(ticked)
    answering.install(app, threads=None)  # called here in the main thread: leave its torch thread count alone
    handlers = {block_fn.fn.__name__: block_fn.fn for block_fn in app.fns.values()}
    handlers["clicked"]()
    handlers["ticked"]()
    assert seen == [1, 0]  # the click is counted while it runs; the tick is not


def test_a_request_computes_with_the_threads_it_is_counted_with():
    """The page's handlers compute with PAGE_THREADS torch threads, an /api batch with the count it is given,
    and a batch the page's /predict gathers with BATCH_THREADS; each in a worker thread, as Gradio and the
    batchers run them."""
    gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")
    import asyncio

    from glassformer.studio.answering import BATCH_THREADS, PAGE_THREADS
    from glassformer.studio.batching import LoopBatcher

    answering = Answering()

    def threads_now() -> int:
        return torch.get_num_threads()

    with gr.Blocks() as app:
        gr.Button().click(threads_now)
    answering.install(app)
    page = next(iter(app.fns.values())).fn
    batch = answering.counted(threads_now, threads=2)
    gathered = LoopBatcher(lambda items, _: [threads_now() for _ in items])
    seen: list[int] = []
    default = torch.get_num_threads()  # the main thread's count: what other threads start with here

    def in_a_worker() -> None:
        torch.set_num_threads(2)  # whatever the previous request left
        seen.append(page())
        seen.append(batch())
        seen.append(page())
        seen.append(asyncio.run(gathered.one("a sentence")))
        torch.set_num_threads(default)  # the count is shared by every thread but the main one: give it back

    worker = threading.Thread(target=in_a_worker)
    worker.start()
    worker.join(WAIT)
    assert PAGE_THREADS == 1 and seen == [1, 2, 1, BATCH_THREADS]
