"""One endpoint per family: how a request body becomes the predictor's inputs and its results the CLI's JSON.

==================  ===================  ======================================================================
family              route                answers (what the CLI's ``--json`` prints for the same input)
==================  ===================  ======================================================================
text classifier     ``POST /predict``    ``[{"text", "label", "score"}]`` (``glassformer predict --json``)
translator          ``POST /translate``  ``[{"source", "translation"}]`` (``glassformer translate --json``)
image classifier    ``POST /classify-    ``[{"file", "label", "score"}]`` (``glassformer classify-image --json``);
                    image``              ``file`` is the name sent with the image, or null
language model      ``POST /generate``   ``[{"prompt", "text"}]``, or with ``"stream": true`` server-sent events
sentence encoder    ``POST /embed``      ``{"embeddings": [[...], ...]}`` (``glassformer embed --json``)
==================  ===================  ======================================================================

Every body is a JSON object with ``"text"`` (one input) or ``"texts"`` (a list); images come as
``"image"``/``"images"``: base64 PNG or JPEG, or ``{"file": NAME, "data": BASE64}``. The model is loaded
on the road every ``Predictor.load`` takes (``from_pretrained``, then the task's ``from_loaded``, as the CLI
loads it), so the server asks the predictor for its inputs and never rebuilds them.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from glassformer.serve.settings import ServeSettings
from glassformer.tokenizers.base import SPECIAL_TOKEN_POLICIES

MAX_BEAM = 64
MAX_NEW_TOKENS = 100_000  # as `glassformer generate`


class BadRequest(ValueError):
    """The body is not what the endpoint reads; `status` is 422 (wrong fields) or 413 (too large)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Endpoint:
    """A family's route: `parse` reads a body into (items, options), `run` answers a batch, `answer` shapes the reply."""

    path: str
    family: str
    summary: str
    parse: Callable[[dict[str, Any], ServeSettings], tuple[list[Any], Hashable]]
    run: Callable[[list[Any], Any], Sequence[Any]]
    answer: Callable[[list[Any]], Any] = list
    fields: dict[str, Any] = field(default_factory=dict)  # the body's JSON-schema properties, for /openapi.json
    streams: bool = False  # answers {"stream": true} with server-sent events
    # Run once before serving, where the batches will run: builds what the first batches would otherwise pay
    # for (a text classifier's per-size matmul kernels); returns how many batch sizes it ran.
    warm_up: Callable[[], int] | None = None


# --- reading bodies --------------------------------------------------------------------------------

TEXT_FIELDS = {"text": {"type": "string", "description": "one input"},
               "texts": {"type": "array", "items": {"type": "string"}, "description": "several inputs"}}


def _check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; this endpoint reads {', '.join(sorted(allowed))}")


def read_texts(body: dict[str, Any], settings: ServeSettings, one: str = "text", many: str = "texts") -> list[Any]:
    """The inputs of ``{one: x}`` or ``{many: [x, ...]}``: exactly one of the two, non-empty, strings checked."""
    if (one in body) == (many in body):
        raise BadRequest(f'expected exactly one of "{one}" (one input) or "{many}" (a list of inputs)')
    if one in body:
        items = [body[one]]
    else:
        items = body[many]
        if not isinstance(items, list) or not items:
            raise BadRequest(f'"{many}" must be a non-empty list, got {kind_of(items)}')
    if one == "text":
        for index, text in enumerate(items):
            if not isinstance(text, str):
                raise BadRequest(f"text {index} must be a string, got {kind_of(text)}")
            if not text.strip():
                raise BadRequest(f"text {index} is empty; give at least one word")
            if len(text) > settings.max_text_chars:
                raise BadRequest(f"text {index} has {len(text):,} characters; the server takes at most "
                                 f"{settings.max_text_chars:,}", status=413)
    return items


def kind_of(value: Any) -> str:
    """How a JSON value is called in an error message."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _option(body: dict[str, Any], name: str, kind: type, default: Any, low: float | None = None,
            high: float | None = None, *, low_open: bool = False) -> Any:
    """``body[name]`` checked to be a `kind` within [low, high] (None or absent: `default`)."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
        raise BadRequest(f'"{name}" must be {"an integer" if kind is int else "a number"}, got {kind_of(value)}')
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        lower = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        upper = "" if high is None else f"<= {high}"
        raise BadRequest(f'"{name}" must be {" and ".join(p for p in (lower, upper) if p)}, got {value}')
    return kind(value)


def _special_tokens(body: dict[str, Any]) -> str:
    policy = body.get("special_tokens", "raise")
    if policy not in SPECIAL_TOKEN_POLICIES:
        raise BadRequest(f'"special_tokens" must be one of {", ".join(SPECIAL_TOKEN_POLICIES)}, got {policy!r}')
    return policy


SPECIAL_FIELD = {"special_tokens": {"type": "string", "enum": list(SPECIAL_TOKEN_POLICIES), "default": "raise",
                                    "description": "text that spells a special token: raise, allow or text"}}


# --- the families --------------------------------------------------------------------------------

def classify_endpoint(classifier: Any) -> Endpoint:
    """``/predict`` for a text classifier (a sentiment model or a Hugging Face classification checkpoint)."""

    def parse(body: dict[str, Any], settings: ServeSettings) -> tuple[list[Any], Hashable]:
        _check_fields(body, {"text", "texts", "special_tokens"})
        return read_texts(body, settings), _special_tokens(body)

    return Endpoint("/predict", "text-classification", "Classify texts: each text's label and its probability",
                    parse, lambda texts, policy: classifier(texts, special_tokens=policy),
                    fields={**TEXT_FIELDS, **SPECIAL_FIELD}, warm_up=getattr(classifier, "warm_up", None))


def translate_endpoint(translator: Any) -> Endpoint:
    """``/translate`` for a translation model; ``beam`` 1 is greedy search (default: the model's beam)."""

    def parse(body: dict[str, Any], settings: ServeSettings) -> tuple[list[Any], Hashable]:
        _check_fields(body, {"text", "texts", "beam"})
        return read_texts(body, settings), _option(body, "beam", int, None, 1, MAX_BEAM)

    return Endpoint("/translate", "translation", "Translate texts", parse,
                    lambda texts, beam: translator(texts, beam_size=beam),
                    fields={**TEXT_FIELDS, "beam": {"type": "integer", "minimum": 1, "maximum": MAX_BEAM,
                                                    "description": "beam size, 1 for greedy search"}})


def _image_bytes(item: Any, index: int) -> tuple[bytes, str | None]:
    """The bytes and name of one image of a body: base64 text, or ``{"file": NAME, "data": BASE64}``."""
    name = None
    if isinstance(item, dict):
        _check_fields(item, {"file", "data"})
        name, item = item.get("file"), item.get("data")
        if name is not None and not isinstance(name, str):
            raise BadRequest(f'image {index}: "file" must be a string, got {kind_of(name)}')
    if not isinstance(item, str) or not item:
        raise BadRequest(f'image {index} must be base64 PNG or JPEG data (or {{"file", "data"}}), got {kind_of(item)}')
    try:
        return base64.b64decode(item, validate=True), name
    except (binascii.Error, ValueError):
        raise BadRequest(f"image {index} is not valid base64") from None


def image_endpoint(classifier: Any) -> Endpoint:
    """``/classify-image`` for a ViT: images are read (the model's size and channels) as ``classify-image`` reads files."""
    def parse(body: dict[str, Any], settings: ServeSettings) -> tuple[list[Any], Hashable]:
        _check_fields(body, {"image", "images"})
        items = read_texts(body, settings, "image", "images")
        return [_image_bytes(item, i) for i, item in enumerate(items)], None

    def run(images: list[tuple[bytes, str | None]], _: Any) -> list[dict[str, Any]]:
        # Decoded here, on the worker thread: a large image must not hold up the server's event loop.
        pixels = [classifier.read_image(data) for data, _ in images]
        return classifier.classify(pixels, [name for _, name in images])

    image = {"oneOf": [{"type": "string", "format": "byte"},
                       {"type": "object", "properties": {"file": {"type": "string"},
                                                         "data": {"type": "string", "format": "byte"}}}]}
    return Endpoint("/classify-image", "image-classification", "Classify base64 PNG or JPEG images", parse, run,
                    fields={"image": image, "images": {"type": "array", "items": image}})


def embed_endpoint(encoder: Any, batch_size: int = 32) -> Endpoint:
    """``/embed`` for a sentence encoder: mean-pooled, L2-normalised vectors as ``glassformer embed`` makes them."""

    def parse(body: dict[str, Any], settings: ServeSettings) -> tuple[list[Any], Hashable]:
        _check_fields(body, {"text", "texts", "special_tokens"})
        return read_texts(body, settings), _special_tokens(body)

    def run(texts: list[str], policy: str) -> list[list[float]]:
        return encoder.encode(texts, batch_size=batch_size, special_tokens=policy).tolist()

    return Endpoint("/embed", "sentence-embedding", "Sentence embeddings", parse, run,
                    answer=lambda vectors: {"embeddings": vectors}, fields={**TEXT_FIELDS, **SPECIAL_FIELD},
                    warm_up=getattr(encoder, "warm_up", None))


@dataclass
class Generation:
    """One prompt to continue: the sampling settings, where each piece goes as it is drawn, and a stop switch."""

    prompt: str
    sampling: dict[str, Any]
    max_new_tokens: int
    on_piece: Callable[[str], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)


def generate_endpoint(generator: Any) -> Endpoint:
    """``/generate`` for a language model: ``[{"prompt", "text"}]``, or a stream of tokens with ``"stream": true``."""

    def parse(body: dict[str, Any], settings: ServeSettings) -> tuple[list[Any], Hashable]:
        _check_fields(body, {"text", "texts", "max_new_tokens", "temperature", "top_k", "top_p", "seed", "stream"})
        prompts = read_texts(body, settings)
        sampling = {"temperature": _option(body, "temperature", float, 1.0, 0.0, 100.0),
                    "top_k": _option(body, "top_k", int, None, 1),
                    "top_p": _option(body, "top_p", float, None, 0.0, 1.0, low_open=True),
                    "seed": _option(body, "seed", int, None)}
        steps = _option(body, "max_new_tokens", int, 200, 0, MAX_NEW_TOKENS)
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest(f'"stream" must be true or false, got {kind_of(stream)}')
        if stream and len(prompts) != 1:
            raise BadRequest('"stream": true takes one prompt ("text"), not a list')
        jobs = [Generation(prompt, sampling, steps) for prompt in prompts]
        # A stream runs alone (its own options), since its client reads it while it runs.
        return jobs, ("stream", id(jobs[0])) if stream else tuple(sorted(sampling.items())) + (steps,)

    def run(jobs: list[Generation], _: Any) -> list[dict[str, str]]:
        results = []
        for job in jobs:
            pieces = []
            for piece in generator.stream(job.prompt, job.max_new_tokens, **job.sampling):
                if job.stop.is_set():
                    break
                pieces.append(piece)
                if job.on_piece is not None:
                    job.on_piece(piece)
            results.append({"prompt": job.prompt, "text": "".join(pieces)})
        return results

    number = {"type": "number"}
    return Endpoint("/generate", "text-generation", "Continue prompts; \"stream\": true sends each token as a "
                    "server-sent event", parse, run, streams=True,
                    fields={**TEXT_FIELDS, "max_new_tokens": {"type": "integer", "minimum": 0, "maximum": MAX_NEW_TOKENS,
                                                              "default": 200},
                            "temperature": {**number, "minimum": 0, "default": 1.0, "description": "0: greedy"},
                            "top_k": {"type": "integer", "minimum": 1}, "top_p": {**number, "maximum": 1},
                            "seed": {"type": "integer"}, "stream": {"type": "boolean", "default": False}})


# --- loading -------------------------------------------------------------------------------------

def load_endpoint(model: str | os.PathLike, *, precision: str = "auto", verify: bool = True) -> Endpoint:
    """The endpoint for whatever `model` holds: a saved model or a Hugging Face checkpoint with a task head through
    its task's predictor (loaded as ``Predictor.load`` loads it), or an encoder (``minilm``, a sentence-transformers
    export) for embeddings."""
    from glassformer.pretrained import SentenceEncoder, from_pretrained
    from glassformer.tasks import task_of
    from glassformer.tasks.pipeline import loaded_predictor

    loaded = from_pretrained(model, precision=precision, verify=verify)
    if task_of(loaded) is None and loaded.sentence is not None and loaded.tokenizer is not None:
        return embed_endpoint(SentenceEncoder(loaded.model, loaded.tokenizer, loaded.sentence))
    return endpoint_for(loaded_predictor(loaded))


def endpoint_for(predictor: Any) -> Endpoint:
    """The endpoint that serves a task's predictor."""
    kind = type(predictor).__name__
    makers = {"SentimentClassifier": classify_endpoint, "Translator": translate_endpoint,
              "ImageClassifier": image_endpoint, "TextGenerator": generate_endpoint,
              "SentenceEncoder": embed_endpoint}
    if kind not in makers:
        raise ValueError(f"glassformer serve cannot serve a {kind}; it serves {', '.join(makers)}")
    return makers[kind](predictor)
