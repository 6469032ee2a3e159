"""Bad input, overload and departures: each gets its status and a one-line JSON error, and the server keeps answering.

A real uvicorn on 127.0.0.1 (a free port) serves either the tiny sentiment and language models or a test
double whose model waits for the test's signal, so a full queue or a timeout is made, never waited for.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from glassformer.serve.app import create_app
from glassformer.serve.endpoints import classify_endpoint, generate_endpoint, load_endpoint
from glassformer.serve.settings import ServeSettings
from tests.serve.conftest import running

GOOD = {"text": "the movie was great"}


def assert_one_line_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and "\n" not in response.text and "Traceback" not in response.text
    for word in words:
        assert word in body["error"]


def test_bad_requests_get_4xx_one_line_errors_and_the_server_keeps_answering(sentiment_model):
    settings = ServeSettings(max_body_bytes=2_000, max_text_chars=100)
    with running(create_app(load_endpoint(sentiment_model, precision="fp32"), settings)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        cases = [
            (client.post("/predict", content=b'{"text": "a' + b"b" * 3_000 + b'"}'), 413, "at most 2,000"),
            (client.post("/predict", json={"text": "word " * 30}), 413, "150 characters", "at most 100"),
            (client.post("/predict", content=b'{"text": "unfinished'), 400, "not valid JSON"),
            (client.post("/predict", content=b"\xff\xfe\x00"), 400, "not valid JSON"),
            (client.post("/predict", json=["a list"]), 422, "expected a JSON object, got a list"),
            (client.post("/predict", json={"text": 42}), 422, "text 0 must be a string, got a number"),
            (client.post("/predict", json={"texts": "not a list"}), 422, '"texts" must be a non-empty list'),
            (client.post("/predict", json={"texts": []}), 422, "non-empty list"),
            (client.post("/predict", json={"texts": ["fine", None]}), 422, "text 1 must be a string, got null"),
            (client.post("/predict", json={"text": "   "}), 422, "text 0 is empty"),
            (client.post("/predict", json={}), 422, 'exactly one of "text"'),
            (client.post("/predict", json={"txt": "typo"}), 422, "unknown field 'txt'"),
            (client.post("/predict", json={**GOOD, "special_tokens": "maybe"}), 422, "raise, allow, text"),
            (client.post("/predict", json={"text": "[CLS] the movie"}), 422, "special token"),
            (client.get("/predict"), 405, "Method Not Allowed"),
            (client.post("/nowhere", json=GOOD), 404, "Not Found"),
        ]
        for response, status, *words in cases:
            assert_one_line_error(response, status, *words)
        answer = client.post("/predict", json=GOOD)
        assert answer.status_code == 200 and answer.json()[0]["text"] == GOOD["text"]
        assert client.get("/health").json()["status"] == "ok"


class Gate:
    """A stand-in classifier that answers only once the test opens the gate; counts the batches it was given."""

    label_names = ["negative", "positive"]

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def __call__(self, texts, special_tokens="raise"):
        self.calls += 1
        self.started.set()
        if not self.open.wait(20):
            raise RuntimeError("the test never opened the gate")
        return [{"text": t, "label": "positive", "score": 1.0} for t in texts]


def wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.01)


def test_a_full_queue_answers_503_with_retry_after_and_accepted_requests_still_finish():
    gate = Gate()
    app = create_app(classify_endpoint(gate), ServeSettings(max_batch=1, max_wait_ms=0, queue_size=1))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/predict", json={"text": "first"})
        assert gate.started.wait(20)  # in the model
        second = pool.submit(client.post, "/predict", json={"text": "second"})
        wait_until(lambda: client.get("/health").json()["waiting"] == 1)  # on the queue
        refused = client.post("/predict", json={"text": "third"})
        assert_one_line_error(refused, 503, "busy", "try again")
        assert refused.headers["retry-after"] == "1"
        gate.open.set()
        assert [f.result().json()[0]["text"] for f in (first, second)] == ["first", "second"]
        assert client.post("/predict", json={"text": "after"}).status_code == 200


def test_a_slow_answer_gets_504_and_the_server_recovers():
    gate = Gate()
    app = create_app(classify_endpoint(gate), ServeSettings(max_wait_ms=0, timeout=0.2))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert_one_line_error(client.post("/predict", json=GOOD), 504, "timeout of 0.2 s")
        gate.open.set()
        assert client.post("/predict", json=GOOD).status_code == 200


def test_a_bug_in_the_model_is_a_500_with_one_line_and_no_traceback():
    def broken(texts, special_tokens="raise"):
        raise KeyError("lost")

    broken.label_names = ["a"]
    with running(create_app(classify_endpoint(broken))) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert_one_line_error(client.post("/predict", json=GOOD), 500, "internal error: KeyError: 'lost'")
        assert client.get("/health").status_code == 200


def test_shutdown_finishes_the_accepted_request():
    gate = Gate()
    app = create_app(classify_endpoint(gate), ServeSettings(max_wait_ms=0))
    with ThreadPoolExecutor(1) as pool:
        with running(app) as url:
            client = httpx.Client(base_url=url, timeout=30)
            accepted = pool.submit(client.post, "/predict", json={"text": "in flight"})
            assert gate.started.wait(20)
            threading.Timer(0.3, gate.open.set).start()  # opens while the server is shutting down
        # `running` has asked uvicorn to exit and waited for it: the request was answered first.
        assert accepted.result().status_code == 200 and accepted.result().json()[0]["text"] == "in flight"


class Endless:
    """A stand-in language model whose stream goes on (for up to a minute) until the server stops reading it."""

    def __init__(self) -> None:
        self.pieces = 0

    def stream(self, prompt, max_new_tokens, **sampling):
        deadline = time.monotonic() + 60
        for _ in range(max_new_tokens):
            if time.monotonic() > deadline:
                return
            self.pieces += 1
            time.sleep(0.001)
            yield "x"


def test_a_client_leaving_mid_stream_stops_the_generation_and_the_server_keeps_answering():
    """Were the stream not stopped, the worker would go on generating it and the next request would get 504."""
    model = Endless()
    app = create_app(generate_endpoint(model), ServeSettings(timeout=10))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", "/generate", json={"text": "the", "max_new_tokens": 100_000,
                                                      "stream": True}) as stream:
            assert stream.status_code == 200
            assert next(stream.iter_lines()) == "event: token"
        answer = client.post("/generate", json={"text": "the", "max_new_tokens": 5})
        assert answer.status_code == 200, answer.text
        assert answer.json() == [{"prompt": "the", "text": "xxxxx"}]
        assert_one_line_error(client.post("/generate", json={"texts": ["a", "b"], "stream": True}), 422,
                              "one prompt")
        assert_one_line_error(client.post("/generate", json={**GOOD, "top_p": 0}), 422, '"top_p" must be > 0.0')
        assert_one_line_error(client.post("/generate", json={**GOOD, "stream": "yes"}), 422, "true or false")


@pytest.mark.parametrize("body, words", [({"images": [7]}, "image 0 must be base64"),
                                         ({"image": "@@@"}, "not valid base64"),
                                         ({"image": {"file": 3, "data": "aGk="}}, '"file" must be a string')])
def test_bad_images_are_422(vit_model, body, words):
    with running(create_app(load_endpoint(vit_model, precision="fp32"))) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        assert_one_line_error(client.post("/classify-image", content=json.dumps(body)), 422, words)
