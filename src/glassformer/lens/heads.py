"""Finding attention heads by what they attend to: previous-token, duplicate-token and induction heads.

A head's score follows TransformerLens's ``head_detector.detect_head`` exactly. A detection pattern
is a lower-triangular ``(T, T)`` 0/1 matrix saying where such a head should look:

- previous token: query i → key i − 1;
- duplicate token: query i → every earlier key j < i holding the same token;
- induction: query i → key j + 1 for every earlier j < i holding the same token as i (the token
  that followed the last time this one appeared), so on a sequence repeated twice, each position of
  the second copy looks at the position after its twin in the first.

Score (``"mul"``) = Σ attention ⊙ pattern / Σ attention over the ``(T, T)`` map of one sequence: the share
of the head's attention that goes where the pattern says. ``"abs"`` = 1 − round(mean |A − P| · T, 3).
With several sequences the score is the mean of the per-sequence scores.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glassformer.errors import UsageError
from glassformer.lens.run import resolve_stack, run_with_cache, stacks

HEAD_KINDS = ("previous_token", "duplicate_token", "induction")


def detection_pattern(tokens: Tensor, kind: str) -> Tensor:
    """The ``(T, T)`` pattern a `kind` head would show on one sequence of token ids ``(T,)``."""
    if kind not in HEAD_KINDS:
        raise UsageError(f"kind={kind!r}; expected one of {', '.join(HEAD_KINDS)}")
    tokens = tokens.reshape(-1)
    t = tokens.shape[0]
    if kind == "previous_token":
        return torch.diag(torch.ones(t - 1), diagonal=-1)
    same = (tokens[:, None] == tokens[None, :]).float()  # (T, T): same token at query i and key j
    duplicate = torch.tril(same, diagonal=-1)  # j < i
    if kind == "duplicate_token":
        return duplicate
    induction = torch.zeros(t, t)
    induction[:, 1:] = duplicate[:, :-1]  # key j + 1 for each duplicate j
    return torch.tril(induction)


def _score(pattern: Tensor, detection: Tensor, exclude_bos: bool, exclude_current_token: bool,
           error_measure: str) -> float:
    pattern = pattern.clone()
    if error_measure == "mul":
        if exclude_bos:
            pattern[:, 0] = 0
        if exclude_current_token:
            pattern.fill_diagonal_(0)
        return float((pattern * detection).sum() / pattern.sum())
    diff = (pattern - detection).abs()
    if exclude_bos:
        diff[:, 0] = 0
    if exclude_current_token:
        diff.fill_diagonal_(0)
    return 1 - round(float(diff.mean() * diff.shape[0]), 3)


def head_scores(model: nn.Module, tokens: Tensor, kind: str = "induction", *, exclude_bos: bool = False,
                exclude_current_token: bool = False, error_measure: str = "mul", stack: str | None = None) -> Tensor:
    """``(L, H)``: how much each self-attention head of `model` behaves like a `kind` head on `tokens` ``(B, T)``.

    `tokens` are fed to the model as they are (add a BOS yourself if your model expects one).
    """
    if error_measure not in ("mul", "abs"):
        raise UsageError(f"error_measure={error_measure!r}; expected 'mul' or 'abs'")
    if tokens.dim() == 1:
        tokens = tokens.unsqueeze(0)
    if tokens.dim() != 2 or tokens.shape[1] < 2:
        raise UsageError(f"tokens must be (B, T) with T >= 2, got shape {tuple(tokens.shape)}")
    stack = resolve_stack(model, stack)
    prefix = f"{stack}.layers" if stack else "layers"
    n_layers = stacks(model)[stack]
    names = [f"{prefix}.{layer}.self_attn.hook_pattern" for layer in range(n_layers)]
    with torch.no_grad():
        _, cache = run_with_cache(model, tokens, names=names)
    n_heads = cache[names[0]].shape[1]
    scores = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for row in range(tokens.shape[0]):
        detection = detection_pattern(tokens[row].cpu(), kind).double()
        for layer, name in enumerate(names):
            for head in range(n_heads):
                pattern = cache[name][row, head].detach().cpu().double()
                scores[layer, head] += _score(pattern, detection, exclude_bos, exclude_current_token, error_measure)
    return scores / tokens.shape[0]


def induction_scores(model: nn.Module, tokens: Tensor, **kwargs) -> Tensor:
    """``(L, H)`` induction scores (:func:`head_scores` with ``kind="induction"``)."""
    return head_scores(model, tokens, "induction", **kwargs)


def previous_token_scores(model: nn.Module, tokens: Tensor, **kwargs) -> Tensor:
    """``(L, H)`` previous-token scores (:func:`head_scores` with ``kind="previous_token"``)."""
    return head_scores(model, tokens, "previous_token", **kwargs)


def find_heads(scores: Tensor, threshold: float = 0.4) -> list[tuple[int, int, float]]:
    """``(layer, head, score)`` of every head scoring at least `threshold`, best first."""
    found = [(layer, head, float(scores[layer, head])) for layer in range(scores.shape[0])
             for head in range(scores.shape[1]) if scores[layer, head] >= threshold]
    return sorted(found, key=lambda item: -item[2])


def repeated_tokens(vocab_size: int, length: int, batch: int = 1, *, bos: int | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """``(B, [1 +] 2·length)`` random token sequences each repeated twice (optionally after `bos`): the usual
    probe for induction heads, whose second half is predictable only by copying."""
    low = 0 if bos is None else 1
    half = torch.randint(low, vocab_size, (batch, length), generator=generator)
    seq = torch.cat([half, half], dim=1)
    if bos is not None:
        seq = torch.cat([torch.full((batch, 1), bos), seq], dim=1)
    return seq
