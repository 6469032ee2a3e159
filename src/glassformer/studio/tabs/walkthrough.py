"""The Walkthrough tab: the articles' pipeline on each family's own numbers, one step at a time.

One sub-tab per family of model, each with its own input: a sentence (encoder), a prompt with
sampling settings (decoder), a German sentence (encoder–decoder), an image (Vision Transformer). A
learner compares the four pipelines in one place. The steps come from
:mod:`glassformer.viz.walkthrough`; :mod:`glassformer.studio.walkthrough` lays them out.
"""

from __future__ import annotations

from functools import partial

import gradio as gr
import numpy as np

from glassformer.studio.common import (
    UserInputError,
    clean_text,
    fashion_test_images,
    model_lock,
    notes_html,
    prompt_inputs,
    shows_errors,
    truncation_note,
)
from glassformer.studio.controls import last_indices, sampling_controls
from glassformer.studio.models import StudioModels
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

MAX_WALK_TOKENS = 32  # tokens a decoder's walkthrough reads: its grids hold a cell for every pair of them


def build(models: StudioModels) -> None:
    """The tab's four sub-tabs, one per family, each with its input, layer and head, and its walkthrough."""
    config = models.sentiment.model.config
    layers, heads = config.n_layers - 1, config.n_heads - 1
    gr.Markdown("The articles' pipeline on each model's own numbers, one step at a time. Pick a family:")
    with gr.Tabs():
        with gr.Tab("Encoder (sentiment)", id="walk-encoder"):
            w_text = gr.Textbox(label="Sentence", value="A witty movie.", elem_id="walk-text")
            with gr.Row():
                w_layer = gr.Slider(0, layers, value=0, step=1, label="Layer")
                w_head = gr.Slider(0, heads, value=0, step=1, label="Head")
            w_submit = gr.Button("Walk through", variant="primary", elem_id="walk-submit")
            w_out = gr.HTML(elem_id="walk-out")
            w_submit.click(partial(walk_sentiment, models), [w_text, w_layer, w_head], w_out, api_name="walkthrough")

        with gr.Tab("Decoder (language model)", id="walk-lm"):
            lm_layers, lm_heads = last_indices(models.generate, "n_layers")
            wl_prompt = gr.Textbox(label="Prompt", value="ROMEO: I love", elem_id="walk-lm-prompt")
            with gr.Row():
                wl_layer = gr.Slider(0, lm_layers, value=0, step=1, label="Layer")
                wl_head = gr.Slider(0, lm_heads, value=0, step=1, label="Head")
                wl_seed = gr.Number(value=0, precision=0, label="Seed")
            with gr.Row():
                wl_sampling = sampling_controls("walk-lm")
            wl_submit = gr.Button("Walk through", variant="primary", elem_id="walk-lm-submit")
            wl_out = gr.HTML(elem_id="walk-lm-out")
            wl_submit.click(partial(walk_lm, models), [wl_prompt, wl_layer, wl_head, *wl_sampling, wl_seed], wl_out,
                            api_name="walkthrough_lm")

        with gr.Tab("Encoder–decoder (translation)", id="walk-translate"):
            tr_layers, tr_heads = last_indices(models.translate, "n_decoder_layers")
            wt_text = gr.Textbox(label="German", value="Ich habe keine Zeit.", elem_id="walk-tr-text")
            with gr.Row():
                wt_layer = gr.Slider(0, tr_layers, value=0, step=1, label="Layer (encoder and decoder)")
                wt_head = gr.Slider(0, tr_heads, value=0, step=1, label="Head")
            wt_submit = gr.Button("Walk through", variant="primary", elem_id="walk-tr-submit")
            wt_out = gr.HTML(elem_id="walk-tr-out")
            wt_submit.click(partial(walk_translation, models), [wt_text, wt_layer, wt_head], wt_out,
                            api_name="walkthrough_translate")

        with gr.Tab("Vision Transformer", id="walk-vision"):
            vi_layers, vi_heads = last_indices(models.vision, "n_layers")
            wv_index = gr.Number(value=0, precision=0, minimum=0, maximum=9999,
                                 label="Fashion-MNIST test image (0–9999)", elem_id="walk-vis-index")
            with gr.Row():
                wv_layer = gr.Slider(0, vi_layers, value=0, step=1, label="Layer", elem_id="walk-vis-layer")
                wv_head = gr.Slider(0, vi_heads, value=0, step=1, label="Head")
            wv_submit = gr.Button("Walk through", variant="primary", elem_id="walk-vis-submit")
            wv_out = gr.HTML(elem_id="walk-vis-out")
            wv_submit.click(partial(walk_vision, models), [wv_index, wv_layer, wv_head], wv_out,
                            api_name="walkthrough_vision")


@shows_errors()
def walk_sentiment(models: StudioModels, text: str, layer: int = 0, head: int = 0) -> str:
    """The step-by-step pipeline of the sentiment model (an encoder) on `text`, as HTML."""
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
    notes = clean.notes + truncation_note(truncated, classifier.max_length)
    return notes_html(notes) + walkthrough_html(steps)


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


@shows_errors()
def walk_lm(models: StudioModels, prompt: str, layer: int = 0, head: int = 0, temperature: float = 0.8,
            top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> str:
    """The decoder LM's pipeline on `prompt`: masked self-attention of one head, next-token logits and the draw."""
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


@shows_errors()
def walk_translation(models: StudioModels, text: str, layer: int = 0, head: int = 0) -> str:
    """The encoder–decoder's pipeline on `text`: the encoder, then the decoder step by step with cross-attention."""
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


@shows_errors()
def walk_vision(models: StudioModels, index: int = 0, layer: int = 0, head: int = 0) -> str:
    """The ViT's pipeline on a Fashion-MNIST test image: patches, [CLS] + positions, attention, class."""
    classifier = models.vision.get()
    if classifier is None:
        raise UserInputError(models.vision.status())
    images, labels, names = fashion_test_images()
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
