"""The Translate tab's look-ups: what retrieval and the dictionary answer beside the model's translation.

A learner sees what the model adds over looking things up, as the Generate tab shows a Markov
chain beside the transformer. The look-ups come from :func:`glassformer.tasks.translate.lookup`
(the baselines `eval` scores); this module only turns them into HTML.
"""

from __future__ import annotations

import html

from glassformer.studio.common import UserInputError, clean_text, error_html, message_html, table_html
from glassformer.studio.handlers import StudioModels


def translation_lookups(models: StudioModels, text: str) -> str:
    """The retrieval baseline's answer, the word-by-word one, and a table of each source word's translations."""
    from glassformer.tasks import translate

    try:
        translator = models.translate.get()
        if translator is None:
            raise UserInputError(models.translate.status())
        clean = clean_text(text, what="a German sentence")
        found = translate.lookup(translator, clean.text)
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
    except Exception as exc:
        return error_html(exc)
