"""Load on the studio: N concurrent sentiment requests through gradio_client; every one must succeed.

Anchor: one request alone, measured in the same run, before the burst. Prints one table with the
latency percentiles of the burst and their ratio to the anchor.

    .venv/bin/python benchmarks/studio_load.py --url http://127.0.0.1:7860/      # a running studio
    .venv/bin/python benchmarks/studio_load.py --model DIR                       # starts one on a free port

With --model the server runs in this process, so client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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


def start_studio(model_dir: str) -> tuple[str, object]:
    from glassformer._localhost import free_port
    from glassformer.studio import build_app, default_models, launch

    port = free_port()
    app = build_app(default_models(model_dir))
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    return f"http://127.0.0.1:{port}/", app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running studio")
    where.add_argument("--model", help="a saved sentiment model: start a studio on it in this process")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)

    from gradio_client import Client

    app = None
    url = args.url
    if url is None:
        url, app = start_studio(args.model)
    client = Client(url, verbose=False)

    def one(index: int) -> tuple[float, str]:
        started = time.perf_counter()
        label, summary, _, view = client.predict(SENTENCES[index % len(SENTENCES)], 0, 0, api_name="/classify")
        if not label or "<iframe" not in view:
            raise RuntimeError(f"request {index} failed: {summary}")
        return time.perf_counter() - started, label["label"]

    one(0)  # warm-up: first-call costs (threads, caches) are not what the burst should measure
    anchor = statistics.median(one(i)[0] for i in range(3))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.requests) as pool:
        results = list(pool.map(one, range(args.requests)))
    wall = time.perf_counter() - started
    latencies = [seconds for seconds, _ in results]
    load = os.getloadavg()
    print(f"studio load test: {args.requests} concurrent /classify requests to {url} — "
          f"{len(results)}/{args.requests} succeeded in {wall:.2f} s wall "
          f"({args.requests / wall:.1f} requests/s); load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<28}{'seconds':>10}{'× alone':>10}")
    print(f"{'one request alone (anchor)':<28}{anchor:>10.3f}{1.0:>10.1f}")
    for name, value in (("p50", percentile(latencies, 50)), ("p90", percentile(latencies, 90)),
                        ("p99", percentile(latencies, 99)), ("max", max(latencies))):
        print(f"{'burst ' + name:<28}{value:>10.3f}{value / anchor:>10.1f}")
    if app is not None:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
