"""The Explain panels (Sentiment, Translate, Vision), the head grid and the Generate tab's logit lens.

Every number a panel shows is read back from its HTML (``data-scores``, ``data-curve``, ``data-aopc``,
``data-before``/``data-after``, ``data-rank``/``data-p``) and compared with the lens called directly:
:func:`glassformer.lens.explain` and :func:`~glassformer.lens.deletion_curve` on a Prediction built
from the same input, the model's forward pass inside :func:`~glassformer.lens.ablated`, and
:func:`~glassformer.lens.logit_lens`. The browser tests act as a user in Debian's headless Chromium.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
import torch

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.lens import (  # noqa: E402
    ImageClassification,
    TextClassification,
    TranslationStep,
    ablated,
    deletion_curve,
    explain,
    logit_lens,
    pad_baseline,
)
from glassformer.studio import build_app, default_models  # noqa: E402
from glassformer.studio import explain as panels  # noqa: E402
from glassformer.studio.baseline import MarkovBaseline  # noqa: E402
from glassformer.studio.common import fashion_test_images, model_lock  # noqa: E402
from glassformer.studio.tabs import generate  # noqa: E402
from glassformer.studio.tabs import sentiment as sentiment_tab  # noqa: E402
from glassformer.studio.tabs import translate as translate_tab  # noqa: E402
from glassformer.studio.tabs import vision as vision_tab  # noqa: E402
from tests.models.helpers import textbook_greedy  # noqa: E402

from .helpers import browser_page, serve, shot  # noqa: E402


@pytest.fixture(scope="module")
def models(sentiment_dir, vit_dir, lm_dir, translate_dir, shakespeare_slice):
    studio_models = default_models(sentiment_dir, translate_dir=translate_dir, vision_dir=vit_dir,
                                   generate_dir=lm_dir)
    studio_models.markov = MarkovBaseline(studio_models.generate, order=3, works=shakespeare_slice,
                                          chars_per_work=500)
    return studio_models


def _cards(page: str) -> dict[str, dict]:
    """Each method card's data attributes: method → {"aopc", "scores", "curve"}."""
    cards = {}
    for tag in re.findall(r'<div class="gf-method"[^>]*>', page):
        attrs = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', tag))
        cards[attrs["data-method"]] = {"aopc": float(attrs["data-aopc"]),
                                       "scores": json.loads(html.unescape(attrs["data-scores"])),
                                       "curve": json.loads(html.unescape(attrs["data-curve"]))}
    return cards


def _check_against_the_lens(page: str, predictor, inputs, prediction, position=None) -> None:
    cards = _cards(page)
    assert list(cards) == ["attention", "rollout", "integrated-gradients", "occlusion"]
    for method, shown in cards.items():
        alone = explain(predictor, inputs, method=method, position=position, steps=panels.IG_STEPS)
        np.testing.assert_allclose(shown["scores"], alone.scores, atol=1e-6)
        curve = deletion_curve(prediction, torch.tensor(alone.scores), alone.target_id)
        np.testing.assert_allclose(shown["curve"], curve.probs, atol=1e-6)
        assert shown["aopc"] == pytest.approx(curve.aopc, abs=1e-6)
    assert "Attention is not explanation" in page and page.count("gf-faithful") == 1


# --- what the panels show equals the lens called directly -------------------------------------------

def test_sentiment_explain_panel_equals_explain_and_deletion_curve(models):
    classifier = models.sentiment
    text = "A gorgeous, witty, seductive movie."
    page = sentiment_tab.explain(models, text)
    ids = classifier.tokenizer.encode(text, add_special_tokens=True, max_length=classifier.max_length)
    specials = set(classifier.tokenizer.special_tokens.values())
    prediction = TextClassification(classifier.model, ids,
                                    pad_baseline(ids, specials, classifier.model.config.pad_token_id))
    _check_against_the_lens(page, classifier, text, prediction)
    assert "type a sentence first" in sentiment_tab.explain(models, "   ")


def test_head_grid_equals_the_models_forward_pass_with_the_heads_ablated(models):
    """Reference: the EncoderClassifier's logits inside lens.ablated, softmaxed here."""
    classifier = models.sentiment
    config = classifier.model.config
    assert panels.head_choices(config.n_layers, config.n_heads) == ["0.0", "0.1", "1.0", "1.1"]
    text = "The plot is a mess and the jokes fall flat."
    ids = torch.tensor([classifier.tokenizer.encode(text, add_special_tokens=True, max_length=classifier.max_length)])
    with torch.no_grad():
        before = classifier.model(ids).logits.softmax(-1)[0]
        with ablated(classifier.model, heads=[(0, 1), (1, 0)]):
            after = classifier.model(ids).logits.softmax(-1)[0]
    page = sentiment_tab.ablate(models, text, ["1.0", "0.1"])
    rows = re.findall(r'data-before="([^"]+)" data-after="([^"]+)"', page)
    np.testing.assert_allclose([float(b) for b, _ in rows], before.numpy(), atol=1e-6)
    np.testing.assert_allclose([float(a) for _, a in rows], after.numpy(), atol=1e-6)
    assert "layer 0 head 1, layer 1 head 0" in page
    assert "unchanged" in sentiment_tab.ablate(models, text, [])


def test_translate_explain_panel_explains_the_chosen_step(models):
    """Reference: greedy decoding without a cache (the textbook loop), then the step's Prediction on that prefix."""
    translator = models.translate.get()
    config, tokenizer = translator.model.config, translator.tokenizer
    text = "der hund sieht die katze."
    page = translate_tab.explain_step(models, text, 1)
    src = tokenizer.encode_ordinary(text) + [config.eos_token_id]
    with torch.no_grad():
        greedy = textbook_greedy(translator.model, torch.tensor([src]),
                                 min(int(1.5 * len(src)) + 10, config.max_position))[0].tolist()
    specials = set(tokenizer.special_tokens.values()) | {config.eos_token_id, config.bos_token_id}
    prediction = TranslationStep(translator.model, src, greedy[:2], pad_baseline(src, specials, config.pad_token_id))
    _check_against_the_lens(page, translator, text, prediction, position=1)
    assert 'data-step="1"' in page
    assert "shorter than that" in translate_tab.explain_step(models, text, 500)


def test_vision_explain_panel_equals_explain_and_deletion_curve(models):
    from glassformer.tasks.vit import MEAN, STD, normalise

    classifier = models.vision.get()
    images, _, _ = fashion_test_images()
    page = vision_tab.explain(models, 5)
    image = images[5]
    prediction = ImageClassification(classifier.model, normalise(torch.as_tensor(image)[None])[0], (0.0 - MEAN) / STD)
    _check_against_the_lens(page, classifier, image, prediction)
    grid = classifier.model.config.image_size // classifier.model.config.patch_size
    assert page.count('class="gf-overlay"') == 4 and page.count("<span title=\"patch") == 4 * grid * grid


def test_vision_head_grid_equals_the_models_forward_pass_with_the_heads_ablated(models):
    """Reference: the VisionTransformer's logits on the normalised image inside lens.ablated, softmaxed here."""
    from glassformer.tasks.vit import normalise

    classifier = models.vision.get()
    images, _, _ = fashion_test_images()
    pixels = normalise(torch.as_tensor(images[2][None]))
    with torch.no_grad():
        before = classifier.model(pixels).logits.softmax(-1)[0]
        with ablated(classifier.model, heads=[(1, 1)]):
            after = classifier.model(pixels).logits.softmax(-1)[0]
    page = vision_tab.ablate(models, 2, None, ["1.1"])
    rows = re.findall(r'data-before="([^"]+)" data-after="([^"]+)"', page)
    np.testing.assert_allclose([float(b) for b, _ in rows], before.numpy(), atol=1e-6)
    np.testing.assert_allclose([float(a) for _, a in rows], after.numpy(), atol=1e-6)


def test_generate_logit_lens_equals_the_lens_on_the_steps_context(models):
    generator = models.generate.get()
    _, _, state, _, _, _ = generate.generate(models.generate, models.markov, "ROMEO:", 5, 0.0, 0, 1.0, 0)
    page = generate.logit_lens_html(models.generate, state, 3)
    chosen = state.tokens[2]
    with model_lock:  # Generate started the Markov baseline, which scores this model in a thread of its own
        reference = logit_lens(generator.model, state.prompt_ids + state.tokens[:2], k=3, token=chosen).lens
    rows = re.findall(r'data-rank="(\d+)" data-p="([^"]+)" data-top="([^"]+)"', page)
    assert len(rows) == generator.model.config.n_layers + 1
    assert [int(r) for r, _, _ in rows] == reference.rank(chosen)
    np.testing.assert_allclose([float(p) for _, p, _ in rows], reference.prob(chosen), atol=1e-9)
    assert [t.split(",") for _, _, t in rows] == [[str(x["id"]) for x in reference.top(i, 3)] for i in range(len(rows))]
    # the last layer is the model's own next-token distribution at that step (greedy: the chosen token ranks 1)
    np.testing.assert_allclose(float(rows[-1][1]), torch.tensor(state.logits[2]).softmax(-1)[chosen].item(), atol=1e-5)
    assert rows[-1][0] == "1" and 'data-step="3"' in page
    assert generate.logit_lens_html(models.generate, None, 1) == ""


def test_untrained_models_and_empty_text_say_so(sentiment_dir, tmp_path):
    empty = default_models(sentiment_dir, translate_dir=tmp_path / "t", vision_dir=tmp_path / "v",
                           generate_dir=tmp_path / "g")
    assert "glassformer train translate" in translate_tab.explain_step(empty, "der hund.", 0)
    assert "glassformer train vit" in vision_tab.explain(empty, 0)
    assert "type a sentence first" in sentiment_tab.ablate(empty, "", ["0.0"])


# --- in a real browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(models):
    for url in serve(build_app(models)):
        yield from browser_page(url)


def _open_explain(page, tab: str, section: str) -> None:
    page.get_by_role("tab", name=tab, exact=True).click()
    page.locator(f"#{section} button").first.click()  # the accordion's header opens it


@pytest.mark.slow
def test_browser_sentiment_explain_and_head_grid(page, models):
    page.get_by_role("tab", name="Sentiment", exact=True).click()
    page.locator("#sentiment-text textarea").fill("The plot is a mess and the jokes fall flat.")
    _open_explain(page, "Sentiment", "sentiment-explain-section")
    page.click("#sentiment-explain-submit")
    page.wait_for_selector("#sentiment-explain .gf-method", timeout=30_000)
    cards = page.locator("#sentiment-explain .gf-method")
    assert cards.count() == 4 and cards.locator("svg.gf-deletion-curve").count() == 4
    assert "Integrated gradients" in page.locator("#sentiment-explain").inner_text()
    shot(page, "explain-sentiment")

    page.locator("#sentiment-heads label").filter(has_text=re.compile(r"^\s*1\.0\s*$")).click()
    page.wait_for_selector("#sentiment-ablation .gf-ablation[data-heads='1.0']", timeout=15_000)
    first = page.locator("#sentiment-ablation tr.gf-ablation-row").first
    after_one = float(first.get_attribute("data-after"))
    page.locator("#sentiment-heads label").filter(has_text=re.compile(r"^\s*0\.1\s*$")).click()
    page.wait_for_selector("#sentiment-ablation .gf-ablation[data-heads='0.1,1.0']", timeout=15_000)
    classifier = models.sentiment
    text = "The plot is a mess and the jokes fall flat."
    with ablated(classifier.model, heads=["0.1", "1.0"]):
        expected = classifier.predict_proba([text])[0]
    rows = page.locator("#sentiment-ablation tr.gf-ablation-row")
    for i in range(rows.count()):
        assert float(rows.nth(i).get_attribute("data-after")) == pytest.approx(float(expected[i]), abs=1e-6)
    assert float(first.get_attribute("data-after")) != after_one
    shot(page, "explain-head-grid")


@pytest.mark.slow
def test_browser_translate_explain_follows_the_step(page):
    _open_explain(page, "Translate", "tr-explain-section")
    page.locator("#tr-text textarea").fill("der hund sieht die katze.")
    page.locator("#tr-explain-step input").fill("1")
    page.click("#tr-explain-submit")
    page.wait_for_selector("#tr-explain .gf-explain-step[data-step='1']", timeout=30_000)
    assert page.locator("#tr-explain .gf-method").count() == 4
    assert "step 1" in page.locator("#tr-explain").inner_text()
    shot(page, "explain-translate")


@pytest.mark.slow
def test_browser_vision_explain_draws_four_patch_maps(page):
    _open_explain(page, "Vision", "vis-explain-section")
    page.locator("#vis-index input").fill("4")
    page.click("#vis-explain-submit")
    page.wait_for_selector("#vis-explain .gf-method", timeout=30_000)
    assert page.locator("#vis-explain .gf-method .gf-overlay").count() == 4
    assert page.locator("#vis-explain .gf-aopc").count() == 4
    shot(page, "explain-vision")


@pytest.mark.slow
def test_browser_generate_logit_lens_follows_the_step_slider(page):
    page.get_by_role("tab", name="Generate", exact=True).click()
    page.locator("#gen-prompt textarea").fill("ROMEO:")
    page.click("#gen-submit")
    page.wait_for_selector("#gen-lens table.gf-lens[data-step='1']", timeout=30_000)
    slider = page.locator("#gen-step input[type=range]")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector("#gen-lens table.gf-lens[data-step='4']", timeout=15_000)
    assert page.locator("#gen-lens tr.gf-lens-layer").count() >= 2
    assert "Step 4" in page.locator("#gen-lens caption").inner_text()
    shot(page, "generate-logit-lens")
