"""The position-wise feed-forward network of a transformer layer."""

from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from glassformer.nn.hooks import HookPoint, hook, is_hooked


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
    """Position-wise feed-forward network: FFN(x) = act(x W1 + b1) W2 + b2, applied to each token alone.

    With ``fast`` (decided at construction; ``None``: wherever :mod:`glassformer.nn.kernels` has its fused
    kernels) CPU inference computes the bias and the activation inside each matmul; the hidden units are
    then only materialised once.
    """

    def __init__(
        self, d_model: int, d_ff: int, activation: str = "relu", dropout: float = 0.0, bias: bool = True,
        *, fast: bool | None = None,
    ) -> None:
        from glassformer.nn import kernels  # kernels reads this module's activation table

        super().__init__()
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.fast = kernels.use_fused_kernels() if fast is None else fast
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d_model)`` → ``(..., d_model)`` through a hidden layer of width ``d_ff``."""
        from glassformer.nn import kernels

        fast = (self.fast and not self.training and type(self.fc1) is nn.Linear and type(self.fc2) is nn.Linear
                and kernels.fusable(x, self.fc1.weight))
        if fast and not is_hooked(self.hook_pre):
            hidden = kernels.linear(x, self.fc1.weight, self.fc1.bias, self.activation_name)
        else:
            pre = kernels.linear(x, self.fc1.weight, self.fc1.bias) if fast else self.fc1(x)
            hidden = self.activation(hook(self.hook_pre, pre))
        hidden = self.dropout(hook(self.hook_post, hidden))
        return kernels.linear(hidden, self.fc2.weight, self.fc2.bias) if fast else self.fc2(hidden)
