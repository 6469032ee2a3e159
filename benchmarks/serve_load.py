"""Load on `glassformer serve`: bursts of N concurrent /predict requests, latency percentiles and throughput.

Anchor: one request alone (the median of several, sent one at a time), measured in the same run before
the bursts; its inverse is the one-at-a-time throughput. Each burst level (1, 20, 50 and 200 concurrent
requests by default) is sent ``--rounds`` times; the table gives p50 and p99 over all its requests, p99 as
a ratio to one request alone, and requests per second as a ratio to one at a time. The target is judged on
all of them; the last column, p99 over every burst but the level's first, shows what the first costs (a
batch shape the server has not seen yet makes oneDNN build its kernels, about 25 ms at bfloat16). Past the
queue bound the server answers 503 (counted, never retried). Targets (issue 26): at 50 concurrent, p99 <= 3x
alone and throughput >= 5x one at a time.

    .venv/bin/python benchmarks/serve_load.py                      # the quick sentiment model in the cache
    .venv/bin/python benchmarks/serve_load.py --model DIR --levels 1 5 --rounds 1   # any text classifier
    .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:8000           # a server already running

Without --url the server is a `glassformer serve` subprocess on a free port of 127.0.0.1, stopped with
SIGTERM at the end; client and server share the machine's cores. Nothing leaves the loopback interface.

The client is one asyncio event loop that opens a fresh connection per request (as the anchor does), so
a burst of 50 is on the wire within about 3 ms and takes little of the 2 cores the server needs. The
first version used a thread per request: starting 50 Python threads spread a burst over 20-50 ms and
competed with the server for the cores (`--client threads` keeps it, for comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

# Sibling scripts (benchmarks/tokenizers.py) must not shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # last, for _figures only: packages come first

SENTENCES = [
    "A gorgeous, witty, seductive movie.",
    "The plot is a mess and the jokes fall flat.",
    "Despite the heavy rain of clichés, the lead performance is quietly moving.",
    "It's not a bad film, just a forgettable one.",
]
MAX_CONCURRENCY = 1000  # client threads at most, whatever --levels asks


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cpu_flags() -> str:
    """The CPU flags that decide the kernels, from /proc/cpuinfo (avx2, avx512f, avx512_bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return " ".join(flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in flags) or "none of them"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def request(host: str, port: int, path: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        connection.request(method, path, body=body if method == "POST" else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def post(host: str, port: int, path: str, body: bytes, timeout: float = 120) -> tuple[int, bytes]:
    """One POST on a fresh connection, sent and read with asyncio streams: (status, body)."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
            return await reader.read()  # Connection: close, so the server ends the answer by closing
        finally:
            writer.close()

    answer = await asyncio.wait_for(exchange(), timeout)
    head, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in headers if line.lower().startswith("content-length:")), None)
    if length is None or length != len(payload):
        raise RuntimeError(f"{path}: expected a Content-Length answer, got {answer[:200]!r}")
    return int(status_line.split(" ", 2)[1]), payload


def start_server(model: str, extra: list[str]) -> tuple[str, subprocess.Popen]:
    """`glassformer serve MODEL` in its own process on a free port (as a user runs it), once /health answers."""
    from glassformer._localhost import free_port

    port = free_port()
    log = tempfile.TemporaryFile()  # a file, not a pipe: a pipe nobody reads would block a chatty server
    server = subprocess.Popen([sys.executable, "-m", "glassformer.cli", "serve", model, "--port", str(port), *extra],
                              stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if request("127.0.0.1", port, "/health", b"", "GET")[0] == 200:
                return f"http://127.0.0.1:{port}", server
        except OSError:
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the server exited with status {server.returncode}: "
                                   f"{log.read().decode(errors='replace').strip()}")
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError(f"the server did not answer on port {port} within 300 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running `glassformer serve` of a text classifier")
    where.add_argument("--model", help="a text classifier to serve (default: the quick sentiment model in the cache)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 20, 50, 200], help="concurrent requests per burst")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per level")
    parser.add_argument("--alone", type=int, default=10, help="requests sent one at a time for the anchor")
    parser.add_argument("--precision", default="auto", help="passed to `glassformer serve` (default auto)")
    parser.add_argument("--client", choices=("asyncio", "threads"), default="asyncio",
                        help="one event loop (default), or a thread per request (the first version's client)")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for `glassformer serve` (repeatable), e.g. --serve-arg=--max-batch=64")
    args = parser.parse_args(argv)

    server = None
    url = args.url
    if url is None:
        model = args.model
        if model is None:
            from glassformer.tasks import sentiment

            model = str(sentiment.default_out_dir(sentiment.get_preset("quick")))
            if not Path(model).is_dir():
                raise SystemExit(f"no quick sentiment model at {model}; train it (`glassformer train sentiment`) "
                                 f"or pass --model DIR")
        url, server = start_server(model, ["--precision", args.precision, *args.serve_arg])
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--url must be on this machine's loopback interface, got {host}")

    def body_of(index: int) -> bytes:
        return json.dumps({"text": SENTENCES[index % len(SENTENCES)]}).encode()

    def checked(index: int, status: int, answer: bytes, started: float) -> tuple[int, float]:
        seconds = time.perf_counter() - started
        if status == 200 and "label" not in json.loads(answer)[0]:
            raise RuntimeError(f"request {index}: unexpected answer {answer[:200]!r}")
        return status, seconds

    async def one_async(index: int) -> tuple[int, float]:
        body = body_of(index)
        started = time.perf_counter()
        return checked(index, *await post(host, port, "/predict", body), started)

    def one(index: int) -> tuple[int, float]:
        if args.client == "asyncio":
            return asyncio.run(one_async(index))
        body = body_of(index)
        started = time.perf_counter()
        return checked(index, *request(host, port, "/predict", body), started)

    async def burst_async(n: int) -> list[tuple[int, float]]:
        return list(await asyncio.gather(*(one_async(i) for i in range(n))))

    def burst(n: int) -> list[tuple[int, float]]:
        if args.client == "asyncio":
            return asyncio.run(burst_async(n))
        with ThreadPoolExecutor(max_workers=min(n, MAX_CONCURRENCY)) as pool:
            return list(pool.map(one, range(n)))

    try:
        health = json.loads(request(host, port, "/health", b"", "GET")[1])
        print(f"# glassformer serve load test against {url}: {health.get('model')} ({health.get('family')}), "
              f"precision {health.get('precision')}")
        print(f"# {os.cpu_count()} CPUs; CPU flags: {cpu_flags()}; load average before: {load_average()}; "
              f"client: {args.client}")
        one(0)  # warm-up: first-call costs (threads, caches) are not what the bursts measure
        alone = statistics.median(one(i)[1] for i in range(args.alone))
        print(f"# one request alone: median {alone * 1e3:.1f} ms of {args.alone}, so {1 / alone:.1f} requests/s one "
              f"at a time")
        print()
        print(f"| {'concurrent':>10} | {'ok':>5} | {'503':>5} | {'other':>5} | {'p50 ms':>8} | {'p99 ms':>8} | "
              f"{'p99 / alone':>11} | {'req/s':>7} | {'vs one at a time':>16} | {'p99 after 1st':>13} |")
        print(f"|{'-' * 12}|{'-' * 7}|{'-' * 7}|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 13}|{'-' * 9}|{'-' * 18}"
              f"|{'-' * 15}|")
        verdicts = {}
        for n in args.levels:
            latencies, refused, other, walls, warm = [], 0, 0, [], []
            for round_ in range(args.rounds):
                started = time.perf_counter()
                outcomes = burst(n)
                walls.append(time.perf_counter() - started)
                latencies += [seconds for status, seconds in outcomes if status == 200]
                if round_:  # every burst but the level's first, whose new batch shape builds oneDNN's kernels
                    warm += [seconds for status, seconds in outcomes if status == 200]
                refused += sum(status == 503 for status, _ in outcomes)
                other += sum(status not in (200, 503) for status, _ in outcomes)
            if not latencies:
                print(f"| {n:>10} | {0:>5} | {refused:>5} | {other:>5} | (no request answered)")
                continue
            p99 = percentile(latencies, 99)
            rate = len(latencies) / sum(walls)
            print(f"| {n:>10} | {len(latencies):>5} | {refused:>5} | {other:>5} | {percentile(latencies, 50) * 1e3:>8.1f} "
                  f"| {p99 * 1e3:>8.1f} | {p99 / alone:>10.2f}x | {rate:>7.1f} | {rate * alone:>15.2f}x | "
                  + (f"{percentile(warm, 99) / alone:>12.2f}x |" if warm else f"{'':>13} |"))
            verdicts[n] = (p99 / alone, rate * alone)
        print()
        if 50 in verdicts:
            ratio, speedup = verdicts[50]
            from _figures import record

            record("`glassformer serve`: p99 of 50 concurrent /predict", ratio * alone * 1e3, "ms",
                   anchor="one request alone (median)", anchor_value=alone * 1e3, spread=f"{args.rounds} bursts",
                   target="p99 <= 3x one alone", met=ratio <= 3)
            record("`glassformer serve`: requests/s at 50 concurrent", speedup / alone, "requests/s",
                   anchor="one at a time", anchor_value=1 / alone, target=">= 5x", met=speedup >= 5)
            print(f"# at 50 concurrent: p99 {ratio:.2f}x one alone (target <= 3x: {'met' if ratio <= 3 else 'missed'}), "
                  f"throughput {speedup:.2f}x one at a time (target >= 5x: {'met' if speedup >= 5 else 'missed'})")
        print(f"# load average after: {load_average()}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)  # graceful: the server finishes what it accepted
            server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
