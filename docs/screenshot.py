"""Retake the README's studio screenshot: the quick sentiment model that `make demo` trains, in headless Chromium.

    .venv/bin/python docs/screenshot.py [--model DIR] [--out docs/images/studio-sentiment.png]

Starts the studio on a free port of 127.0.0.1 with the cache's quick models, types a sentence into
the Sentiment tab, waits for the label and the head view, and saves a PNG (written to a temporary
name, then renamed). Uses Debian's `chromium` through Playwright, never a downloaded browser.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from glassformer._localhost import CHROMIUM_ARGS, free_port
from glassformer.data import cache_dir
from glassformer.studio import build_app, default_models, launch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=cache_dir() / "models" / "sentiment-quick")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images" / "studio-sentiment.png")
    parser.add_argument("--text", default="A gorgeous, witty, seductive movie.")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    if not (args.model / "config.json").is_file():
        print(f"no saved model in {args.model}; run `make demo` once to train it", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    app = build_app(default_models(args.model))
    port = free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".png", dir=args.out.parent)
    os.close(handle)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#sentiment-submit", timeout=60_000)
            page.locator("#sentiment-text textarea").fill(args.text)
            page.click("#sentiment-submit")
            page.wait_for_selector("#sentiment-headview iframe", timeout=60_000)
            page.frame_locator("#sentiment-headview iframe").locator("body[data-ready='1']").wait_for(timeout=30_000)
            page.screenshot(path=tmp, full_page=True)
            browser.close()
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        app.close()
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
