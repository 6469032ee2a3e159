"""The Generate tab: text one token at a time, each step's candidates, the logit lens, and a Markov chain beside it.

Generating keeps every step's logits (``GenerationStep.logits``) in the page's state, so choosing
another step, or moving temperature, top-k or top-p, redraws the distribution from those logits
through the library's :func:`~glassformer.viz.next_token.next_token_distribution` (the same cuts as
transformers' logits processors) without running the model again.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from glassformer.studio.baseline import MarkovBaseline
from glassformer.studio.common import (
    ERROR,
    UserInputError,
    clean_text,
    message_html,
    model_lock,
    notes_html,
    prompt_inputs,
    shows_errors,
    table_html,
)
from glassformer.studio.controls import sampling_controls, training_controls
from glassformer.studio.jobs import ModelSlot
from glassformer.studio.models import StudioModels
from glassformer.studio.walkthrough import SHOWN_CANDIDATES, candidates_html
from glassformer.viz import token_labels, token_scores_html
from glassformer.viz.next_token import next_token_distribution, sampling_settings

MAX_NEW_TOKENS = 300
CONTEXT_SHOWN = 60  # characters of context printed above a step's candidates


@dataclass
class Generation:
    """What one press of Generate produced: kept in the page's state so that the controls redraw without the model."""

    prompt_ids: list[int]  # what the model read first, <|endoftext|> included
    tokens: list[int]  # the token drawn at each step
    logits: np.ndarray  # (steps, V) each step's logits before any cut
    settings: str  # the sampling settings the text was drawn with, as a phrase


def build(models: StudioModels) -> None:
    """The tab's components and events: the training panel, generate, and the step, lens and Markov panels."""
    training_controls(models.generate)
    prompt = gr.Textbox(label="Prompt", value="ROMEO:", elem_id="gen-prompt")
    with gr.Row():
        n_new = gr.Slider(1, MAX_NEW_TOKENS, value=120, step=1, label="New tokens")
        seed = gr.Number(value=0, precision=0, label="Seed")
    with gr.Row():
        sampling = sampling_controls("gen")
    g_submit = gr.Button("Generate", variant="primary", elem_id="gen-submit")
    g_out = gr.Textbox(label="Text", lines=6, interactive=False, elem_id="gen-out")
    g_probs = gr.HTML(elem_id="gen-probs")
    g_step = gr.Slider(1, MAX_NEW_TOKENS, value=1, step=1, interactive=False,
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
        out = generate(models.generate, markov, *inputs)
        return (*out, gr.Timer(active=out[2] is not None and not markov.ready_for(models.generate.get())))

    def redraw(*inputs: Any) -> tuple[str, str]:
        return show_step(models.generate, markov, *inputs)

    def refresh(*inputs: Any) -> tuple[str, Any]:
        ready = markov.ready_for(models.generate.get()) or markov.error is not None
        return redraw(*inputs)[1], gr.Timer(active=not ready)

    def lens(state: Any, step: int) -> str:
        return logit_lens_html(models.generate, state, step)

    g_submit.click(run, [prompt, n_new, *sampling, seed],
                   [g_out, g_probs, state, g_step, g_candidates, g_markov, markov_wait], api_name="generate"
                   ).then(lens, [state, g_step], g_lens, api_visibility="private", show_progress="hidden")
    g_step.change(lens, [state, g_step], g_lens, api_name="logit_lens", show_progress="hidden")
    step_inputs = [state, g_step, *sampling]
    # Moving a control redraws the bars from the stored logits: no model call, so it answers at once.
    g_step.change(redraw, step_inputs, [g_candidates, g_markov], api_name="generate_step", show_progress="hidden")
    for control in sampling:
        control.change(redraw, step_inputs, [g_candidates, g_markov], api_visibility="private",
                       show_progress="hidden")
    markov_wait.tick(refresh, step_inputs, [g_markov, markov_wait], api_visibility="private", show_progress="hidden")


def prompt_ids(generator: Any, text: str) -> list[int]:
    """The ids of :func:`prompt_inputs`."""
    return prompt_inputs(generator, text).ids[0]


def _settings_phrase(temperature: float, top_k: int | None, top_p: float | None) -> str:
    if temperature == 0:
        return "greedy (temperature 0)"
    return f"temperature {temperature:g}, top-k {top_k or 'off'}, top-p {top_p if top_p is not None else 'off'}"


@shows_errors("", ERROR, None, gr.update(), "", "")
def generate(slot: ModelSlot, baseline: MarkovBaseline, prompt: str, max_new_tokens: int = 120,
             temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0, seed: int = 0
             ) -> tuple[str, str, Generation | None, Any, str, str]:
    """Continue `prompt` and show step 1: text, shaded tokens, the state, the step slider, candidates, Markov panel."""
    generator = slot.get()
    if generator is None:
        raise UserInputError(slot.status())
    baseline.start()
    from glassformer.inference.generate import stream_steps

    clean = clean_text(prompt, what="a prompt")
    start = prompt_ids(generator, clean.text)
    temperature, top_k, top_p = sampling_settings(float(temperature), int(top_k or 0), float(top_p))
    end = generator.tokenizer.special_tokens.get("<|endoftext|>")
    n = int(np.clip(max_new_tokens, 1, MAX_NEW_TOKENS))
    with model_lock:
        steps = list(stream_steps(generator.model, start, n, temperature=temperature, top_k=top_k,
                                  top_p=top_p, greedy=temperature == 0, seed=int(seed), eos_token_id=end))
    state = Generation(start, [s.token for s in steps], np.stack([s.logits.numpy() for s in steps]),
                       _settings_phrase(temperature, top_k, top_p))
    shown = [s for s in steps if s.token != end]
    pieces = [generator.tokenizer.decode([s.token]) for s in shown]
    text = clean.text + "".join(pieces)
    shading = ('<p style="font-size:12px">Each new token shaded by p(token | text before it) under the model '
               "(temperature 1); hover for the value.</p>"
               + token_scores_html(token_labels(generator.tokenizer, [s.token for s in shown]),
                                   [s.prob for s in shown], color="214, 39, 40"))
    candidates, markov = show_step(slot, baseline, state, 1, temperature, top_k or 0, top_p or 1.0)
    step = gr.update(minimum=1, maximum=len(steps), value=1, interactive=len(steps) > 1)
    return text, notes_html(clean.notes) + shading, state, step, candidates, markov


@shows_errors(ERROR, "")
def show_step(slot: ModelSlot, baseline: MarkovBaseline, state: Generation | None, step: int, temperature: float,
              top_k: int, top_p: float) -> tuple[str, str]:
    """Step `step`'s candidates under the current temperature, top-k and top-p, and the Markov chain's for its context."""
    if state is None:
        return "", ""
    generator = slot.get()
    if generator is None:
        raise UserInputError(slot.status())
    index = int(np.clip(step, 1, len(state.tokens))) - 1
    distribution = next_token_distribution(state.logits[index], temperature=float(temperature),
                                           top_k=int(top_k or 0), top_p=float(top_p))
    chosen = state.tokens[index]
    shown = [int(i) for i in distribution.top(SHOWN_CANDIDATES)]
    rows = shown + ([chosen] if chosen not in shown else [])
    labels = dict(zip(rows, token_labels(generator.tokenizer, rows)))
    context = state.prompt_ids + state.tokens[:index]
    text = generator.tokenizer.decode([i for i in context if i not in generator.tokenizer.special_tokens.values()])
    tail = ("…" if len(text) > CONTEXT_SHOWN else "") + text[-CONTEXT_SHOWN:]
    head = (f'<p class="gf-context" style="font-size:12px">Step {index + 1} of {len(state.tokens)}: after '
            f'<code style="white-space:pre-wrap">{html.escape(tail)}</code> the model drew '
            f"<b><code>{html.escape(labels[chosen])}</code></b> ({state.settings}).</p>")
    note = ('<p style="font-size:12px;color:#555">Move temperature, top-k or top-p to see how they reshape this '
            "step's distribution; the text above was drawn with the settings it was generated with.</p>")
    candidates = head + candidates_html(distribution, labels, rows, chosen, "the transformer's candidates") + note
    return candidates, markov_html(generator, baseline, context, chosen)


LENS_TOP = 3  # candidates per layer in the logit lens column


@shows_errors()
def logit_lens_html(slot: ModelSlot, state: Generation | None, step: int) -> str:
    """The logit lens at step `step`: per layer, the top candidates and the chosen token's rank and probability.

    The model reads the step's context (prompt + tokens so far, its last ``max_position`` tokens); the last
    layer's row is the model's own distribution at temperature 1. (Past the model's context the generator's
    KV cache restarts on a shorter window, so there the drawn step saw a little less.)
    """
    if state is None:
        return ""
    generator = slot.get()
    if generator is None:
        raise UserInputError(slot.status())
    from glassformer.lens import logit_lens

    index = int(np.clip(step, 1, len(state.tokens))) - 1
    chosen = state.tokens[index]
    context = (state.prompt_ids + state.tokens[:index])[-generator.model.config.max_position:]
    with model_lock:
        lens = logit_lens(generator.model, context, k=LENS_TOP, token=chosen).lens
    ranks, probs = lens.rank(chosen), lens.prob(chosen)
    label = token_labels(generator.tokenizer, [chosen])[0]
    rows = []
    for layer in range(len(ranks)):
        top = lens.top(layer, LENS_TOP)
        names = token_labels(generator.tokenizer, [t["id"] for t in top])
        cells = "<br>".join(f'<span style="white-space:nowrap"><code>{html.escape(n)}</code> {t["prob"]:.1%}</span>'
                            for n, t in zip(names, top))
        where = "embeddings" if layer == 0 else f"after block {layer}"
        rows.append(f'<tr class="gf-lens-layer" data-layer="{layer}" data-rank="{ranks[layer]}" '
                    f'data-p="{probs[layer]!r}" data-top="{",".join(str(t["id"]) for t in top)}">'
                    f'<td style="padding:1px 6px">{layer} ({where})</td><td style="padding:1px 6px">{cells}</td>'
                    f'<td style="padding:1px 6px">{ranks[layer]}</td>'
                    f'<td style="padding:1px 6px">{probs[layer]:.1%}</td></tr>')
    return (f'<table class="gf-lens" data-step="{index + 1}" data-token-id="{chosen}" '
            f'style="border-collapse:collapse;font-size:12px"><caption style="text-align:left;font-size:12px">'
            f"Step {index + 1}: the chosen token <b><code>{html.escape(label)}</code></b> read off each layer "
            f"(final LayerNorm + unembedding applied to the residual stream)</caption>"
            f"<tr><th>layer</th><th>top {LENS_TOP}</th><th>rank of the chosen token</th><th>its p</th></tr>"
            + "".join(rows) + "</table>")


def _chain_label(generator: Any, chain: Any, token: Any) -> str:
    if token == chain.eos:
        return "end of text"
    if token == chain.unk:
        return "unknown"
    return token_labels(generator.tokenizer, [token])[0]


def markov_html(generator: Any, baseline: MarkovBaseline, context: list[int], chosen: int) -> str:
    """The Markov chain's candidates for the same context, and both models' bits per character on held-out text."""
    baseline.start()
    if not baseline.ready_for(generator):
        return message_html(baseline.status())
    chain, scores = baseline.chain, baseline.scores
    assert chain is not None and scores is not None
    end = generator.tokenizer.special_tokens.get("<|endoftext|>")
    # The transformer reads <|endoftext|> before a work's first token; the chain pads it with its start marker.
    history = [chain.bos if token == end else token for token in context]
    distribution = chain.next_distribution(history)
    ranked = sorted(distribution.items(), key=lambda item: -item[1])[:SHOWN_CANDIDATES]
    peak = ranked[0][1] if ranked else 1.0
    bar = "display:inline-block;height:10px;vertical-align:middle;margin-right:6px;border-radius:2px"
    rows = []
    for token, p in ranked:
        mark = token == chosen
        rows.append(f'<tr class="gf-markov-candidate{" gf-chosen" if mark else ""}" data-p="{p!r}" '
                    f'style="{"font-weight:700" if mark else ""}"><td style="padding:1px 6px">{"▶ " if mark else ""}'
                    f"<code>{html.escape(_chain_label(generator, chain, token))}</code></td>"
                    f'<td style="padding:1px 6px"><span style="{bar};width:{120 * p / peak:.1f}px;background:#8c6d31">'
                    f"</span>{p:.1%}</td></tr>")
    last = "".join(f"<code>{html.escape(_chain_label(generator, chain, t) if t != chain.bos else '(start)')}</code> "
                   for t in history[-chain.order:])
    table = (f'<table class="gf-markov" style="border-collapse:collapse;font-size:12px"><caption style="text-align:'
             f'left;font-size:12px">the order-{chain.order} Markov chain: it sees only the last {chain.order} tokens '
             f'({last.strip()})</caption><tr><th>token</th><th>p (Markov chain)</th></tr>'
             + "".join(rows) + "</table>"
             + f'<p style="font-size:12px">It gives the transformer\'s token p = {distribution.get(chosen, 0.0):.1%}.</p>')
    slice_chars = scores.markov["n"]
    bpc = table_html([[f"Markov chain (order {chain.order})", scores.markov["bits_per_char"],
                       f"{scores.fit_seconds:.1f} s to fit, {scores.markov_seconds:.1f} s to score"],
                      ["transformer", scores.transformer["bits_per_char"], f"{scores.transformer_seconds:.1f} s to score"]],
                     ["model", "bits per character", "time here"],
                     f"on held-out text: the first {scores.chars_per_work:,} characters of each of "
                     f"{', '.join(scores.works)} ({slice_chars:,} characters: a fixed slice, so that the panel is "
                     "ready in seconds); lower is better")
    metrics = generator.info.get("metrics") or {}
    recorded = metrics.get("validation") or {}
    if "bits_per_char" in recorded:
        took = f", scored in {metrics['eval_seconds']:.0f} s" if "eval_seconds" in metrics else ""
        bpc += (f'<p style="font-size:12px">Recorded when the transformer was trained, on all {recorded["n"]:,} '
                f'held-out characters{took}: {recorded["bits_per_char"]:.3f} bits per character.</p>')
    return '<div class="gf-markov-panel">' + table + bpc + "</div>"
