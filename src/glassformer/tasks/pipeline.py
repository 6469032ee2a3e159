"""Pipelines: ``pipeline(task, model=DIR)`` turns a model directory into a callable on raw inputs.

``model`` is a glassformer saved model (``glassformer train``'s output) or anything
:func:`~glassformer.pretrained.from_pretrained` loads (a Hugging Face checkpoint with a task head, a known
name). Two sets of task names are understood:

* glassformer's own (``sentiment``, ``translate``, ``vit``, ``lm``): the task's ``Predictor``, whose
  results are glassformer's dicts (for sentiment ``{"text", "label", "score"}``);
* Hugging Face's, answering in transformers' result shapes:

  ========================================  ================================================================
  ``text-classification``,                  ``[{"label", "score"}]``, one per text; with ``top_k`` each text's
  ``sentiment-analysis``                    best ``top_k`` labels (``None``: all), a list per text
  ``feature-extraction``                    per text a ``[1][T][D]`` nested list of token vectors
  ``translation``                           ``[{"translation_text"}]``, one per text
  ``text-generation``                       ``[{"generated_text"}]`` per prompt (a list per prompt for a list)
  ``image-classification``                  per image the ``top_k`` (default 5) ``{"label", "score"}``
  ========================================  ================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from glassformer.errors import UsageError, WrongModelError
from glassformer.tasks import MODEL_TASKS, TASKS, get_task
from glassformer.tasks.base import ModelInputs, check_task, load_pretrained

# Hugging Face's task names → the glassformer task whose predictor answers them (None: the encoder itself).
HF_TASKS: dict[str, str | None] = {"text-classification": "sentiment", "sentiment-analysis": "sentiment",
                                   "feature-extraction": None, "translation": "translate",
                                   "translation_de_to_en": "translate", "text-generation": "lm",
                                   "image-classification": "vit"}
_DEFAULT = object()  # "top_k was not given", which transformers answers differently from top_k=None


def load_predictor(model: str | os.PathLike, task: str | None = None, **load_kwargs: Any) -> Any:
    """The glassformer predictor of `task` for `model`: a saved model directory or a Hugging Face checkpoint.

    Without `task`, the one the directory records (saved models) or its head implies (checkpoints). The
    road is every predictor's: :func:`~glassformer.tasks.base.load_pretrained`, then the task's
    ``Predictor.from_loaded``. `load_kwargs` go to the loader (``verify``, ``device``, ``precision``).
    """
    from glassformer.pretrained import KNOWN
    from glassformer.training.saved import ModelNotFoundError

    path = Path(model)
    if not path.is_dir() and str(model) not in KNOWN:
        raise ModelNotFoundError(f"{model} is not a directory{'' if path.exists() else ' (nothing is there)'}; "
                                 f"expected a saved glassformer model or a Hugging Face checkpoint directory")
    if task is not None:
        return get_task(task).Predictor.load(model, **load_kwargs)
    return loaded_predictor(load_pretrained(model, **load_kwargs))


def loaded_predictor(loaded: Any, task: str | None = None) -> Any:
    """The predictor of `task` (default: the one the model serves) for a model already loaded (``from_pretrained``)."""
    return get_task(check_task(loaded, task, loaded.path)).Predictor.from_loaded(loaded)


@dataclass
class InMemory:
    """A model handed over bare, with what it needs to read inputs; read as a checkpoint is, with no recorded
    conventions (no start token, no hints, no mirror averaging)."""

    model: Any
    tokenizer: Any = None
    label_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    saved: bool = False


def predictor_for(model: Any, tokenizer: Any = None, label_names: Sequence[str] | None = None) -> Any:
    """The predictor that reads inputs for a bare model: its task's, or feature extraction for a bare encoder.

    A task's predictor is returned as it is.
    """
    if hasattr(model, "prepare"):
        return model
    kind = type(model).__name__
    if kind == "TransformerEncoderModel":
        if tokenizer is None:
            raise UsageError("reading text with a bare encoder needs its tokenizer")
        return FeatureExtractionPipeline(model, tokenizer, model.config.max_position)
    if kind not in MODEL_TASKS:
        raise WrongModelError(f"no task reads a {kind}; expected a sentiment classifier, ViT, translator or "
                              f"language model")
    if tokenizer is None and kind != "VisionTransformer":
        raise UsageError(f"reading text with a bare {kind} needs its tokenizer")
    loaded = InMemory(model, tokenizer, list(label_names) if label_names else None)
    return get_task(MODEL_TASKS[kind]).Predictor.from_loaded(loaded)


def load_reader(model: str | os.PathLike) -> Any:
    """What reads inputs for any model directory or known name the views open (``glassformer viz``).

    The predictor of the task the model serves (a saved model of a task glassformer does not know is
    read by the predictor of its model class), or feature extraction for a bare encoder such as ``minilm``.
    """
    from glassformer.pretrained import from_pretrained

    loaded = from_pretrained(model)
    kind = type(loaded.model).__name__
    task = loaded.task if loaded.saved and loaded.task in TASKS else MODEL_TASKS.get(kind)
    if task is not None:
        return get_task(task).Predictor.from_loaded(loaded)
    if kind != "TransformerEncoderModel" or loaded.tokenizer is None:
        raise WrongModelError(f"{model} holds a {kind}{'' if loaded.tokenizer else ' without a tokenizer'}; "
                              f"expected a model of a glassformer task or an encoder with its tokenizer")
    return FeatureExtractionPipeline(loaded.model, loaded.tokenizer,
                                     int(loaded.extra.get("max_length") or loaded.model.config.max_position))


def pipeline(task: str, model: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """A ready-to-call predictor for `task` (glassformer's or Hugging Face's name) from the directory `model`.

    Without `model`, glassformer's tasks use the quick preset's model in the cache. Hugging Face names
    take transformers' construction keywords where they mean something here (``top_k``).
    """
    if task not in TASKS and task not in HF_TASKS:
        raise UsageError(f"unknown pipeline task {task!r}; glassformer's tasks: {', '.join(sorted(TASKS))}; "
                         f"Hugging Face's: {', '.join(HF_TASKS)}")
    own = HF_TASKS.get(task, task)
    if model is None:
        if own is None:
            raise UsageError("feature-extraction needs model=DIR (an encoder checkpoint, e.g. 'minilm')")
        module = get_task(own)
        model = module.default_out_dir(module.get_preset("quick"))
        if not os.path.isdir(model):
            raise FileNotFoundError(f"no model given and none trained at {model}; "
                                    f"train one with `glassformer train {own}` or pass model=DIR")
    if task in TASKS:
        return load_predictor(model, task, **kwargs)
    if own is None:
        return FeatureExtractionPipeline.load(model)
    top_k = kwargs.pop("top_k", _DEFAULT)
    predictor = load_predictor(model, own, **kwargs)
    if own == "sentiment":
        return TextClassificationPipeline(predictor, top_k)
    if own == "translate":
        return TranslationPipeline(predictor)
    if own == "lm":
        return TextGenerationPipeline(predictor)
    return ImageClassificationPipeline(predictor, 5 if top_k is _DEFAULT else top_k)


def _batch(inputs: Any, what: str) -> tuple[list[Any], bool]:
    """The inputs as a list, and whether one was given alone (transformers shapes its answer by that)."""
    if isinstance(inputs, (str, Path)) or not isinstance(inputs, Sequence):
        return [inputs], True
    items = list(inputs)
    if not items:
        raise UsageError(f"no {what} given")
    return items, False


class TextClassificationPipeline:
    """transformers' ``text-classification`` answers from a glassformer classifier: p(label | text) = softmax(logits)."""

    def __init__(self, classifier: Any, top_k: Any = _DEFAULT) -> None:
        self.classifier = classifier
        self.top_k = top_k

    def __call__(self, inputs: str | Sequence[str], top_k: Any = _DEFAULT, *,
                 special_tokens: str = "raise") -> list[Any]:
        """``[{"label", "score"}]``, one per text; with `top_k` (an int, or None for all) the best labels per text.

        As in transformers, a single text with `top_k` gives its list of labels, a list of texts a list of lists.
        """
        top_k = self.top_k if top_k is _DEFAULT else top_k
        texts, single = _batch(inputs, "texts")
        probs = self.classifier.predict_proba(texts, special_tokens=special_tokens)
        names = self.classifier.label_names
        if top_k is _DEFAULT:
            return [{"label": names[int(row.argmax())], "score": float(row.max())} for row in probs]
        ranked = [[{"label": names[int(i)], "score": float(row[i])} for i in row.argsort(descending=True)][:top_k]
                  for row in probs]
        return ranked[0] if single else ranked


class FeatureExtractionPipeline:
    """transformers' ``feature-extraction``: the encoder's last hidden state for each token of each text."""

    def __init__(self, encoder: Any, tokenizer: Any, max_length: int) -> None:
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def model(self) -> Any:
        """The encoder (what the views look at)."""
        return self.encoder

    @classmethod
    def load(cls, model: str | os.PathLike) -> "FeatureExtractionPipeline":
        """The encoder of a checkpoint (``minilm``), a saved encoder or a saved classifier's backbone."""
        from glassformer.pretrained import from_pretrained

        loaded = from_pretrained(model)
        encoder = loaded.model.encoder if type(loaded.model).__name__ == "EncoderClassifier" else loaded.model
        if type(encoder).__name__ != "TransformerEncoderModel" or loaded.tokenizer is None:
            raise WrongModelError(f"{model} holds a {type(loaded.model).__name__}"
                                  f"{'' if loaded.tokenizer else ' without a tokenizer'}; feature-extraction reads "
                                  f"the token vectors of an encoder (BERT family) with its tokenizer")
        return cls(encoder, loaded.tokenizer, int(loaded.extra.get("max_length") or encoder.config.max_position))

    def prepare(self, texts: str | Sequence[str], *, special_tokens: str = "text") -> ModelInputs:
        """Each text with its tokenizer's post-processor tokens (``[CLS] … [SEP]``), cut to ``max_length``; the
        tensors are the first text's (``input_ids`` and an all-ones ``attention_mask``): one text at a time."""
        from glassformer.tokenizers import special_token_policy

        texts = [texts] if isinstance(texts, str) else list(texts)
        rows, truncated = [], []
        for text in texts:
            encoding = self.tokenizer.encode_plus(text, add_special_tokens=True, max_length=self.max_length,
                                                  **special_token_policy(special_tokens))
            rows.append(encoding.ids)
            truncated.append(encoding.num_truncated > 0)
        ids = torch.tensor(rows[:1])
        return ModelInputs([{"input_ids": ids, "attention_mask": torch.ones_like(ids)}], rows, truncated)

    @torch.inference_mode()
    def __call__(self, inputs: str | Sequence[str], return_tensors: bool = False) -> Any:
        """Per text the ``(1, T, D)`` token vectors, as nested lists (or tensors with `return_tensors`); texts longer
        than the model reads are truncated."""
        texts, single = _batch(inputs, "texts")
        out = []
        for text in texts:
            hidden = self.encoder(**self.prepare(text, special_tokens="raise").tensors).last_hidden_state  # (1, T, D)
            out.append(hidden if return_tensors else hidden.tolist())
        return out[0] if single else out


class TranslationPipeline:
    """transformers' ``translation``: ``[{"translation_text"}]`` from a glassformer translator."""

    def __init__(self, translator: Any) -> None:
        self.translator = translator

    def __call__(self, inputs: str | Sequence[str], num_beams: int | None = None) -> list[dict[str, str]]:
        """One ``{"translation_text"}`` per text; `num_beams` 1 is greedy search (default: the model's beam)."""
        texts, _ = _batch(inputs, "texts")
        return [{"translation_text": t} for t in self.translator.translate(texts, beam_size=num_beams)]


class TextGenerationPipeline:
    """transformers' ``text-generation``: ``[{"generated_text"}]``, the prompt followed by its continuation.

    The generator decides how a prompt is read (:attr:`glassformer.tasks.lm.TextGenerator.start_token`): a
    language model glassformer trained starts it with ``<|endoftext|>``, a Hugging Face checkpoint reads it as
    transformers does, as it is.
    """

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def __call__(self, text_inputs: str | Sequence[str], max_new_tokens: int = 50, do_sample: bool = True,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 return_full_text: bool = True, seed: int | None = None) -> list[Any]:
        """A single prompt gives ``[{"generated_text"}]``, a list of prompts a list of those.

        As transformers does for GPT-2, tokens are drawn (``do_sample=True``, 50 new tokens) unless
        ``do_sample=False`` asks for the most likely token at each step; `seed` makes a draw repeatable.
        """
        prompts, single = _batch(text_inputs, "prompts")
        sampling: dict[str, Any] = {"greedy": True} if not do_sample else {
            "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        results = []
        for prompt in prompts:
            continuation = "".join(self.generator.stream(prompt, max_new_tokens, **sampling))
            results.append([{"generated_text": (prompt if return_full_text else "") + continuation}])
        return results[0] if single else results


class ImageClassificationPipeline:
    """transformers' ``image-classification``: each image's ``top_k`` most likely labels with their probabilities.

    The classifier reads the images (:meth:`glassformer.tasks.vit.ImageClassifier.prepare`): a glassformer ViT
    as its task does (grey, 28×28, Fashion-MNIST's scaling), a Hugging Face checkpoint as its
    ``preprocessor_config.json`` says (RGB, resized, ``(x / 255 - mean) / std``).
    """

    def __init__(self, classifier: Any, top_k: int | None = 5) -> None:
        self.classifier = classifier
        self.top_k = top_k

    def probabilities(self, images: list[Any]) -> torch.Tensor:
        """``(N, classes)`` class probabilities for image files, PIL images or uint8 arrays."""
        return self.classifier.predict_proba(images)

    def __call__(self, images: Any, top_k: Any = _DEFAULT) -> list[Any]:
        """Per image the best `top_k` ``{"label", "score"}`` (None: all labels); a list of images gives a list per image."""
        top_k = self.top_k if top_k is _DEFAULT else top_k
        batch, single = _batch(images, "images")
        names = self.classifier.label_names
        ranked = [[{"label": names[int(i)], "score": float(row[i])} for i in row.argsort(descending=True)][:top_k]
                  for row in self.probabilities(batch)]
        return ranked[0] if single else ranked
