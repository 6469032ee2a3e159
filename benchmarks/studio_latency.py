"""Latency of every studio interaction on the quick models, idle and while a background job trains, side by side.

    .venv/bin/python benchmarks/studio_latency.py [--repeats 9] [--train translate|vision|lm|none]

It starts `glassformer studio` (the cache's quick models) in a process of its own on a free port, so
that client and server share the machine's cores as on a learner's laptop, and sends each interaction
through gradio_client (the same queue and events as the page; ``/api/predict`` over plain HTTP) once
to warm up, then ``--repeats`` times, one request at a time. First the idle table; then it presses the
train button of one tab (``--train``, default translate: the tab's quick preset retrained into a copy
of the cache's model in a temporary directory, so the cache is never written and the tab keeps
answering with the loaded model) and, once the trainer takes steps, times everything again. The
studio's policy (README, "A request comes first") stops the training process while a request is
answered. The last column says whether the job was still training through every repeat of the row.

Targets (issue 25): Explain p50 <= 1 s, every other interaction p50 <= 0.5 s, on the quick models,
on an idle machine. The Generate tab's Markov chain is fitted once per studio process in a
background thread; the script waits for it before timing anything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _figures import record
from studio_load import Studio, load_line, machine_line, percentile

GERMAN = "Ich habe keine Zeit."
PROMPT = "ROMEO: I love"
SENTENCE = "A gorgeous, witty, seductive movie."
# --train: the task module, the tab it lives in, and the studio's flag for its model directory
TRAINABLE = {"translate": ("translate", "translate", "--translate-model"),
             "vision": ("vit", "vision", "--vision-model"),
             "lm": ("lm", "generate", "--lm-model")}
TRAIN_BUTTON = "Train the quick preset here"


def interactions(client: Any, url: str) -> dict[str, Callable[[], Any]]:
    """Every request the studio answers, named as its control is labelled in the page."""
    import httpx

    def api_predict() -> Any:
        response = httpx.post(f"{url}api/predict", json={"text": SENTENCE}, timeout=60)
        response.raise_for_status()
        return response.json()

    return {
        "Sentiment: Classify": lambda: client.predict(SENTENCE, 0, 0, api_name="/classify"),
        "Sentiment: /predict (Gradio API)": lambda: client.predict(SENTENCE, api_name="/predict"),
        "Programs: POST /api/predict": api_predict,
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
        "Generate: logit lens (step slider)": lambda: client.predict(7, api_name="/logit_lens"),
        "Sentiment: Explain (4 methods, deletion curves)": lambda: client.predict(SENTENCE, api_name="/explain"),
        "Sentiment: ablate a head": lambda: client.predict(SENTENCE, ["0.0"], api_name="/ablate"),
        "Translate: Explain step 1": lambda: client.predict(GERMAN, 1, api_name="/explain_translate"),
        "Vision: Explain": lambda: client.predict(0, None, api_name="/explain_vision"),
        "Vision: ablate a head": lambda: client.predict(0, None, ["0.0"], api_name="/ablate_vision"),
    }


def target(name: str) -> float:
    return 1.0 if "Explain" in name else 0.5


def wait_for_markov(client: Any, timeout: float = 1800.0) -> float:
    """Seconds until the Generate tab's Markov panel shows its scores (it starts fitting on the first Generate)."""
    started = time.perf_counter()
    _, message, *_ = client.predict(PROMPT, 20, 0.8, 0, 1.0, 0, api_name="/generate")
    if "not trained yet" in message:
        return 0.0  # no language model, so no chain is fitted either
    while time.perf_counter() - started < timeout:
        _, markov = client.predict(2, api_name="/generate_step")
        if "bits per character" in markov:
            return time.perf_counter() - started
        if "could not be fitted" in markov:
            raise RuntimeError(markov)
        time.sleep(2.0)
    raise TimeoutError("the Markov chain was not ready in time")


class TrainingJob:
    """The tab's quick preset retrained in the studio's background, into a temporary copy of the cache's model."""

    def __init__(self, name: str) -> None:
        from glassformer.tasks import get_task

        task, self.tab, self.flag = TRAINABLE[name]
        module = get_task(task)
        self.cached = Path(module.default_out_dir(module.get_preset("quick")))
        self.root = Path(tempfile.mkdtemp(prefix="studio-latency-"))
        self.directory = self.root / self.cached.name
        if self.cached.is_dir():
            shutil.copytree(self.cached, self.directory)
        self.pressed = 0.0

    def press(self, url: str) -> None:
        """Press the tab's train button, as the page does (Gradio's queue protocol; the event is private to the page)."""
        import httpx

        config = httpx.get(f"{url}config", timeout=30).json()
        button = find_button(config, self.tab)
        event = next(d["id"] for d in config["dependencies"] if any(t[0] == button for t in d.get("targets", [])))
        session = "studio-latency-trainer"
        self.pressed = time.time()
        joined = httpx.post(f"{url}gradio_api/queue/join", timeout=30, json={
            "data": [], "fn_index": event, "session_hash": session, "trigger_id": button, "event_data": None})
        joined.raise_for_status()
        with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=60) as s:
            for line in s.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                    break

    def stepping(self) -> bool:
        """Whether the trainer has logged a step (data and vocabulary are ready, the Trainer runs)."""
        return (self.directory / "run" / "metrics.jsonl").is_file()

    def running(self) -> bool:
        """Whether the run has not yet saved its model."""
        saved = self.directory / "config.json"
        return not (saved.is_file() and saved.stat().st_mtime > self.pressed)

    def wait_until_stepping(self, timeout: float = 900.0) -> float:
        started = time.perf_counter()
        while not self.stepping():
            if time.perf_counter() - started > timeout or not self.running():
                raise RuntimeError(f"the {self.tab} tab's training did not start taking steps")
            time.sleep(1.0)
        return time.perf_counter() - started

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def find_button(config: dict[str, Any], tab: str) -> int:
    """The id of the train button inside the tab whose id is `tab`."""
    components = {c["id"]: c for c in config["components"]}

    def inside(node: dict[str, Any], in_tab: bool) -> int | None:
        props = components.get(node["id"], {}).get("props", {})
        in_tab = in_tab or (components.get(node["id"], {}).get("type") == "tabitem" and props.get("id") == tab)
        if in_tab and components.get(node["id"], {}).get("type") == "button" and props.get("value") == TRAIN_BUTTON:
            return node["id"]
        for child in node.get("children", []):
            found = inside(child, in_tab)
            if found is not None:
                return found
        return None

    found = inside(config["layout"], False)
    if found is None:
        raise RuntimeError(f"no {TRAIN_BUTTON!r} button in the {tab} tab (does this studio offer training?)")
    return found


def timed(calls: dict[str, Callable[[], Any]], repeats: int,
          job: TrainingJob | None = None) -> dict[str, tuple[float, float, str]]:
    """(p50, p90, whether the job trained throughout) of each interaction, one request at a time."""
    rows: dict[str, tuple[float, float, str]] = {}
    for name, call in calls.items():
        answer = call()  # warm-up: first-call costs (threads, caches) are not what a click waits for
        if "not trained yet" in repr(answer) or answer in ("", ("", "")):  # empty: nothing generated to look at
            rows[name] = (float("nan"), float("nan"), "no model")  # it answered with the missing model's message
            continue
        during = job is None or job.running()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        during = "" if job is None else ("yes" if during and job.running() else "part" if during else "no")
        rows[name] = (statistics.median(times), percentile(times, 90), during)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentiment-model", default=None, help="the sentiment model directory (default: the cache's)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--train", choices=[*TRAINABLE, "none"], default="translate",
                        help="the tab whose quick preset trains in the background for the second table")
    args = parser.parse_args(argv)

    from gradio_client import Client

    from glassformer.data import cache_dir

    job = TrainingJob(args.train) if args.train != "none" else None
    flags = [job.flag, str(job.directory)] if job else []
    studio = Studio(["--sentiment-model", args.sentiment_model or str(cache_dir() / "models" / "sentiment-quick"),
                     *flags])
    try:
        url = studio.url
        client = Client(url, verbose=False)
        print(f"studio latency against {url}; {args.repeats} requests per interaction, one at a time\n"
              f"{machine_line()}\n{studio.policy_line()}\n"
              "precision: the studio's models compute in fp32; /api/predict in auto (bf16 where the CPU has it)")
        markov = wait_for_markov(client)
        print(f"Markov chain fitted and both models scored {markov:.1f} s after the first Generate")
        calls = interactions(client, url)
        loads = [load_line()]
        idle = timed(calls, args.repeats)
        loads.append(load_line())
        training: dict[str, tuple[float, float, str]] = {}
        if job is not None:
            job.press(url)
            print(f"pressed the {job.tab} tab's train button; the trainer took its first logged step after "
                  f"{job.wait_until_stepping():.0f} s (preparing data and vocabulary)")
            loads.append(load_line())
            training = timed(calls, args.repeats, job)
            loads.append(load_line())
        print(f"idle: {loads[0]} → {loads[1]}" + (f"; training: {loads[2]} → {loads[3]}" if job else ""))
        print(f"{'interaction':<48} {'target':>6} {'idle p50':>8} {'p90':>6} {'met':>4}"
              + (f" {'train p50':>9} {'p90':>6} {'met':>4} {'trained':>7}" if job else ""))
        for name, (p50, p90, note) in idle.items():
            if note == "no model":
                print(f"{name:<48} its tab has no model in this studio: not timed")
                continue
            line = f"{name:<48} {target(name):>6.1f} {p50:>8.3f} {p90:>6.3f} {'yes' if p50 <= target(name) else 'NO':>4}"
            if job is not None:
                t50, t90, during = training[name]
                line += f" {t50:>9.3f} {t90:>6.3f} {'yes' if t50 <= target(name) else 'NO':>4} {during:>7}"
            print(line)
            record(f"studio latency, idle: {name}", p50, "s", spread=f"p90 {p90:.3f} s of {args.repeats}",
                   target=f"p50 <= {target(name):g} s", met=p50 <= target(name))
            if job is not None:
                record(f"studio latency while the {job.tab} tab trains: {name}", t50, "s",
                       anchor="the same interaction, idle", anchor_value=p50,
                       spread=f"p90 {t90:.3f} s; trained during every repeat: {during}",
                       target=f"p50 <= {target(name):g} s", met=t50 <= target(name))
    finally:
        studio.stop()
        if job is not None:
            job.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
