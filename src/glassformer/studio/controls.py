"""Gradio pieces several tabs share: a model's training panel (status, live curve, train button) and the sliders.

A run queued at start-up or started here draws its curve, with the baseline it must beat, as the
trainer logs it; the tab uses the model as soon as it is saved.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from glassformer.studio.answering import not_a_request
from glassformer.studio.jobs import ModelSlot
from glassformer.viz import race_curve_svg


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


def loss_curve(slot: ModelSlot) -> str:
    """The tab's chart: the run's live curve (or the saved model's) against the baseline it must beat."""
    chart = {"vision": _vision_chart, "translation": _translation_chart, "language": _lm_chart}.get(slot.name)
    if chart is not None:
        return chart(slot)
    steps, losses = _train_points(slot)
    return race_curve_svg(steps, losses, title=f"training loss of the {slot.name} model") if steps else ""


def training_controls(slot: ModelSlot) -> gr.Markdown:
    """The model's status line and chart (polled), and, when training is allowed, the button that starts it.

    A run queued at start-up or started here draws its curve, with the baseline it must beat, as the
    trainer logs it; the tab uses the model as soon as it is saved. Without a trainer (``--host``
    beyond this machine and no ``--allow-remote-training``) no button and no training event exist at
    all, so no client of the app's API can start one.
    """
    status = gr.Markdown(slot.status(), elem_classes=["gf-status"])
    curve = gr.HTML(loss_curve(slot), elem_classes=["gf-training-curve"])
    if slot.trainer is None or slot.unavailable:
        gr.Timer(3.0).tick(not_a_request(lambda: (slot.status(), loss_curve(slot))), outputs=[status, curve],
                           api_visibility="private", show_progress="hidden")
        return status
    button = gr.Button("Train the quick preset here", visible=slot.get() is None and not slot.training,
                       elem_classes=["gf-train"])

    def start() -> tuple[str, Any, str]:
        slot.start_training()
        return slot.status(), gr.update(visible=False), loss_curve(slot)

    @not_a_request
    def poll() -> tuple[str, Any, str]:
        return slot.status(), gr.update(visible=slot.get() is None and not slot.training), loss_curve(slot)

    button.click(start, outputs=[status, button, curve], api_visibility="private")
    gr.Timer(3.0).tick(poll, outputs=[status, button, curve], api_visibility="private", show_progress="hidden")
    return status


def last_indices(slot: ModelSlot, layers: str) -> tuple[int, int]:
    """The last layer and head of the slot's model; before it exists, room for 8 of each (the handler clips)."""
    loaded = slot.get()
    if loaded is None:
        return 7, 7
    config = loaded.model.config
    return getattr(config, layers) - 1, config.n_heads - 1


def sampling_controls(prefix: str) -> tuple[gr.Slider, gr.Slider, gr.Slider]:
    """Temperature, top-k and top-p sliders, with their ordinary names (0 and 1 switch a cut off)."""
    return (gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="Temperature (0: greedy)", elem_id=f"{prefix}-temperature"),
            gr.Slider(0, 100, value=0, step=1, label="Top-k (0: off)", elem_id=f"{prefix}-top-k"),
            gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (1: off)", elem_id=f"{prefix}-top-p"))
