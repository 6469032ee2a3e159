"""The Translate tab's look-ups: the retrieval baseline's answer and each word's dictionary entries under the model's.

The values are read back from the panel's HTML and compared with the task's own functions
(:meth:`glassformer.tasks.translate.Baselines.lookup`), and the dictionary rows with the entries
written here by hand.
"""

from __future__ import annotations

import html
import re

import pytest

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.data.corpora import ParallelCorpus  # noqa: E402
from glassformer.studio import build_app, default_models  # noqa: E402
from glassformer.studio.tabs import translate as translate_tab  # noqa: E402
from glassformer.tasks import translate as T  # noqa: E402

from .conftest import _toy_pairs  # noqa: E402

DICTIONARY = [("Hund", "dog; hound"), ("Hund", "mine car"), ("Katze", "cat"), ("sehen", "to see"),
              ("die (der; des)", "the")]


@pytest.fixture(scope="module")
def models(sentiment_dir, translate_dir, tmp_path_factory):
    """The studio with the tiny toy translator (its vision and language slots empty)."""
    empty = tmp_path_factory.mktemp("no-models")
    return default_models(sentiment_dir, translate_dir=translate_dir, vision_dir=empty / "vision",
                          generate_dir=empty / "lm")


@pytest.fixture()
def baselines(monkeypatch: pytest.MonkeyPatch) -> T.Baselines:
    """The toy model's training data with a small dictionary, as the baselines the task finds for it."""
    corpus = ParallelCorpus(_toy_pairs(300, 0), _toy_pairs(20, 1), _toy_pairs(20, 2), DICTIONARY, {"source": "toy"})
    built = T.Baselines(corpus)
    monkeypatch.setattr(T, "baselines_for", lambda translator: built)
    return built


def _span(page: str, css_class: str) -> str:
    return html.unescape(re.search(rf'<span class="{css_class}">(.*?)</span>', page, re.S).group(1))


def _rows(page: str) -> list[list[str]]:
    table = page[page.index('<table class="gf-table"'):page.index("</table>")]
    return [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table) if "<td" in row]


def test_lookups_panel_shows_what_the_task_looks_up(models, baselines) -> None:
    text = "der hund sieht die katze."
    page = translate_tab.lookups(models, text)
    reference = baselines.lookup(text)  # the task's function, called directly
    assert _span(page, "gf-retrieved-english") == reference.retrieved
    assert _span(page, "gf-retrieved-source") == reference.retrieved_source
    assert _span(page, "gf-word-by-word-english") == reference.word_by_word
    assert _rows(page) == [[word, "; ".join(senses) or "—"] for word, senses in reference.words]
    # The hand-written dictionary: "dog" is the toy training text's word, the miners' "mine car" is not.
    assert _rows(page) == [["der", "—"], ["hund", "dog; hound; mine car"], ["sieht", "—"], ["die", "the"],
                           ["katze", "cat"]]
    assert reference.retrieved in {target for _, target in _toy_pairs(300, 0)}


def test_lookups_panel_explains_when_there_is_nothing_to_look_up(models) -> None:
    # The toy model's data is not de-en, so without the patched baselines there are none.
    assert "trained on &#x27;toy&#x27; data" in translate_tab.lookups(models, "der hund.")
    assert "The text is empty" in translate_tab.lookups(models, "   ")


def test_translate_tab_shows_the_lookups_under_the_translation(models) -> None:
    config = build_app(models).get_config_file()
    ids = [c.get("props", {}).get("elem_id") for c in config["components"]]
    assert ids.index("tr-out") < ids.index("tr-lookups") < ids.index("tr-attention")
    assert "translate_lookups" in {d.get("api_name") for d in config["dependencies"]}
