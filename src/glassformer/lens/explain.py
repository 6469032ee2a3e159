"""The lens's front door: ``explain(predictor, text_or_image, method=...)`` → an :class:`Explanation`.

One call per question "why did it decide?", for every family. The model reads exactly what the task's
predictor gives it (its ``prepare``: specials, dictionary hints, start token, image views), so the
explanation is about the prediction that was shown; a bare model is read as a checkpoint is:

==========================  ===========================================  =====================================
predictor (or model)        input                                        what is explained
==========================  ===========================================  =====================================
sentiment classifier        a text (``[CLS] … [SEP]``, cut as predicted)  the predicted label (or `target`)
ViT image classifier        an image file, ``(H, W)`` uint8 pixels or a   the predicted class (or `target`),
                            ``(C, H, W)`` tensor in the model's pixels    per patch (of both views where the
                                                                         classifier averages the image with
                                                                         its mirror)
translator                  the source text                              target step `position` (default 0) of
                                                                         the greedy translation
language model              the prompt                                   the next token (after prompt token
                                                                         `position`, default the last)
==========================  ===========================================  =====================================

Text baselines replace every non-special token by [PAD] (a vocabulary without one: the zero vector);
the image baseline is a black image in the model's pixel space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from glassformer.errors import UsageError, WrongModelError
from glassformer.lens.attribution import (
    METHODS,
    ImageClassification,
    NextToken,
    Prediction,
    TextClassification,
    TranslationStep,
    attribute,
    pad_baseline,
)
from glassformer.lens.faithfulness import PerturbationCurve, deletion_curve
from glassformer.models import DecoderLM, EncoderClassifier, Seq2SeqTransformer, VisionTransformer


@dataclass
class Explanation:
    """An attribution ready to show: the input's units (tokens or patches) with their scores for one target."""

    method: str
    family: str
    tokens: list[str]
    ids: list[int]
    scores: list[float]
    target: str  # the label's name, or the token's text
    target_id: int
    probability: float  # p(target | input)
    delta: float | None = None  # integrated gradients: Σ scores − (f(x) − f(baseline))
    context: list[str] = field(default_factory=list)  # translation: the greedy translation's tokens
    position: int | None = None  # translation: the target step; language model: the prompt position read

    def json(self) -> dict[str, Any]:
        """``{"tokens", "ids", "scores", "target", "delta"}`` (``glassformer explain --json``)."""
        return {"tokens": self.tokens, "ids": self.ids, "scores": self.scores, "target": self.target,
                "delta": self.delta}


class PositionError(UsageError):
    """A position past the end of the output being explained (the greedy translation is shorter than that)."""


def _label_index(target: int | str | None, labels: Sequence[str]) -> int | None:
    if target is None:
        return None
    if isinstance(target, str):
        if target in labels:
            return list(labels).index(target)
        raise UsageError(f"target {target!r} is not one of the model's labels: {', '.join(labels)}")
    if not 0 <= int(target) < len(labels):
        raise UsageError(f"target {target} is outside the model's {len(labels)} labels ({', '.join(labels)})")
    return int(target)


def _token_index(target: int | str | None, tokenizer: Any) -> int | None:
    if target is None or not isinstance(target, str):
        return None if target is None else int(target)
    ids = tokenizer.encode_ordinary(target)
    if len(ids) != 1:
        raise UsageError(f"target {target!r} is {len(ids)} tokens in this vocabulary; give a single token")
    return ids[0]


def _text(inputs: Any, what: str) -> str:
    if not isinstance(inputs, str):
        raise UsageError(f"expected {what} as a string, got {type(inputs).__name__}")
    if not inputs.strip():
        raise UsageError(f"{what} is empty; give at least one word")
    return inputs


def _no_position(position: int | None, family: str) -> None:
    if position is not None:
        raise UsageError(f"position applies to translation and language models, not to {family}")


def _tokens(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    return [tokenizer.id_to_token(int(i)) for i in ids]


def explain(predictor: Any, inputs: Any, method: str = "integrated-gradients", target: int | str | None = None,
            position: int | None = None, steps: int = 50, *, tokenizer: Any = None,
            label_names: Sequence[str] | None = None) -> Explanation:
    """Attribute one prediction of `predictor` (a task's predictor, or a bare model with `tokenizer`) to its input.

    `method`: one of ``integrated-gradients``, ``grad-input``, ``occlusion``, ``attention``, ``rollout``.
    `target`: a label name or index (classifiers), a token's text or id (translation, language model);
    default the model's own prediction. `steps`: integrated gradients' quadrature points.
    """
    _check_method(method)
    return _prepare(predictor, inputs, target, position, tokenizer, label_names).explain(method, steps)


COMPARED = ("attention", "rollout", "integrated-gradients", "occlusion")


def compare(predictor: Any, inputs: Any, methods: Sequence[str] = COMPARED, target: int | str | None = None,
            position: int | None = None, steps: int = 20, curve_points: int | None = None, *,
            tokenizer: Any = None, label_names: Sequence[str] | None = None
            ) -> list[tuple[Explanation, PerturbationCurve]]:
    """Several attributions of the same prediction, each with its deletion curve (AOPC: ``curve.aopc``).

    Every method explains the same target (the model's prediction, or `target`), so the curves can be
    read side by side: the method whose top units lower p(target) soonest is the most faithful here.
    Arguments as for :func:`explain`; `curve_points` as for :func:`~glassformer.lens.faithfulness.deletion_curve`.
    """
    for method in methods:
        _check_method(method)
    case = _prepare(predictor, inputs, target, position, tokenizer, label_names)
    pairs = []
    with case.prediction.remembering():
        for method in methods:
            explanation = case.explain(method, steps)
            curve = deletion_curve(case.prediction, torch.tensor(explanation.scores), explanation.target_id,
                                   points=curve_points)
            pairs.append((explanation, curve))
    return pairs


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass
class _Case:
    """One prediction ready to attribute: the Prediction, the chosen target and how to name the input's units."""

    prediction: Prediction
    target: int | None
    tokens: list[str]
    ids: list[int]
    names: Sequence[str] | None = None
    tokenizer: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def explain(self, method: str, steps: int) -> Explanation:
        return _finish(self.prediction, method, self.target, steps, self.tokens, self.ids, self.names,
                       self.tokenizer, **self.extra)


def _prepare(predictor: Any, inputs: Any, target: int | str | None, position: int | None, tokenizer: Any,
             label_names: Sequence[str] | None) -> _Case:
    """The prediction to attribute, on the very inputs the predictor's ``prepare`` gives the model."""
    from glassformer.tasks.pipeline import predictor_for

    predictor = predictor_for(predictor, tokenizer, label_names)
    model = predictor.model
    labels = list(label_names or getattr(predictor, "label_names", None) or [])
    if isinstance(model, VisionTransformer):
        return _image_case(predictor, labels, inputs, target, position)
    tokenizer = predictor.tokenizer
    if isinstance(model, EncoderClassifier):
        _no_position(position, "a classifier")
        ids = predictor.prepare([_text(inputs, "the text")]).ids[0]
        specials = set(tokenizer.special_tokens.values())
        prediction = TextClassification(model, ids, pad_baseline(ids, specials, model.config.pad_token_id))
        return _Case(prediction, _label_index(target, labels), _tokens(tokenizer, ids), ids, labels)
    if isinstance(model, Seq2SeqTransformer):
        return _translation_case(predictor, inputs, target, position)
    if isinstance(model, DecoderLM):
        return _next_token_case(predictor, inputs, target, position)
    raise WrongModelError(f"cannot explain a {type(model).__name__}; expected a sentiment classifier, ViT, "
                          f"translator or language model")


def _finish(prediction: Prediction, method: str, target: int | None, steps: int, tokens: list[str], ids: list[int],
            names: Sequence[str] | None = None, tokenizer: Any = None, **extra: Any) -> Explanation:
    result = attribute(prediction, method, target, steps=steps)
    with torch.no_grad():
        probability = float(prediction.logits()[0].float().softmax(-1)[result.target])
    name = names[result.target] if names else tokenizer.id_to_token(result.target)
    return Explanation(method, prediction.family, tokens, [int(i) for i in ids],
                       [float(s) for s in result.scores.tolist()], name, result.target, probability, result.delta,
                       **extra)


def _image_case(predictor: Any, labels: list[str], inputs: Any, target: int | str | None,
                position: int | None) -> _Case:
    _no_position(position, "an image classifier")
    config = predictor.model.config
    views = [view["images"][:1].cpu() for view in predictor.prepare(inputs).passes]
    # Black in the model's pixel space: the task's normalisation of 0, or a checkpoint's (0 - mean) / std.
    settings = getattr(predictor, "preprocessor", None)
    if settings is None:  # the task's per-channel statistics (Fashion-MNIST's, or the model's own data's)
        mean_values, std_values = predictor.pixel_mean, predictor.pixel_std
        black: float | torch.Tensor = (0.0 - mean_values[0]) / std_values[0]
        if len(mean_values) > 1:
            mean, std = torch.tensor(mean_values), torch.tensor(std_values)
            black = ((0.0 - mean) / std).view(1, -1, 1, 1).expand_as(views[0]).contiguous()
    else:
        mean = torch.tensor(settings.get("image_mean", [0.5] * config.in_channels), dtype=torch.float32)
        std = torch.tensor(settings.get("image_std", [0.5] * config.in_channels), dtype=torch.float32)
        black = ((0.0 - mean) / std).view(1, -1, 1, 1).expand_as(views[0]).contiguous()
    prediction = ImageClassification(predictor.model, views[0], black, views)
    side = config.image_size // config.patch_size
    tokens = [f"patch {i // side},{i % side}" for i in range(config.n_patches)]
    if len(views) > 1:  # the mirror's patch (r, c) shows the image's patch (r, side - 1 - c)
        tokens += [f"patch {i // side},{side - 1 - i % side} (mirrored view)" for i in range(config.n_patches)]
    return _Case(prediction, _label_index(target, labels), tokens, list(range(len(tokens))), labels)


def _translation_case(translator: Any, inputs: Any, target: int | str | None, position: int | None) -> _Case:
    model, tokenizer = translator.model, translator.tokenizer
    config = model.config
    prepared = translator.prepare([_text(inputs, "the source text")])
    src = prepared.ids[0]
    translation = translator.greedy_target(prepared)[0].tolist()  # [BOS, y_1 … y_n, EOS], as beam 1 translates
    step = 0 if position is None else int(position)
    n = len(translation) - 1
    if not 0 <= step < n:
        raise PositionError(f"position {position} is outside the greedy translation's {n} steps (0 to {n - 1})")
    specials = set(tokenizer.special_tokens.values()) | {config.eos_token_id, config.bos_token_id}
    prediction = TranslationStep(model, src, translation[: step + 1], pad_baseline(src, specials, config.pad_token_id))
    return _Case(prediction, _token_index(target, tokenizer), _tokens(tokenizer, src), src, tokenizer=tokenizer,
                 extra={"context": _tokens(tokenizer, translation[1:]), "position": step})


def _next_token_case(generator: Any, inputs: Any, target: int | str | None, position: int | None) -> _Case:
    model, tokenizer = generator.model, generator.tokenizer
    ids = generator.prepare([_text(inputs, "the prompt")]).ids[0]
    last = len(ids) - 1 if position is None else int(position)
    if not 0 <= last < len(ids):
        raise UsageError(f"position {position} is outside the prompt's {len(ids)} tokens (0 to {len(ids) - 1})")
    ids = ids[: last + 1]
    pad = tokenizer.pad_id if getattr(tokenizer, "pad_token", None) else -1  # -1: the zero vector
    prediction = NextToken(model, ids, pad_baseline(ids, set(tokenizer.special_tokens.values()), pad))
    return _Case(prediction, _token_index(target, tokenizer), _tokens(tokenizer, ids), ids, tokenizer=tokenizer,
                 extra={"position": last})
