"""Serving the studio on a free port and driving it in a real browser, for the studio's test modules.

The browser is Debian's headless Chromium through Playwright (never a downloaded browser); every
request that leaves 127.0.0.1 is aborted and recorded, and the page fails its module if there was
one or if the page raised a script error.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from glassformer._localhost import CHROMIUM_ARGS, free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "studio"
CHROMIUM = shutil.which("chromium")


def serve(app, api=None) -> Iterator[str]:
    """Launch `app` (and `api` at /api) on a free port of 127.0.0.1; yields its URL and closes it afterwards."""
    from glassformer.studio import launch

    port = free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True, api=api)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def browser_page(url: str) -> Iterator:
    """A Chromium page on `url` with every request beyond 127.0.0.1 aborted; fails if one was tried or a script broke."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    outside: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})

        def block(route):
            outside.append(route.request.url)
            route.abort()

        local = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")
        context.route(lambda url: not url.startswith(local), block)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(url)
        tab.wait_for_selector("#sentiment-submit", timeout=30_000)
        yield tab
        context.close()
        browser.close()
    assert outside == [], f"the studio tried to reach other hosts: {outside}"
    assert errors == [], f"script errors in the page: {errors}"


def shot(page, name: str) -> None:
    """Save a full-page screenshot as test-artifacts/studio/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
