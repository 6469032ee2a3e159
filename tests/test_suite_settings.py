"""The suite's own rules, checked: Hypothesis is derandomised, module-level settings objects included."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE", "glassformer") != "glassformer",
                    reason="another Hypothesis profile was chosen")
def test_hypothesis_draws_the_same_examples_every_time():
    from tests.tokenizers.test_wordpiece import FAST

    assert settings.default.derandomize and FAST.derandomize
    drawn: list[list[int]] = []

    @settings(max_examples=20)
    @given(st.integers())
    def record(value):
        drawn[-1].append(value)

    for _ in range(2):
        drawn.append([])
        record()
    assert drawn[0] == drawn[1] and len(set(drawn[0])) > 1
