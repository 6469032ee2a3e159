"""Load on the studio: bursts of N concurrent sentiment requests through gradio_client; every one must succeed.

Two endpoints: ``/predict`` (what a program asks: label and probabilities) and ``/classify`` (what
the Sentiment tab asks: label, token shading and the head view's HTML, about 50 kB per answer).

Anchor: one request alone (median of five), measured in the same run, before the bursts. Prints one
table with the latency percentiles of each burst (1, 20 and 50 concurrent requests by default) and
their ratio to the anchor. The studio answers a burst with batched forward passes (Gradio's event
batching), so the target is p99 <= 3x the anchor for 50 concurrent requests.

    .venv/bin/python benchmarks/studio_load.py --url http://127.0.0.1:7860/      # a running studio
    .venv/bin/python benchmarks/studio_load.py --model DIR                       # starts one on a free port

With --model the studio runs in a process of its own on a free port; client and server share the
machine's cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SENTENCES = [
    "A gorgeous, witty, seductive movie.",
    "The plot is a mess and the jokes fall flat.",
    "Despite the heavy rain of clichés, the lead performance is quietly moving.",
    "It's not a bad film, just a forgettable one.",
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def start_studio(model_dir: str) -> tuple[str, subprocess.Popen]:
    """`glassformer studio` on `model_dir` in its own process (as a user runs it), once it answers."""
    from glassformer._localhost import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "glassformer.cli", "studio", "--sentiment-model", model_dir,
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return url, server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"the studio exited with status {server.returncode}")
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the studio did not answer at {url} within 180 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running studio")
    where.add_argument("--model", help="a saved sentiment model: start a studio on it in this process")
    parser.add_argument("--requests", type=int, nargs="+", default=[1, 20, 50], help="burst sizes")
    args = parser.parse_args(argv)

    from gradio_client import Client

    server = None
    url = args.url
    if url is None:
        url, server = start_studio(args.model)
    client = Client(url, verbose=False)

    def predict(index: int) -> float:
        started = time.perf_counter()
        answer = client.predict(SENTENCES[index % len(SENTENCES)], api_name="/predict")
        if "label" not in answer:
            raise RuntimeError(f"request {index} failed: {answer}")
        return time.perf_counter() - started

    def classify(index: int) -> float:
        started = time.perf_counter()
        label, summary, _, view = client.predict(SENTENCES[index % len(SENTENCES)], 0, 0, api_name="/classify")
        if not label or "<iframe" not in view:
            raise RuntimeError(f"request {index} failed: {summary}")
        return time.perf_counter() - started

    print(f"studio load test against {url}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for endpoint, one in (("/predict (label and probabilities)", predict),
                          ("/classify (the Sentiment tab: label, shading and head view HTML)", classify)):
        one(0)  # warm-up: first-call costs (threads, caches) are not what the bursts should measure
        anchor = statistics.median(one(i) for i in range(5))
        print(f"\n{endpoint}")
        print(f"{'requests':>8} {'ok':>4} {'wall s':>7} {'p50 s':>7} {'p90 s':>7} {'p99 s':>7} {'max s':>7} "
              f"{'p99 / alone':>12}")
        print(f"{'alone':>8} {'':>4} {'':>7} {anchor:>7.3f} {'':>7} {'':>7} {'':>7} {1.0:>12.2f}")
        for n in args.requests:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=n) as pool:
                latencies = list(pool.map(one, range(n)))
            wall = time.perf_counter() - started
            p99 = percentile(latencies, 99)
            print(f"{n:>8} {len(latencies):>4} {wall:>7.2f} {percentile(latencies, 50):>7.3f} "
                  f"{percentile(latencies, 90):>7.3f} {p99:>7.3f} {max(latencies):>7.3f} {p99 / anchor:>12.2f}")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    if server is not None:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
