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


def test_the_studio_process_answers_its_batches_and_stops_on_sigterm(sentiment_dir):
    """`glassformer studio` as a user runs it: the main thread runs the batches, so /api/predict must answer (as the
    classifier itself answers) and SIGTERM must still stop the process cleanly."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from glassformer._localhost import free_port
    from glassformer.tasks.sentiment import SentimentClassifier

    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    port = free_port()
    studio = subprocess.Popen([sys.executable, "-m", "glassformer.cli", "studio", "--port", str(port),
                               "--no-background-training", "--sentiment-model", str(sentiment_dir)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    texts = ["A gorgeous, witty film.", "Dull and far too long.", "It's fine."]
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert studio.poll() is None and time.monotonic() < deadline, studio.stdout.read()
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/api/predict", json={"texts": texts}, timeout=60).json()
    finally:
        studio.send_signal(signal.SIGTERM)
        out, _ = studio.communicate(timeout=120)
    expected = SentimentClassifier.load(sentiment_dir, precision="auto")(texts)
    assert [(a["text"], a["label"]) for a in answer] == [(e["text"], e["label"]) for e in expected]
    assert [a["score"] for a in answer] == pytest.approx([e["score"] for e in expected], abs=1e-6)
    assert studio.returncode == 0, out
    assert "glassformer studio: stopping." in out
