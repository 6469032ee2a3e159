"""Attribution: how much each unit of the input (a token, an image patch) contributed to one prediction.

A :class:`Prediction` wraps one model output to be explained — a class of the encoder classifier or of
the ViT, the next token of the decoder LM, one target step of the encoder–decoder with the target prefix
fed in (teacher forcing) — together with the *features* of its input: the output of the word (token)
embedding layer for text, of the patch embedding for images, taken at the model's hook point there
(``hook_word``, ``hook_embed``, ``hook_encoder_embed``, ``hook_patches``). A *baseline* gives each unit a
neutral value: for text the features of the same ids with every non-special token replaced by [PAD]
(special tokens and positions kept, Captum's BERT tutorial's choice), for images a black image in the
model's pixel space. ``f`` is the target's logit.

Methods (each returns an :class:`Attribution`, one score per unit):

- integrated gradients (Sundararajan et al. 2017): ``IG_i = Σ_d (x − x')_id · ∫₀¹ ∂f(x' + α(x − x'))/∂x_id dα``,
  the integral by Gauss–Legendre quadrature on [0, 1] (Captum's ``gausslegendre``); completeness delta
  ``Σ_i IG_i − (f(x) − f(x'))``;
- gradient × input: ``Σ_d x_id · ∂f/∂x_id``;
- occlusion: ``f(x) − f(x with unit i set to its baseline)`` (for a ViT: the patch's pixels set to black);
- attention: the last layer's attention weights, averaged over heads, in the row that reads the
  prediction ([CLS] for a [CLS]-pooled classifier and for the ViT, the mean over rows for a mean-pooled
  classifier, the last position for the LM; for a translation step the last decoder layer's
  cross-attention from that step to the source);
- attention rollout (Abnar & Zuidema 2020): ``R = Â_L ⋯ Â_1`` with ``Â_l = rownorm(mean_h A_l + I)``, read in
  the same row; for a translation step the cross-attention row times the encoder's rollout.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from glassformer.errors import UsageError, WrongModelError
from glassformer.models import DecoderLM, EncoderClassifier, Seq2SeqTransformer, VisionTransformer
from glassformer.nn.hooks import HookPoint

INTEGRATION_METHODS = ("gausslegendre", "riemann_trapezoid")


@dataclass
class Attribution:
    """One score per input unit (token or patch) for the target of a prediction, by one method."""

    method: str
    scores: Tensor  # (N,)
    target: int
    delta: float | None = None  # integrated gradients only: Σ scores − (f(x) − f(baseline))


def integration_points(steps: int, method: str = "gausslegendre") -> tuple[list[float], list[float]]:
    """Points α in [0, 1] and weights w with ``∫₀¹ g(α) dα ≈ Σ w_k g(α_k)``.

    ``gausslegendre``: numpy's Legendre nodes and weights on [−1, 1] mapped to [0, 1] (α = (t + 1)/2,
    w = w_t / 2); ``riemann_trapezoid``: ``steps`` evenly spaced points with the ends weighted half.
    """
    if not isinstance(steps, int) or steps < 1 or (method == "riemann_trapezoid" and steps < 2):
        raise UsageError(f"steps={steps!r}; expected an integer >= {2 if method == 'riemann_trapezoid' else 1}")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return list(0.5 * (nodes + 1.0)), list(0.5 * weights)
    if method == "riemann_trapezoid":
        width = 1.0 / (steps - 1)
        return list(np.linspace(0.0, 1.0, steps)), [width / 2] + [width] * (steps - 2) + [width / 2]
    raise UsageError(f"method={method!r}; expected one of {', '.join(INTEGRATION_METHODS)}")


def pad_baseline(ids: Sequence[int], special_ids: Sequence[int] | set[int], pad_id: int) -> list[int]:
    """The baseline ids: every id not in `special_ids` replaced by `pad_id`."""
    special = set(int(i) for i in special_ids)
    return [int(i) if int(i) in special else int(pad_id) for i in ids]


def attention_rollout(attentions: Sequence[Tensor]) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): ``R = Â_L ⋯ Â_1``, ``Â_l = rownorm(mean over heads of A_l + I)``.

    `attentions`: one ``(H, T, T)`` or ``(B, H, T, T)`` map per layer, first layer first. Returns ``(T, T)``
    (or ``(B, T, T)``); row ``t`` says how much of position ``t``'s final state flows from each input.
    """
    if not attentions:
        raise UsageError("attention rollout needs at least one layer's attention weights")
    rollout = None
    for layer in attentions:
        mixed = layer.mean(dim=-3)  # (…, T, T)
        mixed = mixed + torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)  # the residual path
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout


class Prediction:
    """One prediction of a model, made attributable: the features its input enters with, a baseline, a rerun.

    Subclasses say where the features enter (:attr:`point`), how to run the model on a batch of
    replacements, and which attention row reads the prediction.
    """

    point: HookPoint
    family: str

    def __init__(self, model: nn.Module, features: Tensor, baseline: Tensor) -> None:
        self.model = model
        self._features = features.detach()  # (1, N, D)
        self._baseline = baseline.detach()  # (1, N, D)
        self.movable = (self._features != self._baseline).any(dim=-1)[0]  # (N,): units the baseline changes
        self._remembered: Tensor | None = None

    @property
    def n_units(self) -> int:
        """N, the number of input units (tokens or patches)."""
        return self._features.shape[1]

    def features(self) -> Tensor:
        """``(1, N, D)``: the input's features at the attributed layer (word or patch embeddings)."""
        return self._features

    def baseline(self) -> Tensor:
        """``(1, N, D)``: the baseline's features."""
        return self._baseline

    def _run(self, batch: int) -> Tensor:
        """``(B, K)`` logits of the prediction, the input repeated `batch` times."""
        raise NotImplementedError

    def _emit(self, out: Tensor, features: Tensor) -> Tensor:
        """What the hook point passes on when the features are replaced by `features`."""
        return features

    @contextlib.contextmanager
    def _replacing(self, features: Tensor) -> Iterator[None]:
        handle = self.point.register_forward_hook(lambda module, args, out: self._emit(out, features))
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def remembering(self) -> Iterator[None]:
        """Inside the block the input's own logits are computed once and reused (the model must stay as it is).

        Several attributions and curves of one prediction each ask for them; this saves those passes.
        """
        with torch.no_grad():
            self._remembered = self._run(1)
        try:
            yield
        finally:
            self._remembered = None

    def logits(self, features: Tensor | None = None) -> Tensor:
        """``(B, K)`` logits with the features replaced by `features` ``(B, N, D)`` (None: the input as it is)."""
        if features is None:
            return self._run(1) if self._remembered is None else self._remembered
        with self._replacing(features):
            return self._run(features.shape[0])

    def target(self, target: int | None = None) -> int:
        """`target` checked against the number of outputs, or the predicted one (the largest logit)."""
        with torch.no_grad():
            logits = self.logits()[0]
        if target is None:
            return int(logits.argmax())
        if not 0 <= int(target) < logits.shape[-1]:
            raise UsageError(f"target {target} is outside the model's {logits.shape[-1]} outputs")
        return int(target)

    def _self_attention(self) -> tuple[Sequence[Tensor], Tensor, slice]:
        """Per-layer ``(H, T, T)`` maps, the ``(T,)`` weights of the query rows that read the prediction, the unit columns."""
        raise NotImplementedError

    def attention_scores(self) -> Tensor:
        """``(N,)``: the last layer's attention, averaged over heads, in the reading row."""
        maps, reader, columns = self._self_attention()
        return (reader @ maps[-1].mean(dim=0))[columns]

    def rollout_scores(self) -> Tensor:
        """``(N,)``: the attention rollout in the reading row."""
        maps, reader, columns = self._self_attention()
        return (reader @ attention_rollout(maps))[columns]


def _ids(ids: Sequence[int] | Tensor, what: str) -> Tensor:
    tensor = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    if tensor.shape[1] == 0:
        raise UsageError(f"{what} has no tokens to attribute to")
    return tensor


def _baseline_features(embedding: nn.Module, features: Tensor, baseline_ids: Sequence[int] | Tensor | None) -> Tensor:
    """The embeddings of `baseline_ids`; an id of −1 (and no ids at all) stands for the zero vector."""
    if baseline_ids is None:
        return torch.zeros_like(features)
    ids = _ids(baseline_ids, "the baseline")
    if ids.shape[1] != features.shape[1]:
        raise UsageError(f"the baseline has {ids.shape[1]} ids for {features.shape[1]} input tokens")
    return embedding(ids.clamp(min=0)).masked_fill((ids < 0).unsqueeze(-1), 0.0)


def _one_hot(length: int, index: int, dtype: torch.dtype) -> Tensor:
    reader = torch.zeros(length, dtype=dtype)
    reader[index] = 1.0
    return reader


class TextClassification(Prediction):
    """A class of an :class:`EncoderClassifier` for token ids, attributed to the word-embedding output (``hook_word``)."""

    family = "text-classification"

    def __init__(self, model: EncoderClassifier, ids: Sequence[int] | Tensor,
                 baseline_ids: Sequence[int] | Tensor | None = None) -> None:
        self.ids = _ids(ids, "the text")
        embed = model.encoder.embeddings
        self.point = embed.hook_word
        with torch.no_grad():
            features = embed.word_embeddings(self.ids)
            baseline = _baseline_features(embed.word_embeddings, features, baseline_ids)
        super().__init__(model, features, baseline)

    def _run(self, batch: int) -> Tensor:
        return self.model(self.ids.expand(batch, -1)).logits

    def _self_attention(self) -> tuple[Sequence[Tensor], Tensor, slice]:
        with torch.no_grad():
            maps = [a[0] for a in self.model(self.ids, output_attentions=True).attentions]
        t = self.ids.shape[1]
        # The head reads [CLS] (pooler or raw state), or the mean of every position's state.
        reader = (torch.full((t,), 1.0 / t, dtype=maps[0].dtype) if self.model.config.pooling == "mean"
                  else _one_hot(t, 0, maps[0].dtype))
        return maps, reader, slice(None)


class ImageClassification(Prediction):
    """A class of a :class:`VisionTransformer` for one image, attributed to the patch-embedding output (``hook_patches``).

    The baseline is an image of one value in the model's pixel space (the caller's normalisation of
    black), so occluding a patch sets its pixels to that value. With several `views` of the image (a
    classifier that averages an image with its mirror) the prediction is the one shown,
    ``log(mean_v p_v)``, and the units are the patches of every view, first view first.
    """

    family = "image-classification"

    def __init__(self, model: VisionTransformer, image: Tensor, baseline: float | Tensor = 0.0,
                 views: Sequence[Tensor] = ()) -> None:
        self.views = [self._image(view) for view in ([image] if not views else views)]
        self.point = model.hook_patches
        dtype = model.cls_token.dtype
        self.image = self.views[0]
        base = (torch.full_like(self.image, float(baseline)) if not isinstance(baseline, Tensor)
                else baseline.reshape(self.image.shape))
        with torch.no_grad():
            features = torch.cat([model.patch_embedding(view.to(dtype)) for view in self.views], dim=1)
            base_features = model.patch_embedding(base.to(dtype)).repeat(1, len(self.views), 1)
        super().__init__(model, features, base_features)

    @staticmethod
    def _image(image: Tensor) -> Tensor:
        image = torch.as_tensor(image)
        return image.reshape(1, *image.shape[-3:]) if image.dim() >= 3 else image.reshape(1, 1, *image.shape)

    def _emit(self, out: Tensor, features: Tensor) -> Tensor:
        batch, units, width = features.shape  # units: every view's patches; the pass runs the views one after another
        views = len(self.views)
        return features.reshape(batch, views, units // views, width).transpose(0, 1).reshape(-1, units // views, width)

    def _run(self, batch: int) -> Tensor:
        images = torch.cat([view.expand(batch, -1, -1, -1) for view in self.views])
        logits = self.model(images).logits
        if len(self.views) == 1:
            return logits
        per_view = logits.float().log_softmax(-1).reshape(len(self.views), batch, -1)
        return (functools.reduce(torch.logaddexp, per_view) - math.log(len(self.views))).to(logits.dtype)

    def _view_attention(self, view: Tensor) -> list[Tensor]:
        with torch.no_grad():
            return [a[0] for a in self.model(view, output_attentions=True).attentions]

    def attention_scores(self) -> Tensor:
        """``(V·N,)``: per view, [CLS]'s last-layer attention to its patches (heads averaged), weighted 1/V."""
        return torch.cat([self._view_attention(v)[-1].mean(dim=0)[0, 1:] / len(self.views) for v in self.views])

    def rollout_scores(self) -> Tensor:
        """``(V·N,)``: per view, the attention rollout in [CLS]'s row over its patches, weighted 1/V."""
        return torch.cat([attention_rollout(self._view_attention(v))[0, 1:] / len(self.views) for v in self.views])


class NextToken(Prediction):
    """The next token of a :class:`DecoderLM` after the prompt `ids`, attributed to the token-embedding output (``hook_embed``)."""

    family = "next-token"

    def __init__(self, model: DecoderLM, ids: Sequence[int] | Tensor,
                 baseline_ids: Sequence[int] | Tensor | None = None) -> None:
        self.ids = _ids(ids, "the prompt")
        self.point = model.hook_embed
        with torch.no_grad():
            features = model.token_embedding(self.ids)
            baseline = _baseline_features(model.token_embedding, features, baseline_ids)
        super().__init__(model, features, baseline)

    def _run(self, batch: int) -> Tensor:
        return self.model(self.ids.expand(batch, -1)).logits[:, -1]

    def _self_attention(self) -> tuple[Sequence[Tensor], Tensor, slice]:
        with torch.no_grad():
            maps = [a[0] for a in self.model(self.ids, output_attentions=True).attentions]
        return maps, _one_hot(maps[0].shape[-1], -1, maps[0].dtype), slice(None)


class TranslationStep(Prediction):
    """The token a :class:`Seq2SeqTransformer` predicts after the target prefix, attributed to the source tokens.

    The features are the source's (√D-scaled) word embeddings; they enter at ``hook_encoder_embed``,
    where the sinusoidal positions are already added, so a replacement keeps the positions.
    """

    family = "translation"

    def __init__(self, model: Seq2SeqTransformer, src_ids: Sequence[int] | Tensor, prefix_ids: Sequence[int] | Tensor,
                 baseline_ids: Sequence[int] | Tensor | None = None) -> None:
        self.ids = _ids(src_ids, "the source")
        self.prefix = _ids(prefix_ids, "the target prefix")
        self.point = model.hook_encoder_embed
        with torch.no_grad():
            features = model.embedding(self.ids)
            baseline = _baseline_features(model.embedding, features, baseline_ids)
        super().__init__(model, features, baseline)

    def _emit(self, out: Tensor, features: Tensor) -> Tensor:
        return out + (features - self._features)  # positions stay; only the word part changes

    def _run(self, batch: int) -> Tensor:
        return self.model(self.ids.expand(batch, -1), self.prefix.expand(batch, -1)).logits[:, -1]

    def _maps(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            out = self.model(self.ids, self.prefix, output_attentions=True)
        cross = out.cross_attentions[-1][0].mean(dim=0)[-1]  # (S,): the step's row, heads averaged
        return cross, attention_rollout([a[0] for a in out.encoder_attentions])

    def attention_scores(self) -> Tensor:
        """``(S,)``: the last decoder layer's cross-attention from the step to the source, averaged over heads."""
        return self._maps()[0]

    def rollout_scores(self) -> Tensor:
        """``(S,)``: the step's cross-attention row carried through the encoder's rollout (how sources mix)."""
        cross, rollout = self._maps()
        return cross @ rollout


def prediction_for(model: nn.Module, inputs: Tensor | Sequence[int], *,
                   baseline: Tensor | Sequence[int] | float | None = None,
                   prefix: Sequence[int] | Tensor | None = None) -> Prediction:
    """The :class:`Prediction` class for `model`'s family, built from its inputs (ids, or an image for a ViT)."""
    if isinstance(model, EncoderClassifier):
        return TextClassification(model, inputs, baseline)
    if isinstance(model, VisionTransformer):
        return ImageClassification(model, inputs, 0.0 if baseline is None else baseline)
    if isinstance(model, DecoderLM):
        return NextToken(model, inputs, baseline)
    if isinstance(model, Seq2SeqTransformer):
        if prefix is None:
            raise UsageError("a translation step needs the target prefix (starting with the BOS id)")
        return TranslationStep(model, inputs, prefix, baseline)
    raise WrongModelError(f"cannot attribute a {type(model).__name__}; expected an EncoderClassifier, "
                          f"VisionTransformer, DecoderLM or Seq2SeqTransformer")


def _gradients(prediction: Prediction, features: Tensor, target: int) -> Tensor:
    """∂ logit_target / ∂ features for a batch of feature replacements ``(B, N, D)``."""
    if torch.is_inference_mode_enabled():
        raise UsageError("gradient-based attribution cannot run inside torch.inference_mode(); call it outside")
    with torch.enable_grad():
        features = features.detach().requires_grad_(True)
        out = prediction.logits(features)[:, target]
        (grads,) = torch.autograd.grad(out.sum(), features)
    return grads


def integrated_gradients(prediction: Prediction, target: int | None = None, steps: int = 50,
                         method: str = "gausslegendre", batch_size: int | None = None) -> Attribution:
    """Integrated gradients of the target's logit w.r.t. the features, summed over the feature dimension.

    ``IG = (x − x') ⊙ Σ_k w_k ∇f(x' + α_k (x − x'))`` over `steps` quadrature points (:func:`integration_points`),
    `batch_size` points per forward pass (default all). ``delta`` = Σ scores − (f(x) − f(x')).
    """
    alphas, weights = integration_points(steps, method)
    target = prediction.target(target)
    x, x0 = prediction.features(), prediction.baseline()
    size = batch_size or steps
    total = torch.zeros_like(x)
    for start in range(0, steps, size):
        a = torch.tensor(alphas[start:start + size], dtype=x.dtype).view(-1, 1, 1)
        w = torch.tensor(weights[start:start + size], dtype=x.dtype).view(-1, 1, 1)
        grads = _gradients(prediction, x0 + a * (x - x0), target)
        total = total + (grads * w).sum(dim=0, keepdim=True)
    scores = ((x - x0) * total).sum(dim=-1)[0]
    with torch.no_grad():
        ends = prediction.logits(torch.cat([x, x0]))[:, target]
    delta = float(scores.sum() - (ends[0] - ends[1]))
    return Attribution("integrated-gradients", scores.detach(), target, delta)


def grad_input(prediction: Prediction, target: int | None = None) -> Attribution:
    """Gradient × input: ``Σ_d x_d ∂f/∂x_d`` per unit, at the input's features."""
    target = prediction.target(target)
    x = prediction.features()
    return Attribution("grad-input", (_gradients(prediction, x, target) * x).sum(dim=-1)[0].detach(), target)


def occlusion(prediction: Prediction, target: int | None = None, batch_size: int = 64) -> Attribution:
    """Occlusion: ``f(x) − f(x with unit i at its baseline)``; units the baseline leaves alone (specials) score 0."""
    target = prediction.target(target)
    x, x0 = prediction.features(), prediction.baseline()
    units = prediction.movable.nonzero().flatten().tolist()
    scores = torch.zeros(prediction.n_units, dtype=x.dtype)
    with torch.no_grad():
        full = prediction.logits()[0, target]
        for start in range(0, len(units), batch_size):
            chunk = units[start:start + batch_size]
            batch = x.repeat(len(chunk), 1, 1)
            for row, unit in enumerate(chunk):
                batch[row, unit] = x0[0, unit]
            scores[chunk] = (full - prediction.logits(batch)[:, target]).to(x.dtype)
    return Attribution("occlusion", scores, target)


def attention(prediction: Prediction, target: int | None = None) -> Attribution:
    """The last layer's head-averaged attention in the reading row (the same whatever the target)."""
    return Attribution("attention", prediction.attention_scores(), prediction.target(target))


def rollout(prediction: Prediction, target: int | None = None) -> Attribution:
    """Attention rollout in the reading row (the same whatever the target)."""
    return Attribution("rollout", prediction.rollout_scores(), prediction.target(target))


METHODS = {"integrated-gradients": integrated_gradients, "grad-input": grad_input, "occlusion": occlusion,
           "attention": attention, "rollout": rollout}


def attribute(prediction: Prediction, method: str = "integrated-gradients", target: int | None = None,
              steps: int = 50) -> Attribution:
    """Run one of :data:`METHODS` by name (`steps` is used by integrated gradients only)."""
    if method not in METHODS:
        raise UsageError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "integrated-gradients":
        return integrated_gradients(prediction, target, steps=steps)
    return METHODS[method](prediction, target)
