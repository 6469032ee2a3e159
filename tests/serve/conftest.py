"""What the server's tests share: tiny saved models of every family, and a real uvicorn on a free local port.

The models are the data-free ones of :mod:`tests.pretrained.helpers` (a few optimizer steps from random
weights, saved as ``glassformer train`` saves them); the sentence encoder is the tiny sentiment model's
backbone exported as sentence-transformers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from glassformer._localhost import free_port
from tests.pretrained import helpers


@pytest.fixture(scope="session")
def serve_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-models")


@pytest.fixture(scope="session")
def sentiment_model(serve_root) -> Path:
    return helpers.sentiment_dir(serve_root / "sentiment")


@pytest.fixture(scope="session")
def translate_model(serve_root) -> Path:
    return helpers.translate_dir(serve_root / "translate")


@pytest.fixture(scope="session")
def vit_model(serve_root) -> Path:
    return helpers.vit_dir(serve_root / "vit")


@pytest.fixture(scope="session")
def lm_model(serve_root) -> Path:
    return helpers.lm_dir(serve_root / "lm")


@pytest.fixture(scope="session")
def encoder_model(serve_root, sentiment_model) -> Path:
    from glassformer.pretrained.export import export

    return export(sentiment_model, "sentence-transformers", serve_root / "encoder").path


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1 in a thread; yields its URL, then shuts it down gracefully."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                          access_log=False, timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)
