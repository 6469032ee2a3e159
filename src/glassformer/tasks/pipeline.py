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
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from glassformer.errors import UsageError, WrongModelError
from glassformer.tasks import TASKS, get_task

# Hugging Face's task names → the glassformer task whose predictor answers them (None: the encoder itself).
HF_TASKS: dict[str, str | None] = {"text-classification": "sentiment", "sentiment-analysis": "sentiment",
                                   "feature-extraction": None, "translation": "translate",
                                   "translation_de_to_en": "translate", "text-generation": "lm",
                                   "image-classification": "vit"}
_DEFAULT = object()  # "top_k was not given", which transformers answers differently from top_k=None


def _is_saved(model: str | os.PathLike) -> bool:
    from glassformer._files import artifact_kind

    return Path(model).is_dir() and artifact_kind(model) == "model"


def load_predictor(model: str | os.PathLike, task: str | None = None, **load_kwargs: Any) -> Any:
    """The glassformer predictor of `task` for `model`: a saved model directory or a Hugging Face checkpoint.

    Without `task`, the one the directory records (saved models) or its head implies (checkpoints).
    `load_kwargs` go to the predictor's ``load`` (``verify``, ``device``).
    """
    if _is_saved(model):
        from glassformer.training.saved import read_config

        task = task or read_config(model).get("task")
        if task is None:
            raise WrongModelError(f"{model} records no task; pass one of {', '.join(sorted(TASKS))}")
        return get_task(task).Predictor.load(model, **load_kwargs)
    from glassformer.pretrained import KNOWN, from_pretrained
    from glassformer.training.saved import ModelNotFoundError

    if not Path(model).is_dir() and str(model) not in KNOWN:
        raise ModelNotFoundError(f"{model} is not a directory{'' if Path(model).exists() else ' (nothing is there)'}; "
                                 f"expected a saved glassformer model or a Hugging Face checkpoint directory")
    loaded = from_pretrained(model, verify=load_kwargs.get("verify", True),
                             precision=load_kwargs.get("precision", "fp32"))
    return predictor_for(loaded, task)


def predictor_for(loaded: Any, task: str | None = None) -> Any:
    """The glassformer predictor of `task` (default: the one its head implies) for a loaded Hugging Face checkpoint."""
    model = loaded.path
    kind = type(loaded.model).__name__
    if loaded.task is None or (task is not None and task != loaded.task):
        raise WrongModelError(f"{model} holds a {loaded.family} {kind}, which the {task or 'any'} task cannot use"
                              + (f"; it serves the {loaded.task} task" if loaded.task else
                                 " (it has no task head; feature-extraction reads its token vectors)"))
    if loaded.task in ("sentiment", "lm", "translate") and loaded.tokenizer is None:
        raise WrongModelError(f"{model} has no tokenizer files (tokenizer.json, vocab.txt or vocab.json + "
                              f"merges.txt), so it cannot read text")
    labels = loaded.label_names or [f"LABEL_{i}" for i in range(_n_classes(loaded.model))]
    if loaded.task == "sentiment":
        from glassformer.pretrained.hf_tokenizer import model_max_length
        from glassformer.tasks.sentiment import SentimentClassifier, with_cls_template

        limit = model_max_length(loaded.path, loaded.model.config.max_position)
        return SentimentClassifier(loaded.model, with_cls_template(loaded.tokenizer), labels, limit)
    if loaded.task == "lm":
        from glassformer.tasks.lm import TextGenerator

        return TextGenerator(loaded.model, loaded.tokenizer)
    if loaded.task == "translate":
        from glassformer.pretrained.hf_tokenizer import model_max_length
        from glassformer.tasks.translate import Translator

        return Translator(loaded.model, loaded.tokenizer, model_max_length(loaded.path, loaded.model.config.max_position))
    from glassformer.tasks.vit import ImageClassifier

    return ImageClassifier(loaded.model, labels)


def _n_classes(model: Any) -> int:
    return int(getattr(model.config, "num_labels", getattr(model.config, "num_classes", 0)))


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
        return TextGenerationPipeline(predictor, start_with_end_token=_is_saved(model))
    return ImageClassificationPipeline(predictor, 5 if top_k is _DEFAULT else top_k, None if _is_saved(model)
                                       else Path(model))


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

    @torch.inference_mode()
    def __call__(self, inputs: str | Sequence[str], return_tensors: bool = False) -> Any:
        """Per text the ``(1, T, D)`` token vectors, as nested lists (or tensors with `return_tensors`); texts longer
        than the model reads are truncated."""
        texts, single = _batch(inputs, "texts")
        out = []
        for text in texts:
            ids = torch.tensor([self.tokenizer.encode(text, add_special_tokens=True, max_length=self.max_length)])
            hidden = self.encoder(ids, torch.ones_like(ids)).last_hidden_state  # (1, T, D)
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

    A language model glassformer trained saw ``<|endoftext|>`` before every text, so its prompts start with
    one (as ``glassformer generate`` does); a Hugging Face checkpoint's prompts are read as transformers
    reads them, as they are.
    """

    def __init__(self, generator: Any, start_with_end_token: bool = True) -> None:
        self.generator = generator
        self.start_with_end_token = start_with_end_token

    def _stream(self, prompt: str, max_new_tokens: int, sampling: dict[str, Any]) -> Any:
        if self.start_with_end_token:
            return self.generator.stream(prompt, max_new_tokens, **sampling)
        from glassformer.inference.generate import stream_text

        return stream_text(self.generator.model, self.generator.tokenizer, prompt, max_new_tokens,
                           end_token_id=self.generator.end_token_id, **sampling)

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
            continuation = "".join(self._stream(prompt, max_new_tokens, sampling))
            results.append([{"generated_text": (prompt if return_full_text else "") + continuation}])
        return results[0] if single else results


class ImageClassificationPipeline:
    """transformers' ``image-classification``: each image's ``top_k`` most likely labels with their probabilities.

    A glassformer ViT reads images as its task does (grey, 28×28, Fashion-MNIST's scaling:
    :func:`glassformer.tasks.vit.load_image`); a Hugging Face checkpoint as its ``preprocessor_config.json``
    says (RGB, resized, ``(x / 255 - mean) / std``).
    """

    def __init__(self, classifier: Any, top_k: int | None = 5, checkpoint: Path | None = None) -> None:
        self.classifier = classifier
        self.top_k = top_k
        self.checkpoint = checkpoint

    def _checkpoint_pixels(self, images: list[Any]) -> torch.Tensor:
        """``(B, C, H, W)`` inputs as the checkpoint's ``preprocessor_config.json`` says: resize, x / 255, (x - mean) / std."""
        import json

        from PIL import Image

        config = self.classifier.model.config
        path = self.checkpoint / "preprocessor_config.json"
        settings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        mean = np.asarray(settings.get("image_mean", [0.5] * config.in_channels), dtype=np.float32)
        std = np.asarray(settings.get("image_std", [0.5] * config.in_channels), dtype=np.float32)
        mode = "RGB" if config.in_channels == 3 else "L"
        arrays = []
        for image in images:
            picture = Image.open(image) if isinstance(image, (str, Path)) else image
            if not isinstance(picture, Image.Image):
                picture = Image.fromarray(np.asarray(picture, dtype=np.uint8))
            picture = picture.convert(mode).resize((config.image_size, config.image_size), Image.Resampling.BILINEAR)
            pixels = np.asarray(picture, dtype=np.float32).reshape(config.image_size, config.image_size, -1) / 255.0
            arrays.append(((pixels - mean) / std).transpose(2, 0, 1))  # (C, H, W)
        return torch.from_numpy(np.stack(arrays))

    def probabilities(self, images: list[Any]) -> torch.Tensor:
        """``(N, classes)`` class probabilities for image files, PIL images or uint8 arrays."""
        if self.checkpoint is not None:
            with torch.inference_mode():
                return self.classifier.model(self._checkpoint_pixels(images)).logits.float().softmax(-1)
        from glassformer.tasks.vit import load_image

        size = self.classifier.image_size
        grey = [load_image(i, size) if isinstance(i, (str, Path)) else np.asarray(i, dtype=np.uint8) for i in images]
        return self.classifier.predict_proba(np.stack(grey))

    def __call__(self, images: Any, top_k: Any = _DEFAULT) -> list[Any]:
        """Per image the best `top_k` ``{"label", "score"}`` (None: all labels); a list of images gives a list per image."""
        top_k = self.top_k if top_k is _DEFAULT else top_k
        batch, single = _batch(images, "images")
        names = self.classifier.label_names
        ranked = [[{"label": names[int(i)], "score": float(row[i])} for i in row.argsort(descending=True)][:top_k]
                  for row in self.probabilities(batch)]
        return ranked[0] if single else ranked
