"""Suite-wide settings: Hypothesis draws the same examples on every run, so a failure is reproducible and a pass
is not luck (set HYPOTHESIS_PROFILE=explore to draw fresh ones)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import pytest
from hypothesis import settings

settings.register_profile("glassformer", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "glassformer"))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, then give back the number there was before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test: tiny tensors gain nothing from threads, and on a busy machine they lose a
    lot waiting for each other. Files of tiny models use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    with torch_threads(1):
        yield
