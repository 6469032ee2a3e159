"""Latency of every studio interaction on the quick models, one request at a time, as a user clicks.

    .venv/bin/python benchmarks/studio_latency.py [--repeats 9] [--url http://127.0.0.1:7860/]

Without --url it starts `glassformer studio` (the cache's quick models) in a process of its own on a
free port, so client and server share the machine's cores as a learner's laptop would. Each
interaction is sent through gradio_client (the same queue and events as the page) once to warm up,
then `--repeats` times; the table gives p50 and p90 of the wall time per request. The target of
issue 15 is p50 <= 1 s for every interaction.

The Generate tab's Markov chain is fitted once per studio process in a background thread; the
script waits for it (and reports how long it took) before timing anything, so that the fit does not
share the cores with the measured requests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable

from studio_load import percentile, start_studio

GERMAN = "Ich habe keine Zeit."
PROMPT = "ROMEO: I love"


def interactions(client: Any) -> dict[str, Callable[[], Any]]:
    """Every request the studio answers, named as its control is labelled in the page."""
    return {
        "Sentiment: Classify": lambda: client.predict("A gorgeous, witty, seductive movie.", 0, 0,
                                                      api_name="/classify"),
        "Walkthrough: encoder (sentiment)": lambda: client.predict("A witty movie.", 0, 0, api_name="/walkthrough"),
        "Walkthrough: decoder (language model)": lambda: client.predict(PROMPT, 0, 0, 0.8, 0, 1.0, 0,
                                                                        api_name="/walkthrough_lm"),
        "Walkthrough: encoder–decoder (translation)": lambda: client.predict(GERMAN, 0, 0,
                                                                             api_name="/walkthrough_translate"),
        "Walkthrough: Vision Transformer": lambda: client.predict(0, 0, 0, api_name="/walkthrough_vision"),
        "Tokenizer: Tokenize": lambda: client.predict("low lower lowest newer newest wider widest", 10,
                                                      api_name="/tokenize"),
        "Translate: greedy": lambda: client.predict(GERMAN, "greedy", api_name="/translate"),
        "Translate: beam": lambda: client.predict(GERMAN, "beam", api_name="/translate"),
        "Vision: Classify image": lambda: client.predict(0, None, api_name="/vision"),
        "Generate: 120 new tokens": lambda: client.predict(PROMPT, 120, 0.8, 0, 1.0, 0, api_name="/generate"),
        "Generate: another step (slider)": lambda: client.predict(7, api_name="/generate_step"),
        "Sentiment: Explain (4 methods, deletion curves)": lambda: client.predict(
            "A gorgeous, witty, seductive movie.", api_name="/explain"),
        "Sentiment: ablate a head": lambda: client.predict("A gorgeous, witty, seductive movie.", ["0.0"],
                                                           api_name="/ablate"),
        "Translate: Explain step 1": lambda: client.predict(GERMAN, 1, api_name="/explain_translate"),
        "Vision: Explain": lambda: client.predict(0, None, api_name="/explain_vision"),
        "Vision: ablate a head": lambda: client.predict(0, None, ["0.0"], api_name="/ablate_vision"),
        "Generate: logit lens (step slider)": lambda: client.predict(7, api_name="/logit_lens"),
    }


def wait_for_markov(client: Any, timeout: float = 1800.0) -> float:
    """Seconds until the Generate tab's Markov panel shows its scores (it starts fitting on the first Generate)."""
    started = time.perf_counter()
    client.predict(PROMPT, 20, 0.8, 0, 1.0, 0, api_name="/generate")
    while time.perf_counter() - started < timeout:
        _, markov = client.predict(2, api_name="/generate_step")
        if "bits per character" in markov:
            return time.perf_counter() - started
        if "could not be fitted" in markov:
            raise RuntimeError(markov)
        time.sleep(2.0)
    raise TimeoutError("the Markov chain was not ready in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running studio (default: start one on the cache's quick models)")
    parser.add_argument("--sentiment-model", default=None, help="with no --url: the sentiment model directory")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    from gradio_client import Client

    from glassformer.data import cache_dir

    server = None
    url = args.url
    if url is None:
        url, server = start_studio(args.sentiment_model or str(cache_dir() / "models" / "sentiment-quick"))
    try:
        client = Client(url, verbose=False)
        markov_seconds = wait_for_markov(client)
        load_before = os.getloadavg()[0]
        rows = []
        for name, call in interactions(client).items():
            call()  # warm-up: first-call costs (threads, caches) are not what a click waits for
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            rows.append((name, statistics.median(times), percentile(times, 90)))
        load_after = os.getloadavg()[0]
        print(f"studio latency against {url}: {args.repeats} requests each, one at a time; load average "
              f"{load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores")
        print(f"Markov chain fitted and both models scored {markov_seconds:.1f} s after the first Generate")
        print(f"{'interaction':<44} {'p50 s':>7} {'p90 s':>7} {'p50 <= 1 s':>11}")
        for name, p50, p90 in rows:
            print(f"{name:<44} {p50:>7.3f} {p90:>7.3f} {'yes' if p50 <= 1.0 else 'NO':>11}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
