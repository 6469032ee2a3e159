"""Faithfulness of an attribution, measured: deletion and insertion curves and the area over them (AOPC).

An attribution is faithful when the units it ranks first are the ones the prediction depends on. Take
the M units the baseline changes (non-special tokens, or every patch), ordered by score, highest first
(ties keep input order), and let ``x^(k)`` be the input with its first k units perturbed:

- deletion (most relevant first, MoRF): the first k units set to the baseline; ``p_k = p(target | x^(k))``
  from ``p_0`` (the input) down to ``p_M`` (the whole baseline);
- insertion: the baseline with the first k units put back; ``p_k`` from the baseline up to the input.

AOPC, the area over the perturbation curve (Samek et al. 2017), averaged over the M + 1 points
``k = 0 … M``:

- deletion: ``AOPC = 1/(M+1) Σ_k (p_0 − p_k)``: large when removing the top units soon lowers p;
- insertion: ``AOPC = 1/(M+1) Σ_k (p_k − p_0)``: large when putting the top units back soon raises p.

Both are differences of probabilities, so they lie in [−1, 1]; higher is more faithful. A random
order is the reference a method should beat. With ``points=P`` the curve is taken at the P fractions
``0, 1/(P−1), …, 1`` of the M units only (``k = round(f·M)``, repeats dropped) and AOPC averages over
those: a cheaper estimate of the same area for long inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from glassformer.errors import UsageError
from glassformer.lens.attribution import Prediction

KINDS = ("deletion", "insertion")


@dataclass
class PerturbationCurve:
    """p(target) after perturbing the top-k units, for k = 0 … M (``fractions`` = k / M)."""

    kind: str
    fractions: list[float]
    probs: list[float]
    order: list[int]  # the units in the order they were perturbed

    @property
    def aopc(self) -> float:
        """Area over the perturbation curve (see the module docstring); higher is more faithful."""
        return aopc(self)


def aopc(curve: PerturbationCurve) -> float:
    """Deletion: mean of ``p_0 − p_k``; insertion: mean of ``p_k − p_0``, over k = 0 … M."""
    first = curve.probs[0]
    sign = 1.0 if curve.kind == "deletion" else -1.0
    return sum(sign * (first - p) for p in curve.probs) / len(curve.probs)


def perturbation_curve(prediction: Prediction, scores: Tensor, kind: str = "deletion", target: int | None = None,
                       batch_size: int = 64, points: int | None = None) -> PerturbationCurve:
    """The deletion or insertion curve of `prediction` for the unit `scores` ``(N,)`` (only movable units count).

    `points`: take the curve at that many evenly spaced fractions instead of at every k (see the module).
    """
    if kind not in KINDS:
        raise UsageError(f"kind={kind!r}; expected one of {', '.join(KINDS)}")
    scores = torch.as_tensor(scores).flatten()
    if scores.numel() != prediction.n_units:
        raise UsageError(f"{scores.numel()} scores for {prediction.n_units} units")
    target = prediction.target(target)
    units = prediction.movable.nonzero().flatten()
    order = units[torch.argsort(scores[units].float(), descending=True, stable=True)].tolist()
    x, x0 = prediction.features(), prediction.baseline()
    start, put = (x, x0) if kind == "deletion" else (x0, x)
    steps = start.repeat(len(order) + 1, 1, 1)  # row k: the first k units of the order perturbed
    for k, unit in enumerate(order, start=1):
        steps[k:, unit] = put[0, unit]
    m = len(order)
    if points is None:
        ks = list(range(m + 1))
    elif points < 2:
        raise UsageError(f"points={points}; a curve needs at least its two ends")
    else:
        ks = sorted({round(i * m / (points - 1)) for i in range(points)})
    steps = steps[ks]
    probs = []
    with torch.no_grad():
        for first in range(0, steps.shape[0], batch_size):
            logits = prediction.logits(steps[first:first + batch_size])
            probs.extend(logits.float().softmax(dim=-1)[:, target].tolist())
    return PerturbationCurve(kind, [k / max(m, 1) for k in ks], probs, order)


def deletion_curve(prediction: Prediction, scores: Tensor, target: int | None = None,
                   points: int | None = None) -> PerturbationCurve:
    """p(target) as the highest-scored units are replaced by the baseline, most important first."""
    return perturbation_curve(prediction, scores, "deletion", target, points=points)


def insertion_curve(prediction: Prediction, scores: Tensor, target: int | None = None,
                    points: int | None = None) -> PerturbationCurve:
    """p(target) as the highest-scored units are put back into the baseline, most important first."""
    return perturbation_curve(prediction, scores, "insertion", target, points=points)
