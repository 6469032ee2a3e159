"""Feed-forward network FFN(x) = act(x W1 + b1) W2 + b2."""

from __future__ import annotations

import math

import pytest
import torch

from glassformer.nn import FeedForward


def _gelu_erf(x: float) -> float:
    return 0.5 * x * (1 + math.erf(x / math.sqrt(2)))


def _gelu_tanh(x: float) -> float:
    return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


@pytest.mark.parametrize(
    "name, act", [("relu", lambda x: max(x, 0.0)), ("gelu", _gelu_erf), ("gelu_tanh", _gelu_tanh)]
)
def test_feedforward_is_the_formula(name: str, act) -> None:
    """Independent reference: the activations written with Python's math module."""
    torch.manual_seed(0)
    ffn = FeedForward(3, 5, activation=name).double()
    x = torch.randn(3, dtype=torch.float64)
    w1, b1 = ffn.fc1.weight.tolist(), ffn.fc1.bias.tolist()
    w2, b2 = ffn.fc2.weight.tolist(), ffn.fc2.bias.tolist()
    hidden = [act(sum(w * xi for w, xi in zip(row, x.tolist())) + b) for row, b in zip(w1, b1)]
    expected = [sum(w * h for w, h in zip(row, hidden)) + b for row, b in zip(w2, b2)]
    assert ffn(x).tolist() == pytest.approx(expected, abs=1e-12)


def test_unknown_activation_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; choose one of \['gelu', 'gelu_tanh', 'relu'\]"):
        FeedForward(4, 8, activation="swish")
