"""The studio's panels for every family: the walkthroughs, the Generate tab's candidates and Markov chain, training.

Each number a panel shows is read back from its HTML (``data-value``, ``data-p``, ``data-sample-p``)
and compared with an independent reference: the model's own forward pass, transformers' logits
processors, the Markov chain itself, and :mod:`glassformer.tasks.lm`'s scoring functions. The
browser tests act as a user in Debian's headless Chromium (type, click, move a slider) and save
screenshots to test-artifacts/studio/.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.studio import build_app, default_models  # noqa: E402
from glassformer.studio.baseline import MarkovBaseline  # noqa: E402
from glassformer.studio.common import fashion_test_images  # noqa: E402
from glassformer.studio.tabs import generate  # noqa: E402
from glassformer.studio.tabs import walkthrough as walk_tab  # noqa: E402
from tests.models.helpers import textbook_greedy  # noqa: E402

from .helpers import browser_page, serve, shot  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"


@pytest.fixture(scope="module")
def models(sentiment_dir, vit_dir, lm_dir, translate_dir, shakespeare_slice):
    """All four families trained (tiny), and an order-3 Markov chain fitted on the Shakespeare slice."""
    studio_models = default_models(sentiment_dir, translate_dir=translate_dir, vision_dir=vit_dir,
                                   generate_dir=lm_dir)
    studio_models.markov = MarkovBaseline(studio_models.generate, order=3, works=shakespeare_slice,
                                          chars_per_work=500)
    return studio_models


def _attribute(page_html: str, css_class: str, name: str) -> list[float]:
    """The float attribute `name` of every element whose class list starts with `css_class`, in document order."""
    values = []
    for tag in re.findall(rf'<[a-z]+ class="{css_class}[^"]*"[^>]*>', page_html):
        found = re.search(rf'{name}="([^"]+)"', tag)
        if found:
            values.append(float(found.group(1)))
    return values


def _section(page_html: str, marker: str) -> str:
    """The HTML of the first table whose class attribute contains `marker`."""
    start = page_html.index(marker)
    return page_html[page_html.rindex("<table", 0, start):page_html.index("</table>", start)]


def _grid_values(grid_html: str) -> np.ndarray:
    """A grid's cells row by row (masked cells as -inf), shaped by its data-rows / data-cols."""
    rows = int(re.search(r'data-rows="(\d+)"', grid_html).group(1))
    cols = int(re.search(r'data-cols="(\d+)"', grid_html).group(1))
    values = []
    for cell in re.findall(r"<td [^>]*>", grid_html):
        value = re.search(r'data-value="([^"]+)"', cell)
        values.append(-np.inf if 'class="gf-masked"' in cell else float(value.group(1)))
    return np.array(values).reshape(rows, cols)


# --- what the panels show equals the models' own numbers -------------------------------------------

def test_lm_walkthrough_panel_shows_the_models_attention_and_masks_the_future(models):
    """Reference: the DecoderLM's forward pass with output_attentions on the same ids."""
    generator = models.generate.get()
    page = walk_tab.walk_lm(models, "ROMEO: how now", 1, 1, 0.8, 5, 0.9, 0)
    ids = generate.prompt_ids(generator, "ROMEO: how now")
    with torch.no_grad():
        reference = generator.model(torch.tensor([ids]), output_attentions=True)
    weights = _grid_values(_section(page, "gf-grid gf-weights"))
    t = len(ids)
    causal = np.triu(np.ones((t, t), dtype=bool), k=1)
    assert np.isneginf(weights[causal]).all()  # every cell after its query is drawn as blocked
    np.testing.assert_allclose(weights[~causal], reference.attentions[1][0, 1].numpy()[~causal], atol=1e-6)
    assert page.count('class="gf-masked"') == 2 * t * (t - 1) // 2  # scores and weights grids
    assert page.count('class="gf-step"') == 9 and "causal mask" in page and "Next token:" in page
    logits = reference.logits[0, -1]
    shown = _attribute(page, "gf-candidate", "data-p")
    np.testing.assert_allclose(shown[:10], logits.softmax(-1).sort(descending=True).values[:10].numpy(), atol=1e-6)

    long = walk_tab.walk_lm(models, "x" * 100, 0, 9, 1.0, 0, 1.0, 0)
    assert "last 32 tokens" in long and "heads 0..1; showing head 1" in long


def test_translation_walkthrough_panel_steps_through_the_target(models):
    """Reference: greedy decoding without a cache (the textbook loop) and the model's forward pass's cross-attention."""
    translator = models.translate.get()
    page = walk_tab.walk_translation(models, "der hund sieht die katze.", 1, 0)
    tokenizer = translator.tokenizer
    source = tokenizer.encode_ordinary("der hund sieht die katze.") + [tokenizer.special_tokens["</s>"]]
    max_len = len(source) * 3 // 2 + 10
    steps = page.count('class="gf-decode-step"')
    with torch.no_grad():
        greedy = textbook_greedy(translator.model, torch.tensor([source]), max_len)[0]
        assert steps in (len(greedy) - 1, max_len)  # it chose the end token, or the search ran out of room
        target = greedy[:steps]  # [BOS] y_1 …: what the decoder read at each step
        reference = translator.model(torch.tensor([source]), target[None], output_attentions=True)
    cross = _grid_values(_section(page, "gf-grid gf-cross"))
    np.testing.assert_allclose(cross, reference.cross_attentions[1][0, 0].numpy(), atol=1e-6)
    assert translator.translate(["der hund sieht die katze."], beam_size=1)[0] in page


def test_vision_walkthrough_panel_draws_the_patches_and_cls_attention(models):
    """Reference: the VisionTransformer's forward pass with output_attentions on the normalised test image."""
    from glassformer.tasks.vit import normalise

    classifier = models.vision.get()
    page = walk_tab.walk_vision(models, 3, 1, 1)
    images, _, _ = fashion_test_images()
    with torch.no_grad():
        reference = classifier.model(normalise(torch.as_tensor(images[3][None])), output_attentions=True)
    grid = classifier.model.config.image_size // classifier.model.config.patch_size
    assert page.count('class="gf-patch"') == 2 * grid * grid  # the grid of patches, then tinted by [CLS]'s weights
    weights = _grid_values(_section(page, "gf-grid gf-weights"))
    np.testing.assert_allclose(weights, reference.attentions[1][0, 1].numpy(), atol=1e-6)
    best = classifier.label_names[int(reference.logits.argmax())]
    assert f"Prediction: {best}" in page


def test_generate_step_redraws_the_distribution_like_transformers_processors(models):
    """Reference: the model's forward pass on the step's context, through transformers' logits processors."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    generator = models.generate.get()
    text, _, state, _, candidates, _ = generate.generate(models.generate, models.markov, "ROMEO:", 6, 0.7, 0, 1.0, 1)
    assert text.startswith("ROMEO:") and len(state.tokens) == 6 and 'class="gf-candidate' in candidates
    context = state.prompt_ids + state.tokens[:2]
    with torch.no_grad():
        logits = generator.model(torch.tensor([context])).logits[0, -1]
    for temperature, top_k, top_p in ((1.3, 0, 1.0), (0.5, 4, 1.0), (0.9, 0, 0.6), (1.0, 8, 0.8)):
        page, _ = generate.show_step(models.generate, models.markov, state, 3, temperature, top_k, top_p)
        warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)]
                                      + ([TopKLogitsWarper(top_k)] if top_k else [])
                                      + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else []))
        reference = warpers(torch.zeros(1, 1, dtype=torch.long), logits[None].clone()).softmax(-1)[0]
        ids = [int(i) for i in _attribute(page, "gf-candidate", "data-token-id")]
        np.testing.assert_allclose(_attribute(page, "gf-candidate", "data-sample-p"), reference[ids].numpy(), atol=1e-6)
        np.testing.assert_allclose(_attribute(page, "gf-candidate", "data-p"), logits.softmax(-1)[ids].numpy(),
                                   atol=1e-6)
    assert 'class="gf-candidate gf-chosen"' in page and "Step 3 of 6" in page


def test_markov_panel_shows_the_chains_prediction_and_both_bits_per_character(models, shakespeare_slice):
    """Reference: the MarkovChain's next_distribution, score_markov and score_transformer on the same slice."""
    from glassformer.tasks.lm import score_markov, score_transformer

    generator = models.generate.get()
    baseline = models.markov
    baseline.start()
    baseline._thread.join(120)
    assert baseline.ready_for(generator), baseline.status()
    context = generate.prompt_ids(generator, "ROMEO: the")
    page = generate.markov_html(generator, baseline, context, context[-1])
    chain = baseline.chain
    expected = sorted(chain.next_distribution([chain.bos, *context[1:]]).values(), reverse=True)[:10]
    np.testing.assert_allclose(_attribute(page, "gf-markov-candidate", "data-p"), expected, atol=1e-12)
    held_out = [text[:500] for text in shakespeare_slice.validation.values()]
    markov = score_markov(chain, held_out, generator.tokenizer)["bits_per_char"]
    transformer = score_transformer(generator.model, generator.tokenizer, held_out)["bits_per_char"]
    assert f"<td style=\"border:1px solid #ddd;padding:2px 6px\">{markov:.3f}</td>" in page
    assert f"<td style=\"border:1px solid #ddd;padding:2px 6px\">{transformer:.3f}</td>" in page
    assert "a fixed slice" in page and "1,000 characters" in page


def test_untrained_tabs_say_what_to_expect_and_draw_theloss_curve(tmp_path):
    """Every figure of the expected quality is in benchmarks/RESULTS.md; the curve has one point per logged step."""
    from glassformer.studio.controls import loss_curve
    from glassformer.studio.models import QUICK_QUALITY, task_slot

    results = RESULTS.read_text(encoding="utf-8")
    for task, line in QUICK_QUALITY.items():
        for figure in re.findall(r"\d+(?:[.,:]\d+)+%?", line):
            assert figure in results, f"{task}: {figure} is not in RESULTS.md"
    slot = task_slot("vit", "vision", tmp_path / "vit")
    assert "85.4% test accuracy" in slot.status()
    release = threading.Event()

    def trainer(out: Path) -> None:
        (out / "run").mkdir(parents=True)
        lines = [json.dumps({"kind": "train", "step": 10 * i, "loss": 2.0 / i}) for i in range(1, 6)]
        lines.insert(2, json.dumps({"kind": "eval", "step": 20, "metrics": {"loss": 1.5}}))
        (out / "run" / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"kind\": \"tr")  # a line half-written
        release.wait(10)

    slot.trainer = trainer
    assert loss_curve(slot) == ""
    slot.start_training()
    try:
        for _ in range(100):
            if slot.losses()[0]:
                break
            threading.Event().wait(0.05)
        assert slot.losses() == ([10, 20, 30, 40, 50], [2.0, 1.0, 2.0 / 3, 0.5, 0.4])
        curve = loss_curve(slot)
        assert 'data-points="5"' in curve and "0.400" in curve and "<polyline" in curve
    finally:
        release.set()
        slot.job._thread.join(10)


# --- in a real browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def studio(models):
    yield from serve(build_app(models))


@pytest.fixture(scope="module")
def page(studio):
    yield from browser_page(studio)


def _open_walkthrough(page, family: str) -> None:
    page.get_by_role("tab", name="Walkthrough", exact=True).click()
    page.get_by_role("tab", name=family).click()


@pytest.mark.slow
def test_browser_lm_walkthrough_draws_the_causal_mask(page, models):
    _open_walkthrough(page, "Decoder (language model)")
    page.locator("#walk-lm-prompt textarea").fill("ROMEO: I do")
    page.click("#walk-lm-submit")
    page.wait_for_selector("#walk-lm-out .gf-prediction", timeout=30_000)
    out = page.locator("#walk-lm-out")
    t = len(generate.prompt_ids(models.generate.get(), "ROMEO: I do"))
    scores = out.locator("table.gf-scores")
    assert scores.locator("td.gf-masked").count() == t * (t - 1) // 2
    assert set(scores.locator("td.gf-masked").all_inner_texts()) == {"−∞"}
    assert "causal mask" in out.inner_text() and out.locator("tr.gf-candidate").count() >= 10
    shot(page, "walkthrough-lm")


@pytest.mark.slow
def test_browser_translation_walkthrough_goes_one_token_at_a_time(page, models):
    _open_walkthrough(page, "Encoder–decoder (translation)")
    page.locator("#walk-tr-text textarea").fill("der kleine hund frisst.")
    page.click("#walk-tr-submit")
    page.wait_for_selector("#walk-tr-out .gf-prediction", timeout=30_000)
    out = page.locator("#walk-tr-out")
    steps = out.locator("tr.gf-decode-step")
    assert steps.count() >= 2
    # step t sees t + 1 target tokens; the causal mask hides the rest of the row
    for t in range(min(steps.count(), 4)):
        assert steps.nth(t).locator("td").nth(1).locator("span.gf-masked").count() == steps.count() - 1 - t
    assert out.locator("table.gf-cross").count() == 1
    shot(page, "walkthrough-translate")


@pytest.mark.slow
def test_browser_vision_walkthrough_shows_patches(page, models):
    _open_walkthrough(page, "Vision Transformer")
    page.locator("#walk-vis-index input").fill("7")
    page.click("#walk-vis-submit")
    page.wait_for_selector("#walk-vis-out .gf-prediction", timeout=30_000)
    out = page.locator("#walk-vis-out")
    grid = models.vision.get().model.config.image_size // models.vision.get().model.config.patch_size
    assert out.locator(".gf-patches").first.locator(".gf-patch").count() == grid * grid
    assert "truly" in out.inner_text()
    shot(page, "walkthrough-vision")


@pytest.mark.slow
def test_browser_generate_candidates_follow_the_sliders(page, models):
    """Moving temperature and top-k redraws the bars; the drawn values equal transformers' processors."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper

    page.get_by_role("tab", name="Generate", exact=True).click()
    page.locator("#gen-prompt textarea").fill("ROMEO:")
    page.click("#gen-submit")
    page.wait_for_selector("#gen-candidates tr.gf-candidate", timeout=30_000)
    rows = page.locator("#gen-candidates tr.gf-candidate")
    before = rows.first.get_attribute("data-sample-p")
    slider = page.locator("#gen-temperature input[type=range]")
    slider.focus()
    for _ in range(10):  # 0.8 → 0.3, one arrow key at a time, as a user moves it
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.querySelector('#gen-candidates caption').innerText.includes('temperature 0.3')",
                           timeout=15_000)
    assert rows.first.get_attribute("data-sample-p") != before
    top_k = page.locator("#gen-top-k input[type=range]")
    top_k.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('#gen-candidates caption').innerText.includes('top-k 3')",
                           timeout=15_000)

    generator = models.generate.get()
    context = generate.prompt_ids(generator, "ROMEO:")
    with torch.no_grad():
        logits = generator.model(torch.tensor([context])).logits[0, -1]
    warpers = LogitsProcessorList([TemperatureLogitsWarper(0.3), TopKLogitsWarper(3)])
    reference = warpers(torch.zeros(1, 1, dtype=torch.long), logits[None].clone()).softmax(-1)[0]
    for i in range(rows.count()):
        token = int(rows.nth(i).get_attribute("data-token-id"))
        assert float(rows.nth(i).get_attribute("data-sample-p")) == pytest.approx(float(reference[token]), abs=1e-6)
    assert rows.locator(".gf-cut").count() == rows.count() - 3
    page.wait_for_selector("#gen-markov table.gf-markov", timeout=60_000)
    assert "bits per character" in page.locator("#gen-markov").inner_text()
    shot(page, "generate")
