"""glassformer studio: a Gradio app with one tab per model, served on 127.0.0.1 and usable offline.

``build_app(models)`` makes the ``gr.Blocks``; ``serve(...)`` trains the quick sentiment model
when none is saved yet, then launches it. Offline by design: a theme with system fonts only (the
default theme fetches Google Fonts), analytics off, server-side rendering off (it would need
Node), no share link unless asked, uploads capped in size and decoded as PNG/JPEG only.
"""

from __future__ import annotations

import os

# Gradio reads this when it is imported: no usage statistics are sent anywhere.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import dataclasses  # noqa: E402 - the environment must be set before gradio is imported
import math  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from glassformer.studio import explain, generate, handlers, lookups  # noqa: E402
from glassformer.studio.answering import Answering, not_a_request  # noqa: E402
from glassformer.studio.batching import LoopBatcher, api_app  # noqa: E402
from glassformer.studio.handlers import StudioModels  # noqa: E402
from glassformer.studio.jobs import ModelSlot, TrainCommand, TrainingQueue  # noqa: E402
from glassformer.viz import race_curve_svg  # noqa: E402

SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
MAX_FILE_SIZE = "5mb"
EXAMPLES = ["A gorgeous, witty, seductive movie.", "The plot is a mess and the jokes fall flat."]


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts, so no font is fetched from the network."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


# --- the task models -----------------------------------------------------------------------------

# What each quick preset reached when it was measured (benchmarks/RESULTS.md; a test checks that every
# figure here is there), so that a learner knows what the background run or the button will give.
QUICK_QUALITY = {
    # Measured by benchmarks/headline.py (the whole `train` command, 2 idle cores of an Intel Xeon with
    # AVX512-BF16 and AMX, bf16, 6 December 2026) and benchmarks/first_launch.py (the same run in the studio).
    "translate": "What to expect from the quick preset: BLEU 2.70 with beam search and chrF 19.6 on the 1,003 test "
                 "sentences, below the retrieval baseline's 3.51: it does not translate yet. The command took 4.6 "
                 "minutes on 2 idle cores of an Intel Xeon with AVX512-BF16 (6 December 2026); in the studio, about "
                 "8 minutes.",
    "vit": "What to expect from the quick preset: 85.4% test accuracy on Fashion-MNIST (chance: 10%). The command "
           "took 1.6 minutes on 2 idle cores of an Intel Xeon with AVX512-BF16 (6 December 2026); in the studio, "
           "about 2.4 minutes.",
    "lm": "What to expect from the quick preset: 2.221 bits per character on the held-out works after its 5-minute "
          "budget on 2 idle cores of an Intel Xeon with AVX512-BF16 (6 December 2026), just above the best Markov "
          "chain's 2.159; the full preset (`--preset full`, 30 minutes) crosses the chain at minute 11.5 and ends "
          "at 1.986.",
}

# The background runs' presets: "quick" (what the README documents), or "tiny", a few steps of each family on
# its real data that checks the machinery end to end in a minute or two (the models are useless; they are
# saved beside the others as vit-tiny, translate-tiny and lm-transformer-bpe-tiny, never in a quick one's place).
TRAINING_PRESETS = ("quick", "tiny")
TINY = {
    "vit": {"max_steps": 20, "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "batch_size": 64,
            "validation_size": 500, "eval_every": 10},
    "translate": {"max_steps": 20, "vocab_size": 500, "d_model": 32, "n_heads": 2, "n_encoder_layers": 1,
                  "n_decoder_layers": 1, "d_ff": 64, "max_length": 32, "max_tokens": 600, "warmup_steps": 2,
                  "eval_every": 10, "beam_size": 1, "tune_alpha": False},
    "lm": {"max_steps": 20, "minutes": None, "d_model": 32, "n_heads": 2, "n_layers": 2, "d_ff": 64, "context": 64,
           "batch_size": 8, "warmup_steps": 2, "eval_windows": 8, "eval_points": 4},
}


def _score(task: str, config: dict[str, Any]) -> float | None:
    """A saved model's recorded score, higher is better: test accuracy, test BLEU, or minus validation bits/char."""
    metrics = config.get("extra", {}).get("metrics", {})
    if task == "lm":
        return -metrics["validation"]["bits_per_char"]
    return metrics["test_bleu" if task == "translate" else "test_accuracy"]


def task_slot(task: str, name: str, directory: Path | None = None, preset: str = "quick") -> ModelSlot:
    """The studio's place for one task's model and how to train it (`preset`: one of :data:`TRAINING_PRESETS`).

    Without `directory` the slot loads the strongest of the models the documented commands save in the
    cache (``train TASK --preset full`` and ``--preset quick``, by their recorded scores) and trains the
    preset into its own cache directory; with one, it uses that directory alone.
    """
    from glassformer.tasks import get_task
    from glassformer.tasks.pipeline import load_predictor

    if preset not in TRAINING_PRESETS:
        raise ValueError(f"preset must be one of {TRAINING_PRESETS}, got {preset!r}")
    module = get_task(task)
    settings = TINY[task] if preset == "tiny" else {}
    recipe = module.get_preset("quick", **settings)
    if preset == "tiny":
        recipe = dataclasses.replace(recipe, name="tiny")
    out = Path(directory) if directory is not None else module.default_out_dir(recipe)
    others = () if directory is not None else tuple(module.default_out_dir(module.get_preset(name))
                                                    for name in ("full", "quick") if name != recipe.name)
    slot = ModelSlot(name, out, f"glassformer train {task} --preset quick", lambda path: load_predictor(path, task),
                     TrainCommand(task, "quick", settings), expected=QUICK_QUALITY.get(task, ""), others=others,
                     quality=partial(_score, task))
    if task == "lm":  # the chain the run fits first (and saves in the cache) is the level its curve must go below
        slot.baseline = partial(module.saved_chain_baseline, recipe.tokenizer, recipe.bpe_vocab_size)
    return slot


def unavailable_slot(name: str, reason: str) -> ModelSlot:
    """A slot for a task this installation cannot run; its status says so."""
    return ModelSlot(name, Path(os.devnull), "", lambda _: None, unavailable=reason)


def _slot(task: str, name: str, directory: Path | None, preset: str) -> ModelSlot:
    try:
        return task_slot(task, name, directory, preset)
    except ImportError as exc:
        return unavailable_slot(name, str(exc))


def default_models(sentiment_dir: str | Path, translate_dir: Path | None = None, vision_dir: Path | None = None,
                   generate_dir: Path | None = None, preset: str = "quick") -> StudioModels:
    """The sentiment classifier saved in `sentiment_dir` and the task slots (defaults: the cache's strongest models).

    The language model's slot trains the LM's quick preset (the BPE transformer the README documents)
    and loads ``lm-transformer-bpe-full`` instead when that one is saved and scores better.
    """
    from glassformer.tasks.pipeline import load_predictor

    return StudioModels(load_predictor(sentiment_dir, "sentiment"),
                        _slot("translate", "translation", translate_dir, preset),
                        _slot("vit", "vision", vision_dir, preset),
                        _slot("lm", "language", generate_dir, preset))


# --- the app -------------------------------------------------------------------------------------

def _train_points(slot: ModelSlot) -> tuple[list[int], list[float]]:
    train = [r for r in slot.records() if r.get("kind", "train") == "train" and isinstance(r.get("step"), int)
             and isinstance(r.get("loss"), (int, float))]
    return [r["step"] for r in train], [float(r["loss"]) for r in train]


def _vision_chart(slot: ModelSlot) -> str:
    """The training loss against the level of an untrained model, which guesses each of the 10 classes alike."""
    steps, losses = _train_points(slot)
    if not steps:
        return ""
    note = "Below the line the model does better than guessing (10% accuracy)."
    loaded = slot.get()
    metrics = (getattr(loaded, "info", None) or {}).get("metrics", {}) if loaded is not None else {}
    if "test_accuracy" in metrics:
        note = f"Test accuracy {metrics['test_accuracy']:.1%}, against 10% for guessing."
    return race_curve_svg(steps, losses, level=math.log(10), level_label="guessing 1 in 10 (an untrained model): ln 10 =",
                          title=f"training loss of the {slot.name} model (nats per image)", note=note)


def _translation_chart(slot: ModelSlot) -> str:
    """The training loss, with the retrieval baseline's BLEU to beat (it has no loss, so it is stated on the plot)."""
    from glassformer.tasks.translate import MEASURED

    steps, losses = _train_points(slot)
    if not steps:
        return ""
    loaded = slot.get()
    metrics = (getattr(loaded, "info", None) or {}).get("metrics", {}) if loaded is not None else {}
    if "test_bleu" in metrics and "retrieval_bleu" in metrics:
        verdict = "beats" if metrics["test_bleu"] >= metrics["retrieval_bleu"] else "is below"
        note = (f"Test BLEU {metrics['test_bleu']:.2f}: it {verdict} the retrieval baseline "
                f"({metrics['retrieval_bleu']:.2f}).")
    else:
        measured = MEASURED.get("quick")
        level = f" (test BLEU {measured.retrieval_bleu:.2f})" if measured is not None else ""
        note = f"To beat: the retrieval baseline{level}; the model's BLEU is scored when training ends."
    return race_curve_svg(steps, losses, title=f"training loss of the {slot.name} model (nats per token)", note=note)


def _lm_chart(slot: ModelSlot) -> str:
    """Validation bits/char against training time, with the Markov chain's level: where the transformer overtakes it.

    While a run trains: its validation points as the trainer logs them and the chain the run fitted
    (saved in the cache); afterwards: the curve and the chain recorded with the saved model.
    """
    from glassformer.tasks.lm import crossing_point

    running = slot.job is not None and slot.job.running
    loaded = None if running else slot.get()
    metrics = (getattr(loaded, "info", None) or {}).get("metrics", {}) if loaded is not None else {}
    if metrics.get("curve"):
        curve, chain = metrics["curve"], metrics.get("markov")
    elif running:
        curve = [{"seconds": r.get("seconds", 0.0), "bits_per_char": r["metrics"]["bits_per_char"]}
                 for r in slot.records() if r.get("kind") == "eval" and "bits_per_char" in r.get("metrics", {})]
        chain = slot.baseline() if slot.baseline is not None else None
    else:
        return ""
    if not curve:
        return ""
    level = float(chain["bits_per_char"]) if chain else None
    note = "lower is better"
    if level is not None:
        crossing = crossing_point(curve, level)
        note = (f"The transformer went below the chain {crossing['seconds'] / 60:.1f} minutes in." if crossing
                else "The transformer has not gone below the chain" + (" yet." if running else "."))
    label = f"Markov chain (order {chain['order']}, {chain['tokenizer']}):" if chain else ""
    return race_curve_svg([p["seconds"] / 60 for p in curve], [p["bits_per_char"] for p in curve], level=level,
                          level_label=label, x_unit="minute", note=note,
                          title="validation bits per character against training time")


def _loss_curve(slot: ModelSlot) -> str:
    """The tab's chart: the run's live curve (or the saved model's) against the baseline it must beat."""
    chart = {"vision": _vision_chart, "translation": _translation_chart, "language": _lm_chart}.get(slot.name)
    if chart is not None:
        return chart(slot)
    steps, losses = _train_points(slot)
    return race_curve_svg(steps, losses, title=f"training loss of the {slot.name} model") if steps else ""


def _training_controls(slot: ModelSlot) -> gr.Markdown:
    """The model's status line and chart (polled), and, when training is allowed, the button that starts it.

    A run queued at start-up or started here draws its curve, with the baseline it must beat, as the
    trainer logs it; the tab uses the model as soon as it is saved. Without a trainer (``--host``
    beyond this machine and no ``--allow-remote-training``) no button and no training event exist at
    all, so no client of the app's API can start one.
    """
    status = gr.Markdown(slot.status(), elem_classes=["gf-status"])
    curve = gr.HTML(_loss_curve(slot), elem_classes=["gf-training-curve"])
    if slot.trainer is None or slot.unavailable:
        gr.Timer(3.0).tick(not_a_request(lambda: (slot.status(), _loss_curve(slot))), outputs=[status, curve],
                           api_visibility="private", show_progress="hidden")
        return status
    button = gr.Button("Train the quick preset here", visible=slot.get() is None and not slot.training,
                       elem_classes=["gf-train"])

    def start() -> tuple[str, Any, str]:
        slot.start_training()
        return slot.status(), gr.update(visible=False), _loss_curve(slot)

    @not_a_request
    def poll() -> tuple[str, Any, str]:
        return slot.status(), gr.update(visible=slot.get() is None and not slot.training), _loss_curve(slot)

    button.click(start, outputs=[status, button, curve], api_visibility="private")
    gr.Timer(3.0).tick(poll, outputs=[status, button, curve], api_visibility="private", show_progress="hidden")
    return status


def _last_indices(slot: ModelSlot, layers: str) -> tuple[int, int]:
    """The last layer and head of the slot's model; before it exists, room for 8 of each (the handler clips)."""
    loaded = slot.get()
    if loaded is None:
        return 7, 7
    config = loaded.model.config
    return getattr(config, layers) - 1, config.n_heads - 1


def _sampling_controls(prefix: str) -> tuple[gr.Slider, gr.Slider, gr.Slider]:
    """Temperature, top-k and top-p sliders, with their ordinary names (0 and 1 switch a cut off)."""
    return (gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="Temperature (0: greedy)", elem_id=f"{prefix}-temperature"),
            gr.Slider(0, 100, value=0, step=1, label="Top-k (0: off)", elem_id=f"{prefix}-top-k"),
            gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (1: off)", elem_id=f"{prefix}-top-p"))


def build_app(models: StudioModels) -> gr.Blocks:
    """The studio's ``gr.Blocks``: Sentiment, Walkthrough (one per family), Tokenizer, Translate, Vision and Generate tabs."""
    config = models.sentiment.model.config
    layers, heads = config.n_layers - 1, config.n_heads - 1
    with gr.Blocks(title="glassformer studio", analytics_enabled=False) as app:
        gr.Markdown("# glassformer studio\nSee inside transformers: type a sentence, watch it become tokens, "
                    "vectors, attention and a prediction.")
        with gr.Tab("Sentiment", id="sentiment"):
            with gr.Row():
                with gr.Column(scale=3):
                    text = gr.Textbox(label="Sentence", lines=3, max_lines=8, value=EXAMPLES[0],
                                      elem_id="sentiment-text")
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
            classify_batcher = LoopBatcher(lambda items, _: list(zip(*handlers.classify_batch(models, *zip(*items)))))
            predict_batcher = LoopBatcher(lambda texts, _: handlers.predict_batch(models, list(texts)))

            async def classify(text: str, layer: int, head: int) -> tuple[dict | None, str, str, str]:
                return await classify_batcher.one((text, layer, head))

            submit.click(classify, [text, layer, head], [label, summary, shading, view], api_name="classify",
                         concurrency_limit=None)
            text.submit(classify, [text, layer, head], [label, summary, shading, view], api_visibility="private",
                        concurrency_limit=None)

            async def predict(text: str) -> dict:
                """For programs: the text's label, its probability and every label's probability."""
                return await predict_batcher.one(text)

            gr.api(predict, api_name="predict", concurrency_limit=None)

            with gr.Accordion("Explain: why this prediction?", open=False, elem_id="sentiment-explain-section"):
                e_submit = gr.Button("Explain", elem_id="sentiment-explain-submit")
                e_out = gr.HTML(elem_id="sentiment-explain")
                e_submit.click(partial(explain.explain_sentiment, models), [text], e_out, api_name="explain")
                gr.Markdown("**Ablate heads**: tick a head to knock it out (its output set to zero) and compare "
                            "the prediction with the original.")
                e_heads = gr.CheckboxGroup(explain.head_choices(config.n_layers, config.n_heads), value=[],
                                           label="Heads to ablate (layer.head: a row per layer)", elem_id="sentiment-heads")
                gr.HTML(explain.head_grid_style("sentiment-heads", config.n_heads), padding=False)
                e_ablation = gr.HTML(elem_id="sentiment-ablation")
                e_heads.change(partial(explain.ablate_sentiment, models), [text, e_heads], e_ablation,
                               api_name="ablate")

        with gr.Tab("Walkthrough", id="walkthrough"):
            # One tab per family of model, each with its own input: a sentence, a prompt with sampling
            # settings, a German sentence, an image. A learner compares the four pipelines in one place.
            gr.Markdown("The articles' pipeline on each model's own numbers, one step at a time. Pick a family:")
            with gr.Tabs():
                with gr.Tab("Encoder (sentiment)", id="walk-encoder"):
                    w_text = gr.Textbox(label="Sentence", value="A witty movie.", elem_id="walk-text")
                    with gr.Row():
                        w_layer = gr.Slider(0, layers, value=0, step=1, label="Layer")
                        w_head = gr.Slider(0, heads, value=0, step=1, label="Head")
                    w_submit = gr.Button("Walk through", variant="primary", elem_id="walk-submit")
                    w_out = gr.HTML(elem_id="walk-out")
                    w_submit.click(partial(handlers.explain, models), [w_text, w_layer, w_head], w_out,
                                   api_name="walkthrough")

                with gr.Tab("Decoder (language model)", id="walk-lm"):
                    lm_layers, lm_heads = _last_indices(models.generate, "n_layers")
                    wl_prompt = gr.Textbox(label="Prompt", value="ROMEO: I love", elem_id="walk-lm-prompt")
                    with gr.Row():
                        wl_layer = gr.Slider(0, lm_layers, value=0, step=1, label="Layer")
                        wl_head = gr.Slider(0, lm_heads, value=0, step=1, label="Head")
                        wl_seed = gr.Number(value=0, precision=0, label="Seed")
                    with gr.Row():
                        wl_sampling = _sampling_controls("walk-lm")
                    wl_submit = gr.Button("Walk through", variant="primary", elem_id="walk-lm-submit")
                    wl_out = gr.HTML(elem_id="walk-lm-out")
                    wl_submit.click(partial(handlers.explain_lm, models),
                                    [wl_prompt, wl_layer, wl_head, *wl_sampling, wl_seed], wl_out,
                                    api_name="walkthrough_lm")

                with gr.Tab("Encoder–decoder (translation)", id="walk-translate"):
                    tr_layers, tr_heads = _last_indices(models.translate, "n_decoder_layers")
                    wt_text = gr.Textbox(label="German", value="Ich habe keine Zeit.", elem_id="walk-tr-text")
                    with gr.Row():
                        wt_layer = gr.Slider(0, tr_layers, value=0, step=1, label="Layer (encoder and decoder)")
                        wt_head = gr.Slider(0, tr_heads, value=0, step=1, label="Head")
                    wt_submit = gr.Button("Walk through", variant="primary", elem_id="walk-tr-submit")
                    wt_out = gr.HTML(elem_id="walk-tr-out")
                    wt_submit.click(partial(handlers.explain_translation, models), [wt_text, wt_layer, wt_head],
                                    wt_out, api_name="walkthrough_translate")

                with gr.Tab("Vision Transformer", id="walk-vision"):
                    vi_layers, vi_heads = _last_indices(models.vision, "n_layers")
                    wv_index = gr.Number(value=0, precision=0, minimum=0, maximum=9999,
                                         label="Fashion-MNIST test image (0–9999)", elem_id="walk-vis-index")
                    with gr.Row():
                        wv_layer = gr.Slider(0, vi_layers, value=0, step=1, label="Layer", elem_id="walk-vis-layer")
                        wv_head = gr.Slider(0, vi_heads, value=0, step=1, label="Head")
                    wv_submit = gr.Button("Walk through", variant="primary", elem_id="walk-vis-submit")
                    wv_out = gr.HTML(elem_id="walk-vis-out")
                    wv_submit.click(partial(handlers.explain_image, models), [wv_index, wv_layer, wv_head], wv_out,
                                    api_name="walkthrough_vision")

        with gr.Tab("Tokenizer", id="tokenizer"):
            t_text = gr.Textbox(label="Words", lines=2, value="low lower lowest newer newest wider widest",
                                elem_id="tok-text")
            merges = gr.Slider(0, handlers.MAX_MERGES, value=10, step=1, label="BPE merges")
            t_submit = gr.Button("Tokenize", variant="primary", elem_id="tok-submit")
            gr.Markdown("### The article's character BPE, merge by merge")
            t_bpe = gr.HTML(elem_id="tok-bpe")
            gr.Markdown("### GPT-2 and BERT on the same text")
            t_side = gr.HTML(elem_id="tok-side")
            t_submit.click(handlers.tokenize, [t_text, merges], [t_bpe, t_side], api_name="tokenize")

        with gr.Tab("Translate", id="translate"):
            _training_controls(models.translate)
            # The languages the model was trained on (recorded by `train translate`), without loading it.
            from glassformer.tasks.translate import language_names

            source_name, target_name = language_names(models.translate.directory)
            s_text = gr.Textbox(label=source_name, value="Ich habe keine Zeit." if source_name == "German" else "",
                                elem_id="tr-text")
            method = gr.Radio(["greedy", "beam"], value="beam", label="Search")
            s_submit = gr.Button("Translate", variant="primary", elem_id="tr-submit")
            s_out = gr.Textbox(label=target_name, interactive=False, elem_id="tr-out")
            s_lookups = gr.HTML(elem_id="tr-lookups")
            s_picture = gr.HTML(elem_id="tr-attention")
            s_view = gr.HTML()
            s_submit.click(partial(handlers.translate, models), [s_text, method], [s_out, s_picture, s_view],
                           api_name="translate")
            s_submit.click(partial(lookups.translation_lookups, models), [s_text], s_lookups,
                           api_name="translate_lookups")
            with gr.Accordion("Explain: why this prediction?", open=False, elem_id="tr-explain-section"):
                with gr.Row():
                    s_step = gr.Number(value=0, precision=0, minimum=0, maximum=200,
                                       label="Target step of the greedy translation (0: its first token)",
                                       elem_id="tr-explain-step")
                    s_explain = gr.Button("Explain this step", elem_id="tr-explain-submit")
                s_why = gr.HTML(elem_id="tr-explain")
                s_explain.click(partial(explain.explain_translation, models), [s_text, s_step], s_why,
                                api_name="explain_translate")

        with gr.Tab("Vision", id="vision"):
            _training_controls(models.vision)
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
            v_submit.click(partial(handlers.see, models), [index, upload], [v_label, v_note, v_out],
                           api_name="vision")
            with gr.Accordion("Explain: why this prediction?", open=False, elem_id="vis-explain-section"):
                v_explain = gr.Button("Explain", elem_id="vis-explain-submit")
                v_why = gr.HTML(elem_id="vis-explain")
                v_explain.click(partial(explain.explain_vision, models), [index, upload], v_why,
                                api_name="explain_vision")
                vi_layers, vi_heads = _last_indices(models.vision, "n_layers")
                gr.Markdown("**Ablate heads**: tick a head to knock it out (its output set to zero) and compare "
                            "the image's class probabilities with the original.")
                v_heads = gr.CheckboxGroup(explain.head_choices(vi_layers + 1, vi_heads + 1), value=[],
                                           label="Heads to ablate (layer.head: a row per layer)", elem_id="vis-heads")
                gr.HTML(explain.head_grid_style("vis-heads", vi_heads + 1), padding=False)
                v_ablation = gr.HTML(elem_id="vis-ablation")
                v_heads.change(partial(explain.ablate_vision, models), [index, upload, v_heads], v_ablation,
                               api_name="ablate_vision")

        with gr.Tab("Generate", id="generate"):
            _training_controls(models.generate)
            prompt = gr.Textbox(label="Prompt", value="ROMEO:", elem_id="gen-prompt")
            with gr.Row():
                n_new = gr.Slider(1, generate.MAX_NEW_TOKENS, value=120, step=1, label="New tokens")
                seed = gr.Number(value=0, precision=0, label="Seed")
            with gr.Row():
                sampling = _sampling_controls("gen")
            g_submit = gr.Button("Generate", variant="primary", elem_id="gen-submit")
            g_out = gr.Textbox(label="Text", lines=6, interactive=False, elem_id="gen-out")
            g_probs = gr.HTML(elem_id="gen-probs")
            g_step = gr.Slider(1, generate.MAX_NEW_TOKENS, value=1, step=1, interactive=False,
                               label="Step: which new token to look at", elem_id="gen-step")
            with gr.Row():
                with gr.Column():
                    gr.Markdown("### The transformer's candidates for the next token")
                    g_candidates = gr.HTML(elem_id="gen-candidates")
                with gr.Column():
                    gr.Markdown("### A Markov chain on the same context")
                    g_markov = gr.HTML(elem_id="gen-markov")
                with gr.Column():
                    gr.Markdown("### Logit lens: the chosen token across layers")
                    g_lens = gr.HTML(elem_id="gen-lens")
            state = gr.State(None)
            markov_wait = gr.Timer(2.0, active=False)
            markov = models.markov
            assert markov is not None

            def run(*inputs: Any) -> tuple[Any, ...]:
                out = generate.generate(models.generate, markov, *inputs)
                return (*out, gr.Timer(active=out[2] is not None and not markov.ready_for(models.generate.get())))

            def redraw(*inputs: Any) -> tuple[str, str]:
                return generate.show_step(models.generate, markov, *inputs)

            def refresh(*inputs: Any) -> tuple[str, Any]:
                ready = markov.ready_for(models.generate.get()) or markov.error is not None
                return redraw(*inputs)[1], gr.Timer(active=not ready)

            def lens(state: Any, step: int) -> str:
                return generate.logit_lens_html(models.generate, state, step)

            g_submit.click(run, [prompt, n_new, *sampling, seed],
                           [g_out, g_probs, state, g_step, g_candidates, g_markov, markov_wait], api_name="generate"
                           ).then(lens, [state, g_step], g_lens, api_visibility="private", show_progress="hidden")
            g_step.change(lens, [state, g_step], g_lens, api_name="logit_lens", show_progress="hidden")
            step_inputs = [state, g_step, *sampling]
            # Moving a control redraws the bars from the stored logits: no model call, so it answers at once.
            g_step.change(redraw, step_inputs, [g_candidates, g_markov], api_name="generate_step",
                          show_progress="hidden")
            for control in sampling:
                control.change(redraw, step_inputs, [g_candidates, g_markov], api_visibility="private",
                               show_progress="hidden")
            markov_wait.tick(refresh, step_inputs, [g_markov, markov_wait], api_visibility="private",
                             show_progress="hidden")
    return app


# --- serving -------------------------------------------------------------------------------------

def ensure_sentiment_model(directory: str | Path | None = None) -> Path:
    """The directory of a saved sentiment model; the quick MiniLM preset is trained there first if none is saved."""
    from glassformer.pretrained.loading import CheckpointError
    from glassformer.tasks import sentiment
    from glassformer.tasks.pipeline import load_predictor
    from glassformer.training.saved import SavedModelError

    directory = Path(directory) if directory is not None else sentiment.default_out_dir(sentiment.get_preset("quick"))
    try:
        load_predictor(directory, "sentiment")
        return directory
    except (SavedModelError, CheckpointError, FileNotFoundError, ValueError):
        pass
    print(f"No sentiment model in {directory} yet: fine-tuning MiniLM on the movie-review sentences "
          "(quick preset, once; a few minutes on 2 CPU cores).", flush=True)
    run = sentiment.train("quick", directory, overwrite=True)
    print(f"Trained in {run.total_seconds:.0f} s, test accuracy {run.test_accuracy:.1%}.", flush=True)
    return directory


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           block: bool = True, quiet: bool = False, api: Any = None) -> Any:
    """Serve `app` (offline theme, capped uploads, no share link unless asked); `api`, an ASGI app, at ``/api``."""
    from starlette.routing import Mount

    app.queue(default_concurrency_limit=4)
    extra = {} if api is None else {"routes": [Mount("/api", api)],
                                    "lifespan": lambda _: api.router.lifespan_context(api)}
    return app.launch(server_name=host, server_port=port, share=share, theme=theme(),
                      max_file_size=MAX_FILE_SIZE, ssr_mode=False, prevent_thread_lock=not block, quiet=quiet,
                      show_error=False, footer_links=["api"], mcp_server=False, pwa=False, app_kwargs=extra)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def background_training(models: StudioModels) -> TrainingQueue:
    """Queue the missing models' training, one at a time in this order: vision, translation, language model.

    The sentiment model exists before the app does; each queued tab shows its place in the queue,
    then its run's progress and curve, and switches to the model the moment it is saved.
    """
    return TrainingQueue([models.vision, models.translate, models.generate]).start()


def serve(host: str = "127.0.0.1", port: int = 7860, share: bool = False, sentiment_dir: str | Path | None = None,
          allow_remote_training: bool = False, train_missing: bool = True, preset: str = "quick",
          **task_dirs: str | Path | None) -> None:
    """`glassformer studio`: make sure a sentiment model exists, build the app and serve it until interrupted.

    `task_dirs` (``translate_dir``, ``vision_dir``, ``generate_dir``) replace the cache's models. With
    `train_missing` every other family whose model is missing is trained in the background, once
    (`preset`: "quick", or "tiny" to check the machinery in a minute or two). A studio other machines
    can reach (``host`` beyond this one, or ``share``) trains nothing unless `allow_remote_training`:
    a training run takes the machine's cores for minutes.
    """
    directory = ensure_sentiment_model(sentiment_dir)
    dirs = {name: Path(value) for name, value in task_dirs.items() if value is not None}
    models = default_models(directory, preset=preset, **dirs)
    if (host not in LOCAL_HOSTS or share) and not allow_remote_training:
        for slot in (models.translate, models.vision, models.generate):
            slot.trainer = None
    # The policy (studio/answering.py): a request comes first; the training process is stopped while one runs.
    answering = Answering()
    slots = (models.translate, models.vision, models.generate)
    for slot in slots:
        if slot.trainer is not None:
            slot.trainer = answering.pausing(slot.trainer)
    queue = None
    if train_missing:  # after the wrapping above, so that the queued runs pause for requests too
        queue = background_training(models)
        if queue.slots:
            names = ", ".join(slot.name for slot in queue.slots)
            print(f"Training the missing models in the background, one at a time ({names}; the {preset} preset, "
                  "once): their tabs show the progress and switch to each model when it is saved.", flush=True)
    try:
        app = answering.install(build_app(models))
        api = api_app(directory, counted=answering.counted)
        print(f"glassformer studio: http://{host}:{port} (Ctrl+C stops it); for programs: POST "
              f"http://{host}:{port}/api/predict. Requests use {torch_threads()} torch threads; background "
              "training runs in a process of its own, stopped while one is answered.", flush=True)
        launch(app, host, port, share, api=api)
    finally:  # the training processes end with the studio (and on Linux when it is killed: jobs.ends_with_parent)
        if queue is not None:
            queue.stop()
        for slot in slots:
            slot.stop_training()


def torch_threads() -> int:
    """The torch threads a request computes with (torch's default: one per core this process may use)."""
    import torch

    return torch.get_num_threads()
