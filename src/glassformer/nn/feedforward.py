"""The position-wise feed-forward network of a transformer layer."""

from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,  # original Transformer
    "gelu": F.gelu,  # exact, with erf: BERT, ViT
    "gelu_tanh": _gelu_tanh,  # tanh approximation: GPT-2 ("gelu_new")
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class FeedForward(nn.Module):
    """Position-wise feed-forward network: FFN(x) = act(x W1 + b1) W2 + b2, applied to each token alone."""

    def __init__(
        self, d_model: int, d_ff: int, activation: str = "relu", dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d_model)`` → ``(..., d_model)`` through a hidden layer of width ``d_ff``."""
        return self.fc2(self.dropout(self.activation(self.fc1(x))))
