"""Causal edits of a forward pass: ablation, activation patching, and direct logit attribution.

Heads are named by ``(layer, head)`` in a one-stack model (decoder LM, GPT-2, encoder classifier, ViT)
or by a string ``"L.H"``; in the encoder–decoder model the string names the attention too:
``"encoder.L.H"``, ``"decoder.L.H"`` (the decoder's self-attention) or ``"cross.L.H"`` (its
cross-attention). A head's output is edited on ``hook_z`` ``(B, H, T, d)``, before the output
projection mixes the heads, as TransformerLens does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from glassformer.errors import UsageError
from glassformer.lens.run import ActivationCache, resolve_stack, run_with_cache, stacks
from glassformer.nn.hooks import hook_points, hooks

Metric = Callable[[Tensor], Tensor | float]
_ATTENTION = {"encoder": ("encoder", "self_attn"), "decoder": ("decoder", "self_attn"), "cross": ("decoder", "cross_attn")}


@dataclass(frozen=True)
class Head:
    """One attention head: its layer stack, which attention of the layer, layer and head number."""

    stack: str
    attention: str  # "self_attn" or "cross_attn"
    layer: int
    head: int

    @property
    def hook_z(self) -> str:
        """The name of the hook point holding this head's output (with its siblings)."""
        prefix = f"{self.stack}.layers" if self.stack else "layers"
        return f"{prefix}.{self.layer}.{self.attention}.hook_z"

    def __str__(self) -> str:
        return f"{self.layer}.{self.head}"


def n_heads(model: nn.Module) -> int:
    """Heads per attention layer (the same in every layer of glassformer's models)."""
    for module in model.modules():
        if hasattr(module, "n_heads") and hasattr(module, "hook_z"):
            return int(module.n_heads)
    raise UsageError(f"{type(model).__name__} has no attention layers")


def _stack_for(model: nn.Module, name: str | None) -> tuple[str, str]:
    found = stacks(model)
    if name is None:
        if len(found) != 1:
            raise UsageError(f"{type(model).__name__} has several attention stacks; name heads as "
                             f"{', '.join(f'{k}.L.H' for k in _ATTENTION)}")
        return next(iter(found)), "self_attn"
    if name not in _ATTENTION or _ATTENTION[name][0] not in found:
        choices = ", ".join(k for k, (s, _) in _ATTENTION.items() if s in found) or "none (plain L.H)"
        raise UsageError(f"{name!r} is not an attention of {type(model).__name__}; choose {choices}")
    return _ATTENTION[name]


def resolve_heads(model: nn.Module, heads: Iterable[tuple[int, int] | str | Head]) -> list[Head]:
    """Heads given as ``(layer, head)``, ``"L.H"`` or ``"cross.L.H"``, checked against the model's layers and heads."""
    out = []
    per_layer = n_heads(model)
    for spec in heads:
        if isinstance(spec, Head):
            out.append(spec)
            continue
        where = None
        if isinstance(spec, str):
            parts = spec.strip().split(".")
            if len(parts) == 3:
                where, parts = parts[0], parts[1:]
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise UsageError(f"head {spec!r} is not of the form L.H (layer.head, e.g. 0.3)")
            layer, head = int(parts[0]), int(parts[1])
        else:
            layer, head = spec
        stack, attention = _stack_for(model, where)
        n_layers = stacks(model)[stack]
        if not (0 <= layer < n_layers and 0 <= head < per_layer):
            raise UsageError(f"head {layer}.{head} does not exist: valid layers are 0-{n_layers - 1} and heads "
                             f"0-{per_layer - 1}")
        out.append(Head(stack, attention, layer, head))
    return out


def _mlp_names(model: nn.Module, layers: Iterable[int], stack: str | None) -> list[str]:
    stack = resolve_stack(model, stack)
    n_layers = stacks(model)[stack]
    prefix = f"{stack}.layers" if stack else "layers"
    names = []
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise UsageError(f"feed-forward block {layer} does not exist: valid layers are 0-{n_layers - 1}")
        names.append(f"{prefix}.{layer}.hook_mlp_out")
    return names


def _split(inputs: Any) -> tuple[tuple, dict]:
    """Model inputs given as a tensor, a tuple of positional arguments or a dict of keywords → (args, kwargs)."""
    if isinstance(inputs, dict):
        return (), inputs
    return (tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)), {}


def _cached(model: nn.Module, inputs: Any, names: list[str]) -> ActivationCache:
    args, kwargs = _split(inputs)
    return run_with_cache(model, *args, names=names, **kwargs)[1]


def _metric_of(model: nn.Module, inputs: Any, metric: Metric) -> float:
    args, kwargs = _split(inputs)
    return float(metric(_logits(model(*args, **kwargs))))


def _logits(output: Any) -> Tensor:
    return output.logits if hasattr(output, "logits") else output


@contextlib.contextmanager
def ablated(model: nn.Module, heads: Iterable[tuple[int, int] | str | Head] = (), mlps: Iterable[int] = (), *,
            mode: str = "zero", mean_from: Any = None, stack: str | None = None) -> Iterator[nn.Module]:
    """Inside the block, the chosen heads and feed-forward blocks of `model` are knocked out.

    ``mode="zero"`` replaces a head's output (``hook_z``, before the output projection) or a block's
    output (``hook_mlp_out``) with zeros; ``mode="mean"`` with its mean over batch and positions on
    the reference inputs `mean_from` (a tensor, a tuple of positional arguments or a dict of keywords;
    padding positions count like any other). The output projection's bias stays, as in TransformerLens.
    `stack` picks the stack of `mlps` in a two-stack model.
    """
    if mode not in ("zero", "mean"):
        raise UsageError(f"mode={mode!r}; expected 'zero' or 'mean'")
    if mode == "mean" and mean_from is None:
        raise UsageError("mode='mean' needs mean_from= reference inputs to average over")
    chosen = resolve_heads(model, heads)
    mlp_names = _mlp_names(model, mlps, stack) if mlps else []
    by_point: dict[str, list[int]] = {}
    for head in chosen:
        by_point.setdefault(head.hook_z, []).append(head.head)
    means: dict[str, Tensor] = {}
    if mode == "mean":
        with torch.no_grad():
            cache = _cached(model, mean_from, list(by_point) + mlp_names)
        means = {name: cache[name].mean(dim=(0, 2)) if name.endswith("hook_z") else cache[name].mean(dim=(0, 1))
                 for name in cache}

    def knock_heads(name: str, indices: list[int]) -> Callable:
        def fn(z: Tensor, point: nn.Module) -> Tensor:
            z = z.clone()
            for h in indices:
                z[:, h] = 0.0 if mode == "zero" else means[name][h].to(z.dtype)
            return z
        return fn

    def knock_mlp(name: str) -> Callable:
        def fn(out: Tensor, point: nn.Module) -> Tensor:
            return torch.zeros_like(out) if mode == "zero" else means[name].to(out.dtype).expand_as(out).clone()
        return fn

    fns = {name: knock_heads(name, indices) for name, indices in by_point.items()}
    fns.update({name: knock_mlp(name) for name in mlp_names})
    with hooks(model, fns):
        yield model


def logit_difference(correct: int, wrong: int, position: int = -1) -> Metric:
    """A metric for patching: logit[correct] − logit[wrong] at `position` (sequence outputs), averaged over the batch."""

    def metric(logits: Tensor) -> Tensor:
        row = logits[:, position] if logits.dim() == 3 else logits
        return (row[:, correct] - row[:, wrong]).mean()

    return metric


def patch_residual(model: nn.Module, clean: Any, corrupted: Any, metric: Metric, *,
                   stack: str | None = None) -> Tensor:
    """Activation patching over layer × position: ``(L, T)`` metric values.

    Entry ``[l, p]`` is `metric` of the corrupted run's logits with the residual stream entering layer
    ``l`` (``hook_resid_pre``) at position ``p`` taken from the clean run (TransformerLens's
    ``get_act_patch_resid_pre``). `clean` and `corrupted` are inputs of the same shape: a tensor or a
    tuple of positional arguments (``(src, tgt)`` for the encoder–decoder model) or a dict of keywords.
    """
    stack = resolve_stack(model, stack)
    prefix = f"{stack}.layers" if stack else "layers"
    names = [f"{prefix}.{i}.hook_resid_pre" for i in range(stacks(model)[stack])]
    with torch.no_grad():
        cache = _cached(model, clean, names)
        positions = cache[names[0]].shape[1]
        scores = torch.zeros(len(names), positions)
        for layer, name in enumerate(names):
            for position in range(positions):
                def put(x: Tensor, point: nn.Module, name: str = name, position: int = position) -> Tensor:
                    x = x.clone()
                    x[:, position] = cache[name][:, position]
                    return x
                with hooks(model, {name: put}):
                    scores[layer, position] = _metric_of(model, corrupted, metric)
    return scores


def patch_heads(model: nn.Module, clean: Any, corrupted: Any, metric: Metric, *, attention: str | None = None) -> Tensor:
    """Activation patching per head: ``(L, H)`` metric values of the corrupted run with one head's output
    (``hook_z``, every position) taken from the clean run (TransformerLens's ``get_act_patch_attn_head_out_all_pos``).

    `attention` picks ``"encoder"``, ``"decoder"`` or ``"cross"`` in the encoder–decoder model.
    """
    stack, kind = _stack_for(model, attention)
    all_heads = [Head(stack, kind, layer, h) for layer in range(stacks(model)[stack]) for h in range(n_heads(model))]
    with torch.no_grad():
        cache = _cached(model, clean, sorted({h.hook_z for h in all_heads}))
        scores = torch.zeros(stacks(model)[stack], n_heads(model))
        for head in all_heads:
            def put(z: Tensor, point: nn.Module, head: Head = head) -> Tensor:
                z = z.clone()
                z[:, head.head] = cache[head.hook_z][:, head.head]
                return z
            with hooks(model, {head.hook_z: put}):
                scores[head.layer, head.head] = _metric_of(model, corrupted, metric)
    return scores


@dataclass
class DirectLogitAttribution:
    """A logit split into what each part of the residual stream writes to it: parts sum to the logit.

    ``labels`` name the parts (``embed``, ``pos_embed``, ``L0H3``, ``L0.attn_bias``, ``L0.mlp``,
    ``final_norm.bias``, ``head.bias``); ``values`` is ``(B, parts)``; ``logit`` ``(B,)`` the model's own.
    """

    labels: list[str]
    values: Tensor
    logit: Tensor
    target: int
    position: int

    def json(self) -> dict[str, Any]:
        """``{"target", "position", "logit", "parts": [{"name", "value"}, ...]}`` for the first input."""
        return {"target": self.target, "position": self.position, "logit": float(self.logit[0]),
                "parts": [{"name": n, "value": float(v)} for n, v in zip(self.labels, self.values[0])]}

    def __str__(self) -> str:
        lines = [f"direct logit attribution of id {self.target} at position {self.position} "
                 f"(logit {float(self.logit[0]):+.4f})"]
        lines += [f"  {name:18s} {float(value):+.4f}" for name, value in zip(self.labels, self.values[0])]
        return "\n".join(lines)


def _readout(model: nn.Module) -> tuple[str, list[tuple[str, str]], nn.LayerNorm, nn.Linear, int | None]:
    """Where a pre-norm model reads its logits: the stack, the embedding parts, the final LayerNorm, the linear
    readout, and the position it reads (None: any, the caller's)."""
    from glassformer.models.decoder_lm import DecoderLM
    from glassformer.models.vit import VisionTransformer

    if isinstance(model, DecoderLM):
        return "blocks", [("embed", "hook_embed"), ("pos_embed", "hook_pos_embed")], model.blocks.norm, model.lm_head, None
    if isinstance(model, VisionTransformer):
        return "encoder", [("embed", "hook_embed")], model.encoder.norm, model.head, 0
    raise UsageError(f"direct logit attribution needs a pre-norm model read through a final LayerNorm (DecoderLM, "
                     f"GPT-2, ViT); got {type(model).__name__}")


def direct_logit_attribution(model: nn.Module, inputs: Tensor, target: int, position: int = -1) -> DirectLogitAttribution:
    """Split the logit of `target` (a token id, or a ViT class) at `position` into what each head, feed-forward
    block, embedding and bias writes to the residual stream.

    LayerNorm treatment: the final LayerNorm is linear once its scale is fixed. Its scale
    σ = √(Var(x) + ε) is frozen at the value of this (clean) run, and each part c contributes
    ``((c − mean(c)) / σ) · (γ ⊙ W_U[target])``; the LayerNorm's bias contributes ``β · W_U[target]``
    (and the readout's own bias, if any, itself). Centring is linear and σ is shared, so the parts sum
    to the logit exactly (up to float rounding). This is TransformerLens's ``apply_ln_to_stack`` with
    the LayerNorm weight γ kept on the unembedding side instead of folded into it. A head's part is its
    ``hook_z`` slice times its slice of the output projection (``stack_head_results``); the projection's
    bias is a part of its own (``L{l}.attn_bias``); a feed-forward block's part is its whole output, biases
    included (``L{l}.mlp``). Inputs of a ViT are images and the position read is always [CLS] (0).
    """
    stack, embeds, norm, readout, fixed = _readout(model)
    position = position if fixed is None else fixed
    n_layers = stacks(model)[stack]
    prefix = f"{stack}.layers"
    vocab = readout.weight.shape[0]
    if not 0 <= target < vocab:
        raise UsageError(f"target {target} is out of range: the model has {vocab} outputs (0-{vocab - 1})")
    names = [name for _, name in embeds] + [f"{prefix}.*.self_attn.hook_z", f"{prefix}.*.hook_mlp_out",
                                           f"{prefix}.{n_layers - 1}.hook_resid_post"]
    with torch.no_grad():
        output, cache = run_with_cache(model, inputs, names=_present(hook_points(model), names))
        final = cache[f"{prefix}.{n_layers - 1}.hook_resid_post"][:, position]  # (B, D)
        sigma = (final.var(dim=-1, unbiased=False, keepdim=True) + norm.eps).sqrt()  # (B, 1), frozen
        direction = norm.weight * readout.weight[target]  # (D,): γ ⊙ W_U[target]

        def through_norm(part: Tensor) -> Tensor:  # (B, D) → (B,)
            return ((part - part.mean(dim=-1, keepdim=True)) / sigma) @ direction

        labels, values = [], []
        for label, name in embeds:
            part = cache[name][:, position] if cache[name].shape[0] == final.shape[0] else cache[name][0, position]
            labels.append(label)
            values.append(through_norm(part.expand_as(final)))
        per_head = n_heads(model)
        for layer in range(n_layers):
            attn = getattr(model, stack).layers[layer].self_attn
            z = cache[f"{prefix}.{layer}.self_attn.hook_z"][:, :, position]  # (B, H, d)
            w_o = attn.out_proj.weight.view(attn.d_model, per_head, attn.d_head)  # (D, H, d)
            heads = torch.einsum("bhd,mhd->bhm", z, w_o)  # (B, H, D): each head's write to the stream
            for h in range(per_head):
                labels.append(f"L{layer}H{h}")
                values.append(through_norm(heads[:, h]))
            if attn.out_proj.bias is not None:
                labels.append(f"L{layer}.attn_bias")
                values.append(through_norm(attn.out_proj.bias.expand_as(final)))
            mlp = f"{prefix}.{layer}.hook_mlp_out"
            if mlp in cache:
                labels.append(f"L{layer}.mlp")
                values.append(through_norm(cache[mlp][:, position]))
        labels.append("final_norm.bias")
        values.append((norm.bias @ readout.weight[target]).expand(final.shape[0]))
        if readout.bias is not None:
            labels.append("head.bias")
            values.append(readout.bias[target].expand(final.shape[0]))
        logits = _logits(output)
        logit = logits[:, position, target] if logits.dim() == 3 else logits[:, target]
    return DirectLogitAttribution(labels, torch.stack(values, dim=1), logit, target, position)


def _present(points: dict, names: Sequence[str]) -> list[str]:
    """The names that match a hook point of the model (a ViT has no ``hook_pos_embed`` of its own)."""
    import fnmatch

    return [n for n in names if any(fnmatch.fnmatchcase(p, n) for p in points)]

