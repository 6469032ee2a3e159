"""Retake the README's studio screenshots from the cache's quick models, in headless Chromium.

    .venv/bin/python docs/screenshot.py [--only NAME ...] [--train-lm [--lm-dir DIR]] [--out-dir docs/images]

Starts the studio on a free port of 127.0.0.1 with the cache's quick models (the ones `make demo`
and the tabs' "Train the quick preset here" buttons write), acts as a user in each panel and saves
one PNG per panel (written to a temporary name, then renamed):

- ``studio-sentiment``: a sentence classified, with its head view;
- ``studio-walkthrough-lm``: the language model's scores under the causal mask, and the softmax;
- ``studio-walkthrough-translate``: cross-attention, and the decoder one token at a time;
- ``studio-walkthrough-vision``: the patches [CLS] attends to, and the class;
- ``studio-generate``: a step's candidates after moving temperature and top-k, and the Markov chain;
- ``studio-explain-sentiment``: the Explain panel (attention, rollout, integrated gradients, occlusion, each
  with its deletion curve and AOPC) and the head grid with two heads ablated;
- ``studio-explain-translate``, ``studio-explain-vision``: the Explain panel on one target step, on an image;
- ``studio-logit-lens``: the Generate tab's logit lens for the chosen token at step 5;
- ``studio-training`` (with ``--train-lm``, when no language model is saved yet): the Generate tab's
  button pressed, the loss curve growing; the script then waits for the model and goes on.

Uses Debian's `chromium` through Playwright, never a downloaded browser; no request leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from glassformer._localhost import CHROMIUM_ARGS, free_port
from glassformer.data import cache_dir
from glassformer.studio import build_app, default_models, launch

SHOTS = ("sentiment", "walkthrough-lm", "walkthrough-translate", "walkthrough-vision", "generate", "explain-sentiment",
         "explain-translate", "explain-vision", "logit-lens")
TRAINING_MINUTES = 120  # the quick language model took 42:40 on a heavily loaded machine


def _save(out: Path, take: Callable[[str], Any]) -> None:
    """Call `take(path)` on a temporary file beside `out`, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".png", dir=out.parent)
    os.close(handle)
    try:
        take(tmp)
        os.replace(tmp, out)
        print(f"saved {out}", flush=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _region(page: Any, first: Any, last: Any, out: Path) -> None:
    """Screenshot the page from the top of `first` to the bottom of `last` (full width of the content)."""
    first.scroll_into_view_if_needed()
    top, bottom = first.bounding_box(), last.bounding_box()
    scroll = page.evaluate("window.scrollY")
    clip = {"x": 0, "y": top["y"] + scroll - 8, "width": page.viewport_size["width"],
            "height": bottom["y"] + bottom["height"] - top["y"] + 16}
    _save(out, lambda path: page.screenshot(path=path, full_page=True, clip=clip))


def _walk(page: Any, family: str) -> None:
    page.get_by_role("tab", name="Walkthrough", exact=True).click()
    page.get_by_role("tab", name=family).click()


def sentiment(page: Any, out: Path) -> None:
    page.get_by_role("tab", name="Sentiment", exact=True).click()
    page.locator("#sentiment-text textarea").fill("A gorgeous, witty, seductive movie.")
    page.click("#sentiment-submit")
    page.wait_for_selector("#sentiment-headview iframe", timeout=60_000)
    page.frame_locator("#sentiment-headview iframe").locator("body[data-ready='1']").wait_for(timeout=30_000)
    page.evaluate("window.scrollTo(0, 0)")
    _save(out, lambda path: page.screenshot(path=path, full_page=True))


def walkthrough_lm(page: Any, out: Path) -> None:
    _walk(page, "Decoder (language model)")
    page.locator("#walk-lm-prompt textarea").fill("ROMEO: I love")
    page.click("#walk-lm-submit")
    page.wait_for_selector("#walk-lm-out .gf-prediction", timeout=60_000)
    steps = page.locator("#walk-lm-out section.gf-step")
    _region(page, steps.nth(3), steps.nth(4), out)


def walkthrough_translate(page: Any, out: Path) -> None:
    _walk(page, "Encoder–decoder (translation)")
    page.locator("#walk-tr-text textarea").fill("Ich habe keine Zeit.")
    page.click("#walk-tr-submit")
    page.wait_for_selector("#walk-tr-out .gf-prediction", timeout=60_000)
    steps = page.locator("#walk-tr-out section.gf-step")
    _region(page, steps.nth(6), steps.nth(8), out)


def walkthrough_vision(page: Any, out: Path) -> None:
    _walk(page, "Vision Transformer")
    page.locator("#walk-vis-index input").fill("0")
    page.locator("#walk-vis-layer input[type=range]").focus()
    page.keyboard.press("End")  # the last layer, where [CLS] has gathered what it classifies by
    page.click("#walk-vis-submit")
    page.wait_for_selector("#walk-vis-out .gf-prediction", timeout=60_000)
    steps = page.locator("#walk-vis-out section.gf-step")
    _region(page, steps.nth(1), steps.nth(1), out.with_name(out.stem + "-patches.png"))
    _region(page, steps.nth(5), steps.nth(6), out)


def generate(page: Any, out: Path) -> None:
    page.get_by_role("tab", name="Generate", exact=True).click()
    page.locator("#gen-prompt textarea").fill("ROMEO: I love")
    page.click("#gen-submit")
    page.wait_for_selector("#gen-candidates tr.gf-candidate", timeout=60_000)
    for selector, key, presses, expected in (("#gen-step", "ArrowRight", 4, "Step 5 of"),
                                             ("#gen-temperature", "ArrowRight", 4, "temperature 1"),
                                             ("#gen-top-k", "ArrowRight", 5, "top-k 5")):
        page.locator(f"{selector} input[type=range]").focus()
        for _ in range(presses):  # as a user moves a slider with the keyboard
            page.keyboard.press(key)
        page.wait_for_function(f"document.querySelector('#gen-candidates').innerText.includes({expected!r})",
                               timeout=30_000)
    page.wait_for_selector("#gen-markov table.gf-markov", timeout=15 * 60_000)  # the chain is fitted once
    _region(page, page.locator("#gen-out"), page.locator("#gen-markov"), out)


def _open_explain(page: Any, tab: str, section: str) -> None:
    page.get_by_role("tab", name=tab, exact=True).click()
    page.locator(f"#{section} button").first.click()  # the accordion's header


def explain_sentiment(page: Any, out: Path) -> None:
    _open_explain(page, "Sentiment", "sentiment-explain-section")
    page.locator("#sentiment-text textarea").fill("A gorgeous, witty, seductive movie.")
    page.click("#sentiment-explain-submit")
    page.wait_for_selector("#sentiment-explain .gf-method", timeout=60_000)
    for head in ("5.0", "5.3"):
        page.locator("#sentiment-heads label").filter(has_text=re.compile(rf"^\s*{re.escape(head)}\s*$")).click()
    page.wait_for_selector("#sentiment-ablation .gf-ablation[data-heads='5.0,5.3']", timeout=60_000)
    _region(page, page.locator("#sentiment-explain-section"), page.locator("#sentiment-ablation"), out)


def explain_translate(page: Any, out: Path) -> None:
    _open_explain(page, "Translate", "tr-explain-section")
    page.locator("#tr-text textarea").fill("Ich habe keine Zeit.")
    page.locator("#tr-explain-step input").fill("1")
    page.click("#tr-explain-submit")
    page.wait_for_selector("#tr-explain .gf-method, #tr-explain .gf-message", timeout=60_000)
    _region(page, page.locator("#tr-explain-section"), page.locator("#tr-explain"), out)


def explain_vision(page: Any, out: Path) -> None:
    _open_explain(page, "Vision", "vis-explain-section")
    page.locator("#vis-index input").fill("0")
    page.click("#vis-explain-submit")
    page.wait_for_selector("#vis-explain .gf-method, #vis-explain .gf-message", timeout=60_000)
    _region(page, page.locator("#vis-explain-section"), page.locator("#vis-explain"), out)


def logit_lens(page: Any, out: Path) -> None:
    page.get_by_role("tab", name="Generate", exact=True).click()
    page.locator("#gen-prompt textarea").fill("ROMEO: I love")
    page.click("#gen-submit")
    page.wait_for_selector("#gen-lens table.gf-lens", timeout=60_000)
    page.locator("#gen-step input[type=range]").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector("#gen-lens table.gf-lens[data-step='5']", timeout=30_000)
    _region(page, page.locator("#gen-step"), page.locator("#gen-lens"), out)


def training(page: Any, out: Path, models: Any) -> None:
    """Press the Generate tab's training button, screenshot the growing loss curve, wait for the model."""
    page.get_by_role("tab", name="Generate", exact=True).click()
    page.locator(".gf-train:visible").click()
    # The curve is redrawn every 3 s, so look it up afresh each time rather than hold on to one element.
    page.wait_for_function("[...document.querySelectorAll('.gf-training-curve svg')]"
                           ".some(svg => Number(svg.dataset.points) >= 6)", timeout=60 * 60_000, polling=2000)
    _region(page, page.locator(".gf-status:visible").first, page.locator(".gf-training-curve svg:visible").first, out)
    deadline = time.monotonic() + TRAINING_MINUTES * 60
    while models.generate.get() is None:
        job = models.generate.job
        if job is not None and job.error:
            raise RuntimeError(job.error)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the language model was not trained within {TRAINING_MINUTES} minutes")
        time.sleep(15)
    print(models.generate.status(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=cache_dir() / "models" / "sentiment-quick",
                        help="the sentiment model (default: the cache's quick one)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "images")
    parser.add_argument("--only", nargs="*", choices=SHOTS, default=list(SHOTS))
    parser.add_argument("--train-lm", action="store_true",
                        help="no language model yet: train the quick one from the Generate tab (studio-training.png)")
    parser.add_argument("--lm-dir", type=Path, default=None,
                        help="the language model's directory (default: the cache's quick one)")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    if not (args.model / "config.json").is_file():
        print(f"no saved model in {args.model}; run `make demo` once to train it", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    models = default_models(args.model, generate_dir=args.lm_dir)
    if args.train_lm and models.generate.get() is not None:
        print(f"{models.generate.directory} already holds a language model; not training", file=sys.stderr)
        return 2
    app = build_app(models)
    port = free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    outside: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 1000})

            def block(route: Any) -> None:
                outside.append(route.request.url)
                route.abort()

            local = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")
            context.route(lambda url: not url.startswith(local), block)
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#sentiment-submit", timeout=60_000)
            if args.train_lm:
                training(page, args.out_dir / "studio-training.png", models)
                page.reload()  # the tabs' sliders are drawn for the model that now exists
                page.wait_for_selector("#sentiment-submit", timeout=60_000)
            takers = {"sentiment": sentiment, "walkthrough-lm": walkthrough_lm,
                      "walkthrough-translate": walkthrough_translate, "walkthrough-vision": walkthrough_vision,
                      "generate": generate, "explain-sentiment": explain_sentiment,
                      "explain-translate": explain_translate, "explain-vision": explain_vision,
                      "logit-lens": logit_lens}
            for name in args.only:
                takers[name](page, args.out_dir / f"studio-{name}.png")
            browser.close()
    finally:
        app.close()
    if outside:
        print(f"the studio tried to reach other hosts: {outside}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
