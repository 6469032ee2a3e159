"""First launch: how long from `glassformer studio` on a cache without models until every tab shows a live model.

    .venv/bin/python benchmarks/first_launch.py [--preset quick|tiny] [--reuse-sentiment] [--timeout 1800]

It makes a fresh GLASSFORMER_HOME in a temporary directory holding the data sets of the current cache
(``$GLASSFORMER_HOME`` or ``~/.cache/glassformer``: each data directory linked, read only, the
``models`` directory left out), starts ``glassformer studio`` on it as a user does, and watches the
page in Debian's headless Chromium: every few seconds it reads the Translate, Vision and Generate
tabs' status lines until each says its model is ready. Then it checks that no tab says "not trained
yet" and saves a screenshot of every tab to test-artifacts/studio/first-launch-bench-TAB.png.

The table gives, per family, the minutes since the command started when its tab went live and the
minutes its own turn took (the runs are one at a time: vision, translation, language model), and the
total. Issue 25's target: every tab live within 15 minutes on 2 idle cores, sentiment included.

``--reuse-sentiment`` copies the cache's quick sentiment model in (the studio then skips its
fine-tuning); ``--preset tiny`` trains the tiny background presets, to check this script and the
machinery in a few minutes. The figures to report come from the default run: quick, nothing reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "studio"
TABS = ("Sentiment", "Walkthrough", "Tokenizer", "Translate", "Vision", "Generate")
FAMILIES = {"Vision": "vision", "Translate": "translation", "Generate": "language model"}  # in training order


def fresh_home(source: Path, reuse_sentiment: bool) -> Path:
    """A temporary GLASSFORMER_HOME with `source`'s data sets linked in and no models (but the sentiment one if asked)."""
    home = Path(tempfile.mkdtemp(prefix="glassformer-first-launch-"))
    for entry in source.iterdir():
        if entry.name != "models":
            (home / entry.name).symlink_to(entry.resolve())
    (home / "models").mkdir()
    if reuse_sentiment:
        shutil.copytree(source / "models" / "sentiment-quick", home / "models" / "sentiment-quick")
    return home


def start_studio(home: Path, port: int, preset: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "GLASSFORMER_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "glassformer.cli", "studio", "--port", str(port), "--background-preset", preset]
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for_page(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"the studio exited with status {server.returncode}") from None
            time.sleep(1.0)
    raise RuntimeError(f"the studio did not answer at {url} within {timeout:.0f} s")


def status_line(page, tab: str) -> str:
    page.get_by_role("tab", name=tab, exact=True).click()
    status = page.locator(".gf-status:visible").first
    return status.inner_text() if status.count() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("quick", "tiny"), default="quick", help="the background runs' preset")
    parser.add_argument("--reuse-sentiment", action="store_true", help="copy the cache's quick sentiment model in")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for every tab (default 1800)")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the tabs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary GLASSFORMER_HOME (printed)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "src"))
    from glassformer._localhost import CHROMIUM_ARGS, free_port
    from glassformer.data import cache_dir

    chromium = shutil.which("chromium")
    if chromium is None:
        parser.error("Debian's chromium is not installed (apt-get install chromium)")
    home = fresh_home(cache_dir(), args.reuse_sentiment)
    log = home / "studio.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.monotonic()
    server = start_studio(home, port, args.preset, log)
    live: dict[str, float] = {}
    try:
        wait_for_page(url, server, args.timeout)
        answered = time.monotonic() - started
        print(f"the studio answered after {answered / 60:.2f} min (log: {log})", flush=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#sentiment-submit", timeout=60_000)
            while len(live) < len(FAMILIES) and time.monotonic() - started < args.timeout:
                for tab in FAMILIES:
                    if tab not in live:
                        line = status_line(page, tab)
                        if "is ready" in line:
                            live[tab] = time.monotonic() - started
                            print(f"{tab}: live after {live[tab] / 60:.2f} min", flush=True)
                        elif "failed" in line:
                            raise RuntimeError(f"{tab}: {line}")
                if server.poll() is not None:
                    raise RuntimeError(f"the studio exited with status {server.returncode}")
                page.wait_for_timeout(args.poll * 1000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            untrained = []
            for tab in TABS:
                page.get_by_role("tab", name=tab, exact=True).click()
                page.wait_for_timeout(500)
                if "not trained yet" in page.locator("body").inner_text():
                    untrained.append(tab)
                page.screenshot(path=str(ARTIFACTS / f"first-launch-bench-{tab.lower()}.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept {home}")

    print(f"\nfirst launch, background preset {args.preset}, sentiment {'reused' if args.reuse_sentiment else 'trained'}"
          f", {os.cpu_count()} CPUs")
    print("| tab | live after (min) | its turn (min) |\n|---|---:|---:|")
    previous = answered
    for tab in FAMILIES:
        if tab in live:
            print(f"| {tab} | {live[tab] / 60:.2f} | {(live[tab] - previous) / 60:.2f} |")
            previous = live[tab]
        else:
            print(f"| {tab} | not live within {args.timeout / 60:.0f} min | |")
    print(f"| studio answering (sentiment ready) | {answered / 60:.2f} | |")
    done = len(live) == len(FAMILIES) and not untrained
    if live:
        print(f"| **every tab live** | **{max(live.values()) / 60:.2f}** | |" if done else "")
    if untrained:
        print(f"tabs still saying 'not trained yet': {', '.join(untrained)}")
    print(f"screenshots: {ARTIFACTS}/first-launch-bench-*.png")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
