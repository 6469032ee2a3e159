"""The Tokenizer tab: the article's character BPE learning its merges on your words, beside GPT-2's and BERT's tokens."""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

import gradio as gr
import numpy as np

from glassformer.studio.common import ERROR, clean_text, message_html, notes_html, shows_errors, table_html
from glassformer.viz import token_labels

MAX_MERGES = 50


def build() -> None:
    """The tab's components and events: words and a merge count in, the merges and the reference tokens out."""
    t_text = gr.Textbox(label="Words", lines=2, value="low lower lowest newer newest wider widest", elem_id="tok-text")
    merges = gr.Slider(0, MAX_MERGES, value=10, step=1, label="BPE merges")
    t_submit = gr.Button("Tokenize", variant="primary", elem_id="tok-submit")
    gr.Markdown("### The article's character BPE, merge by merge")
    t_bpe = gr.HTML(elem_id="tok-bpe")
    gr.Markdown("### GPT-2 and BERT on the same text")
    t_side = gr.HTML(elem_id="tok-side")
    t_submit.click(tokenize, [t_text, merges], [t_bpe, t_side], api_name="tokenize")


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


@shows_errors(ERROR, "")
def tokenize(text: str, merges: int = 10) -> tuple[str, str]:
    """The article's character BPE merges on `text`, step by step, and GPT-2 / BERT tokens of the same text."""
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
