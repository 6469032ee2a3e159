"""Latency of the Explain panels, the head grid and the Generate tab's logit lens, one request at a time.

    PYTHONPATH=src .venv/bin/python benchmarks/studio_explain_latency.py [--repeats 7] [--threads N]

Calls the studio's handlers in this process (what a click runs, without Gradio's queue, which adds
a few milliseconds). The sentiment model is the cache's quick one. Translate, Vision and Generate use
the cache's quick models when they exist; otherwise a model with the quick preset's architecture
is trained here for a handful of steps on a small slice (latency depends on the architecture, not on
the weights; the translation model's vocabulary then comes from a toy corpus and is smaller). Each
interaction runs once to warm up, then `--repeats` times; the table gives p50 and p90.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

WORDS = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "frisst": "eats", "rote": "red",
         "kleine": "small", "maus": "mouse", "ball": "ball", "heute": "today", "nicht": "not", "gern": "gladly"}


def _pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chosen = [rng.choice(list(WORDS)) for _ in range(rng.randint(3, 6))]
        out.append((" ".join(chosen) + ".", " ".join(WORDS[w] for w in chosen) + "."))
    return out


def stand_ins(root: Path, quick: dict[str, Path]) -> dict[str, Path]:
    """Quick-architecture models trained for a few steps, for the tasks whose quick model is not saved."""
    out = {}
    if not (quick["vit"] / "config.json").is_file():
        from glassformer.data.corpora import ImageDataset, load_fashion_mnist
        from glassformer.tasks import vit

        images = load_fashion_mnist(quiet=True)
        tiny = ImageDataset(images.train_images[:200], images.train_labels[:200], images.test_images[:50],
                            images.test_labels[:50], images.class_names)
        vit.train("quick", out=root / "vit", progress=False, data=tiny, epochs=1, validation_size=50)
        out["vit"] = root / "vit"
    if not (quick["lm"] / "config.json").is_file():
        from glassformer.data.corpora import PlaySplit, load_shakespeare
        from glassformer.tasks import lm

        works = load_shakespeare(quiet=True)
        data = PlaySplit({k: v[:20000] for k, v in list(works.train.items())[:2]},
                         {k: v[:2000] for k, v in list(works.validation.items())[:1]}, works.titles, works.seed)
        lm.train_transformer("quick", out=root / "lm", data=data, progress=False, max_steps=3, eval_windows=2,
                             tokenizer="char")
        out["lm"] = root / "lm"
    if not (quick["translate"] / "config.json").is_file():
        from glassformer.data.corpora import ParallelCorpus
        from glassformer.tasks import translate

        corpus = ParallelCorpus(_pairs(300, 0), _pairs(20, 1), _pairs(20, 2), [], {"source": "toy"})
        translate.train("quick", root / "translate", corpus=corpus, progress=False, vocab_size=300, max_steps=3,
                        warmup_steps=1, eval_every=3, bf16=False, tune_alpha=False)
        out["translate"] = root / "translate"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from glassformer.data import cache_dir
    from glassformer.studio import default_models
    from glassformer.studio.tabs import generate as gen
    from glassformer.studio.tabs import sentiment as sentiment_tab
    from glassformer.studio.tabs import translate as translate_tab
    from glassformer.studio.tabs import vision as vision_tab
    from glassformer.tasks import get_task

    models_dir = cache_dir() / "models"
    quick = {"vit": models_dir / "vit-quick", "translate": get_task("translate").default_out_dir(
        get_task("translate").get_preset("quick")), "lm": get_task("lm").default_out_dir(
        get_task("lm").get_preset("quick", tokenizer="char"))}
    with tempfile.TemporaryDirectory() as tmp:
        made = stand_ins(Path(tmp), quick)
        dirs = {task: made.get(task, quick[task]) for task in quick}
        models = default_models(models_dir / "sentiment-quick", translate_dir=dirs["translate"],
                                vision_dir=dirs["vit"], generate_dir=dirs["lm"])
        _, _, state, _, _, _ = gen.generate(models.generate, models.markov, "ROMEO: I love", 120, 0.8, 0, 1.0, 0)
        # Generate starts fitting the Markov chain in a background thread; let it finish, so that its
        # Python loop does not share the cores (and the GIL) with the measured requests.
        started = time.perf_counter()
        while not (models.markov.ready_for(models.generate.get()) or models.markov.error is not None):
            if time.perf_counter() - started > 900:
                raise TimeoutError("the Markov chain was not fitted in 15 minutes")
            time.sleep(1.0)
        steps = iter(range(1, 10_000))
        text = "A gorgeous, witty, seductive movie."
        heads = iter([["0.0"], ["1.3", "2.0"], ["5.11"], []] * 1000)
        calls: dict[str, Callable[[], Any]] = {
            "Sentiment: Explain (4 methods + deletion curves)": lambda: sentiment_tab.explain(models, text),
            "Sentiment: tick a head (ablate)": lambda: sentiment_tab.ablate(models, text, next(heads)),
            "Translate: Explain this step": lambda: translate_tab.explain_step(models, "Ich habe keine Zeit.", 0),
            "Vision: Explain": lambda: vision_tab.explain(models, 0),
            "Generate: logit lens (step slider)": lambda: gen.logit_lens_html(models.generate, state,
                                                                              next(steps) % 120 + 1),
        }
        load_before = os.getloadavg()[0]
        rows = []
        for name, call in calls.items():
            page = call()
            if "gf-error" in page or "gf-warning" in page:
                raise RuntimeError(f"{name}: {page[:300]}")
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            times.sort()
            rows.append((name, statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]))
        load_after = os.getloadavg()[0]
    print(f"Explain panels, {args.repeats} requests each, in process; torch threads {torch.get_num_threads()}; "
          f"load average {load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores")
    kinds = {task: "quick architecture, stand-in weights" if task in made else "quick (cache)" for task in quick}
    print("models: sentiment-quick; " + ", ".join(f"{task}: {kind}" for task, kind in kinds.items()))
    print(f"{'interaction':<50} {'p50 s':>7} {'p90 s':>7} {'p50 <= 1 s':>11}")
    for name, p50, p90 in rows:
        print(f"{name:<50} {p50:>7.3f} {p90:>7.3f} {'yes' if p50 <= 1.0 else 'NO':>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
