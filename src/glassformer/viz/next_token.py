"""The next-token distribution a view draws: the model's own, and the one that temperature, top-k and top-p leave.

From one row of next-token logits z (``GenerationStep.logits``), :func:`next_token_distribution`
gives p = softmax(z) and the distribution a draw would use after
:func:`~glassformer.inference.sampling.process_logits` (the same cuts as Hugging Face's temperature,
top-k and top-p logits processors), and says for each token which cut removed it. Nothing here
runs the model, so a slider can redraw the bars for other settings from the cached logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from glassformer.inference.sampling import process_logits

KEPT, CUT_TOP_K, CUT_TOP_P, NOT_GREEDY = "", "top-k", "top-p", "greedy"


@dataclass
class NextTokenDistribution:
    """p(token | context) before and after the sampling cuts, over the whole vocabulary ``(V,)``.

    ``probs`` is softmax(z) at temperature 1; ``sample_probs`` is softmax(process_logits(z)), the
    distribution a draw uses (all mass on the argmax when greedy); ``cut[i]`` names what removed
    token i ("" when it stays: "top-k", "top-p", or "greedy").
    """

    probs: np.ndarray
    sample_probs: np.ndarray
    cut: list[str]
    temperature: float
    top_k: int | None
    top_p: float | None

    @property
    def greedy(self) -> bool:
        """Temperature 0: the most likely token is taken, nothing is drawn."""
        return self.temperature == 0.0

    @property
    def kept(self) -> int:
        """How many tokens the draw can still pick."""
        return int(np.count_nonzero(self.sample_probs))

    def top(self, n: int) -> np.ndarray:
        """The ids of the `n` tokens the model finds most likely (temperature 1), most likely first."""
        order = np.argsort(-self.probs, kind="stable")
        return order[:n]


def sampling_settings(temperature: float, top_k: int | None, top_p: float | None
                      ) -> tuple[float, int | None, float | None]:
    """The cuts that are switched on: top-k 0 (or none) and top-p 1 (or none) mean off, as in ``generate``."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    top_k = int(top_k) if top_k else None
    top_p = float(top_p) if top_p is not None and top_p < 1.0 else None
    return float(temperature), top_k, top_p


def next_token_distribution(logits: Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> NextTokenDistribution:
    """The distributions of one step's logits ``(V,)`` under `temperature`, `top_k` and `top_p` (see the module)."""
    temperature, top_k, top_p = sampling_settings(temperature, top_k, top_p)
    row = torch.as_tensor(logits).detach().float().reshape(1, -1)  # (1, V)
    probs = row.softmax(dim=-1)[0]
    cut = [KEPT] * row.shape[-1]
    if temperature == 0.0:
        best = int(row.argmax())
        sample = torch.zeros_like(probs)
        sample[best] = 1.0
        cut = [KEPT if i == best else NOT_GREEDY for i in range(row.shape[-1])]
        return NextTokenDistribution(probs.numpy(), sample.numpy(), cut, temperature, top_k, top_p)
    after_k = process_logits(row, temperature=temperature, top_k=top_k)
    final = process_logits(row, temperature=temperature, top_k=top_k, top_p=top_p)
    for i in torch.isneginf(after_k[0]).nonzero()[:, 0].tolist():
        cut[i] = CUT_TOP_K
    for i in (torch.isneginf(final[0]) & ~torch.isneginf(after_k[0])).nonzero()[:, 0].tolist():
        cut[i] = CUT_TOP_P
    sample = final.softmax(dim=-1)[0]
    return NextTokenDistribution(probs.numpy(), sample.numpy(), cut, temperature, top_k, top_p)
