"""Load on the studio: bursts of N concurrent sentiment requests over HTTP; every one must succeed.

Three routes of the same `glassformer studio` process:

- ``/api/predict``: glassformer serve's JSON route, mounted in the studio for programs, answered by
  its own micro-batcher outside Gradio's queue (the issue's target: 50 concurrent, p99 <= 3x alone);
- ``/predict`` and ``/classify``: Gradio events (what the page's button and gradio_client use), each
  request gathered by the studio's micro-batcher after Gradio's queue has handled it.

The client is one asyncio thread, so that its own work stays small next to the server's on a shared
machine: ``/api/predict`` goes over one kept-alive HTTP/1.1 connection per simulated user (a few lines
of asyncio streams: a fraction of a millisecond of CPU per request), a Gradio request over httpx through
the same queue protocol as the page (join, then the session's event stream), one session per simulated
user; connections and sessions are opened before the timing. ``--gradio-client`` times ``/predict`` through gradio_client's threads instead
(about 30 ms of client CPU per request: on 2 cores that client, not the studio, sets the tail).

Anchor: one request alone (median of ``--alone``), in the same run, before the bursts. For each burst
size, ``--rounds`` bursts; the percentiles pool their latencies. Where the time goes: the server's
and the client's CPU seconds per burst, and for ``/api/predict`` the model's own seconds, the number
of forward passes and the mean batch (from ``/api/health``).

    .venv/bin/python benchmarks/studio_load.py                 # starts a studio on the cache's quick model
    .venv/bin/python benchmarks/studio_load.py --url http://127.0.0.1:7860/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable

from _figures import record

SENTENCES = [
    "A gorgeous, witty, seductive movie.",
    "The plot is a mess and the jokes fall flat.",
    "Despite the heavy rain of clichés, the lead performance is quietly moving.",
    "It's not a bad film, just a forgettable one.",
]
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def machine_line() -> str:
    """The CPU, its relevant flags, the cores this process may use and torch's version."""
    model, flags = platform.processor() or "CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("CPU", platform.processor()):
                model = line.partition(":")[2].strip()
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
    except OSError:
        pass
    import torch

    present = " ".join(flag for flag in FLAGS if flag in flags) or "none of " + " ".join(FLAGS)
    return (f"{model}; CPU flags: {present}; {len(os.sched_getaffinity(0))} cores; torch {torch.__version__}; "
            f"{time.strftime('%Y-%m-%d %H:%M')}")


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f})"


class Studio:
    """A `glassformer studio` process on a free port (as a user runs it), its log and its CPU time."""

    def __init__(self, args: list[str]) -> None:
        from glassformer._localhost import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="studio-", suffix=".log", delete=False)
        # No background training of missing models: only what a measurement starts itself may share the cores.
        self.process = subprocess.Popen([sys.executable, "-m", "glassformer.cli", "studio", "--port", str(self.port),
                                         "--no-background-training", *args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600  # a first launch may train the sentiment model
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the studio exited with status {self.process.returncode}: {self.output()}")
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the studio did not answer at {self.url} in time")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """User and system CPU time of the studio process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def policy_line(self) -> str:
        """What the studio printed about its threads and API when it started."""
        for line in self.output().splitlines():
            if line.startswith("glassformer studio:"):
                return line
        return "(the studio printed no start line)"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        os.unlink(self.log.name)


def start_studio(model_dir: str, *extra: str) -> tuple[str, Studio]:
    """A studio on the sentiment model in `model_dir` (and `extra` flags); its URL and handle."""
    studio = Studio(["--sentiment-model", model_dir, *extra])
    return studio.url, studio


class GradioHTTP:
    """Gradio's queue protocol as the page speaks it: join an event, read the session's stream until it completes."""

    def __init__(self, client: Any, config: dict[str, Any]) -> None:
        self.client = client
        self.config = config
        self.fn_index = {d.get("api_name"): d["id"] for d in config["dependencies"] if d.get("api_name")}

    @classmethod
    async def connect(cls, client: Any) -> "GradioHTTP":
        return cls(client, (await client.get("config")).json())

    async def call(self, fn: str | int, data: list[Any], session: str) -> list[Any]:
        """The outputs of one event `fn` (an api_name or a dependency id) with `data`, in `session`."""
        index = self.fn_index[fn] if isinstance(fn, str) else fn
        joined = await self.client.post("gradio_api/queue/join", json={
            "data": data, "fn_index": index, "session_hash": session, "trigger_id": None, "event_data": None})
        joined.raise_for_status()
        event = joined.json()["event_id"]
        async with self.client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event and message.get("msg") == "process_completed":
                    if not message.get("success"):
                        raise RuntimeError(f"{fn} failed: {message.get('output')}")
                    return message["output"]["data"]
        raise RuntimeError(f"{fn}: the stream ended without an answer")


class Connection:
    """One kept-alive HTTP/1.1 connection that POSTs JSON and reads the answer: a client that costs the
    shared cores a few hundred microseconds per request (httpx costs several milliseconds), so that the
    burst measures the server rather than the client, as 50 users on their own machines would."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", 0))
        return int(head[0].split()[1]), json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def burst(one: Callable[[int], Awaitable[float]], n: int) -> list[float]:
    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def measure(url: str, studio: Studio | None, sizes: list[int], rounds: int, alone_n: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        gradio = await GradioHTTP.connect(client)
        users = max(sizes)

        address = httpx.URL(url)
        connections = [Connection(address.host, address.port or 80) for _ in range(users)]

        async def api(i: int) -> float:
            started = time.perf_counter()
            status, answer = await connections[i].post("/api/predict", {"text": SENTENCES[i % len(SENTENCES)]})
            if status != 200 or "label" not in answer[0]:
                raise RuntimeError(f"request {i} failed: {status} {answer}")
            return time.perf_counter() - started

        async def predict(i: int) -> float:
            started = time.perf_counter()
            answer = (await gradio.call("predict", [SENTENCES[i % len(SENTENCES)]], f"user{i}"))[0]
            if "label" not in answer:
                raise RuntimeError(f"request {i} failed: {answer}")
            return time.perf_counter() - started

        async def classify(i: int) -> float:
            started = time.perf_counter()
            label, summary, _, view = await gradio.call("classify", [SENTENCES[i % len(SENTENCES)], 0, 0], f"user{i}")
            if not label or "<iframe" not in view:
                raise RuntimeError(f"request {i} failed: {summary}")
            return time.perf_counter() - started

        health = (await client.get("api/health")).json()
        print(f"/api/predict serves {health.get('model')} at precision {health.get('precision')}; "
              "the Gradio events use the studio's model (fp32)")
        for name, one in (("/api/predict (JSON, the studio's micro-batcher, outside Gradio's queue)", api),
                          ("/predict (Gradio event, micro-batched)", predict),
                          ("/classify (the Sentiment tab: label, shading and head view HTML)", classify)):
            for i in range(users):  # warm-up, and every simulated user's session exists before the timing
                await one(i)
            anchor = statistics.median([await one(i) for i in range(alone_n)])
            print(f"\n{name}; {load_line()}")
            print(f"{'requests':>8} {'ok':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99/alone':>10} {'wall s':>7} "
                  f"{'server cpu s':>12} {'client cpu s':>12} {'model s':>8} {'batches':>8} {'mean batch':>10}")
            print(f"{'alone':>8} {'':>5} {anchor * 1000:>8.1f} {'':>8} {1.0:>10.2f}")
            for n in sizes:
                latencies: list[float] = []
                server0 = studio.cpu_seconds() if studio else float("nan")
                client0 = sum(os.times()[:2])
                before = (await client.get("api/health")).json()
                wall = 0.0
                for _ in range(rounds):
                    started = time.perf_counter()
                    latencies += await burst(one, n)
                    wall += time.perf_counter() - started
                after = (await client.get("api/health")).json()
                server = (studio.cpu_seconds() - server0) / rounds if studio else float("nan")
                client_cpu = (sum(os.times()[:2]) - client0) / rounds
                p99 = percentile(latencies, 99)
                if one is api:
                    batches = (after["batches"] - before["batches"]) / rounds
                    model = f"{(after['model_seconds'] - before['model_seconds']) / rounds:>8.3f}"
                    batch = f"{batches:>8.1f} {(after['items'] - before['items']) / rounds / max(batches, 1e-9):>10.1f}"
                else:
                    model, batch = f"{'':>8}", f"{'':>8} {'':>10}"
                print(f"{n:>8} {len(latencies):>5} {percentile(latencies, 50) * 1000:>8.1f} {p99 * 1000:>8.1f} "
                      f"{p99 / anchor:>10.2f} {wall / rounds:>7.3f} {server:>12.3f} {client_cpu:>12.3f} {model} {batch}")
                if n == 50:
                    record(f"studio {name.split(' (')[0]}: p99 of 50 concurrent requests", p99 * 1000, "ms",
                           anchor="one request alone (median)", anchor_value=anchor * 1000,
                           spread=f"{rounds} bursts, p50 {percentile(latencies, 50) * 1000:.0f} ms",
                           target="p99 <= 3x one alone" if one is api else "", met=p99 / anchor <= 3 if one is api else None)
        for connection in connections:
            connection.close()


def gradio_client_predict(url: str, sizes: list[int], alone_n: int) -> None:
    """The earlier way: gradio_client, one thread per concurrent request (its own CPU cost included)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    client = Client(url, verbose=False)

    def one(i: int) -> float:
        started = time.perf_counter()
        answer = client.predict(SENTENCES[i % len(SENTENCES)], api_name="/predict")
        if "label" not in answer:
            raise RuntimeError(f"request {i} failed: {answer}")
        return time.perf_counter() - started

    one(0)
    anchor = statistics.median(one(i) for i in range(alone_n))
    print(f"\n/predict through gradio_client (threads); {load_line()}")
    print(f"{'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99/alone':>10} {'client cpu s':>12}")
    print(f"{'alone':>8} {anchor * 1000:>8.1f}")
    for n in sizes:
        client0 = sum(os.times()[:2])
        with ThreadPoolExecutor(max_workers=n) as pool:
            latencies = list(pool.map(one, range(n)))
        p99 = percentile(latencies, 99)
        print(f"{n:>8} {percentile(latencies, 50) * 1000:>8.1f} {p99 * 1000:>8.1f} {p99 / anchor:>10.2f} "
              f"{sum(os.times()[:2]) - client0:>12.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running studio (default: start one on --model)")
    parser.add_argument("--model", help="the sentiment model (default: the cache's quick one)")
    parser.add_argument("--requests", type=int, nargs="+", default=[1, 20, 50], help="burst sizes")
    parser.add_argument("--rounds", type=int, default=5, help="bursts of each size")
    parser.add_argument("--alone", type=int, default=15, help="single requests for the anchor")
    parser.add_argument("--gradio-client", action="store_true", help="also time /predict through gradio_client")
    args = parser.parse_args(argv)

    from glassformer.data import cache_dir

    studio = None
    url = args.url
    if url is None:
        url, studio = start_studio(args.model or str(cache_dir() / "models" / "sentiment-quick"))
    try:
        print(f"studio load test against {url}\n{machine_line()}\n{load_line()} at the start")
        if studio is not None:
            print(studio.policy_line())
        asyncio.run(measure(url, studio, args.requests, args.rounds, args.alone))
        if args.gradio_client:
            gradio_client_predict(url, args.requests, args.alone)
        print(f"\n{load_line()} at the end")
    finally:
        if studio is not None:
            studio.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
