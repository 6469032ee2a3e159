"""`glassformer serve` as a user runs it: a process on 127.0.0.1 that answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from glassformer._localhost import free_port
from glassformer.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"


def test_serve_answers_and_stops_on_sigterm(sentiment_model):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    server = subprocess.Popen([sys.executable, "-m", "glassformer.cli", "serve", str(sentiment_model), "--port",
                               str(port), "--precision", "fp32", "--max-wait-ms", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.2)
        assert health["status"] == "ok" and health["precision"] == "fp32" and health["model"] == str(sentiment_model)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": "loved it"}, timeout=30).json()
        assert answer[0]["text"] == "loved it" and answer[0]["label"] in ("negative", "positive")
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    # uvicorn finishes the accepted requests, then ends the process by the signal it caught, as is the convention.
    assert server.returncode == -signal.SIGTERM
    assert f"serving {sentiment_model} (text-classification, fp32) at http://127.0.0.1:{port}/predict" in err


def test_serve_refuses_what_it_cannot_serve_in_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert "expected a value >= 1" in capsys.readouterr().err


def test_serve_loads_the_model_in_the_thread_that_runs_its_batches(monkeypatch, capsys):
    # Torch's OpenMP threads form one team per thread that computes: a model loaded in the main thread and run
    # in another leaves two teams on the cores (serve/batcher.py). So `glassformer serve` loads where it runs.
    import threading

    from starlette.testclient import TestClient

    import glassformer.serve.app as app_module
    import glassformer.serve.endpoints as endpoints
    from glassformer.serve.endpoints import classify_endpoint

    threads = {}

    def classifier(texts, special_tokens="raise"):
        threads["ran"] = threading.get_ident()
        return [{"text": text, "label": "positive", "score": 1.0} for text in texts]

    def warm_up():
        threads["warmed"] = threading.get_ident()
        return 1

    classifier.warm_up = warm_up

    def fake_load(model, precision="auto", verify=True):
        threads["loaded"] = threading.get_ident()
        return classify_endpoint(classifier)

    def fake_run(app, host, port, timeout, announce):
        with TestClient(app) as client:
            threads["answer"] = client.post("/predict", json={"text": "fine"}).json()

    monkeypatch.setattr(endpoints, "load_endpoint", fake_load)
    monkeypatch.setattr(app_module, "run_server", fake_run)
    assert main(["serve", "any-model"]) == 0
    assert threads["answer"] == [{"text": "fine", "label": "positive", "score": 1.0}]
    assert threads["loaded"] == threads["ran"] != threading.get_ident()
    assert threads["warmed"] == threads["ran"]  # the batch sizes' kernels are built before serving, in that thread
