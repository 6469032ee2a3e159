"""The Sentiment tab: the classifier's label, the attention each token receives, the head view, and Explain.

Concurrent requests are gathered by the studio's own micro-batcher and answered by one forward pass;
``/predict`` gives programs the label and probabilities of a text.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any, Sequence

import gradio as gr
import numpy as np

from glassformer.studio import explain as panels
from glassformer.studio.batching import LoopBatcher
from glassformer.studio.common import (
    ERROR,
    UserInputError,
    clean_text,
    error_html,
    friendly_error,
    iframe_html,
    message_html,
    model_lock,
    notes_html,
    shows_errors,
    truncation_note,
)
from glassformer.studio.models import StudioModels
from glassformer.viz import AttentionMaps, head_view_html, token_labels, token_scores_html

EXAMPLES = ["A gorgeous, witty, seductive movie.", "The plot is a mess and the jokes fall flat."]


def build(models: StudioModels) -> None:
    """The tab's components and events: classify (batched), ``/predict`` for programs, explain and ablate heads."""
    config = models.sentiment.model.config
    layers, heads = config.n_layers - 1, config.n_heads - 1
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Sentence", lines=3, max_lines=8, value=EXAMPLES[0], elem_id="sentiment-text")
            with gr.Row():
                layer = gr.Slider(0, layers, value=layers, step=1, label="Layer")
                head = gr.Slider(0, heads, value=0, step=1, label="Head")
            submit = gr.Button("Classify", variant="primary", elem_id="sentiment-submit")
            gr.Examples(EXAMPLES, inputs=[text])
        with gr.Column(scale=2):
            label = gr.Label(label="Prediction", num_top_classes=len(models.sentiment.label_names),
                             elem_id="sentiment-label")
            summary = gr.HTML(elem_id="sentiment-summary")
    shading = gr.HTML(elem_id="sentiment-tokens")
    view = gr.HTML(elem_id="sentiment-headview")
    # Concurrent requests are gathered by the studio's own micro-batcher and answered by one forward
    # pass; Gradio runs every request at once (no concurrency limit) so that the batcher sees them all.
    classify_batcher = LoopBatcher(lambda items, _: list(zip(*classify_batch(models, *zip(*items)))))
    predict_batcher = LoopBatcher(lambda texts, _: predict_batch(models, list(texts)))

    async def classify_one(text: str, layer: int, head: int) -> tuple[dict | None, str, str, str]:
        return await classify_batcher.one((text, layer, head))

    submit.click(classify_one, [text, layer, head], [label, summary, shading, view], api_name="classify",
                 concurrency_limit=None)
    text.submit(classify_one, [text, layer, head], [label, summary, shading, view], api_visibility="private",
                concurrency_limit=None)

    async def predict(text: str) -> dict:
        """For programs: the text's label, its probability and every label's probability."""
        return await predict_batcher.one(text)

    gr.api(predict, api_name="predict", concurrency_limit=None)

    with gr.Accordion("Explain: why this prediction?", open=False, elem_id="sentiment-explain-section"):
        e_submit = gr.Button("Explain", elem_id="sentiment-explain-submit")
        e_out = gr.HTML(elem_id="sentiment-explain")
        e_submit.click(partial(explain, models), [text], e_out, api_name="explain")
        gr.Markdown("**Ablate heads**: tick a head to knock it out (its output set to zero) and compare "
                    "the prediction with the original.")
        e_heads = gr.CheckboxGroup(panels.head_choices(config.n_layers, config.n_heads), value=[],
                                   label="Heads to ablate (layer.head: a row per layer)", elem_id="sentiment-heads")
        gr.HTML(panels.head_grid_style("sentiment-heads", config.n_heads), padding=False)
        e_ablation = gr.HTML(elem_id="sentiment-ablation")
        e_heads.change(partial(ablate, models), [text, e_heads], e_ablation, api_name="ablate")


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
        except UserInputError as exc:
            summaries[i] = error_html(exc)
    classifier = models.sentiment
    usable = list(cleaned)
    try:
        with model_lock:
            analysis = classifier.analyse([cleaned[i].text for i in usable]) if usable else None
    except Exception:  # one text the tokenizer refuses: answer each on its own, so the others still work
        for i in usable:
            labels[i], summaries[i], shadings[i], views[i] = _classify_alone(models, cleaned[i], layers[i], heads[i])
        return labels, summaries, shadings, views
    for row, i in enumerate(usable):
        labels[i], summaries[i], shadings[i], views[i] = _classified(classifier, analysis, row, cleaned[i],
                                                                     layers[i], heads[i])
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
        except UserInputError as exc:
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


@shows_errors(None, ERROR, "", "")
def _classify_alone(models: StudioModels, clean: Any, layer: int, head: int) -> tuple[dict | None, str, str, str]:
    with model_lock:
        analysis = models.sentiment.analyse([clean.text])
    return _classified(models.sentiment, analysis, 0, clean, layer, head)


@shows_errors(None, ERROR, "", "")
def _classified(classifier: Any, analysis: Any, row: int, clean: Any, layer: int, head: int
                ) -> tuple[dict, str, str, str]:
    """The four outputs for one row of a batch analysis."""
    ids = analysis.ids[row]
    maps = AttentionMaps.from_attentions(analysis.attentions, token_labels(classifier.tokenizer, ids),
                                         name="encoder self-attention", batch_index=row)
    notes = clean.notes + truncation_note(analysis.truncated[row], classifier.max_length)
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


@shows_errors()
def explain(models: StudioModels, text: str) -> str:
    """The four attributions of the sentiment model's prediction on `text`, each with its deletion curve."""
    clean = clean_text(text)
    pairs = panels.comparison(models.sentiment, clean.text)
    return notes_html(clean.notes) + panels.comparison_html(pairs, "Explaining the prediction",
                                                            tokenizer=models.sentiment.tokenizer)


@shows_errors()
def ablate(models: StudioModels, text: str, heads: Sequence[str] | None) -> str:
    """The sentiment model's label probabilities with and without the chosen heads (zero ablation), side by side."""
    clean = clean_text(text)
    return panels.ablation(models.sentiment, [clean.text], heads, special_tokens="text")
