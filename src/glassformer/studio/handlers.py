"""What each tab does with its inputs: plain functions of (models, inputs) → outputs, callable without a browser.

Every handler catches its own failures and returns a friendly message in its message output, so a
bad input never shows a stack trace and never stops the app. The model math lives in the library;
these functions call public APIs and turn the results into HTML.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassformer.studio.baseline import MarkovBaseline
from glassformer.studio.common import (
    UserInputError,
    clean_text,
    error_html,
    figure_img,
    friendly_error,
    iframe_html,
    message_html,
    model_lock,
    notes_html,
    overlay_html,
    table_html,
)
from glassformer.studio.generate import prompt_inputs
from glassformer.studio.jobs import ModelSlot
from glassformer.studio.walkthrough import (
    lm_walkthrough,
    lm_walkthrough_html,
    translation_walkthrough,
    translation_walkthrough_html,
    vision_walkthrough,
    vision_walkthrough_html,
    walkthrough,
    walkthrough_html,
)
from glassformer.viz import (
    AttentionMaps,
    attention_heatmap,
    cls_attention,
    head_view_html,
    image_png,
    rollout_map,
    text_attention,
    token_labels,
    token_scores_html,
)

MAX_MERGES = 50
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


@dataclass
class StudioModels:
    """The models the studio serves: the sentiment classifier (required), the optional task models, the LM's baseline."""

    sentiment: Any  # a SentimentClassifier
    translate: ModelSlot
    vision: ModelSlot
    generate: ModelSlot
    markov: MarkovBaseline | None = None  # None: an order-5 chain over the language model's tokens

    def __post_init__(self) -> None:
        if self.markov is None:
            self.markov = MarkovBaseline(self.generate)


# --- Sentiment -----------------------------------------------------------------------------------

def _truncation_note(truncated: bool, max_length: int) -> list[str]:
    if not truncated:
        return []
    return [f"The model reads at most {max_length} tokens ([CLS] and [SEP] included); "
            f"the rest of your text was cut off."]


def classify(models: StudioModels, text: str, layer: int = 0, head: int = 0) -> tuple[dict | None, str, str, str]:
    """Label probabilities, notes, token shading and the head view of the sentiment model on `text`."""
    labels, summaries, shadings, views = classify_batch(models, [text], [layer], [head])
    return labels[0], summaries[0], shadings[0], views[0]


def classify_batch(models: StudioModels, texts: list[str], layers: list[int], heads: list[int]
                   ) -> tuple[list[dict | None], list[str], list[str], list[str]]:
    """:func:`classify` for many requests at once: one forward pass for every usable text in the batch.

    Gradio hands concurrent requests over together (event batching), so a burst costs one batched
    forward instead of one pass per request behind a lock. A bad input answers with its own message
    and does not disturb the others.
    """
    n = len(texts)
    labels: list[dict | None] = [None] * n
    summaries, shadings, views = [""] * n, [""] * n, [""] * n
    cleaned: dict[int, Any] = {}
    for i, text in enumerate(texts):
        try:
            cleaned[i] = clean_text(text)
        except Exception as exc:
            summaries[i] = error_html(exc)
    classifier = models.sentiment
    usable = list(cleaned)
    try:
        with model_lock:
            analysis = classifier.analyse([cleaned[i].text for i in usable]) if usable else None
    except Exception:  # one text the tokenizer refuses: answer each on its own, so the others still work
        for i in usable:
            labels[i], summaries[i], shadings[i], views[i] = _classify_one(models, cleaned[i], layers[i], heads[i])
        return labels, summaries, shadings, views
    for row, i in enumerate(usable):
        try:
            labels[i], summaries[i], shadings[i], views[i] = _classified(classifier, analysis, row, cleaned[i],
                                                                         layers[i], heads[i])
        except Exception as exc:
            summaries[i] = error_html(exc)
    return labels, summaries, shadings, views


def predict_batch(models: StudioModels, texts: list[str]) -> list[dict[str, Any]]:
    """The label and probabilities of each text, for programs (the ``/predict`` API): one forward pass per batch.

    A text the studio cannot use answers ``{"error": ...}`` without failing the others.
    """
    results: list[dict[str, Any]] = [{} for _ in texts]
    usable: dict[int, str] = {}
    for i, text in enumerate(texts):
        try:
            usable[i] = clean_text(text).text
        except Exception as exc:
            results[i] = {"error": str(exc)}
    classifier = models.sentiment
    try:
        with model_lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut text is still classified; the UI reports the cut
            probs = classifier.predict_proba(list(usable.values()), special_tokens="text") if usable else []
    except Exception as exc:
        return [r or {"error": friendly_error(exc)} for r in results]
    for row, i in enumerate(usable):
        scores = {name: float(p) for name, p in zip(classifier.label_names, probs[row].tolist())}
        best = max(scores, key=scores.get)
        results[i] = {"label": best, "score": scores[best], "probabilities": scores}
    return results


def _classify_one(models: StudioModels, clean: Any, layer: int, head: int) -> tuple[dict | None, str, str, str]:
    try:
        with model_lock:
            analysis = models.sentiment.analyse([clean.text])
        return _classified(models.sentiment, analysis, 0, clean, layer, head)
    except Exception as exc:
        return None, error_html(exc), "", ""


def _classified(classifier: Any, analysis: Any, row: int, clean: Any, layer: int, head: int
                ) -> tuple[dict, str, str, str]:
    """The four outputs for one row of a batch analysis."""
    ids = analysis.ids[row]
    maps = AttentionMaps.from_attentions(analysis.attentions, token_labels(classifier.tokenizer, ids),
                                         name="encoder self-attention", batch_index=row)
    notes = clean.notes + _truncation_note(analysis.truncated[row], classifier.max_length)
    label = {name: float(p) for name, p in zip(classifier.label_names, analysis.probs[row].tolist())}
    best = max(label, key=label.get)
    summary = message_html(f"{best} ({label[best]:.1%})", "info")
    # Attention each token receives in the last layer, averaged over heads and over the tokens that look.
    received = maps.matrix(-1, None).mean(axis=0)
    shading = ('<p style="font-size:12px">How much attention each token receives in the last layer '
               "(mean over heads and queries); hover a token for the value.</p>"
               + token_scores_html(maps.key_tokens, received))
    layer = int(np.clip(layer, 0, maps.n_layers - 1))
    head = int(np.clip(head, 0, maps.n_heads - 1))
    view = iframe_html(head_view_html(maps, layer=layer, head=head, title="sentiment model: self-attention"),
                       height=560, title="head view")
    return label, summary + notes_html(notes), shading, view


# --- Walkthrough ---------------------------------------------------------------------------------

def explain(models: StudioModels, text: str, layer: int = 0, head: int = 0) -> str:
    """The step-by-step pipeline of the sentiment model on `text`, as HTML."""
    try:
        clean = clean_text(text)
        classifier = models.sentiment
        inputs = classifier.prepare([clean.text])
        ids, truncated = inputs.ids[0], inputs.truncated[0]
        config = classifier.model.config
        layer = int(np.clip(layer, 0, config.n_layers - 1))
        head = int(np.clip(head, 0, config.n_heads - 1))
        with model_lock:
            steps = walkthrough(classifier.model, classifier.tokenizer, ids, classifier.label_names,
                                layer=layer, head=head)
        notes = clean.notes + _truncation_note(truncated, classifier.max_length)
        return notes_html(notes) + walkthrough_html(steps)
    except Exception as exc:
        return error_html(exc)


MAX_WALK_TOKENS = 32  # tokens a decoder's walkthrough reads: its grids hold a cell for every pair of them


def _within(value: int, count: int, what: str, notes: list[str]) -> int:
    """`value` clipped to 0..count-1, with a note when it had to be (the sliders are drawn before a model exists)."""
    clipped = int(np.clip(value, 0, count - 1))
    if clipped != int(value):
        notes.append(f"The model has {what}s 0..{count - 1}; showing {what} {clipped}.")
    return clipped


def _last_tokens(ids: list[int], notes: list[str], what: str, cut: bool = False) -> list[int]:
    """The last MAX_WALK_TOKENS of `ids`; `cut`: the model's own window already dropped the start of the text."""
    if len(ids) <= MAX_WALK_TOKENS and not cut:
        return ids
    count = f"more than {len(ids)}" if cut else str(len(ids))
    notes.append(f"The walkthrough reads the last {min(len(ids), MAX_WALK_TOKENS)} tokens of your {what} ({count} in "
                 "all), so that every grid stays readable.")
    return ids[-MAX_WALK_TOKENS:]


def explain_lm(models: StudioModels, prompt: str, layer: int = 0, head: int = 0, temperature: float = 0.8,
               top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> str:
    """The decoder LM's pipeline on `prompt`: masked self-attention of one head, next-token logits and the draw."""
    try:
        generator = models.generate.get()
        if generator is None:
            raise UserInputError(models.generate.status())
        clean = clean_text(prompt, what="a prompt")
        notes = list(clean.notes)
        inputs = prompt_inputs(generator, clean.text)
        ids = _last_tokens(inputs.ids[0], notes, "prompt", inputs.truncated[0])
        config = generator.model.config
        layer, head = _within(layer, config.n_layers, "layer", notes), _within(head, config.n_heads, "head", notes)
        with model_lock:
            steps = lm_walkthrough(generator.model, generator.tokenizer, ids, layer=layer, head=head,
                                   temperature=float(temperature), top_k=int(top_k or 0), top_p=float(top_p),
                                   seed=int(seed))
        return notes_html(notes) + lm_walkthrough_html(steps, generator.tokenizer)
    except Exception as exc:
        return error_html(exc)


def explain_translation(models: StudioModels, text: str, layer: int = 0, head: int = 0) -> str:
    """The encoder–decoder's pipeline on `text`: the encoder, then the decoder step by step with cross-attention."""
    try:
        translator = models.translate.get()
        if translator is None:
            raise UserInputError(models.translate.status())
        clean = clean_text(text, what="a German sentence")
        notes = list(clean.notes)
        tokenizer = translator.tokenizer
        source = translator.prepare([clean.text]).ids[0]  # the pieces (and hints) the model reads, then EOS
        if len(source) > MAX_WALK_TOKENS:
            notes.append(f"The walkthrough reads the first {MAX_WALK_TOKENS - 1} tokens of your sentence "
                         f"({len(source) - 1} in all), so that every grid stays readable.")
            source = source[:MAX_WALK_TOKENS - 1] + source[-1:]
        config = translator.model.config
        encoder_layer = _within(layer, config.n_encoder_layers, "encoder layer", notes)
        decoder_layer = _within(layer, config.n_decoder_layers, "decoder layer", notes)
        head = _within(head, config.n_heads, "head", notes)
        with model_lock:
            steps = translation_walkthrough(translator.model, tokenizer, source, encoder_layer=encoder_layer,
                                            decoder_layer=decoder_layer, head=head)
        translation = tokenizer.decode(steps.output_ids[:-1]).strip()
        return notes_html(notes) + translation_walkthrough_html(steps, tokenizer, translation)
    except Exception as exc:
        return error_html(exc)


def explain_image(models: StudioModels, index: int = 0, layer: int = 0, head: int = 0) -> str:
    """The ViT's pipeline on a Fashion-MNIST test image: patches, [CLS] + positions, attention, class."""
    try:
        classifier = models.vision.get()
        if classifier is None:
            raise UserInputError(models.vision.status())
        images, labels, names = _test_images()
        notes: list[str] = []
        index = _within(index, len(images), "test image", notes)
        config = classifier.model.config
        layer, head = _within(layer, config.n_layers, "layer", notes), _within(head, config.n_heads, "head", notes)
        if classifier.mirror_average:
            notes.append("This model's Vision tab averages each image with its mirror image; the walkthrough follows "
                         "the one pass over the image as it is.")
        with model_lock:
            pixels = classifier.prepare(images[index][None]).tensors["images"][0].cpu()  # the first view: the image
            steps = vision_walkthrough(classifier.model, pixels, classifier.label_names, layer=layer, head=head)
        truth = f"test image {index}: truly {names[int(labels[index])]}"
        return notes_html(notes) + vision_walkthrough_html(steps, images[index], truth)
    except Exception as exc:
        return error_html(exc)


# --- Tokenizer -----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _reference_tokenizers() -> dict[str, Any]:
    from glassformer.tokenizers import bert_uncased, gpt2

    found = {}
    for name, make in (("GPT-2 (byte-level BPE)", gpt2), ("BERT uncased (WordPiece)", bert_uncased)):
        try:
            found[name] = make()
        except Exception as exc:  # a missing vocabulary file hides one column, not the tab
            found[name] = exc
    return found


def reference_tokens(text: str) -> dict[str, list[tuple[str, int]] | Exception]:
    """(token, id) pairs of `text` under GPT-2's byte-level BPE (a space shown as ␣) and BERT's uncased WordPiece.

    A tokenizer whose vocabulary file is missing gives the exception instead of its pairs.
    """
    out: dict[str, list[tuple[str, int]] | Exception] = {}
    for name, tokenizer in _reference_tokenizers().items():
        if isinstance(tokenizer, Exception):
            out[name] = tokenizer
        else:
            ids = tokenizer.encode_ordinary(text)
            out[name] = list(zip(token_labels(tokenizer, ids), ids))
    return out


def tokenize(text: str, merges: int = 10) -> tuple[str, str]:
    """The article's character BPE merges on `text`, step by step, and GPT-2 / BERT tokens of the same text."""
    try:
        clean = clean_text(text, what="some words")
        from glassformer.tokenizers import CharBPE

        merges = int(np.clip(merges, 0, MAX_MERGES))
        bpe = CharBPE()
        steps = bpe.train(clean.text, merges)
        rows = [[s.step, f"{s.pair[0]} + {s.pair[1]}", s.count,
                 ", ".join(f"{w} ×{c}" if c > 1 else w for w, c in list(s.words.items())[:12])] for s in steps]
        done = f"{len(steps)} merges learned" + ("" if len(steps) == merges else
                                                 f" (no pair occurs twice after step {len(steps)})")
        bpe_html = (notes_html(clean.notes) + message_html(done)
                    + table_html(rows, ["step", "merged pair", "count", "words afterwards (first 12)"]))
        columns = []
        for name, pieces in reference_tokens(clean.text).items():
            if isinstance(pieces, Exception):
                columns.append(f"<div><h4>{html.escape(name)}</h4>"
                               + message_html(f"not available: {pieces}", "warning") + "</div>")
                continue
            rows = [[i, token, index] for i, (token, index) in enumerate(pieces[:200])]
            more = "" if len(pieces) <= 200 else f" (first 200 of {len(pieces)})"
            title = f"{html.escape(name)}: {len(pieces)} tokens{more}"
            columns.append(f'<div style="flex:1;min-width:260px"><h4>{title}</h4>'
                           + table_html(rows, ["#", "token", "id"]) + "</div>")
        side = '<div class="gf-side" style="display:flex;gap:16px;flex-wrap:wrap">' + "".join(columns) + "</div>"
        return bpe_html, side
    except Exception as exc:
        return error_html(exc), ""


# --- Translate -----------------------------------------------------------------------------------

def translate(models: StudioModels, text: str, method: str = "beam") -> tuple[str, str, str]:
    """German → English with greedy or beam search, and the cross-attention of the greedy pass."""
    try:
        translator = models.translate.get()
        if translator is None:
            raise UserInputError(models.translate.status())
        clean = clean_text(text, what="a German sentence")
        beam = 1 if method == "greedy" else max(int(translator.beam_size), 2)
        with model_lock:
            out = translator.translate([clean.text], beam_size=beam)[0]
            seen = text_attention(translator, clean.text)
        cross = next((m for m in seen.maps if "cross" in m.name), seen.maps[-1])
        # The greedy output is what the map's rows are; the beam's translation may differ from it.
        picture = figure_img(attention_heatmap(cross, -1, None, title="cross-attention (greedy output)"),
                             "cross-attention, last layer, mean over heads")
        view = iframe_html(head_view_html(seen.maps, layer=0, head="all", title="translation attention"),
                           height=520, title="translation head view")
        note = notes_html(clean.notes + (["The source was cut to fit the model."] if seen.truncated else []))
        return out, note + picture, view
    except Exception as exc:
        return "", error_html(exc), ""


# --- Vision --------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _test_images() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from glassformer.data.corpora import load_fashion_mnist

    data = load_fashion_mnist(quiet=True)
    return data.test_images, data.test_labels, data.class_names


def _uploaded_image(path: str | None, size: int) -> np.ndarray:
    from glassformer.tasks.vit import load_image

    upload = Path(path)
    if upload.stat().st_size > MAX_UPLOAD_BYTES:
        raise UserInputError(f"The file is {upload.stat().st_size / 2**20:.1f} MiB; images up to "
                             f"{MAX_UPLOAD_BYTES // 2**20} MiB are accepted.")
    try:
        return load_image(upload, size)
    except ValueError:
        raise UserInputError("That file is not a PNG or JPEG image. Upload a picture of a piece of clothing, "
                             "or pick a test image by number.") from None


def _patch_maps(image: np.ndarray, attentions: Any) -> str:
    """The attention rollout over the image, then [CLS]'s attention per layer: the mean over heads, then each head."""
    picture = image_png(image)
    n_heads = attentions[0].shape[1]
    rows = ['<div class="gf-rollout">' + overlay_html(picture, rollout_map(attentions), 168,
                                                       "attention rollout (all layers)") + "</div>"]
    for layer in range(len(attentions)):
        maps = [overlay_html(picture, cls_attention(attentions, layer), 84, f"layer {layer}, mean")]
        maps += [overlay_html(picture, cls_attention(attentions, layer, head), 84, f"L{layer} head {head}")
                 for head in range(n_heads)]
        rows.append('<div class="gf-layer-maps">' + "".join(maps) + "</div>")
    return ('<p style="font-size:12px">How much the [CLS] token attends to each patch; hover a patch for the '
            "value.</p>" + "".join(rows))


def see(models: StudioModels, index: int = 0, upload: str | None = None) -> tuple[dict | None, str, str]:
    """A ViT's prediction for a Fashion-MNIST test image (or an uploaded one) and its [CLS] attention over patches."""
    try:
        classifier = models.vision.get()
        if classifier is None:
            raise UserInputError(models.vision.status())
        size = classifier.image_size
        if upload:
            image, truth = _uploaded_image(upload, size), "uploaded image"
        else:
            images, labels, names = _test_images()
            index = int(np.clip(index, 0, len(images) - 1))
            image, truth = images[index], f"test image {index}: truly {names[int(labels[index])]}"
        with model_lock, torch.no_grad():
            probs = classifier.predict_proba(image[None])[0]
            output = classifier.model(**classifier.prepare(image[None]).tensors, output_attentions=True)
        label = {name: float(p) for name, p in zip(classifier.label_names, probs)}
        return label, message_html(truth), _patch_maps(image, output.attentions)
    except Exception as exc:
        return None, error_html(exc), ""
