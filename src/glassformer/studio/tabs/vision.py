"""The Vision tab: a ViT's class for a Fashion-MNIST test image or an upload, its [CLS] attention, and Explain."""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import gradio as gr
import numpy as np
import torch

from glassformer.studio import explain as panels
from glassformer.studio.common import (
    ERROR,
    UserInputError,
    fashion_test_images,
    message_html,
    model_lock,
    notes_html,
    overlay_html,
    shows_errors,
    uploaded_image,
)
from glassformer.studio.controls import last_indices, training_controls
from glassformer.studio.models import StudioModels
from glassformer.viz import cls_attention, image_png, rollout_map


def build(models: StudioModels) -> None:
    """The tab's components and events: the training panel, classify, explain and ablate heads."""
    training_controls(models.vision)
    with gr.Row():
        with gr.Column():
            index = gr.Number(value=0, precision=0, minimum=0, maximum=9999,
                              label="Fashion-MNIST test image (0–9999)", elem_id="vis-index")
            upload = gr.File(label="…or upload a PNG/JPEG (up to 5 MB)", type="filepath",
                             file_types=[".png", ".jpg", ".jpeg"], elem_id="vis-upload")
            v_submit = gr.Button("Classify image", variant="primary", elem_id="vis-submit")
        v_label = gr.Label(label="Prediction", num_top_classes=3, elem_id="vis-label")
    v_note = gr.HTML(elem_id="vis-note")
    v_out = gr.HTML(elem_id="vis-out")
    v_submit.click(partial(classify_image, models), [index, upload], [v_label, v_note, v_out], api_name="vision")
    with gr.Accordion("Explain: why this prediction?", open=False, elem_id="vis-explain-section"):
        v_explain = gr.Button("Explain", elem_id="vis-explain-submit")
        v_why = gr.HTML(elem_id="vis-explain")
        v_explain.click(partial(explain, models), [index, upload], v_why, api_name="explain_vision")
        vi_layers, vi_heads = last_indices(models.vision, "n_layers")
        gr.Markdown("**Ablate heads**: tick a head to knock it out (its output set to zero) and compare "
                    "the image's class probabilities with the original.")
        v_heads = gr.CheckboxGroup(panels.head_choices(vi_layers + 1, vi_heads + 1), value=[],
                                   label="Heads to ablate (layer.head: a row per layer)", elem_id="vis-heads")
        gr.HTML(panels.head_grid_style("vis-heads", vi_heads + 1), padding=False)
        v_ablation = gr.HTML(elem_id="vis-ablation")
        v_heads.change(partial(ablate, models), [index, upload, v_heads], v_ablation, api_name="ablate_vision")


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


@shows_errors(None, ERROR, "")
def classify_image(models: StudioModels, index: int = 0, upload: str | None = None) -> tuple[dict | None, str, str]:
    """A ViT's prediction for a Fashion-MNIST test image (or an uploaded one) and its [CLS] attention over patches."""
    classifier = models.vision.get()
    if classifier is None:
        raise UserInputError(models.vision.status())
    size = classifier.image_size
    if upload:
        image, truth = uploaded_image(upload, size), "uploaded image"
    else:
        images, labels, names = fashion_test_images()
        index = int(np.clip(index, 0, len(images) - 1))
        image, truth = images[index], f"test image {index}: truly {names[int(labels[index])]}"
    with model_lock, torch.no_grad():
        probs = classifier.predict_proba(image[None])[0]
        output = classifier.model(**classifier.prepare(image[None]).tensors, output_attentions=True)
    label = {name: float(p) for name, p in zip(classifier.label_names, probs)}
    return label, message_html(truth), _patch_maps(image, output.attentions)


def _image(classifier: Any, index: int | None, upload: str | None) -> np.ndarray:
    if upload:
        return uploaded_image(upload, classifier.image_size)
    images, _, _ = fashion_test_images()
    return images[int(np.clip(index or 0, 0, len(images) - 1))]


@shows_errors()
def ablate(models: StudioModels, index: int = 0, upload: str | None = None, heads: Sequence[str] | None = None) -> str:
    """The ViT's class probabilities for the image with and without the chosen heads (zero ablation)."""
    classifier = models.vision.get()
    if classifier is None:
        raise UserInputError(models.vision.status())
    image = _image(classifier, index, upload)
    return panels.ablation(classifier, image[None], heads)


@shows_errors()
def explain(models: StudioModels, index: int = 0, upload: str | None = None) -> str:
    """The four attributions of the ViT's class for a Fashion-MNIST test image (or an upload), as patch maps."""
    classifier = models.vision.get()
    if classifier is None:
        raise UserInputError(models.vision.status())
    notes = []
    image = _image(classifier, index, upload)
    if classifier.mirror_average:
        notes.append("The prediction above averages the image with its mirror image; the explanations score "
                     "the patches of both views, the image and then its mirror.")
    pairs = panels.comparison(classifier, image)
    return notes_html(notes) + panels.comparison_html(pairs, "Explaining the class", image=image,
                                                      mirrored=classifier.mirror_average)
