"""The Translate tab: German → English with greedy or beam search, the cross-attention, the look-ups, and Explain.

The look-ups (:func:`glassformer.tasks.translate.lookup`, the baselines `eval` scores) show what
retrieval and the dictionary answer beside the model's translation, so a learner sees what the model
adds over looking things up, as the Generate tab shows a Markov chain beside the transformer.
"""

from __future__ import annotations

import html
from functools import partial

import gradio as gr

from glassformer.lens import PositionError
from glassformer.studio import explain as panels
from glassformer.studio.common import (
    ERROR,
    UserInputError,
    clean_text,
    figure_img,
    iframe_html,
    message_html,
    model_lock,
    notes_html,
    shows_errors,
    table_html,
)
from glassformer.studio.controls import training_controls
from glassformer.studio.models import StudioModels
from glassformer.viz import attention_heatmap, head_view_html, text_attention


def build(models: StudioModels) -> None:
    """The tab's components and events: the training panel, translate, look-ups and the Explain panel."""
    training_controls(models.translate)
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
    s_submit.click(partial(translate, models), [s_text, method], [s_out, s_picture, s_view], api_name="translate")
    s_submit.click(partial(lookups, models), [s_text], s_lookups, api_name="translate_lookups")
    with gr.Accordion("Explain: why this prediction?", open=False, elem_id="tr-explain-section"):
        with gr.Row():
            s_step = gr.Number(value=0, precision=0, minimum=0, maximum=200,
                               label="Target step of the greedy translation (0: its first token)",
                               elem_id="tr-explain-step")
            s_explain = gr.Button("Explain this step", elem_id="tr-explain-submit")
        s_why = gr.HTML(elem_id="tr-explain")
        s_explain.click(partial(explain_step, models), [s_text, s_step], s_why, api_name="explain_translate")


@shows_errors("", ERROR, "")
def translate(models: StudioModels, text: str, method: str = "beam") -> tuple[str, str, str]:
    """German → English with greedy or beam search, and the cross-attention of the greedy pass."""
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


@shows_errors()
def lookups(models: StudioModels, text: str) -> str:
    """The retrieval baseline's answer, the word-by-word one, and a table of each source word's translations."""
    from glassformer.tasks import translate as task

    translator = models.translate.get()
    if translator is None:
        raise UserInputError(models.translate.status())
    clean = clean_text(text, what="a German sentence")
    found = task.lookup(translator, clean.text)
    if found is None:
        data = translator.info.get("data")
        return message_html(f"No look-ups: the model was trained on {data!r} data, which is not stored with "
                            "it; models trained on de-en show the baselines here.")
    rows = [[word, "; ".join(senses) if senses else "—"] for word, senses in found.words]
    return ('<div class="gf-lookups"><h4 style="margin:8px 0 4px">Looking it up instead</h4>'
            f'<p class="gf-retrieved" style="margin:2px 0"><b>Retrieval baseline</b> (the training pair that '
            f'shares the rarest words): <span class="gf-retrieved-english">{html.escape(found.retrieved)}'
            f'</span> <span style="color:#666">← <span class="gf-retrieved-source">'
            f"{html.escape(found.retrieved_source)}</span></span></p>"
            f'<p class="gf-word-by-word" style="margin:2px 0"><b>Word by word</b> (each word\'s most common '
            f'one-word translation): <span class="gf-word-by-word-english">{html.escape(found.word_by_word)}'
            "</span></p>"
            + table_html(rows, ["German word", "dictionary translations (most common first)"],
                         "the training dictionary's entries for each word (— none)")
            + "</div>")


@shows_errors()
def explain_step(models: StudioModels, text: str, step: int = 0) -> str:
    """The four attributions of one target step of the greedy translation, over the German source tokens."""
    translator = models.translate.get()
    if translator is None:
        raise UserInputError(models.translate.status())
    clean = clean_text(text, what="a German sentence")
    step = max(int(step or 0), 0)
    try:
        pairs = panels.comparison(translator, clean.text, position=step)
    except PositionError as exc:
        raise UserInputError(f"The greedy translation is shorter than that: {exc}. Choose a smaller step.") from None
    first = pairs[0][0]
    words = " ".join(f"<b><code>{html.escape(t)}</code></b>" if i == step else
                     f"<code>{html.escape(t)}</code>" for i, t in enumerate(panels.readable(translator.tokenizer,
                                                                                             first.context)))
    context = (f'<p class="gf-explain-step" data-step="{step}" data-steps="{len(first.context)}" '
               f'style="font-size:12px">Greedy translation, step {step} of 0–{len(first.context) - 1} '
               f"in bold: {words}</p>")
    return notes_html(clean.notes) + context + panels.comparison_html(pairs, f"Explaining target step {step}",
                                                                      tokenizer=translator.tokenizer)
