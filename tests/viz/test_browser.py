"""The exported attention pages in a real headless Chromium with the network disabled: the lines are drawn.

Uses Debian's `chromium` (never a downloaded browser) driven by Python Playwright; the tests
skip with the reason when either is missing (`make setup` installs both). Screenshots go to
test-artifacts/viz/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from glassformer._localhost import CHROMIUM_ARGS
from glassformer.viz import AttentionMaps, head_view_html, model_view_html, save_html
from tests.viz.helpers import encoder_maps

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "viz"
THRESHOLD = 0.01


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, tmp_path):
    """Open an HTML string from a file:// URL, offline, with every non-file request aborted and recorded."""
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    errors: list[str] = []

    def block(route):
        requests.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith("file://"), block)

    def opener(html: str, name: str):
        path = save_html(tmp_path / f"{name}.html", html)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        return page

    yield opener
    context.close()
    assert requests == [], f"the page tried to reach the network: {requests}"
    assert errors == [], f"script errors: {errors}"


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _visible_lines(page) -> list[dict]:
    return page.eval_on_selector_all(
        "line.gf-line",
        """lines => lines.filter(l => getComputedStyle(l).display !== 'none' && parseFloat(l.getAttribute('stroke-opacity')) > 0)
                   .map(l => ({q: +l.dataset.q, k: +l.dataset.k, head: +l.dataset.head,
                               opacity: parseFloat(l.getAttribute('stroke-opacity'))}))""",
    )


def _assert_drawn(drawn: list[dict], weights: np.ndarray, threshold: float = THRESHOLD) -> None:
    """One line per weight at or above the threshold, each as opaque as its weight."""
    expected = {(int(i), int(j)) for i, j in zip(*np.nonzero(weights >= threshold))}
    assert {(d["q"], d["k"]) for d in drawn} == expected
    assert len(drawn) == len(expected) > 0
    for line in drawn:
        assert line["opacity"] == pytest.approx(float(weights[line["q"], line["k"]]), abs=1e-5)


def _labels(page, selector: str) -> list[str]:
    # The first child is the label; the <title> child holds the tooltip.
    return page.eval_on_selector_all(selector, "ts => ts.map(t => t.firstChild.nodeValue)")


def test_head_view_draws_one_line_per_weight_above_threshold(open_page):
    maps = encoder_maps(n_tokens=9)
    page = open_page(head_view_html(maps, layer=1, head=0, threshold=THRESHOLD, decimals=6), "head-view")
    _shot(page, "head_view_layer1_head0")
    drawn = _visible_lines(page)
    _assert_drawn(drawn, maps.weights[1, 0])
    assert {d["head"] for d in drawn} == {0}
    assert _labels(page, "text.gf-left") == _labels(page, "text.gf-right") == maps.query_tokens


def test_hover_focuses_a_token_and_switching_layer_or_head_redraws(open_page):
    maps = encoder_maps(n_tokens=9)
    page = open_page(head_view_html(maps, layer=1, head=0, threshold=THRESHOLD, decimals=6), "hover")
    before = {(d["q"], d["k"]) for d in _visible_lines(page)}

    page.hover("text.gf-left[data-i='3']")
    _shot(page, "head_view_hover_token3")
    focused = _visible_lines(page)
    assert focused and all(d["q"] == 3 for d in focused)
    assert len(focused) == int((maps.weights[1, 0, 3] >= THRESHOLD).sum()) < len(before)
    shades = page.eval_on_selector_all("rect.gf-shade", "r => r.map(x => parseFloat(x.getAttribute('fill-opacity')))")
    np.testing.assert_allclose(shades, maps.weights[1, 0, 3], atol=1e-5)

    page.hover("h1")
    assert {(d["q"], d["k"]) for d in _visible_lines(page)} == before

    page.select_option("#gf-layer", "0")
    _assert_drawn(_visible_lines(page), maps.weights[0, 0])
    page.select_option("#gf-head", "1")
    _assert_drawn(_visible_lines(page), maps.weights[0, 1])

    page.select_option("#gf-head", "-1")  # every head, each in its own colour
    heads = {d["head"] for d in _visible_lines(page)}
    assert heads == {0, 1}
    assert len(_visible_lines(page)) == int((maps.weights[0] >= THRESHOLD).sum())
    page.select_option("#gf-head", "-2")  # the mean over heads
    assert len(_visible_lines(page)) == int((maps.weights[0].mean(axis=0) >= THRESHOLD).sum())


def test_threshold_control_changes_the_drawing(open_page):
    maps = encoder_maps(n_tokens=9)
    page = open_page(head_view_html(maps, layer=0, head=1, threshold=0.0, decimals=6), "threshold")
    assert len(_visible_lines(page)) == int((maps.weights[0, 1] > 0).sum())
    page.fill("#gf-threshold", "0.2")
    page.dispatch_event("#gf-threshold", "change")
    assert len(_visible_lines(page)) == int((maps.weights[0, 1] >= 0.2).sum())


def test_long_input_shows_a_window_and_pages_through_it(open_page):
    n = 150
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.full(n, 0.05), size=(1, 1, n)).astype(np.float32)
    tokens = [f"w{i}" for i in range(n)]
    maps = AttentionMaps("long", weights, tokens, tokens)
    page = open_page(head_view_html(maps, head=0, window=64, threshold=0.05), "long")
    assert page.locator("text.gf-left").count() == 64
    lines = _visible_lines(page)
    assert max(d["q"] for d in lines) < 64 and max(d["k"] for d in lines) < 64
    assert len(lines) == int((weights[0, 0, :64, :64] >= 0.05).sum())
    page.click("#gf-next")
    _shot(page, "head_view_long_window2")
    assert page.locator("text.gf-left").first.get_attribute("data-i") == "64"
    page.click("#gf-next")  # the last window slides back so it stays full: tokens 86..149
    assert page.locator("text.gf-left").first.get_attribute("data-i") == str(n - 64)
    assert "86\u2013149 of 150" in page.inner_text("#gf-note")


def test_cross_attention_has_different_token_lists(open_page):
    rng = np.random.default_rng(1)
    cross = AttentionMaps("cross", rng.dirichlet(np.ones(5), size=(2, 2, 3)).astype(np.float32),
                          ["<s>", "the", "house"], ["das", "haus", "ist", "rot", "</s>"])
    own = AttentionMaps("self", rng.dirichlet(np.ones(3), size=(2, 2, 3)).astype(np.float32),
                        ["<s>", "the", "house"], ["<s>", "the", "house"])
    page = open_page(head_view_html([own, cross], head=0, threshold=0.0), "cross")
    page.select_option("#gf-view", "1")
    _shot(page, "head_view_cross_attention")
    assert page.locator("text.gf-left").count() == 3
    assert _labels(page, "text.gf-right") == ["das", "haus", "ist", "rot", "</s>"]
    assert len(_visible_lines(page)) == 15


def test_model_view_draws_every_layer_and_head_and_opens_one(open_page):
    maps = encoder_maps(n_tokens=9)
    page = open_page(model_view_html(maps, threshold=THRESHOLD, decimals=6), "model-view")
    _shot(page, "model_view")
    thumbs = page.locator("#gf-grid canvas")
    assert thumbs.count() == maps.n_layers * maps.n_heads
    counts = page.eval_on_selector_all(
        "#gf-grid canvas", "c => c.map(x => [+x.dataset.layer, +x.dataset.head, +x.dataset.lines])")
    for layer, head, count in counts:
        assert count == int((maps.weights[layer, head] >= THRESHOLD).sum()) > 0
    page.click("#gf-grid canvas[data-layer='1'][data-head='1']")
    assert page.input_value("#gf-layer") == "1" and page.input_value("#gf-head") == "1"
    _assert_drawn(_visible_lines(page), maps.weights[1, 1])
    assert "gf-selected" in (page.get_attribute("#gf-grid canvas[data-layer='1'][data-head='1']", "class") or "")


def test_scale_to_strongest_makes_the_top_line_opaque_and_keeps_ratios(open_page):
    maps = encoder_maps(n_tokens=9)
    page = open_page(head_view_html(maps, layer=0, head=1, threshold=THRESHOLD, decimals=6), "scale")
    plain = {(d["q"], d["k"]): d["opacity"] for d in _visible_lines(page)}
    page.check("#gf-scale-lines")
    scaled = {(d["q"], d["k"]): d["opacity"] for d in _visible_lines(page)}
    peak = float(maps.weights[0, 1].max())
    assert scaled.keys() == plain.keys()
    assert max(scaled.values()) == pytest.approx(1.0, abs=1e-5)
    for key, value in plain.items():
        assert scaled[key] == pytest.approx(min(1.0, value / peak), abs=1e-4)
