"""The settings of ``glassformer serve`` (apart from the model), kept free of the web stack so the CLI reads them cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and what it accepts: the flags of ``glassformer serve``."""

    max_batch: int = 64  # inputs run together at most (64: a burst of 50 is one forward pass)
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    burst_gap_ms: float | None = None  # a request this long after the one before it runs at once (None: it waits)
    queue_size: int = 256  # requests waiting at most; one more gets 503
    timeout: float = 30.0  # seconds a request may wait for its answer (504 after)
    max_body_bytes: int = 1_000_000
    max_text_chars: int = 10_000
